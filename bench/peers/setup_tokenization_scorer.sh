#!/usr/bin/env bash
# Create the venv of the tokenization-scorer peer (PyPI `tokenization-scorer`, Renyi efficiency)
# for bench/tokenizer_metrics.py. Idempotent; it needs no torch, so this venv has none.
# Usage: bash bench/peers/setup_tokenization_scorer.sh [VENV_DIR]
set -euo pipefail
ROOT="${TOKENGRAFT_PEERS_DIR:-$HOME/.cache/tokengraft/peers}"
VENV="${1:-$ROOT/tokenization_scorer}"
CHECK="import tokenization_scorer"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
    echo "peer already installed in $VENV"
    exit 0
fi
"${PYTHON:-python3.11}" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet tokenization-scorer==1.1.8
"$VENV/bin/python" -c "$CHECK"
echo "peer installed in $VENV"
