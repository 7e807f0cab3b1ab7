#!/usr/bin/env bash
# Create the venv of the mergekit peer (PyPI `mergekit`: mergekit-tokensurgeon) for bench/run.py.
# Idempotent; CPU torch first (see _venv.sh). Usage: bash bench/peers/setup_mergekit.sh [VENV_DIR]
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
VENV="$(realpath -m "${1:-${TOKENGRAFT_PEER_MERGEKIT:-$HOME/peers/mergekit}}")"
cd / # the import check must not see bench/peers/mergekit.py, which shadows the package
make_peer_venv "$VENV" "import mergekit.scripts.tokensurgeon" mergekit
test -x "$VENV/bin/mergekit-tokensurgeon"
