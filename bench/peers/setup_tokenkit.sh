#!/usr/bin/env bash
# Create the venv of the tokenkit peer (PyPI `tokenkit`, fertility and parity; not the ZeTT
# tokenkit) for bench/tokenizer_metrics.py. Idempotent. tokenkit imports transformers, pandas and
# matplotlib; it only tokenises, so this venv has no torch.
# Usage: bash bench/peers/setup_tokenkit.sh [VENV_DIR]
set -euo pipefail
ROOT="${TOKENGRAFT_PEERS_DIR:-$HOME/.cache/tokengraft/peers}"
VENV="${1:-$ROOT/tokenkit}"
CHECK="import tokenkit.tokenkit, transformers, tokenizers"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
    echo "peer already installed in $VENV"
    exit 0
fi
"${PYTHON:-python3.11}" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet tokenkit==0.1.3 \
    transformers tokenizers pandas matplotlib numpy
"$VENV/bin/python" -c "$CHECK"
echo "peer installed in $VENV"
