"""Peer: FOCUS by its authors (PyPI ``deepfocus``), run in its own venv.

FOCUS trains a token-level fastText model on the target training text tokenised with the new
tokenizer, copies the rows of tokens shared by both vocabularies, and makes every other row a
sparsemax-weighted convex combination of shared rows, weighted by fastText similarity
(arXiv:2305.14481). deepfocus caches tokenised text and the fastText model under
``$XDG_CACHE_HOME`` (~800 MB): HOME and XDG_CACHE_HOME point into a scratch directory that is
removed afterwards, so every run trains from scratch and its time includes fastText training.
``min_count`` is deepfocus's ``fasttext_model_min_count`` (default 10): on a few MB of text most
new tokens occur fewer than 10 times, get no fastText vector and are initialised randomly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.peers import run_driver


def run(
    base_dir: Path,
    new_tokenizer_dir: Path,
    out_dir: Path,
    *,
    log: Path,
    target_train: Path,
    work_dir: Path,
    seed: int = 0,
    min_count: int = 10,
    timeout: float | None = None,
    nice: int = 0,
    **_: Any,
) -> dict[str, Any]:
    """FOCUS-initialise ``base_dir`` for ``new_tokenizer_dir``; checkpoint in out_dir."""
    args = ["--base", str(base_dir), "--new-tokenizer", str(new_tokenizer_dir)]
    args += ["--out", str(out_dir), "--train-text", str(target_train), "--seed", str(seed)]
    args += ["--processes", str(os.cpu_count() or 1), "--min-count", str(min_count)]
    home = work_dir / "deepfocus-home"
    return run_driver(
        "deepfocus", args, out_dir=out_dir, log=log, home=home, timeout=timeout, nice=nice
    )
