"""Vocabularies: canonical token bytes per family, byte-exact alignment, spelling new tokens."""

from tokengraft.vocab.align import Alignment, align
from tokengraft.vocab.canonical import (
    CanonicalToken,
    CanonicalVocab,
    Family,
    TokenizerInfo,
    canonical_piece,
    canonical_vocab,
    decode_canonical,
    describe,
    special_roles,
)
from tokengraft.vocab.spell import decompose

__all__ = [
    "Alignment",
    "CanonicalToken",
    "CanonicalVocab",
    "Family",
    "TokenizerInfo",
    "align",
    "canonical_piece",
    "canonical_vocab",
    "decode_canonical",
    "decompose",
    "describe",
    "special_roles",
]
