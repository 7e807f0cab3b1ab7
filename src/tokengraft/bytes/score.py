"""Bits per byte of byte spans through a :class:`tokengraft.bytes.lm.ByteLM`.

The in-memory side of ``tokengraft eval model --byte-level``: each text is split at a byte
offset into a context, which is conditioned on, and a scored span, which may start inside a
token or a character (a fill-in-the-middle suffix, say).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokengraft.bytes.lm import ByteLM
from tokengraft.errors import TokengraftError


@dataclass(frozen=True, kw_only=True)
class SpanScore:
    """How well a byte model predicts one span (or all of them, for the overall row).

    Attributes:
        name: the text's name, or ``"overall"``.
        context_bytes: bytes conditioned on, not scored.
        n_bytes: bytes scored.
        nll_bits: their summed negative log2-probability.
        bits_per_byte: ``nll_bits / n_bytes``.
        forwarded_tokens: tokens the model was fed, context included.
        seconds: wall time.
        pruned_bits: how much lower ``nll_bits`` is for the hypotheses pruning dropped
            (:attr:`tokengraft.bytes.state.ByteState.pruned_nats`, in bits; 0 without pruning):
            ``nll_bits + pruned_bits`` bounds the unpruned value from above, unless the
            canonical fallback or a restart from the reserve was used (docs/bytes.md).
    """

    name: str
    context_bytes: int
    n_bytes: int
    nll_bits: float
    bits_per_byte: float
    forwarded_tokens: int
    seconds: float
    pruned_bits: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The score as a JSON-ready dict."""
        return dataclasses.asdict(self)


def score_span(lm: ByteLM, name: str, data: bytes, *, start: int = 0) -> SpanScore:
    """Score ``data[start:]`` given ``data[:start]``.

    Raises:
        TokengraftError: ``start`` is outside the text or leaves nothing to score, or the text
            holds a byte the tokenizer cannot express.
    """
    if not 0 <= start < len(data):
        raise TokengraftError(f"{name}: offset {start} leaves no byte to score of {len(data)}")
    started = time.perf_counter()
    lm.vocab.check_expressible(data)
    state = lm.start(data[:start], upcoming=data[start:])
    before = state.pruned_nats  # the context's own pruning is not the span's
    nats = -sum(state.push(b) for b in data[start:])
    n = len(data) - start
    bits = nats / math.log(2)
    return SpanScore(
        name=name,
        context_bytes=start,
        n_bytes=n,
        nll_bits=bits,
        bits_per_byte=bits / n,
        forwarded_tokens=state.runner.forwarded_tokens,
        seconds=time.perf_counter() - started,
        pruned_bits=(state.pruned_nats - before) / math.log(2),
    )


def overall(scores: Sequence[SpanScore]) -> SpanScore:
    """Sums over all spans; bits per byte is total bits over total bytes."""
    n = sum(s.n_bytes for s in scores)
    bits = sum(s.nll_bits for s in scores)
    return SpanScore(
        name="overall",
        context_bytes=sum(s.context_bytes for s in scores),
        n_bytes=n,
        nll_bits=bits,
        bits_per_byte=bits / n if n else float("nan"),
        forwarded_tokens=sum(s.forwarded_tokens for s in scores),
        seconds=sum(s.seconds for s in scores),
        pruned_bits=sum(s.pruned_bits for s in scores),
    )
