"""Peer: mergekit-tokensurgeon (PyPI ``mergekit``), run from its own venv.

``mergekit-tokensurgeon MODEL DONOR OUT`` transplants the donor's tokenizer onto MODEL; rows of
tokens the two vocabularies share are copied, the others approximated with ``-a`` (``omp``:
orthogonal matching pursuit over the donor's embeddings with ``k`` atoms, transferred to MODEL's
space; ``subword``: the mean of the rows of the token's pieces). It needs a donor model that uses
the new tokenizer, so it only applies to donor scenarios. Venv: bench/peers/setup_mergekit.sh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.peers import peer_venv, run_in_venv


def run(
    base_dir: Path,
    new_tokenizer_dir: Path,
    out_dir: Path,
    *,
    log: Path,
    donor: Path,
    work_dir: Path,
    approximation_method: str = "omp",
    k: int | None = None,
    seed: int = 0,
    timeout: float | None = None,
    nice: int = 0,
    **_: Any,
) -> dict[str, Any]:
    """Run tokensurgeon on ``base_dir`` with ``donor`` (whose tokenizer is new_tokenizer_dir)."""
    program = peer_venv("mergekit") / "bin" / "mergekit-tokensurgeon"
    cmd = [str(program), str(base_dir), str(donor), str(out_dir), "--allow-crimes"]
    cmd += ["--approximation-method", approximation_method, "--random-seed", str(seed)]
    cmd += ["--quiet"] + (["-k", str(k)] if k is not None else [])
    return run_in_venv(
        "mergekit",
        cmd,
        out_dir=out_dir,
        log=log,
        home=work_dir / "mergekit-home",
        timeout=timeout,
        nice=nice,
    )
