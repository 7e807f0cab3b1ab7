"""Grafting: new embedding rows (pure tensors), a grafted model in memory, disk to disk."""

from tokengraft.grafting.embeddings import EmbeddingGraft, graft_embeddings
from tokengraft.grafting.model import GraftResult, embedding_weights, graft, is_tied

__all__ = [
    "EmbeddingGraft",
    "GraftResult",
    "embedding_weights",
    "graft",
    "graft_embeddings",
    "is_tied",
]
