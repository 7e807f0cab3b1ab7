"""The one atomic writer: every file and directory tokengraft writes appears whole or not at all.

A file is written under a hidden temporary name in its own directory, flushed, given ordinary
permissions (0644) and renamed over the target (:func:`atomic_file`); a directory is built next to
its target, its files made 0644 and its directories 0755, and renamed into place
(:func:`atomic_output_dir`). A failure, an interrupt or a termination signal (turned into an
exception by the CLI) removes the temporary. A temporary is named
``.<target>.tmp-<pid>-<random>``; one left behind by a process that no longer runs (killed with
SIGKILL, or a power cut) is removed by the next write to the same target.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError
from tokengraft.io.errors import os_cause, writing

log = logging.getLogger(__name__)

_FILE_MODE = 0o644  # temporary files may be created 0600; outputs are ordinary shared files
_DIR_MODE = 0o755
_TMP_SUFFIX = re.compile(r"(?:(\d+)-)?[0-9a-f]{8}")  # after ".<name>.tmp-"; no pid: older runs


def _temporary(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clear_stale(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` that runs no longer alive left behind.

    Args:
        path: a file or directory tokengraft is about to write.

    Returns:
        The temporaries removed (each is also logged as a warning).
    """
    if not path.parent.is_dir():
        return []
    removed = []
    prefix = f".{path.name}.tmp-"
    for entry in path.parent.iterdir():
        found = _TMP_SUFFIX.fullmatch(entry.name[len(prefix) :])
        if not entry.name.startswith(prefix) or found is None:
            continue
        if found.group(1) is not None and _alive(int(found.group(1))):
            continue  # another run writing the same output right now
        _remove(entry)
        log.warning("removed %s, left behind by an interrupted run", entry)
        removed.append(entry)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


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
            clear_stale(path)
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

    An error the body raises that names the temporary directory is re-raised naming ``out``.

    Args:
        out: the final directory.
        force: replace an existing non-empty ``out``.
        protect: inputs that must survive: ``out`` may not be one of them, contain one or lie
            inside one, even with ``force``.

    Raises:
        TokengraftError: ``out`` is a file, a non-empty directory (without force) or an input,
            or it cannot be written (disk full, read-only file system, permission denied).
    """
    out = Path(out).expanduser()
    check_output(out, force=force, protect=protect)
    tmp = _temporary(out)
    with writing("output directory", out):
        out.parent.mkdir(parents=True, exist_ok=True)
        clear_stale(out)
        tmp.mkdir()
    try:
        yield tmp
        with writing("output directory", out):
            _publish(tmp)
        _swap_in(tmp, out)
    except TokengraftError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TokengraftError(str(exc).replace(str(tmp), str(out))) from exc.__cause__
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_output(out: Path, *, force: bool = False, protect: Iterable[Path] = ()) -> None:
    """Refuse an output directory that is an input, holds one or lies inside one, or is in use.

    Args:
        out: the output directory.
        force: an existing non-empty ``out`` may be replaced.
        protect: the inputs of the run (model, tokenizer, donor, corpus files, ...).

    Raises:
        TokengraftError: naming ``out``, the input it collides with, or the flag to pass.
    """
    target = Path(out).expanduser().resolve()
    for given in protect:
        src = Path(given).expanduser().resolve()
        if not src.exists():
            continue  # a packaged model's name, not a path
        how = "is" if target == src else "contains" if target in src.parents else None
        how = how or ("lies inside" if src in target.parents else None)
        if how is not None:
            raise TokengraftError(
                f"refusing to write {out}: it {how} the input {given} (choose another output)"
            )
    if out.exists() and not out.is_dir():
        raise TokengraftError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TokengraftError(f"output directory {out} is not empty; pass --force to replace it")


def _publish(tmp: Path) -> None:
    """Give every file under ``tmp`` mode 0644 and every directory 0755, whoever wrote them."""
    os.chmod(tmp, _DIR_MODE)
    for root, dirs, files in os.walk(tmp):
        for name in dirs:
            os.chmod(Path(root) / name, _DIR_MODE)
        for name in files:
            if not (Path(root) / name).is_symlink():
                os.chmod(Path(root) / name, _FILE_MODE)


def _swap_in(tmp: Path, out: Path) -> None:
    if not out.exists():
        with writing("output directory", out):
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
        raise TokengraftError(f"cannot replace {out}: {os_cause(exc)}") from exc
    shutil.rmtree(old, ignore_errors=True)
