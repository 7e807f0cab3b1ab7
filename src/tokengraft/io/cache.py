"""The cache root, where corpora, converted models, tokenizers and method caches live."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root: ``$TOKENGRAFT_CACHE`` if set, else ``~/.cache/tokengraft``."""
    env = os.environ.get("TOKENGRAFT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tokengraft"
