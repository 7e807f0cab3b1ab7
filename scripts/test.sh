#!/usr/bin/env bash
# Set up (idempotent), lint and type-check, then run the whole test suite, real-model tests on
# SmolLM2 included. Lint comes first because it takes seconds and the suite takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# llama.cpp (llama-cpp-python built from source) for the GGUF tests marked llama_cpp; built once
# into the cache outside the repository (about 7 minutes on 2 idle cores), then reused.
bash scripts/setup_llama_cpp.sh
# Debian's chromium for the test that renders an HTML report headless (apt-get, once; quiet).
bash scripts/setup_chromium.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Docstrings (google convention), complexity, imports; then formatting; then types.
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy src
.venv/bin/python -m pytest -q "$@"
