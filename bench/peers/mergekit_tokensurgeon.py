"""Peer: ``mergekit-tokensurgeon`` (PyPI ``mergekit``) called directly, for OMP side-by-sides.

A donor-centred entry point next to :mod:`bench.peers.mergekit` (the benchmark table's runner):
``run(base_dir, donor_dir, out_dir, k=..., approach=...)`` runs

    mergekit-tokensurgeon BASE DONOR OUT --allow-crimes -a APPROACH -k K [EXTRA_ARGS]

from the peer's own venv (``$TOKENGRAFT_PEER_MERGEKIT``, default ``~/peers/mergekit``; made by
``bench/peers/setup_mergekit.sh``) and measures its wall time and peak RSS. What tokensurgeon
offers (mergekit 0.1.5, read from its source): ``-a omp|subword|common_interpolation|...``, ``-k``
atoms per token (default 64), ``--batch-size`` tokens per OMP batch (default 512; its OMP computes
residual correlations with every shared token at each of the k steps), ``-bm/-pm`` byte and prefix
matching; it approximates every donor token that is not an exact match of its normalised
vocabulary and has no option to limit the run to a subset of tokens. The tokenizer it writes is
the donor's.

Example:
    >>> run(base, donor, out, k=8)  # doctest: +SKIP
    {'out_dir': ..., 'seconds': 1380.2, 'peak_rss_mb': 4100.5, 'error': None, 'command': ...}
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.measure import run_measured
from bench.peers import result_dict, setup_script

ENV_VAR = "TOKENGRAFT_PEER_MERGEKIT"


def venv_dir() -> Path:
    """The peer's venv: ``$TOKENGRAFT_PEER_MERGEKIT`` or ``~/peers/mergekit``."""
    return Path(os.environ.get(ENV_VAR) or Path.home() / "peers" / "mergekit").expanduser()


def command(
    base_dir: Path,
    donor_dir: Path,
    out_dir: Path,
    *,
    k: int,
    approach: str,
    extra_args: Sequence[str],
) -> list[str]:
    """The tokensurgeon command line."""
    program = venv_dir() / "bin" / "mergekit-tokensurgeon"
    cmd = [str(program), str(base_dir), str(donor_dir), str(out_dir), "--allow-crimes"]
    return cmd + ["--approximation-method", approach, "-k", str(k), *extra_args]


def run(
    base_dir: Path,
    donor_dir: Path,
    out_dir: Path,
    *,
    k: int,
    approach: str = "omp",
    extra_args: Sequence[str] = (),
    log: Path | None = None,
    timeout: float | None = None,
    nice: int = 10,
) -> dict[str, Any]:
    """Run tokensurgeon once; its checkpoint goes to ``out_dir``.

    Args:
        base_dir: the base model as an HF directory (e.g. ``smollm2-135m-hf`` in the cache).
        donor_dir: an HF directory of a model that uses the new tokenizer.
        out_dir: where tokensurgeon writes the grafted checkpoint.
        k: atoms per token (``-k``).
        approach: ``--approximation-method`` (``omp``, ``subword``, ...).
        extra_args: more tokensurgeon flags, e.g. ``["--batch-size", "1024"]``.
        log: file for the child's stderr (default: ``out_dir`` + ``.log``).
        timeout: seconds after which the run is killed.
        nice: niceness of the child.

    Returns:
        ``{"out_dir", "seconds", "peak_rss_mb", "error", "command"}``; ``error`` is None on success.
    """
    program = venv_dir() / "bin" / "mergekit-tokensurgeon"
    if not program.is_file():
        message = f"{program} is missing: run bash {setup_script('mergekit')}"
        return {"out_dir": str(out_dir), "seconds": None, "peak_rss_mb": None, "error": message}
    cmd = command(base_dir, donor_dir, out_dir, k=k, approach=approach, extra_args=extra_args)
    log = log or out_dir.with_name(out_dir.name + ".log")
    home = Path(tempfile.mkdtemp(prefix="mergekit-home-"))  # keep its caches out of ~
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOME": str(home)}
    try:
        measured = run_measured(cmd, log=log, env=env, cwd=home, timeout=timeout, nice=nice)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return result_dict(measured, out_dir=out_dir, what="mergekit-tokensurgeon", command=cmd)
