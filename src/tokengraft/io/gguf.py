"""GGUF files: recognising them and reading their metadata (loading is done by ``transformers``)."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from tokengraft.errors import TokengraftError
from tokengraft.io.errors import reraise

GGUF_MAGIC = b"GGUF"


def check_gguf_magic(path: Path) -> None:
    """Refuse a file that does not start with the GGUF magic bytes.

    Raises:
        TokengraftError: the file cannot be read or is not GGUF.
    """
    with reraise("model file", path), path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise TokengraftError(f"{path} is not a GGUF file (bad magic bytes)")


# GGUF value types (the file format's own numbering) -> struct format; 8 is a string, 9 an array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
_SCALARS |= {10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_gguf_metadata(path: Path, keys: Iterable[str]) -> dict[str, Any]:
    """The values of ``keys`` in a GGUF file's metadata (absent keys are left out).

    Reads the key-value section only, in one pass, without touching the tensors; arrays of other
    keys are skipped. (``gguf.GGUFReader`` parses every array of a 49k-token vocabulary into
    numpy views first, which takes many seconds.)

    Raises:
        TokengraftError: the file is not GGUF, or is truncated or corrupt.
    """
    check_gguf_magic(path)
    wanted, found = set(keys), {}
    with reraise("GGUF file", path, " (corrupt or truncated?)"), path.open("rb") as f:
        f.seek(4)
        version, _tensors, count = struct.unpack("<IQQ", _read(f, 20))
        if version < 2:
            raise TokengraftError(f"{path}: GGUF version {version} is too old to read")
        for _ in range(count):
            key = _read_string(f)
            (kind,) = struct.unpack("<I", _read(f, 4))
            value = _read_value(f, kind, skip=key not in wanted)
            if key in wanted:
                found[key] = value
    return found


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError("unexpected end of file in the metadata")
    return data


def _read_string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<Q", _read(f, 8))
    return _read(f, n).decode("utf-8")


def _read_value(f: BinaryIO, kind: int, *, skip: bool) -> Any:
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _read_string(f)
    if kind != _ARRAY:
        raise ValueError(f"unknown GGUF value type {kind}")
    item, n = struct.unpack("<IQ", _read(f, 12))
    if skip and item in _SCALARS:
        f.seek(n * struct.calcsize(_SCALARS[item]), 1)
        return None
    return [_read_value(f, item, skip=skip) for _ in range(n)]


def read_gguf_tokenizer(path: Path) -> tuple[str | None, list[str]]:
    """The pre-tokenizer name and the token list a GGUF file carries.

    Raises:
        TokengraftError: the file is not GGUF or cannot be parsed.
    """
    meta = read_gguf_metadata(path, ("tokenizer.ggml.pre", "tokenizer.ggml.tokens"))
    return meta.get("tokenizer.ggml.pre"), list(meta.get("tokenizer.ggml.tokens") or [])
