"""Peers: other tools that make the same graft, each run in its own venv through a driver script.

Each peer module ``bench/peers/<module>.py`` exposes
``run(base_dir, new_tokenizer_dir, out_dir, **inputs) -> dict`` returning ``{"out_dir",
"seconds", "peak_rss_mb", "error"}``: it runs ``<module>_driver.py`` with the peer venv's python
(our code calling the peer's public API), which saves a Hugging Face checkpoint in ``out_dir``.
The venv is made by ``bench/peers/setup_<module>.sh`` (idempotent, CPU torch first).
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import Measured, run_measured

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, kw_only=True)
class PeerSpec:
    """A peer row of the benchmark.

    Attributes:
        name: row name.
        module: ``bench.peers.<module>`` runs it; its venv is ``peer_venv(module)``.
        summary: what it does, for the table.
        url: where the peer comes from.
        needs: scenario inputs it requires beyond the base model and tokenizers
            (``dictionary``, ``donor``, ``target_train``, ``source_train``).
        options: keyword arguments passed to the module's ``run``.
    """

    name: str
    module: str
    summary: str
    url: str
    needs: frozenset[str] = frozenset()
    options: Mapping[str, Any] = field(default_factory=dict)


PEERS: dict[str, PeerSpec] = {
    p.name: p
    for p in (
        PeerSpec(
            name="tokenizer_adapter",
            module="tokenizer_adapter",
            summary="tokenizer-adapter, method 'average' (mean of the old pieces' rows)",
            url="https://pypi.org/project/tokenizer-adapter/",
            options={"method": "average"},
        ),
        PeerSpec(
            name="deepfocus",
            module="deepfocus",
            summary="FOCUS (deepfocus) with its defaults; fastText trained on the target train split",
            url="https://github.com/konstantinjdobler/focus",
            needs=frozenset({"target_train"}),
        ),
        PeerSpec(
            name="deepfocus_min_count_1",
            module="deepfocus",
            summary="FOCUS (deepfocus), fastText minCount 1 so that rare new tokens get vectors",
            url="https://github.com/konstantinjdobler/focus",
            needs=frozenset({"target_train"}),
            options={"min_count": 1},
        ),
        PeerSpec(
            name="wechsel",
            module="wechsel",
            summary="WECHSEL (wechsel); fastText trained on both train splits, freedict dictionary",
            url="https://github.com/CPJKU/wechsel",
            needs=frozenset({"target_train", "source_train", "dictionary"}),
        ),
        PeerSpec(
            name="mergekit_omp",
            module="mergekit",
            summary="mergekit-tokensurgeon, OMP k=8 with the donor",
            url="https://github.com/arcee-ai/mergekit",
            needs=frozenset({"donor"}),
            options={"approximation_method": "omp", "k": 8},
        ),
        PeerSpec(
            name="mergekit_subword",
            module="mergekit",
            summary="mergekit-tokensurgeon, subword mean",
            url="https://github.com/arcee-ai/mergekit",
            needs=frozenset({"donor"}),
            options={"approximation_method": "subword"},
        ),
    )
}


def peer_venv(module: str) -> Path:
    """The peer's venv: ``$TOKENGRAFT_PEERS_DIR/<module>`` (default ``~/peers/<module>``)."""
    root = os.environ.get("TOKENGRAFT_PEERS_DIR")
    return (Path(root).expanduser() if root else Path.home() / "peers") / module


def setup_script(module: str) -> Path:
    return HERE / f"setup_{module}.sh"


def load_runner(spec: PeerSpec) -> Any:
    """The peer's module (``bench.peers.<module>``); ImportError when nobody wrote it yet."""
    return importlib.import_module(f"bench.peers.{spec.module}")


def missing_venv_error(module: str) -> str | None:
    """None when the peer's venv exists, else the error to put in its row."""
    python = peer_venv(module) / "bin" / "python"
    if python.is_file():
        return None
    return f"peer venv {python.parent.parent} is missing: run bash {setup_script(module)}"


def run_driver(
    module: str,
    args: Sequence[str],
    *,
    out_dir: Path,
    log: Path,
    home: Path | None = None,
    timeout: float | None = None,
    nice: int = 0,
) -> dict[str, Any]:
    """Run ``<module>_driver.py ARGS`` with the peer venv's python; the peer contract's dict."""
    python = peer_venv(module) / "bin" / "python"
    # -P: do not put bench/peers/ on sys.path, where <module>.py would shadow the peer's package.
    cmd = [str(python), "-P", str(HERE / f"{module}_driver.py"), *args]
    return run_in_venv(module, cmd, out_dir=out_dir, log=log, home=home, timeout=timeout, nice=nice)


def run_in_venv(
    module: str,
    cmd: Sequence[str],
    *,
    out_dir: Path,
    log: Path,
    home: Path | None = None,
    timeout: float | None = None,
    nice: int = 0,
) -> dict[str, Any]:
    """Run ``cmd`` (a program of the peer's venv), measured; the peer contract's dict.

    ``home``: a scratch directory made empty for the run and removed after it, given to the
    child as HOME and XDG_CACHE_HOME so that peers which cache (fastText models, tokenised text)
    start from scratch every time and leave nothing behind.
    """
    error = missing_venv_error(module)
    if error is not None:
        return {"out_dir": str(out_dir), "seconds": None, "peak_rss_mb": None, "error": error}
    child_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        child_env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    try:
        measured = run_measured(cmd, log=log, env=child_env, timeout=timeout, nice=nice)
    finally:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
    return result_dict(measured, out_dir=out_dir, what=f"{module} peer", command=cmd)


def result_dict(
    measured: Measured, *, out_dir: Path, what: str, command: Sequence[str]
) -> dict[str, Any]:
    """The peer contract's dict (plus the command) from a measured child process."""
    error = measured.error(what)
    if error is None and not (out_dir / "config.json").is_file():
        error = f"{what} exited 0 but wrote no checkpoint to {out_dir}"
    return {
        "out_dir": str(out_dir),
        "seconds": measured.seconds,
        "peak_rss_mb": measured.peak_rss_mb,
        "cpu_seconds": measured.cpu_seconds,
        "error": error,
        "command": " ".join(command),
    }
