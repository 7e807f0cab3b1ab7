"""Byte-level views of tokenized language models.

Exact next-byte probabilities, generation one byte at a time (token healing), and ensembles of
models with different tokenizers. See ``docs/bytes.md``. The package is ``tokengraft.bytes``; import from it by full name.
"""

from tokengraft.bytes.ensemble import ByteEnsemble, ByteModel, ByteStream
from tokengraft.bytes.generate import Generation, generate_bytes, generate_tokens
from tokengraft.bytes.lm import EXACT, ByteConfig, ByteLM
from tokengraft.bytes.score import SpanScore, score_span
from tokengraft.bytes.state import END, ByteState

__all__ = [
    "END",
    "EXACT",
    "ByteConfig",
    "ByteEnsemble",
    "ByteLM",
    "ByteModel",
    "ByteState",
    "ByteStream",
    "Generation",
    "SpanScore",
    "generate_bytes",
    "generate_tokens",
    "score_span",
]
