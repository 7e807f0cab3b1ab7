"""Auxiliary embeddings that methods learn from text: static token and word vectors."""
