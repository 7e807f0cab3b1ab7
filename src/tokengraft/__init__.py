"""tokengraft: make pretrained language models tokenizer-flexible."""

from __future__ import annotations

__version__ = "0.1.0"

from tokengraft.config import EvalConfig, GraftConfig, RowSource, Slot  # noqa: E402
from tokengraft.errors import TokengraftError  # noqa: E402
from tokengraft.graft import EmbeddingGraft, GraftResult, graft, graft_embeddings  # noqa: E402
from tokengraft.vocab import Alignment, CanonicalToken, align, canonical_vocab  # noqa: E402

__all__ = [
    "Alignment",
    "CanonicalToken",
    "EmbeddingGraft",
    "EvalConfig",
    "GraftConfig",
    "GraftResult",
    "RowSource",
    "Slot",
    "TokengraftError",
    "__version__",
    "align",
    "canonical_vocab",
    "graft",
    "graft_embeddings",
]
