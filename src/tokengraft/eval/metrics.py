"""Pure metrics of tokenizers and language models: no model calls, no I/O.

Bits per byte (the only likelihood comparable across tokenizers), fertility, bytes per token,
Renyi and Shannon efficiency, the Gini coefficient, and the sliding windows that score a long document with a short context.
See ``docs/eval.md`` for the definitions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tokengraft.errors import TokengraftError


def bits_per_byte(nll_nats_sum: float, n_bytes: int) -> float:
    """Total negative log-likelihood of a text in bits, divided by its UTF-8 byte count.

    Args:
        nll_nats_sum: summed negative natural-log likelihood of every token of the text.
        n_bytes: the text's length in UTF-8 bytes.

    Returns:
        Bits per byte; unlike per-token perplexity it does not depend on the tokenizer.

    Raises:
        TokengraftError: if ``n_bytes`` is not positive.

    Example:
        >>> bits_per_byte(math.log(2) * 8, 4)
        2.0
    """
    if n_bytes <= 0:
        raise TokengraftError(f"bits per byte of {n_bytes} bytes is undefined: the text is empty")
    return nll_nats_sum / math.log(2) / n_bytes


def fertility(n_tokens: int, n_words: int) -> float:
    """Tokens per whitespace-separated word.

    Args:
        n_tokens: tokens the tokenizer produced for the text.
        n_words: ``len(text.split())``.

    Returns:
        ``n_tokens / n_words``.

    Raises:
        TokengraftError: if ``n_words`` is not positive.

    Example:
        >>> fertility(6, 4)
        1.5
    """
    if n_words <= 0:
        raise TokengraftError("fertility is undefined: the text has no whitespace-separated words")
    return n_tokens / n_words


def bytes_per_token(n_bytes: int, n_tokens: int) -> float:
    """UTF-8 bytes per token: how much text one token carries (higher is more compression).

    Args:
        n_bytes: the text's length in UTF-8 bytes.
        n_tokens: tokens the tokenizer produced for it.

    Returns:
        ``n_bytes / n_tokens``.

    Raises:
        TokengraftError: if ``n_tokens`` is not positive.

    Example:
        >>> bytes_per_token(10, 4)
        2.5
    """
    if n_tokens <= 0:
        raise TokengraftError("bytes per token is undefined: the text has no tokens")
    return n_bytes / n_tokens


def renyi_efficiency(
    counts: Sequence[int] | torch.Tensor, vocab_size: int, alpha: float = 2.5
) -> float:
    """Renyi entropy of the unigram token distribution over the log of the vocabulary size.

    Zouhar et al. 2023, "Tokenization and the noiseless channel" (arXiv:2306.16842):
    ``H_alpha(p) / log |V|`` with ``H_alpha(p) = log(sum_i p_i^alpha) / (1 - alpha)``; alpha=2.5
    correlates best with downstream quality there. Alpha 1 is Shannon entropy, alpha ``inf`` the
    min-entropy. The result lies in [0, 1]; 1 means every token of the vocabulary is equally used.

    Args:
        counts: how often each token occurs in a corpus, (n,) with n <= vocab_size non-zero entries
            (zeros for unused tokens may be present or left out).
        vocab_size: size of the vocabulary, |V| >= 2.
        alpha: order of the Renyi entropy, >= 0.

    Returns:
        The efficiency, a float in [0, 1].

    Raises:
        TokengraftError: on negative or all-zero counts, more used tokens than ``vocab_size``,
            ``vocab_size < 2`` or negative ``alpha``.

    Example:
        >>> renyi_efficiency([5, 5, 5, 5], vocab_size=4)
        1.0
    """
    p = _unigram_distribution(counts, vocab_size)
    if alpha < 0:
        raise TokengraftError(f"Renyi alpha must be >= 0, got {alpha}")
    if alpha == 1:
        entropy = -(p * p.log()).sum()
    elif math.isinf(alpha):
        entropy = -p.max().log()
    else:
        # log(sum p^a) = log1p(sum p * expm1((a - 1) log p)): no cancellation when a is near 1
        entropy = torch.log1p((p * torch.expm1((alpha - 1) * p.log())).sum()) / (1 - alpha)
    return float(entropy) / math.log(vocab_size)


def shannon_efficiency(counts: Sequence[int] | torch.Tensor, vocab_size: int) -> float:
    """Shannon entropy of the unigram token distribution over ``log |V|``: Renyi with alpha 1.

    Args:
        counts: how often each token occurs, (n,) (zeros may be present or left out).
        vocab_size: size of the vocabulary, |V| >= 2.

    Returns:
        The efficiency, a float in [0, 1]; 1 for a uniform distribution over the whole vocabulary.

    Raises:
        TokengraftError: as :func:`renyi_efficiency`.

    Example:
        >>> shannon_efficiency([3, 3, 3, 3], vocab_size=4)
        1.0
    """
    return renyi_efficiency(counts, vocab_size, alpha=1)


def gini(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, near 1 when one has all.

    ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean)``, the mean absolute difference over twice the
    mean (Explaining and Mitigating Crosslingual Tokenizer Inequities uses it over the token
    costs of languages).

    Args:
        values: one cost per item, for example tokens per language, (n,) with n >= 1.

    Returns:
        The coefficient in [0, 1 - 1/n].

    Raises:
        TokengraftError: on no values, a negative value or an all-zero sum.

    Example:
        >>> gini([10, 10, 10])
        0.0
        >>> gini([0, 0, 0, 4])
        0.75
    """
    x = torch.as_tensor(list(values), dtype=torch.float64)
    if x.numel() == 0:
        raise TokengraftError("the Gini coefficient needs at least one value")
    if bool((x < 0).any()) or float(x.sum()) <= 0:
        raise TokengraftError("the Gini coefficient needs non-negative values with a positive sum")
    diffs = (x[:, None] - x[None, :]).abs().sum()
    return float(diffs / (2 * x.numel() ** 2 * x.mean()))


def _unigram_distribution(counts: Sequence[int] | torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Normalised non-zero counts, float64, (n_used,)."""
    c = torch.as_tensor(counts, dtype=torch.float64).flatten()
    if vocab_size < 2:
        raise TokengraftError(
            f"Renyi efficiency needs a vocabulary of >= 2 tokens, got {vocab_size}"
        )
    if bool((c < 0).any()):
        raise TokengraftError("token counts must not be negative")
    used = c[c > 0]
    if used.numel() == 0:
        raise TokengraftError("Renyi efficiency is undefined: no tokens were counted")
    if used.numel() > vocab_size:
        raise TokengraftError(f"{used.numel()} distinct tokens counted, vocab_size is {vocab_size}")
    return used / used.sum()


@dataclass(frozen=True, kw_only=True)
class Span:
    """One forward window over a token sequence and the part of it that is scored.

    Attributes:
        start: first position fed to the model.
        end: one past the last position fed; ``end - start <= window``.
        score_from: first position scored in this window: tokens ``score_from .. end - 1`` are
            scored, each from the logits one position earlier, so ``start < score_from <= end``.
    """

    start: int
    end: int
    score_from: int


def window_spans(n_tokens: int, window: int, stride: int) -> list[Span]:
    """Overlapping windows that score every token of a sequence exactly once, with context.

    Token 0 has no context and is never scored (prepend a BOS token to score the first real
    token). The first window scores tokens 1 .. window-1; each next one moves by ``stride`` and
    scores only tokens not scored yet, each with at least ``window - stride`` tokens of context.

    Args:
        n_tokens: length of the sequence fed to the model (including any BOS).
        window: most tokens per forward pass, >= 2.
        stride: how far consecutive windows move, 1 <= stride < window.

    Returns:
        The windows in order; empty if there is nothing to score (``n_tokens < 2``).

    Raises:
        TokengraftError: if ``window`` or ``stride`` is out of range.

    Example:
        >>> [(s.start, s.end, s.score_from) for s in window_spans(10, window=6, stride=4)]
        [(0, 6, 1), (4, 10, 6)]
    """
    if window < 2:
        raise TokengraftError(f"window must be at least 2 tokens, got {window}")
    if not 1 <= stride < window:
        raise TokengraftError(
            f"stride must be in [1, window - 1] = [1, {window - 1}], got {stride}"
        )
    spans: list[Span] = []
    start, scored_until = 0, 1  # position 0 only ever serves as context
    while scored_until < n_tokens:
        end = min(start + window, n_tokens)
        spans.append(Span(start=start, end=end, score_from=scored_until))
        start, scored_until = start + stride, end
    return spans
