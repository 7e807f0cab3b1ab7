"""Compute-once tensors: load them from a safetensors file, or compute and save them there.

For what a method trains and may reuse across slots and runs (static embeddings of a corpus). The
file is written atomically (:func:`tokengraft.io.arrays.save_tensors`), so a crash leaves either no
file or a whole one. Its name should carry a digest of everything the tensors depend on
(:func:`tokengraft.io.arrays.cache_key`); a stale file is never checked against its inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from tokengraft.io.arrays import load_tensors, save_tensors

log = logging.getLogger(__name__)


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
