#!/usr/bin/env bash
# Create the venv of the WECHSEL peer (PyPI `wechsel`) for bench/run.py.
# Idempotent. Its embedding / dictionary loaders download; bench/peers/wechsel.py passes locally
# trained fastText models and a local dictionary instead. Usage: bash bench/peers/setup_wechsel.sh
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
VENV="${1:-${TOKENGRAFT_PEER_WECHSEL:-$HOME/peers/wechsel}}"
make_peer_venv "$VENV" "import wechsel, fasttext, transformers" \
    wechsel transformers safetensors
