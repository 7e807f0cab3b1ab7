"""Evaluate a tokenizer on texts: fertility, compression, efficiency, vocabulary use, round trip.

In-memory only: texts arrive as ``(name, text)`` pairs. Definitions are in ``docs/eval.md``.
:func:`evaluate_tokenizer` scores one tokenizer; :func:`tokengraft.eval.compare.evaluate_tokenizers`
compares several, with parity across parallel texts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import regex
import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.eval import metrics
from tokengraft.eval.encoding import Encoded, byte_fallback_ids, encode_texts, vocab_size
from tokengraft.eval.lm import OVERALL, truncate_utf8

RENYI_ALPHA = 2.5
# Scripts written without spaces between words: fertility is counted per character there.
_NO_SPACE = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}]"
)
_LETTER = regex.compile(r"\p{L}")
UNIT_SAMPLE_CHARS = 100_000


@dataclass(frozen=True, kw_only=True)
class TokenizerScore:
    """How a tokenizer encodes one text (or all of them, for the overall row).

    Attributes:
        name: the text's name, or ``"overall"``.
        n_bytes: UTF-8 bytes of the text.
        n_chars: characters (code points) of the text.
        n_words: whitespace-separated words, ``len(text.split())``.
        n_tokens: tokens, without special tokens.
        fertility: tokens per word, or per non-space character (see ``fertility_unit``).
        fertility_unit: ``"word"``, or ``"char"`` for a text mostly in a script written without
            spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar, Tibetan).
        bytes_per_token: bytes per token.
        chars_per_token: characters per token.
        renyi_efficiency: Renyi efficiency (alpha 2.5) of the token unigram distribution.
        shannon_efficiency: Shannon efficiency of the same distribution.
        vocab_utilisation: distinct tokens used over the vocabulary size.
        split_word_share: share of words covered by two or more tokens.
        unk_rate: share of tokens that are the unknown token.
        byte_fallback_rate: share of tokens that are ``<0xNN>`` byte-fallback pieces.
        roundtrip: the tokens decode to the text exactly (overall: for every text).
    """

    name: str
    n_bytes: int
    n_chars: int
    n_words: int
    n_tokens: int
    fertility: float
    fertility_unit: str
    bytes_per_token: float
    chars_per_token: float
    renyi_efficiency: float
    shannon_efficiency: float
    vocab_utilisation: float
    split_word_share: float
    unk_rate: float
    byte_fallback_rate: float
    roundtrip: bool

    def to_dict(self) -> dict[str, Any]:
        """The score as a JSON-ready dict, one key per field."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class TokenizerEval:
    """Result of :func:`evaluate_tokenizer`.

    Attributes:
        per_file: one score per input text, in input order.
        overall: the same measures over all texts together.
        vocab_size: ``len(tokenizer)``, the |V| of the efficiencies and the utilisation.
    """

    per_file: list[TokenizerScore]
    overall: TokenizerScore
    vocab_size: int

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return {
            "per_file": [s.to_dict() for s in self.per_file],
            "overall": self.overall.to_dict(),
            "vocab_size": self.vocab_size,
        }


def fertility_unit(text: str) -> str:
    """``"char"`` when most letters of ``text`` belong to scripts without spaces, else ``"word"``.

    Decided on the first :data:`UNIT_SAMPLE_CHARS` characters.

    Example:
        >>> fertility_unit("人人生而自由，在尊严和权利上一律平等。"), fertility_unit("Hello world")
        ('char', 'word')
    """
    sample = text[:UNIT_SAMPLE_CHARS]
    letters = len(_LETTER.findall(sample))
    return "char" if letters and len(_NO_SPACE.findall(sample)) * 2 > letters else "word"


def _non_space_chars(text: str) -> int:
    return len("".join(text.split()))


@dataclass(frozen=True)
class _Vocab:
    """What the rates need to know about a tokenizer's vocabulary."""

    size: int
    unk: int | None
    byte_fallback: np.ndarray


def _vocab(tok: PreTrainedTokenizerBase) -> _Vocab:
    unk = tok.unk_token_id if tok.unk_token is not None else None
    ids = np.array(byte_fallback_ids(tok), dtype=np.int64)
    return _Vocab(size=vocab_size(tok), unk=unk, byte_fallback=ids)


def _score(
    name: str, texts: Sequence[str], encs: Sequence[Encoded], vocab: _Vocab
) -> TokenizerScore:
    """The score of one text (or, pooled, of several)."""
    text_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_chars = sum(len(t) for t in texts)
    n_words = sum(e.n_words for e in encs)
    n_tokens = sum(e.n_tokens for e in encs)
    if n_words == 0:
        raise TokengraftError(f"{name}: the text has no words")
    if n_tokens == 0:
        raise TokengraftError(f"{name}: the tokenizer produced no tokens for it")
    counts = np.sum([e.counts for e in encs], axis=0) if len(encs) > 1 else encs[0].counts
    pooled = torch.from_numpy(counts[counts > 0])  # the efficiencies need only used tokens
    unit = "char" if all(fertility_unit(t) == "char" for t in texts) else "word"
    per = sum(_non_space_chars(t) for t in texts) if unit == "char" else n_words
    unk = int(counts[vocab.unk]) if vocab.unk is not None and vocab.unk < len(counts) else 0
    return TokenizerScore(
        name=name,
        n_bytes=text_bytes,
        n_chars=n_chars,
        n_words=n_words,
        n_tokens=n_tokens,
        fertility=metrics.fertility(n_tokens, per),
        fertility_unit=unit,
        bytes_per_token=metrics.bytes_per_token(text_bytes, n_tokens),
        chars_per_token=n_chars / n_tokens,
        renyi_efficiency=metrics.renyi_efficiency(pooled, vocab.size, alpha=RENYI_ALPHA),
        shannon_efficiency=metrics.shannon_efficiency(pooled, vocab.size),
        vocab_utilisation=len(pooled) / vocab.size,
        split_word_share=sum(e.n_split_words for e in encs) / n_words,
        unk_rate=unk / n_tokens,
        byte_fallback_rate=int(counts[vocab.byte_fallback].sum()) / n_tokens,
        roundtrip=all(e.roundtrip for e in encs),
    )


def score_texts_with(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[tuple[str, str]],
    *,
    threads: int | None = None,
    overall: bool = True,
) -> tuple[list[TokenizerScore], TokenizerScore | None, list[Encoded]]:
    """Per-text scores, the overall score (None unless ``overall``) and the encodings.

    ``texts`` are already truncated.

    Raises:
        TokengraftError: no texts, a text without words, or not a fast tokenizer.
    """
    if not texts:
        raise TokengraftError("no texts to evaluate")
    vocab = _vocab(tokenizer)
    encs = encode_texts(tokenizer, [t for _, t in texts], threads=threads)
    per_file = [_score(n, [t], [e], vocab) for (n, t), e in zip(texts, encs, strict=True)]
    pooled = _score(OVERALL, [t for _, t in texts], encs, vocab) if overall else None
    return per_file, pooled, encs


def evaluate_tokenizer(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[tuple[str, str]],
    *,
    max_bytes: int | None = None,
) -> TokenizerEval:
    """Fertility, compression, efficiency, vocabulary use and round trip of a tokenizer on texts.

    Args:
        tokenizer: a fast Hugging Face tokenizer; special tokens are not added.
        texts: ``(name, text)`` pairs; each text must contain a non-space character.
        max_bytes: use only the first this many UTF-8 bytes of each text (None: all).

    Returns:
        Per-text and overall measures.

    Raises:
        TokengraftError: on no texts, a text without words or a tokenizer that is not fast.

    Example:
        >>> evaluate_tokenizer(tokenizer, [("a.txt", "Hello world.")]).overall.fertility
        ... # doctest: +SKIP
    """
    cut = [(name, truncate_utf8(text, max_bytes)) for name, text in texts]
    per_file, overall, _ = score_texts_with(tokenizer, cut)
    assert overall is not None
    return TokenizerEval(per_file=per_file, overall=overall, vocab_size=_vocab(tokenizer).size)
