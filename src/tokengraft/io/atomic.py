"""The one atomic writer: every file and directory tokengraft writes appears whole or not at all.

A file is written under a hidden temporary name in its own directory, flushed, given ordinary
permissions (0644) and renamed over the target (:func:`atomic_file`); a directory is built next to
its target and renamed into place (:func:`atomic_output_dir`). A failure removes the temporary.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError
from tokengraft.io.errors import one_line, writing

_FILE_MODE = 0o644  # temporary files may be created 0600; outputs are ordinary shared files


def _temporary(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"


@contextmanager
def atomic_file(path: Path, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it becomes ``path`` only if the body succeeds.

    Args:
        path: the file to write; its directory is created.
        what: how the file is named in an error message.

    Raises:
        TokengraftError: the file cannot be written (disk full, read-only, permission denied).
    """
    path = Path(path)
    tmp = _temporary(path)
    try:
        with writing(what, path):
            path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with writing(what, path):
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes, what: str = "file") -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path, what) as tmp, writing(what, path), tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def atomic_output_dir(
    out: Path, *, force: bool = False, protect: Iterable[Path] = ()
) -> Iterator[Path]:
    """Yield a fresh directory next to ``out`` that becomes ``out`` only if the body succeeds.

    Args:
        out: the final directory.
        force: replace an existing non-empty ``out``.
        protect: inputs that must survive: ``out`` may be neither one of them nor contain one.

    Raises:
        TokengraftError: ``out`` is a file, a non-empty directory (without force) or an input.
    """
    out = Path(out).expanduser()
    _check_output(out, force=force, protect=protect)
    tmp = _temporary(out)
    with writing("output directory", out):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    try:
        yield tmp
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_output(out: Path, *, force: bool, protect: Iterable[Path]) -> None:
    target = out.resolve()
    for src in protect:
        src = Path(src).resolve()
        if target == src or target in src.parents:
            raise TokengraftError(f"refusing to write {out}: it is (or contains) the input {src}")
    if out.exists() and not out.is_dir():
        raise TokengraftError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TokengraftError(f"output directory {out} is not empty; pass --force to replace it")


def _swap_in(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)  # same filesystem: an atomic rename
        return
    old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
    try:
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(old, out)
            raise
    except OSError as exc:
        raise TokengraftError(f"cannot replace {out}: {one_line(exc)}") from exc
    shutil.rmtree(old, ignore_errors=True)
