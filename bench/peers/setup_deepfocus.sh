#!/usr/bin/env bash
# Create the venv of the FOCUS peer (PyPI `deepfocus`, by the FOCUS authors) for bench/run.py.
# Idempotent. deepfocus compiles fasttext; its caches go under the venv (HOME is redirected when it
# runs, see bench/peers/deepfocus.py). Usage: bash bench/peers/setup_deepfocus.sh [VENV_DIR]
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
VENV="${1:-${TOKENGRAFT_PEER_DEEPFOCUS:-$HOME/peers/deepfocus}}"
make_peer_venv "$VENV" "import deepfocus, fasttext, transformers" \
    deepfocus transformers safetensors
