"""How many tokens a model reads at once, known before its weights are loaded.

An evaluation window longer than the context is refused before a model is loaded (which takes
seconds to minutes). The context comes from ``config.json`` of a Hugging Face directory, or from
the ``<arch>.context_length`` key in a GGUF header, read by scanning the header's key-value
pairs (the ``gguf`` package's reader maps every tensor first and takes seconds).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO

from tokengraft.errors import TokengraftError
from tokengraft.io.errors import reraise

# GGUF value types: fixed-size scalars by struct format; 8 = string, 9 = array.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q"}
_SCALARS[12] = "d"
_STRING, _ARRAY = 8, 9


def context_length(path: Path, *, gguf: bool) -> int | None:
    """The model's context length in tokens; None when its files do not say.

    Args:
        path: a Hugging Face model directory, or a GGUF file (``gguf=True``).
        gguf: whether ``path`` is a GGUF file.

    Raises:
        TokengraftError: config.json or the GGUF header cannot be read.
    """
    if gguf:
        with reraise("GGUF header of", path, " (corrupt or truncated?)"), path.open("rb") as f:
            return _gguf_context(f)
    config_file = path / "config.json"
    with reraise("model config", config_file):
        config = json.loads(config_file.read_text(encoding="utf-8"))
    text = config.get("text_config") or config
    for key in ("max_position_embeddings", "n_positions", "seq_length"):
        if isinstance(text.get(key), int):
            return int(text[key])
    return None


def _gguf_context(f: BinaryIO) -> int | None:
    magic, _version, _tensors, n_kv = struct.unpack("<4sIQQ", _read(f, 24))
    if magic != b"GGUF":
        raise TokengraftError(f"{f.name} is not a GGUF file (bad magic bytes)")
    for _ in range(n_kv):
        key = _string(f)
        (kind,) = struct.unpack("<I", _read(f, 4))
        if key.endswith(".context_length") and kind in _SCALARS:
            return int(_scalar(f, kind))
        _skip(f, kind)
    return None


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError("the header ends early")
    return data


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<Q", _read(f, 8))
    return _read(f, n).decode("utf-8", errors="replace")


def _scalar(f: BinaryIO, kind: int) -> float | int | bool:
    fmt = "<" + _SCALARS[kind]
    return struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]  # type: ignore[no-any-return]


def _skip(f: BinaryIO, kind: int) -> None:
    if kind in _SCALARS:
        _read(f, struct.calcsize(_SCALARS[kind]))
    elif kind == _STRING:
        (n,) = struct.unpack("<Q", _read(f, 8))
        f.seek(n, 1)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", _read(f, 12))
        if item in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[item]) * count, 1)
        else:
            for _ in range(count):
                _skip(f, item)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")
