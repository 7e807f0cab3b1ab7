"""Named tensors on disk: atomic safetensors save and load, for what methods cache.

A method keeps what it trained or computed (auxiliary embeddings, a small network's weights) under
``extras["cache_dir"]/<method>/``; the files are plain safetensors with string metadata. A missing
file is not an error (the caller recomputes); a corrupt one is.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tokengraft.errors import TokengraftError
from tokengraft.io._common import _one_line, _reraise


def save_tensors(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``tensors`` to the safetensors file ``path`` atomically (temporary file, then rename).

    Args:
        path: the file to write; its directory is created.
        tensors: name -> tensor (made contiguous; shared storage is copied).
        metadata: string key -> string value, stored in the header.

    Raises:
        TokengraftError: the file cannot be written.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        flat = {name: t.detach().contiguous().clone() for name, t in tensors.items()}
        save_file(flat, str(tmp), metadata=dict(metadata or {}))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TokengraftError(f"cannot write {path}: {_one_line(exc)}") from exc


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    """The tensors and metadata in the safetensors file ``path``; ``None`` if it does not exist.

    Raises:
        TokengraftError: the file exists but is not a readable safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    with _reraise("tensor file", path):
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path))
    return tensors, metadata


def cache_key(*parts: str | bytes | torch.Tensor | Iterable[bytes]) -> str:
    """A 16-hex-digit digest of strings, bytes, tensors (dtype, shape and values) and byte lists.

    Example:
        >>> cache_key("v1", torch.zeros(2)) == cache_key("v1", torch.zeros(2))
        True
    """
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            t = part.detach().contiguous().cpu()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(part, str):
            h.update(part.encode())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            for item in part:
                h.update(len(item).to_bytes(4, "little") + item)
        h.update(b"\x00")
    return h.hexdigest()[:16]
