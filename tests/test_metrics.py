from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tokengraft.errors import TokengraftError
from tokengraft.eval.metrics import (
    Span,
    bits_per_byte,
    bytes_per_token,
    fertility,
    renyi_efficiency,
    window_spans,
)


def test_bits_per_byte_converts_nats_to_bits_per_byte() -> None:
    assert bits_per_byte(10 * math.log(2), 5) == pytest.approx(2.0, rel=1e-15)
    assert bits_per_byte(0.0, 3) == 0.0


def test_ratios() -> None:
    assert fertility(6, 4) == 1.5
    assert bytes_per_token(10, 4) == 2.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bits_per_byte(1.0, 0), "empty"),
        (lambda: fertility(3, 0), "no whitespace-separated words"),
        (lambda: bytes_per_token(3, 0), "no tokens"),
    ],
)
def test_undefined_ratios_raise(call, message: str) -> None:
    with pytest.raises(TokengraftError, match=message):
        call()


def test_renyi_uniform_over_whole_vocab_is_one() -> None:
    for alpha in (0.0, 0.5, 1.0, 2.5, math.inf):
        assert renyi_efficiency([7] * 16, 16, alpha) == pytest.approx(1.0, rel=1e-12)


def test_renyi_single_token_is_zero() -> None:
    assert renyi_efficiency([0, 9, 0], 3) == 0.0


def test_renyi_closed_forms() -> None:
    counts = [1, 2, 3, 4]
    p = torch.tensor(counts, dtype=torch.float64) / 10
    log_v = math.log(100)
    shannon = float(-(p * p.log()).sum()) / log_v
    assert renyi_efficiency(counts, 100, alpha=1.0) == pytest.approx(shannon, rel=1e-12)
    assert renyi_efficiency(counts, 100, alpha=math.inf) == pytest.approx(-math.log(0.4) / log_v)
    h2 = -math.log(float((p**2).sum()))
    assert renyi_efficiency(counts, 100, alpha=2.0) == pytest.approx(h2 / log_v, rel=1e-12)
    # alpha=2.5 is Zouhar et al.'s default; zero counts (unused tokens) do not change it
    h25 = math.log(float((p**2.5).sum())) / (1 - 2.5)
    assert renyi_efficiency([0, *counts, 0], 100) == pytest.approx(h25 / log_v, rel=1e-12)


def test_renyi_is_continuous_at_alpha_one() -> None:
    counts = [1, 2, 3, 4, 100]
    shannon = renyi_efficiency(counts, 10, alpha=1.0)
    for alpha in (1 - 1e-12, 1 + 1e-12, 1 + 1e-7):
        assert renyi_efficiency(counts, 10, alpha) == pytest.approx(shannon, rel=1e-6)


def test_renyi_accepts_tensors() -> None:
    counts = [3, 0, 5, 1]
    assert renyi_efficiency(torch.tensor(counts), 8) == renyi_efficiency(counts, 8)


@given(
    counts=st.lists(st.integers(0, 1000), min_size=1, max_size=40).filter(any),
    extra=st.integers(0, 100),
    alphas=st.tuples(st.floats(0, 10), st.floats(0, 10)),
)
def test_renyi_is_in_unit_interval_and_non_increasing_in_alpha(
    counts: list[int], extra: int, alphas: tuple[float, float]
) -> None:
    vocab_size = max(2, len(counts) + extra)
    low, high = sorted(alphas)
    e_low, e_high = (renyi_efficiency(counts, vocab_size, a) for a in (low, high))
    assert -1e-12 <= e_high <= e_low + 1e-9 <= 1 + 2e-9


@pytest.mark.parametrize(
    ("counts", "vocab_size", "alpha", "message"),
    [
        ([1, -1], 4, 2.5, "negative"),
        ([0, 0], 4, 2.5, "no tokens"),
        ([1, 1, 1], 2, 2.5, "3 distinct tokens"),
        ([1], 1, 2.5, ">= 2 tokens"),
        ([1, 2], 4, -1.0, "alpha"),
    ],
)
def test_renyi_rejects_bad_input(
    counts: list[int], vocab_size: int, alpha: float, message: str
) -> None:
    with pytest.raises(TokengraftError, match=message):
        renyi_efficiency(counts, vocab_size, alpha)


def test_window_spans_example() -> None:
    assert window_spans(10, window=6, stride=4) == [
        Span(start=0, end=6, score_from=1),
        Span(start=4, end=10, score_from=6),
    ]
    assert window_spans(5, window=512, stride=256) == [Span(start=0, end=5, score_from=1)]


@pytest.mark.parametrize("n_tokens", [0, 1])
def test_window_spans_nothing_to_score(n_tokens: int) -> None:
    assert window_spans(n_tokens, window=4, stride=2) == []


@pytest.mark.parametrize(("window", "stride"), [(1, 1), (4, 4), (4, 0), (4, 5), (4, -1)])
def test_window_spans_rejects_bad_settings(window: int, stride: int) -> None:
    with pytest.raises(TokengraftError, match="window|stride"):
        window_spans(10, window, stride)


@given(
    n_tokens=st.integers(0, 600),
    window=st.integers(2, 80),
    data=st.data(),
)
def test_window_spans_score_each_token_once_with_context(
    n_tokens: int, window: int, data: st.DataObject
) -> None:
    stride = data.draw(st.integers(1, window - 1))
    spans = window_spans(n_tokens, window, stride)
    scored = [t for s in spans for t in range(s.score_from, s.end)]
    assert scored == list(range(1, n_tokens))  # every token but the first, once, in order
    for i, s in enumerate(spans):
        assert 0 <= s.start < s.score_from <= s.end <= n_tokens
        assert s.end - s.start <= window
        if i > 0:  # each scored token sees >= window - stride tokens before it
            assert s.score_from - s.start >= window - stride
