"""Byte-exact alignment of two vocabularies: shared tokens by their bytes, specials by role."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.config import RowSource
from tokengraft.vocab.canonical import (
    CanonicalToken,
    CanonicalVocab,
    canonical_vocab,
    roles_of,
    special_roles,
)


@dataclass(frozen=True)
class Alignment:
    """How each row of the new vocabulary relates to the old one.

    Attributes:
        source: per new id, how its row is made (copied, role, computed).
        old_ids: (V_new,) long tensor; the old id to copy from, -1 where the row is computed.
        new_vocab / old_vocab: the canonical vocabularies that were aligned.
    """

    source: tuple[RowSource, ...]
    old_ids: torch.Tensor  # (V_new,)
    new_vocab: CanonicalVocab
    old_vocab: CanonicalVocab

    def count(self, kind: RowSource) -> int:
        """How many new rows are made the way ``kind`` says."""
        return sum(1 for s in self.source if s is kind)

    def anchors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(S,) new ids and (S,) old ids of shared non-special tokens (rows known in both)."""
        new_ids = [
            i
            for i, (s, t) in enumerate(zip(self.source, self.new_vocab.tokens, strict=True))
            if s is RowSource.COPIED and t is not None and not t.special
        ]
        index = torch.tensor(new_ids, dtype=torch.long)
        return index, self.old_ids[index]

    @property
    def to_compute(self) -> list[int]:
        """New ids whose rows the initialisation method must make."""
        return [i for i, s in enumerate(self.source) if s is RowSource.COMPUTED]


def align(
    old_tok: PreTrainedTokenizerBase, new_tok: PreTrainedTokenizerBase, *, copy_shared: bool = True
) -> Alignment:
    """Align two vocabularies byte-exactly; special tokens by role.

    Args:
        old_tok: the model's tokenizer.
        new_tok: the tokenizer to graft on.
        copy_shared: copy tokens with equal canonical bytes (off: every non-special row computed).

    Returns:
        An :class:`Alignment` with one entry per id of ``new_tok``.
    """
    old_vocab, new_vocab = canonical_vocab(old_tok), canonical_vocab(new_tok)
    old_roles = special_roles(old_tok)
    new_roles = special_roles(new_tok)
    source: list[RowSource] = []
    old_ids: list[int] = []
    for new_id, token in enumerate(new_vocab.tokens):
        kind, old_id = _match(new_id, token, old_vocab, old_roles, new_roles, copy_shared)
        source.append(kind)
        old_ids.append(old_id)
    return Alignment(tuple(source), torch.tensor(old_ids, dtype=torch.long), new_vocab, old_vocab)


def _match(
    new_id: int,
    token: CanonicalToken | None,
    old_vocab: CanonicalVocab,
    old_roles: dict[str, int],
    new_roles: dict[str, int],
    copy_shared: bool,
) -> tuple[RowSource, int]:
    if token is None:
        return RowSource.COMPUTED, -1
    old_id = old_vocab.lookup(token)
    if old_id is not None and (copy_shared or token.special):
        return RowSource.COPIED, old_id
    if token.special:
        for role in roles_of(token.text.decode(errors="replace"), new_id, new_roles):
            if role in old_roles:
                return RowSource.ROLE, old_roles[role]
    return RowSource.COMPUTED, -1
