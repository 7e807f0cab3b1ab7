"""Models with different tokenizers combined byte by byte (``ByteEnsemble``).

Phan et al. (2024), arXiv 2410.09303, section 5: once each model gives next-*byte*
probabilities, models with different vocabularies share one output space and can be averaged.
Two combinations, each renormalised over the 257 outcomes (256 bytes and the end of the text):

* ``mixture``: ``p(b) = sum_i w_i p_i(b)``, weights fixed (not updated by each model's
  likelihood so far, which would be the Bayesian mixture);
* ``product``: ``p(b) ∝ prod_i p_i(b) ** w_i`` (a product of experts; with weights summing to
  one, a geometric mean).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Protocol

import torch

from tokengraft.errors import TokengraftError


class ByteStream(Protocol):
    """A model's state after some bytes: what :class:`tokengraft.bytes.state.ByteState` offers."""

    def logprobs(self) -> torch.Tensor:
        """(257,) natural log-probabilities of the next byte and of the end."""
        ...

    def push(self, byte: int) -> float:
        """Append a byte; return its natural log-probability."""
        ...


class ByteModel(Protocol):
    """Anything that starts byte streams: a ``ByteLM`` or a ``ByteEnsemble``."""

    def start(self, prefix: bytes = b"", *, upcoming: bytes = b"") -> ByteStream:
        """A stream after ``prefix``; ``upcoming`` bytes are expected next (a hint)."""
        ...


class Mode(enum.StrEnum):
    """How an ensemble combines its members' next-byte distributions."""

    MIXTURE = "mixture"
    PRODUCT = "product"


def parse_mode(mode: str) -> Mode:
    """``mode`` as a :class:`Mode` (a one-line error for anything else)."""
    try:
        return Mode(mode)
    except ValueError:
        raise TokengraftError(f"unknown ensemble mode {mode!r}: mixture or product") from None


def normalised_weights(weights: Sequence[float] | None, members: int) -> torch.Tensor:
    """(M,) float64 weights summing to one (``None``: equal), checked."""
    weights = [1.0] * members if weights is None else list(weights)
    if len(weights) != members:
        raise TokengraftError(f"{len(weights)} weights for {members} ensemble members")
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise TokengraftError(f"ensemble weights must be >= 0 and not all 0, got {weights}")
    return torch.tensor(weights, dtype=torch.float64) / sum(weights)


def combine(each: torch.Tensor, weights: torch.Tensor, mode: Mode) -> torch.Tensor:
    """(..., 257) combined log-probabilities of (M, ..., 257) member ones, renormalised."""
    log_w = weights.log().reshape(-1, *([1] * (each.dim() - 1)))
    if mode is Mode.MIXTURE:
        combined = (each + log_w).logsumexp(0)
    else:
        # 0 * -inf is nan: a zero-weight member has no say, even where it gives no mass.
        weighted = torch.where(log_w > float("-inf"), each * log_w.exp(), 0.0)
        combined = weighted.sum(0)
    return combined - combined.logsumexp(-1, keepdim=True)


class ByteEnsemble:
    """Several byte models, possibly of different tokenizers, as one.

    Args:
        members: the models (``ByteLM`` or nested ensembles).
        weights: one non-negative weight per member, not all zero (default: equal); they are
            normalised to sum to one.
        mode: ``"mixture"`` or ``"product"``.

    Raises:
        TokengraftError: no members, a weight count that does not match, negative or all-zero
            weights, or an unknown mode.

    Example:
        >>> both = ByteEnsemble([ByteLM(a, tok_a), ByteLM(b, tok_b)], mode="mixture")  # doctest: +SKIP
        >>> both.logprob(b"Hello world") / 11  # bits per byte  # doctest: +SKIP
    """

    def __init__(
        self,
        members: Sequence[ByteModel],
        weights: Sequence[float] | None = None,
        mode: str = "mixture",
    ) -> None:
        if not members:
            raise TokengraftError("an ensemble needs at least one member")
        self.mode = parse_mode(mode)
        self.members = list(members)
        self.weights = normalised_weights(weights, len(members))

    def combine(self, each: torch.Tensor) -> torch.Tensor:
        """(257,) combined natural log-probabilities of the members' (M, 257) ones."""
        return combine(each, self.weights, self.mode)

    def start(self, prefix: bytes = b"", *, upcoming: bytes = b"") -> EnsembleState:
        """A state of every member after ``prefix``; ``upcoming`` bytes are expected next."""
        return EnsembleState(self, [m.start(prefix, upcoming=upcoming) for m in self.members])

    def next_byte_logprobs(self, prefix: bytes) -> torch.Tensor:
        """(257,) float64 natural log-probabilities of the next byte, then of the end."""
        return self.start(prefix).logprobs()

    def logprob(self, data: bytes, *, context: bytes = b"") -> float:
        """log2 P(``data`` | ``context``) under the combined byte distribution."""
        state = self.start(context, upcoming=data)
        return sum(state.push(b) for b in data) / math.log(2)


class EnsembleState:
    """The members' states after the same bytes."""

    def __init__(self, ensemble: ByteEnsemble, states: list[ByteStream]) -> None:
        self.ensemble = ensemble
        self.states = states

    def each(self) -> torch.Tensor:
        """(M, 257) float64: every member's next-byte log-probabilities, not combined."""
        return torch.stack([s.logprobs().double() for s in self.states])

    def logprobs(self) -> torch.Tensor:
        """(257,) float64 natural log-probabilities, combined and renormalised."""
        return self.ensemble.combine(self.each())

    def push(self, byte: int) -> float:
        """Append a byte to every member; return its combined natural log-probability."""
        logp = float(self.logprobs()[byte])
        self.advance(byte)
        return logp

    def advance(self, byte: int) -> None:
        """Append a byte to every member without scoring it."""
        for state in self.states:
            state.push(byte)
