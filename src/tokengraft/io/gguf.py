"""GGUF files: recognising them (the loading itself is done by ``transformers`` with ``gguf``)."""

from __future__ import annotations

from pathlib import Path

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
