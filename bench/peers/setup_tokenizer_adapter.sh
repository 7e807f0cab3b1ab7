#!/usr/bin/env bash
# Create the venv of the tokenizer-adapter peer (PyPI `tokenizer-adapter`) for bench/run.py.
# Idempotent. Usage: bash bench/peers/setup_tokenizer_adapter.sh [VENV_DIR]
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
VENV="${1:-${TOKENGRAFT_PEER_TOKENIZER_ADAPTER:-$HOME/peers/tokenizer_adapter}}"
make_peer_venv "$VENV" "import tokenizer_adapter, transformers" \
    tokenizer-adapter transformers safetensors
