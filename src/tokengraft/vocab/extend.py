"""Extend a BPE tokenizer with new merges appended after every old one (in memory).

A new merge joins two tokens the tokenizer already has (or that an earlier new merge made); its
result gets the next free id, after every old id, so every old token keeps its id. New merges rank
after all old merges, and BPE fires merges in rank order, so the old merges run to completion
first and the new ones only join tokens of the old encoding: a text whose old encoding holds no
adjacent pair of a new merge is encoded exactly as before, and any other text only gets pairs of
its old tokens joined.

Unlike ``tokenizer.add_tokens`` (added tokens are matched in the text before the model runs, which
makes encoding slow with many of them and bypasses the merges), the new tokens are ordinary
vocabulary entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from tokengraft.errors import TokengraftError
from tokengraft.vocab.surgery import BpeModel, ModelType, Pair, model_type, rebuild, tokenizer_json

EXTEND_FAMILIES = (ModelType.BPE,)


@dataclass(frozen=True, kw_only=True)
class TokenizerExtension:
    """An extended tokenizer.

    Attributes:
        tokenizer: the old tokenizer with the new merges and tokens.
        new_ids: ids of the new tokens, ascending (all after every old id).
        merges: the merges appended, in rank order (some may build a token the old vocabulary
            already has: they add a way to reach it, not a token).
    """

    tokenizer: PreTrainedTokenizerFast
    new_ids: tuple[int, ...]
    merges: tuple[Pair, ...]


def check_extendable(tok: PreTrainedTokenizerBase) -> BpeModel:
    """The BPE model of ``tok``.

    Raises:
        TokengraftError: ``tok`` is not a BPE tokenizer (names the supported families).
    """
    spec = tokenizer_json(tok)
    kind = model_type(spec)
    if kind not in EXTEND_FAMILIES:
        raise TokengraftError(
            "extend supports BPE tokenizers (byte-level or SentencePiece-style); "
            f"this one is {kind.value}"
        )
    return BpeModel.of(spec)


def extend_tokenizer(tok: PreTrainedTokenizerBase, merges: Sequence[Pair]) -> TokenizerExtension:
    """Append ``merges`` to ``tok``'s BPE model; new results get ids from ``len(tok)`` on.

    Args:
        tok: a fast BPE tokenizer; left unchanged.
        merges: pairs of vocabulary pieces (old ones, or results of earlier pairs), in rank order.

    Returns:
        The extended tokenizer and the new ids.

    Raises:
        TokengraftError: not a BPE tokenizer, or a merge of a piece the vocabulary lacks.

    Example:
        >>> ext = extend_tokenizer(tok, [("ĠBundes", "regierung")])  # doctest: +SKIP
    """
    check_extendable(tok)
    spec = tokenizer_json(tok)
    model = spec["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    taken = set(vocab.values()) | {int(i) for i in tok.added_tokens_decoder}
    next_id = max(len(tok), max(taken, default=-1) + 1)
    new_ids: list[int] = []
    for left, right in merges:
        for piece in (left, right):
            if piece not in vocab:
                raise TokengraftError(f"cannot merge {piece!r}: it is not in the vocabulary")
        if left + right not in vocab:
            vocab[left + right] = next_id
            new_ids.append(next_id)
            next_id += 1
    model["vocab"] = vocab
    model["merges"] = [list(m) for m in BpeModel.of(spec).merges] + [[a, b] for a, b in merges]
    return TokenizerExtension(
        tokenizer=rebuild(tok, spec), new_ids=tuple(new_ids), merges=tuple(merges)
    )


@dataclass(frozen=True, kw_only=True)
class TokenMerges:
    """Merges that build a list of wanted tokens.

    Attributes:
        merges: pairs in rank order; a token of k old pieces needs k - 1 merges.
        present: wanted tokens the tokenizer already encodes as one token.
        intermediate: pieces the merges make on the way that were not asked for.
    """

    merges: tuple[Pair, ...]
    present: tuple[str, ...]
    intermediate: tuple[str, ...]


def merges_for_tokens(tok: PreTrainedTokenizerBase, tokens: Sequence[str]) -> TokenMerges:
    """Merges that make each of ``tokens`` one token, joining its old encoding left to right.

    A wanted token is its text as it appears in running text (a leading space marks a word start).
    Its old pieces are joined left to right, so ``" Bundesregierung"`` = ``ĠBundes reg ierung``
    needs ``(ĠBundes, reg)`` and then ``(ĠBundesreg, ierung)``.

    Raises:
        TokengraftError: not a BPE tokenizer.
    """
    check_extendable(tok)
    backend = tok.backend_tokenizer
    merges: list[Pair] = []
    made: set[str] = set()
    present: list[str] = []
    wanted: set[str] = set()
    for text in tokens:
        pieces = backend.encode(text, add_special_tokens=False).tokens
        if len(pieces) <= 1:
            present.append(text)
            continue
        left = pieces[0]
        for right in pieces[1:]:
            if left + right not in made:
                merges.append((left, right))
                made.add(left + right)
            left = left + right
        wanted.add(left)
    intermediate = tuple(sorted(made - wanted))
    return TokenMerges(merges=tuple(merges), present=tuple(present), intermediate=intermediate)
