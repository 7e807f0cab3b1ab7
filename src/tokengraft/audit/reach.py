"""Unreachable tokens: vocabulary entries that no text encodes to.

A BPE vocabulary keeps every intermediate merge, and some of those are always merged further
(``Ġ--------`` inside a longer run of dashes), so encoding never emits them whole. A
SentencePiece byte-fallback piece ``<0x41>`` is never emitted for ``A``, which has a piece of its
own. Such a token's embedding row never met a gradient in pretraining (Land & Bartolo 2024,
"Fishing for Magikarp", arXiv 2405.05417, call them unreachable).

The test: a token is reachable when encoding its own text yields it, alone or after one of a few
short contexts (a letter, a digit, a newline, a space), since a piece without a word-start marker
only appears inside a word. Each probe is one batch encode of every token still unproven, so the
whole vocabulary of 262k tokens takes seconds. The test proves reachability; a token it does not
prove is reported as unreachable, which is what the probes found, not a proof over all texts.
Tokens whose bytes are not valid UTF-8 on their own (pieces of a multi-byte character in a
byte-level BPE) cannot be probed as text and are counted apart, as are special tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from tokengraft.vocab import CanonicalVocab, canonical_vocab

# Left contexts tried, in order, on the tokens the previous probes did not reach.
CONTEXTS = ("", "a", "\n", " ", "1", "x ")


@dataclass(frozen=True, kw_only=True)
class Reachability:
    """Which tokens of a vocabulary encoding can emit.

    Attributes:
        unreachable: ids that no probe emitted, ascending.
        partial: ids whose bytes are not valid UTF-8 alone (not probed).
        special: special (control) token ids (not probed).
        checked: how many ids were probed.
    """

    unreachable: tuple[int, ...]
    partial: tuple[int, ...]
    special: tuple[int, ...]
    checked: int


def probe_texts(vocab: CanonicalVocab) -> tuple[dict[int, str], list[int], list[int]]:
    """The text of every probe-able token, and the ids that are partial UTF-8 or special.

    Args:
        vocab: the canonical vocabulary of the tokenizer.

    Returns:
        ``({id: text}, partial ids, special ids)``.
    """
    texts: dict[int, str] = {}
    partial: list[int] = []
    special: list[int] = []
    for i, token in enumerate(vocab.tokens):
        if token is None:
            continue
        if token.special:
            special.append(i)
            continue
        try:
            texts[i] = token.surface.decode("utf-8")
        except UnicodeDecodeError:
            partial.append(i)
    return texts, partial, special


def unreachable_tokens(
    tokenizer: PreTrainedTokenizerBase,
    contexts: Sequence[str] = CONTEXTS,
    *,
    vocab: CanonicalVocab | None = None,
) -> Reachability:
    """Find the tokens that encoding their own text (after short contexts) never yields.

    Args:
        tokenizer: a fast tokenizer.
        contexts: left contexts to try, in order; ``""`` is the text alone.
        vocab: ``canonical_vocab(tokenizer)``, if the caller has it already.

    Returns:
        The unreachable, partial and special ids.

    Raises:
        TokengraftError: the tokenizer is not a fast tokenizer.

    Example:
        >>> unreachable_tokens(tokenizer).unreachable[:3]  # doctest: +SKIP
        (1234, 5678, 9012)
    """
    vocab = vocab if vocab is not None else canonical_vocab(tokenizer)
    texts, partial, special = probe_texts(vocab)
    backend = tokenizer.backend_tokenizer  # type: ignore[attr-defined]
    remaining = sorted(texts)
    for context in contexts:
        if not remaining:
            break
        encoded = backend.encode_batch(
            [context + texts[i] for i in remaining], add_special_tokens=False
        )
        remaining = [i for i, enc in zip(remaining, encoded, strict=True) if i not in enc.ids]
    return Reachability(
        unreachable=tuple(remaining),
        partial=tuple(partial),
        special=tuple(special),
        checked=len(texts),
    )
