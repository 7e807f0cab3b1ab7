"""Evaluation: bits per byte for models, compression measures for tokenizers."""
