#!/usr/bin/env bash
# Create the venv of the vocabtrimmer peer (PyPI `vocabtrimmer`) for bench/vocab_ops.py.
# Idempotent. vocabtrimmer's own requirements pull datasets and friends; the driver
# (bench/peers/vocabtrimmer_driver.py) feeds it a local corpus instead of downloading mC4.
# Usage: bash bench/peers/setup_vocabtrimmer.sh [VENV_DIR]
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
VENV="${1:-${TOKENGRAFT_PEER_VOCABTRIMMER:-$HOME/peers/vocabtrimmer}}"
# vocabtrimmer imports huggingface_hub.Repository, gone from current huggingface_hub: the driver
# patches it in before the import, so the check only finds the package.
make_peer_venv "$VENV" "import importlib.util as u, pandas, datasets, transformers; assert u.find_spec('vocabtrimmer')" \
    vocabtrimmer transformers safetensors sentencepiece protobuf pandas datasets
