"""Peer: WECHSEL (PyPI ``wechsel``, by its authors), run in its own venv.

WECHSEL embeds the tokens of both tokenizers in fastText word-embedding spaces of the two
languages, aligns the spaces with Orthogonal Procrustes on a bilingual dictionary, and makes each
new row the softmax-weighted mean of the rows of its 10 nearest old tokens (arXiv:2112.06598).
Its loaders download fastText's pretrained cc.<lang>.300 vectors and its own dictionaries; here
the driver trains fastText on the local train splits with ``wechsel.train_embeddings`` (a regex
word splitter instead of NLTK's Punkt, whose data would be downloaded) and passes the freedict
dictionary from ``tokengraft.fetch_dictionary`` as a file. HOME / XDG_CACHE_HOME point into a
scratch directory that is removed afterwards.
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
    source_train: Path,
    dictionary: Path,
    work_dir: Path,
    epochs: int = 20,
    timeout: float | None = None,
    nice: int = 0,
    **_: Any,
) -> dict[str, Any]:
    """WECHSEL-initialise ``base_dir`` for ``new_tokenizer_dir``; checkpoint in out_dir."""
    home = work_dir / "wechsel-home"  # also its scratch directory for fastText files
    args = ["--base", str(base_dir), "--new-tokenizer", str(new_tokenizer_dir)]
    args += ["--out", str(out_dir), "--source-text", str(source_train)]
    args += ["--target-text", str(target_train), "--dictionary", str(dictionary)]
    args += ["--epochs", str(epochs), "--threads", str(os.cpu_count() or 1)]
    args += ["--scratch", str(home)]
    return run_driver(
        "wechsel", args, out_dir=out_dir, log=log, home=home, timeout=timeout, nice=nice
    )
