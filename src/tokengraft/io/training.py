"""Disk access of ``tokengraft tune``: row sources, the training state, and its output directory.

A tune output is a whole Hugging Face checkpoint written atomically at every save, with
``tune.json`` (the run's record) and ``train_state/`` (rows, optimiser moments, generator states
and history: what ``--resume`` continues from) beside the weights.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokengraft.config import RowSource
from tokengraft.errors import TokengraftError
from tokengraft.io.atomic import check_output, write_bytes, write_json
from tokengraft.io.errors import reraise
from tokengraft.io.models import check_model_dir
from tokengraft.io.tensors import load_tensors, save_tensors
from tokengraft.io.texts import read_json

log = logging.getLogger(__name__)

STATE_DIR = "train_state"
REPORT_FILE = "tune.json"
_STATE_TENSORS = "state.safetensors"
_STATE_META = "state.json"
_TEMPORARY = re.compile(r"^\..+\.(tmp|old)-[0-9a-f-]+$")  # io.atomic's temporaries
# Weights, including a GGUF copy (``--gguf``): it holds the old rows, so it is never carried over.
_WEIGHTS = re.compile(
    r".*\.safetensors|model\.safetensors\.index\.json|pytorch_model.*\.bin|.*\.gguf"
)


def read_row_sources(model_dir: Path) -> list[RowSource] | None:
    """How each row of a checkpoint was made, from its ``tokens.tsv`` (None: no such file).

    Raises:
        TokengraftError: a line without a known source, or ids out of order.
    """
    path = Path(model_dir) / "tokens.tsv"
    if not path.is_file():
        return None
    with reraise("tokens.tsv", path):
        lines = path.read_text(encoding="utf-8").splitlines()
    sources: list[RowSource] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        try:
            if int(fields[0]) != len(sources):
                raise ValueError(f"id {fields[0]} where {len(sources)} was expected")
            sources.append(RowSource(fields[2]))
        except (ValueError, IndexError) as exc:
            raise TokengraftError(f"{path}:{number}: not a tokens.tsv line ({exc})") from None
    return sources


def check_checkpoint(path: Path) -> None:
    """Refuse a CHECKPOINT that is not a finished Hugging Face directory.

    Raises:
        TokengraftError: not a directory, a temporary left by an interrupted write, or no
            config/weights (a truncated shard is named when the weights are read).
    """
    path = Path(path)
    if not path.is_dir():
        what = "a file" if path.exists() else "not found"
        raise TokengraftError(f"checkpoint {path} is {what}; pass a Hugging Face model directory")
    if _TEMPORARY.match(path.resolve().name):
        raise TokengraftError(
            f"{path} is an unfinished write left by an interrupted run; pass the directory it "
            "was being written to"
        )
    check_model_dir(path, allow_pickle=False)


def check_tune_output(out: Path, checkpoint: Path, *, force: bool, resume: bool) -> None:
    """Refuse an OUT that would lose something: an input, or a run without --resume/--force.

    Raises:
        TokengraftError: OUT is, holds or lies in CHECKPOINT; it is a file; it exists without
            --resume or --force; or --resume finds no run in it.
    """
    if force and resume:
        raise TokengraftError("--force starts over and --resume continues: pass one of them")
    check_output(out, force=True, protect=[checkpoint])
    out = Path(out)
    if resume:
        recover_output(out)
        if not (out / STATE_DIR).is_dir():
            raise TokengraftError(f"--resume: {out} holds no run to resume (no {STATE_DIR}/)")
    elif out.is_dir() and any(out.iterdir()) and not force:
        raise TokengraftError(
            f"output directory {out} exists; pass --resume to continue its run or --force to "
            "start over"
        )


def recover_output(out: Path) -> None:
    """Tidy what a save killed between its renames left: restore OUT, or drop the old copy.

    A save renames OUT aside (``.OUT.old-*``), renames the new directory into place, then
    removes the old one. A process killed after the first rename leaves no OUT but a complete
    old one, which is put back; one killed after the second leaves an old copy, which is removed.
    """
    out = Path(out)
    if not out.parent.is_dir():
        return
    olds = sorted(out.parent.glob(f".{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not out.exists():
        try:
            os.replace(olds.pop(), out)
            log.warning("restored %s from a save that was interrupted", out)
        except OSError:  # another process of the same run got there first
            return
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)
        log.warning("removed %s, left by a save that was interrupted", old)


@dataclass(frozen=True, kw_only=True)
class TrainState:
    """A saved training state: named tensors and the JSON beside them."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def save_train_state(out: Path, tensors: Mapping[str, torch.Tensor], meta: Any) -> None:
    """Write a training state into ``out/train_state/`` (each file atomically)."""
    save_tensors(Path(out) / STATE_DIR / _STATE_TENSORS, tensors)
    write_json(Path(out) / STATE_DIR / _STATE_META, meta)


def load_train_state(out: Path) -> TrainState:
    """The training state saved in ``out``.

    Raises:
        TokengraftError: it is missing, unreadable or incomplete.
    """
    folder = Path(out) / STATE_DIR
    found = load_tensors(folder / _STATE_TENSORS)
    if found is None or not (folder / _STATE_META).is_file():
        raise TokengraftError(f"{folder} is incomplete: no {_STATE_TENSORS} or {_STATE_META}")
    meta = read_json(folder / _STATE_META)
    if not isinstance(meta, dict):
        raise TokengraftError(f"{folder / _STATE_META} does not hold a JSON object")
    return TrainState(tensors=found[0], meta=meta)


def copy_side_files(src: Path, dst: Path, *, skip: Collection[str] = ()) -> list[str]:
    """Copy every top-level file of a checkpoint but its weights (configs, tokenizer, records).

    Args:
        src: the checkpoint.
        dst: the directory being written.
        skip: more file names not to copy.

    Returns:
        The names copied.
    """
    copied = []
    for path in sorted(Path(src).iterdir()):
        if path.is_file() and not _WEIGHTS.fullmatch(path.name) and path.name not in skip:
            with reraise("checkpoint file", path):
                data = path.read_bytes()
            write_bytes(Path(dst) / path.name, data)
            copied.append(path.name)
    return copied
