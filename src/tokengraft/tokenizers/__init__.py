"""Training tokenizers: byte-level BPE with a model's special tokens."""
