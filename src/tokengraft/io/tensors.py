"""Named tensors on disk, and the one compute-once cache that methods use.

A method keeps what it trained or computed (static vectors, auxiliary embeddings, a small
network's weights) under its own subdirectory of the cache, through :func:`cached_tensors`; the
files are plain safetensors with string metadata, written atomically, named after a digest of
everything they depend on (:func:`cache_key`). A missing file is not an error (the caller
recomputes); a corrupt one is.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tokengraft.io.atomic import atomic_file
from tokengraft.io.errors import reraise, writing

log = logging.getLogger(__name__)


def save_tensors(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``tensors`` to the safetensors file ``path`` atomically.

    Args:
        path: the file to write; its directory is created.
        tensors: name -> tensor (made contiguous; shared storage is copied).
        metadata: string key -> string value, stored in the header.

    Raises:
        TokengraftError: the file cannot be written.
    """
    flat = {name: t.detach().contiguous().clone() for name, t in tensors.items()}
    with atomic_file(Path(path), "tensor file") as tmp, writing("tensor file", path):
        save_file(flat, str(tmp), metadata=dict(metadata or {}))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    """The tensors and metadata in the safetensors file ``path``; ``None`` if it does not exist.

    Raises:
        TokengraftError: the file exists but is not a readable safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    with reraise("tensor file", path):
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


def cached_tensors(
    path: Path | None,
    compute: Callable[[], Mapping[str, torch.Tensor]],
    *,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, torch.Tensor]:
    """The tensors stored at ``path``; if absent, ``compute()``'s result, saved to ``path``.

    Args:
        path: a ``.safetensors`` file, or ``None`` to compute without caching.
        compute: makes the tensors (called only on a cache miss).
        metadata: string key -> value stored with newly computed tensors.

    Raises:
        TokengraftError: the file exists but cannot be read, or cannot be written.
    """
    if path is None:
        return dict(compute())
    found = load_tensors(path)
    if found is not None:
        log.info("loaded %s", path)
        return found[0]
    tensors = dict(compute())
    save_tensors(path, tensors, metadata)
    log.info("cached %s", path)
    return tensors
