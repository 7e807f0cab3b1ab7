"""Evaluate a tokenizer by its compression: fertility, bytes per token, Renyi efficiency.

In-memory only: texts arrive as ``(name, text)`` pairs. Definitions are in ``docs/eval.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.eval import metrics
from tokengraft.eval.lm import OVERALL, encode_text, truncate_utf8


@dataclass(frozen=True, kw_only=True)
class TokenizerScore:
    """Compression of one text (or all of them) by a tokenizer.

    Attributes:
        name: the text's name, or ``"overall"``.
        n_bytes: UTF-8 bytes of the text.
        n_tokens: tokens, without special tokens.
        n_words: whitespace-separated words, ``len(text.split())``.
        fertility: tokens per word.
        bytes_per_token: bytes per token.
        roundtrip: ``decode(encode(text)) == text`` exactly (overall: for every text).
        renyi_efficiency: Renyi efficiency (alpha 2.5) of the text's token unigram distribution.
    """

    name: str
    n_bytes: int
    n_tokens: int
    n_words: int
    fertility: float
    bytes_per_token: float
    roundtrip: bool
    renyi_efficiency: float

    def to_dict(self) -> dict[str, Any]:
        """The score as a JSON-ready dict, one key per field."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class TokenizerEval:
    """Result of :func:`evaluate_tokenizer`.

    Attributes:
        per_file: one score per input text, in input order.
        overall: the same measures over all texts together.
        vocab_size: ``len(tokenizer)``, the |V| of the Renyi efficiency.
    """

    per_file: list[TokenizerScore]
    overall: TokenizerScore
    vocab_size: int

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (what ``tokengraft eval tokenizer --json`` prints)."""
        return {
            "per_file": [s.to_dict() for s in self.per_file],
            "overall": self.overall.to_dict(),
            "vocab_size": self.vocab_size,
        }


def evaluate_tokenizer(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[tuple[str, str]],
    *,
    max_bytes: int | None = None,
) -> TokenizerEval:
    """Fertility, bytes per token, round-trip and Renyi efficiency of a tokenizer on texts.

    Args:
        tokenizer: any Hugging Face tokenizer; special tokens are not added.
        texts: ``(name, text)`` pairs; each text must contain a non-space character.
        max_bytes: use only the first this many UTF-8 bytes of each text (None: all).

    Returns:
        Per-text and overall measures.

    Raises:
        TokengraftError: on no texts or a text without words.

    Example:
        >>> evaluate_tokenizer(tokenizer, [("a.txt", "Hello world.")]).overall.fertility
        ... # doctest: +SKIP
    """
    if not texts:
        raise TokengraftError("no texts to evaluate")
    vocab_size = len(tokenizer)
    per_file: list[TokenizerScore] = []
    all_counts = torch.zeros(vocab_size, dtype=torch.long)  # (V,)
    for name, text in texts:
        score, counts = _tokenizer_score(tokenizer, name, truncate_utf8(text, max_bytes))
        per_file.append(score)
        all_counts += counts
    overall = _overall_tokenizer_score(per_file, all_counts)
    return TokenizerEval(per_file=per_file, overall=overall, vocab_size=vocab_size)


def _overall_tokenizer_score(
    per_file: Sequence[TokenizerScore], counts: torch.Tensor
) -> TokenizerScore:
    """Sums over texts; ratios of sums, Renyi efficiency of the pooled counts (len(tokenizer),)."""
    n_bytes = sum(s.n_bytes for s in per_file)
    n_tokens = sum(s.n_tokens for s in per_file)
    n_words = sum(s.n_words for s in per_file)
    return TokenizerScore(
        name=OVERALL,
        n_bytes=n_bytes,
        n_tokens=n_tokens,
        n_words=n_words,
        fertility=metrics.fertility(n_tokens, n_words),
        bytes_per_token=metrics.bytes_per_token(n_bytes, n_tokens),
        roundtrip=all(s.roundtrip for s in per_file),
        renyi_efficiency=metrics.renyi_efficiency(counts, len(counts)),
    )


def _tokenizer_score(
    tokenizer: PreTrainedTokenizerBase, name: str, text: str
) -> tuple[TokenizerScore, torch.Tensor]:
    """The score of one text and its token counts, (len(tokenizer),)."""
    n_words = len(text.split())
    if n_words == 0:
        raise TokengraftError(f"{name}: the text has no words")
    ids = encode_text(tokenizer, text)
    # No clean-up: it deletes spaces before punctuation, which is not the tokenizer's round trip.
    decoded = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    counts = torch.bincount(torch.tensor(ids, dtype=torch.long), minlength=len(tokenizer))
    n_bytes = len(text.encode("utf-8"))
    score = TokenizerScore(
        name=name,
        n_bytes=n_bytes,
        n_tokens=len(ids),
        n_words=n_words,
        fertility=metrics.fertility(len(ids), n_words),
        bytes_per_token=metrics.bytes_per_token(n_bytes, len(ids)),
        roundtrip=decoded == text,
        renyi_efficiency=metrics.renyi_efficiency(counts, len(tokenizer)),
    )
    return score, counts
