"""The byte trie of a tokenizer: which tokens start with given bytes, and which end the text.

Built on :mod:`tokengraft.vocab.canonical`, so every family is covered: a token's bytes are its
canonical ``surface`` (``Ġ``/``▁`` are a space, ``<0xNN>`` byte-fallback pieces are that byte).
The trie is a sorted list of token byte strings: the tokens whose bytes start with ``r`` form
one contiguous range of it, found by bisection, so no node table is built up front.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.vocab.canonical import canonical_vocab, special_roles


@dataclass(frozen=True)
class Children:
    """The tokens whose bytes start with some byte string ``r``.

    Attributes:
        exact: ids of the tokens whose bytes are ``r`` itself.
        ids: (K,) long, ids of the tokens whose bytes are longer than ``r``.
        next_byte: (K,) long, the byte after ``r`` in each of those tokens.
    """

    exact: tuple[int, ...]
    ids: torch.Tensor
    next_byte: torch.Tensor


def _successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class ByteVocab:
    """The text tokens of a tokenizer by their bytes, its end-of-text tokens, and its lead bytes.

    Text tokens are the non-special tokens with at least one byte. Special tokens other than the
    end-of-text ones (BOS, chat markers, ``<unk>``, unused slots) spell no bytes: they are
    excluded, and the model's next-token distribution is renormalised without them.

    Args:
        tokenizer: a fast tokenizer of any family.

    Raises:
        TokengraftError: the tokenizer has no text token.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        vocab = canonical_vocab(tokenizer)
        self.size = len(vocab)
        self.family = vocab.info.family
        surfaces: dict[int, bytes] = {}
        for i, token in enumerate(vocab.tokens):
            if token is not None and not token.special and token.surface:
                surfaces[i] = token.surface
        if not surfaces:
            raise TokengraftError("the tokenizer has no token that spells any bytes")
        self.surfaces = surfaces
        self.end_ids = _end_ids(tokenizer, vocab.tokens)
        # A SentencePiece tokenizer with a dummy prefix spells text "x" as " x": every text
        # starts after these bytes (docs/bytes.md, "Lead bytes").
        self.lead = b" " if vocab.info.prepends_space else b""
        order = sorted(surfaces, key=lambda i: surfaces[i])
        self._sorted_ids = order
        self._sorted = [surfaces[i] for i in order]
        self._children: dict[bytes, Children] = {}
        self.max_len = max(len(s) for s in self._sorted)
        present = {b for s in self._sorted for b in s}
        self.missing_bytes = tuple(b for b in range(256) if b not in present)

    def children(self, prefix: bytes) -> Children:
        """The tokens whose bytes start with ``prefix`` (memoised on this vocabulary)."""
        found = self._children.get(prefix)
        if found is None:
            found = self._compute_children(prefix)
            self._children[prefix] = found
        return found

    def _compute_children(self, prefix: bytes) -> Children:
        lo = bisect.bisect_left(self._sorted, prefix)
        after = _successor(prefix)
        hi = len(self._sorted) if after is None else bisect.bisect_left(self._sorted, after)
        exact, ids, nxt = [], [], []
        n = len(prefix)
        for k in range(lo, hi):
            surface = self._sorted[k]
            if len(surface) == n:
                exact.append(self._sorted_ids[k])
            else:
                ids.append(self._sorted_ids[k])
                nxt.append(surface[n])
        return Children(
            exact=tuple(exact),
            ids=torch.tensor(ids, dtype=torch.long),
            next_byte=torch.tensor(nxt, dtype=torch.long),
        )

    def allowed_mask(self, width: int) -> torch.Tensor:
        """(width,) bool: the text and end-of-text tokens, over the model's logit width.

        Raises:
            TokengraftError: the model has fewer logits than the tokenizer has ids.
        """
        top = max(max(self.surfaces), max(self.end_ids, default=-1))
        if width <= top:
            raise TokengraftError(
                f"the model has {width} logits but the tokenizer uses id {top}: wrong tokenizer?"
            )
        mask = torch.zeros(width, dtype=torch.bool)
        mask[list(self.surfaces)] = True
        mask[list(self.end_ids)] = True
        return mask

    def check_expressible(self, data: bytes) -> None:
        """Refuse bytes that no token contains (they have probability zero).

        Raises:
            TokengraftError: naming each such byte and its first offset in ``data``.
        """
        bad = sorted(set(data).intersection(self.missing_bytes))
        if bad:
            where = ", ".join(f"0x{b:02x} (offset {data.index(bytes([b]))})" for b in bad)
            raise TokengraftError(
                f"the tokenizer cannot express byte(s) {where}: no token contains them "
                "and it has no byte fallback for them"
            )


def _end_ids(tokenizer: PreTrainedTokenizerBase, tokens: tuple) -> tuple[int, ...]:  # type: ignore[type-arg]
    """The special tokens that end a text: EOS and the end-of-text marker (when special)."""
    found = set()
    roles = special_roles(tokenizer)
    for role in ("eos", "end_of_text"):
        i = roles.get(role)
        if i is not None and i < len(tokens) and tokens[i] is not None and tokens[i].special:
            found.add(i)
    return tuple(sorted(found))
