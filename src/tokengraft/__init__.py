"""tokengraft: make pretrained language models tokenizer-flexible.

The public API is imported lazily (PEP 562), so that ``import tokengraft`` and the CLI start
without importing torch or transformers; each name is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tokengraft.version import __version__

# public name -> module that defines it
_API: dict[str, str] = {
    "EvalConfig": "tokengraft.config",
    "GraftConfig": "tokengraft.config",
    "RowSource": "tokengraft.config",
    "Slot": "tokengraft.config",
    "TokengraftError": "tokengraft.errors",
    "EmbeddingGraft": "tokengraft.graft.embeddings",
    "graft_embeddings": "tokengraft.graft.embeddings",
    "GraftResult": "tokengraft.graft.model",
    "graft": "tokengraft.graft.model",
    "graft_pretrained": "tokengraft.graft.pipeline",
    "Resources": "tokengraft.graft.inputs",
    "Alignment": "tokengraft.vocab.align",
    "align": "tokengraft.vocab.align",
    "CanonicalToken": "tokengraft.vocab.canonical",
    "canonical_vocab": "tokengraft.vocab.canonical",
    "load_model": "tokengraft.io.resolve",
    "load_tokenizer": "tokengraft.io.resolve",
    "score_texts": "tokengraft.eval.lm",
    "evaluate_tokenizer": "tokengraft.eval.tokenizer",
}

__all__ = [
    "Alignment",
    "CanonicalToken",
    "EmbeddingGraft",
    "EvalConfig",
    "GraftConfig",
    "GraftResult",
    "Resources",
    "RowSource",
    "Slot",
    "TokengraftError",
    "__version__",
    "align",
    "canonical_vocab",
    "evaluate_tokenizer",
    "graft",
    "graft_embeddings",
    "graft_pretrained",
    "load_model",
    "load_tokenizer",
    "score_texts",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from tokengraft.config import EvalConfig, GraftConfig, RowSource, Slot
    from tokengraft.errors import TokengraftError
    from tokengraft.eval.lm import score_texts
    from tokengraft.eval.tokenizer import evaluate_tokenizer
    from tokengraft.graft.embeddings import EmbeddingGraft, graft_embeddings
    from tokengraft.graft.inputs import Resources
    from tokengraft.graft.model import GraftResult, graft
    from tokengraft.graft.pipeline import graft_pretrained
    from tokengraft.io.resolve import load_model, load_tokenizer
    from tokengraft.vocab.align import Alignment, align
    from tokengraft.vocab.canonical import CanonicalToken, canonical_vocab


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    if name not in _API:
        raise AttributeError(f"module 'tokengraft' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
