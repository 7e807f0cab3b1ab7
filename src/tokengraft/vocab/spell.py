"""Spell each new token with the old tokenizer: the decomposition subword methods start from.

A new token's bytes are first encoded by the old tokenizer itself (as FVT, arXiv 2305.15425, and
tokenizer-adapter do); the result is kept only when its canonical bytes give back exactly the
token's bytes. Otherwise (partial UTF-8 sequences, SentencePiece word-boundary effects) the bytes are
spelled greedily, longest old piece first, over the old vocabulary's canonical bytes. A token that
cannot be spelled at all (a byte the old vocabulary lacks) gets ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from tokengraft.vocab.canonical import CanonicalToken, CanonicalVocab


def decompose(
    old_tok: PreTrainedTokenizerBase,
    old_vocab: CanonicalVocab,
    tokens: Sequence[CanonicalToken | None],
) -> list[list[int] | None]:
    """Old-tokenizer ids spelling each token.

    Args:
        old_tok: the model's tokenizer.
        old_vocab: ``canonical_vocab(old_tok)``.
        tokens: canonical tokens to spell (special tokens are spelled by their text).

    Returns:
        One list of old ids per token (``None``: not spellable), in token order.
    """
    surfaces = [t.surface if t is not None else b"" for t in tokens]
    encoded = _encode_with_tokenizer(old_tok, surfaces)
    speller = _GreedySpeller(old_vocab)
    out: list[list[int] | None] = []
    for surface, ids in zip(surfaces, encoded, strict=True):
        if not surface:
            out.append(None)
        elif ids is not None and _spells(old_vocab, ids, surface):
            out.append(ids)
        else:
            out.append(speller.spell(surface))
    return out


def _encode_with_tokenizer(
    tok: PreTrainedTokenizerBase, surfaces: Sequence[bytes]
) -> list[list[int] | None]:
    texts: list[str] = []
    valid: list[bool] = []
    for surface in surfaces:
        try:
            texts.append(surface.decode("utf-8"))
            valid.append(True)
        except UnicodeDecodeError:
            texts.append("")
            valid.append(False)
    backend = tok.backend_tokenizer  # type: ignore[attr-defined]
    encodings = backend.encode_batch(texts, add_special_tokens=False)
    return [enc.ids if ok else None for enc, ok in zip(encodings, valid, strict=True)]


def _spells(vocab: CanonicalVocab, ids: Sequence[int], surface: bytes) -> bool:
    parts = [vocab.tokens[i] for i in ids if 0 <= i < len(vocab)]
    if len(parts) != len(ids) or any(p is None or p.special for p in parts):
        return False
    return b"".join(p.surface for p in parts) == surface  # type: ignore[union-attr]


class _GreedySpeller:
    """Longest-match spelling over canonical surfaces (each id's bytes with its leading space)."""

    def __init__(self, vocab: CanonicalVocab) -> None:
        self.by_surface: dict[bytes, int] = {}
        for i in vocab.index.values():
            token = vocab.tokens[i]
            if token is not None and not token.special:
                self.by_surface.setdefault(token.surface, i)
        self.longest = max((len(s) for s in self.by_surface), default=0)

    def spell(self, surface: bytes) -> list[int] | None:
        ids: list[int] = []
        pos = 0
        while pos < len(surface):
            for length in range(min(self.longest, len(surface) - pos), 0, -1):
                found = self.by_surface.get(surface[pos : pos + length])
                if found is not None:
                    ids.append(found)
                    pos += length
                    break
            else:
                return None
        return ids
