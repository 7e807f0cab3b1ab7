"""Texts in: UTF-8 text files, JSON files, bilingual dictionaries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError
from tokengraft.io.errors import reraise


def read_texts(
    paths: Sequence[Path | str], *, max_bytes: int | None = None
) -> list[tuple[str, str]]:
    """Read UTF-8 text files as ``(name, text)``; name is the file name (the path if ambiguous).

    Args:
        paths: the files, in the order wanted (``~`` is expanded).
        max_bytes: read at most this many bytes per file, cut back to a whole character.

    Returns:
        One ``(name, text)`` pair per path, in the order given.

    Raises:
        TokengraftError: missing, empty or non-UTF-8 file (with the offset of the first bad byte).
    """
    files = [Path(p).expanduser() for p in paths]
    if not files:
        raise TokengraftError("corpus is empty: no text files given")
    names = [f.name for f in files]
    return [
        (f.name if names.count(f.name) == 1 else str(f), _read_text(f, max_bytes)) for f in files
    ]


def _read_text(path: Path, max_bytes: int | None) -> str:
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "not found"
        raise TokengraftError(f"text file {path} {problem}")
    with reraise("text file", path), path.open("rb") as f:
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        cut = max_bytes
        while cut > 0 and data[cut] & 0xC0 == 0x80:  # do not split a UTF-8 sequence
            cut -= 1
        data = data[:cut]
    if not data.strip():
        raise TokengraftError(f"corpus is empty: {path} has no text")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise TokengraftError(
            f"{path} is not UTF-8: invalid byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from exc


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or malformed file is a :class:`TokengraftError`."""
    if not path.is_file():
        raise TokengraftError(f"{path} does not exist")
    with reraise("JSON file", path):
        return json.loads(path.read_text(encoding="utf-8"))


def read_dictionary(path: Path) -> list[tuple[str, str]]:
    """A bilingual dictionary: one ``source<TAB>target`` pair per line (``#`` lines skipped)."""
    ((name, text),) = read_texts([path])
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        source, sep, target = line.partition("\t")
        if not sep or not source.strip() or not target.strip():
            raise TokengraftError(f"{path}:{number}: a dictionary line is 'source<TAB>target'")
        pairs.append((source.strip(), target.strip()))
    if not pairs:
        raise TokengraftError(f"{path}: the dictionary has no entries")
    return pairs
