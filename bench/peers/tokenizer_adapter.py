"""Peer: tokenizer-adapter (PyPI ``tokenizer-adapter``), run in its own venv.

``TokenizerAdapter(method=...).adapt_from_pretrained(model, new_tokenizer, old_tokenizer)`` maps each
new token to the old ids of its string (or of its old-tokenizer encoding) and aggregates their rows
(``average``: the mean), for every tensor with a vocabulary-sized dimension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.peers import run_driver


def run(
    base_dir: Path,
    new_tokenizer_dir: Path,
    out_dir: Path,
    *,
    log: Path,
    method: str = "average",
    timeout: float | None = None,
    nice: int = 0,
    **_: Any,
) -> dict[str, Any]:
    """Adapt ``base_dir`` to ``new_tokenizer_dir`` with tokenizer-adapter; checkpoint in out_dir."""
    args = ["--base", str(base_dir), "--new-tokenizer", str(new_tokenizer_dir)]
    args += ["--out", str(out_dir), "--method", method]
    return run_driver(
        "tokenizer_adapter", args, out_dir=out_dir, log=log, timeout=timeout, nice=nice
    )
