#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, real-model tests on SmolLM2 included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m pytest -q "$@"
