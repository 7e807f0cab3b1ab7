"""Trim a tokenizer to the tokens a corpus uses (in memory; the model side is ``grafting.vocab_ops``).

Kept: every token the corpus is encoded into (``min_count`` times or more), every added/special
token, the tokens of ``keep``, and the fallback every text may still need: the 256 byte tokens of a
byte-level BPE, the ``<0xNN>`` pieces and the unknown token of a SentencePiece-style BPE with byte
fallback, the unknown token and the single characters of the kept pieces of a Unigram model.

BPE stays consistent: a kept token keeps its merge tree (the two tokens it is merged from, and
theirs, see :func:`~tokengraft.vocab.surgery.merge_children`), and a merge stays only when both
of its tokens and its result stay, so removing a token removes the merge that builds it and every
merge that uses it. Every merge applied while encoding the corpus builds a node of some kept
token's tree, so the corpus is encoded exactly as before, token for token (with ``min_count=1``).
Kept ids keep their order; new id ``i`` is old id ``kept[i]``.

Unigram stays consistent too: removing pieces only removes paths of the Viterbi lattice, so a
text whose best segmentation uses only kept pieces is segmented as before.

Vocabtrimmer (Ushio et al., 2023, "An Efficient Multilingual Language Model Compression through
Vocabulary Trimming", arXiv 2305.15020) trims by corpus frequency too; it rebuilds a SentencePiece
model and refuses decoders. Here the tokenizer's own JSON is edited, so byte-level BPE decoders are
trimmed the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from tokengraft.errors import TokengraftError
from tokengraft.vocab.surgery import (
    BpeModel,
    ModelType,
    merge_children,
    model_type,
    rebuild,
    remap_ids,
    tokenizer_json,
)

TRIM_FAMILIES = (ModelType.BPE, ModelType.UNIGRAM)
_BYTE_PIECES = frozenset(f"<0x{b:02X}>" for b in range(256))


@dataclass(frozen=True, kw_only=True)
class TrimConfig:
    """What a trim keeps beyond the specials and the fallback.

    Attributes:
        min_count: keep a token the corpus uses at least this often (1: every used token, so the
            corpus tokenises exactly as before).
        keep: tokens to keep whatever the corpus says: a vocabulary piece (``Ġthe``, ``▁der``)
            keeps itself, any other string keeps the tokens it is encoded into.
    """

    min_count: int = 1
    keep: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TokenizerTrim:
    """A trimmed tokenizer and how it maps to the old one.

    Attributes:
        tokenizer: the trimmed tokenizer.
        kept: old ids in new-id order (ascending): new id ``i`` is old id ``kept[i]``.
        old_size: ``len`` of the old tokenizer.
        used: distinct tokens the corpus uses at least ``min_count`` times.
        corpus_tokens: tokens the corpus is encoded into.
        family: the tokenizer's model type.
    """

    tokenizer: PreTrainedTokenizerFast
    kept: tuple[int, ...]
    old_size: int
    used: int
    corpus_tokens: int
    family: ModelType


def count_tokens(tok: PreTrainedTokenizerBase, texts: Sequence[str]) -> Counter[int]:
    """How often each id occurs in the encodings of ``texts`` (no special tokens added)."""
    counts: Counter[int] = Counter()
    for encoding in tok.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False):
        counts.update(encoding.ids)
    return counts


def trim_tokenizer(
    tok: PreTrainedTokenizerBase, texts: Sequence[str], config: TrimConfig = TrimConfig()
) -> TokenizerTrim:
    """Trim ``tok`` to what ``texts`` use plus the specials and the fallback; ``tok`` unchanged.

    Args:
        tok: a fast BPE (byte-level or SentencePiece-style) or Unigram tokenizer.
        texts: the corpus to trim to.
        config: minimum count and tokens kept anyway.

    Returns:
        The trimmed tokenizer and the kept old ids.

    Raises:
        TokengraftError: an unsupported family, an empty corpus, a corpus using no token, or a
            bad ``min_count``.

    Example:
        >>> trim = trim_tokenizer(tok, ["Der Hund schläft."])  # doctest: +SKIP
        >>> trim.tokenizer("Der Hund")["input_ids"]  # doctest: +SKIP
    """
    spec = tokenizer_json(tok)
    kind = model_type(spec)
    if kind not in TRIM_FAMILIES:
        raise TokengraftError(
            f"trim supports BPE (byte-level or SentencePiece-style) and Unigram tokenizers; "
            f"this one is {kind.value}"
        )
    if config.min_count < 1:
        raise TokengraftError(f"--min-count must be at least 1, got {config.min_count}")
    docs = [t for t in texts if t.strip()]
    if not docs:
        raise TokengraftError("the trim corpus is empty")
    counts = count_tokens(tok, docs)
    specials = {int(i) for i in tok.added_tokens_decoder}
    used = {i for i, n in counts.items() if n >= config.min_count and i not in specials}
    if not used:
        raise TokengraftError("the trim corpus uses no token of the vocabulary (only specials?)")
    seeds = used | specials | _keep_ids(tok, config.keep)
    kept = _closure(spec, kind, seeds)
    new_id = {old: new for new, old in enumerate(kept)}
    _trim_model(spec, kind, new_id)
    remap_ids(spec, new_id)
    return TokenizerTrim(
        tokenizer=rebuild(tok, spec),
        kept=tuple(kept),
        old_size=len(tok),
        used=len(used),
        corpus_tokens=sum(counts.values()),
        family=kind,
    )


def _keep_ids(tok: PreTrainedTokenizerBase, keep: Iterable[str]) -> set[int]:
    vocab = tok.get_vocab()
    ids: set[int] = set()
    for item in keep:
        if item in vocab:
            ids.add(vocab[item])
        elif item.strip():
            ids.update(tok.backend_tokenizer.encode(item, add_special_tokens=False).ids)
    return ids


def _pieces(spec: Mapping[str, Any], kind: ModelType) -> dict[int, str]:
    """Id -> piece of the model's own vocabulary."""
    model = spec["model"]
    if kind is ModelType.UNIGRAM:
        return {i: str(entry[0]) for i, entry in enumerate(model["vocab"])}
    return {int(i): piece for piece, i in model["vocab"].items()}


def _closure(spec: Mapping[str, Any], kind: ModelType, seeds: set[int]) -> list[int]:
    """Sorted old ids: ``seeds``, the fallback, and (BPE) the merge tree of every kept token."""
    pieces = _pieces(spec, kind)
    ids = {piece: i for i, piece in pieces.items()}
    kept = {pieces[i] for i in seeds if i in pieces} | _fallback(spec, kind, pieces)
    if kind is ModelType.BPE:
        kept = _merge_closure(kept, BpeModel.of(spec).ranks())
    else:
        kept |= {c for piece in kept for c in piece if c in ids}
    return sorted({ids[p] for p in kept} | {i for i in seeds if i not in pieces})


def _fallback(spec: Mapping[str, Any], kind: ModelType, pieces: Mapping[int, str]) -> set[str]:
    """The pieces any text may need: bytes, byte-fallback pieces, single characters, unk."""
    model = spec["model"]
    out: set[str] = set()
    unk = model.get("unk_token") if kind is ModelType.BPE else None
    if kind is ModelType.UNIGRAM and model.get("unk_id") is not None:
        unk = pieces.get(int(model["unk_id"]))
    if unk:
        out.add(str(unk))
    if model.get("byte_fallback"):
        out |= {p for p in pieces.values() if p in _BYTE_PIECES}
    elif kind is ModelType.BPE:
        # byte-level: the single characters are the 256 bytes; otherwise they are the alphabet
        out |= {p for p in pieces.values() if len(p) == 1}
    return out


def _merge_closure(kept: set[str], ranks: Mapping[tuple[str, str], int]) -> set[str]:
    """``kept`` with the merge tree of each of its tokens."""
    done: set[str] = set()
    stack = list(kept)
    while stack:
        token = stack.pop()
        if token in done:
            continue
        done.add(token)
        children = merge_children(token, ranks)
        if children is not None:
            stack.extend(children)
    return done


def _trim_model(spec: dict[str, Any], kind: ModelType, new_id: Mapping[int, int]) -> None:
    model = spec["model"]
    if kind is ModelType.UNIGRAM:
        model["vocab"] = [entry for i, entry in enumerate(model["vocab"]) if i in new_id]
        if model.get("unk_id") is not None:
            model["unk_id"] = new_id[int(model["unk_id"])]
        return
    vocab = {piece: new_id[i] for piece, i in model["vocab"].items() if i in new_id}
    merges = BpeModel.of(spec).merges
    model["vocab"] = vocab
    model["merges"] = [[a, b] for a, b in merges if a in vocab and b in vocab and a + b in vocab]


def split_into_kept(
    tok: PreTrainedTokenizerBase, kept: set[str], encodings: Sequence[Sequence[str]]
) -> list[list[str]]:
    """Encodings of ``tok`` with every piece not in ``kept`` split into its merge children.

    Splitting recurses until kept pieces remain; a piece BPE does not build (a single character
    of a SentencePiece-style BPE) becomes its ``<0xNN>`` byte pieces. This is what a trimmed BPE
    would give if removing a merge never let another merge fire (see docs/vocab.md).

    Args:
        tok: the original BPE tokenizer.
        kept: the pieces of the trimmed tokenizer.
        encodings: piece sequences of ``tok``, one per text.

    Returns:
        One piece list per encoding.

    Raises:
        TokengraftError: ``tok`` is not a BPE tokenizer.
    """
    ranks = BpeModel.of(tokenizer_json(tok)).ranks()

    def split(piece: str) -> list[str]:
        if piece in kept:
            return [piece]
        children = merge_children(piece, ranks)
        if children is None:
            return [f"<0x{b:02X}>" for b in piece.encode()]
        return split(children[0]) + split(children[1])

    return [[part for piece in pieces for part in split(piece)] for pieces in encodings]
