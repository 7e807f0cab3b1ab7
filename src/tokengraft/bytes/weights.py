"""Ensemble weights chosen on validation bytes (``member_logprobs``, ``fit_weights``).

Phan et al. (2024), arXiv 2410.09303, section 5, ensemble byte-level models with fixed weights.
Equal weights waste the better member's strength when the members differ a lot (SmolLM2 and
Gemma-3 on German differ by more than a factor of two in bits per byte), so the weights here are
fitted to text the ensemble will not be scored on:

* ``mixture``: maximum likelihood of the weights of a mixture with fixed components, by the EM
  algorithm (each step cannot lower the validation likelihood);
* ``product``: the weights of a normalised geometric mean, by Adam on their softmax logits (the
  objective is not convex in general; the start is equal weights).

The members' next-byte distributions are computed once per text (:func:`member_logprobs`, an
``(M, T, 257)`` table); every combination is then cheap (:func:`ensemble_bits`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from tokengraft.bytes.ensemble import (
    ByteEnsemble,
    ByteModel,
    Mode,
    combine,
    normalised_weights,
    parse_mode,
)
from tokengraft.errors import TokengraftError


def member_logprobs(
    members: Sequence[ByteModel], data: bytes, *, context: bytes = b""
) -> torch.Tensor:
    """(M, T, 257) float64 natural log-probabilities of each member before each byte of ``data``."""
    if not data:
        raise TokengraftError("member_logprobs needs at least one byte")
    state = ByteEnsemble(members).start(context, upcoming=data)
    steps = []
    for byte in data:
        steps.append(state.each())
        state.advance(byte)
    return torch.stack(steps, dim=1)


def ensemble_bits(table: torch.Tensor, data: bytes, weights: Sequence[float], mode: str) -> float:
    """Bits per byte of ``data`` under the members of ``table`` combined with ``weights``."""
    _check(table, data)
    combined = combine(table, normalised_weights(weights, table.shape[0]), parse_mode(mode))
    chosen = combined[torch.arange(len(data)), torch.tensor(list(data))]
    return -float(chosen.sum()) / math.log(2) / len(data)


def _check(table: torch.Tensor, data: bytes) -> None:
    if table.dim() != 3 or table.shape[1] != len(data) or table.shape[2] != 257:
        raise TokengraftError(f"table of shape {tuple(table.shape)} does not fit {len(data)} bytes")


def fit_weights(
    table: torch.Tensor, data: bytes, mode: str, *, steps: int = 200, lr: float = 0.05
) -> list[float]:
    """Weights (summing to one) that maximise the likelihood of ``data`` under the ensemble.

    Args:
        table: (M, T, 257) from :func:`member_logprobs` on the validation bytes ``data``.
        data: the T validation bytes.
        mode: ``"mixture"`` (EM) or ``"product"`` (Adam on softmax logits).
        steps: EM or Adam steps.
        lr: Adam rate (``product`` only).
    """
    _check(table, data)
    targets = torch.tensor(list(data))
    if parse_mode(mode) is Mode.MIXTURE:
        return _em(table[:, torch.arange(len(data)), targets], steps)
    return _product(table, targets, steps, lr)


def _em(chosen: torch.Tensor, steps: int) -> list[float]:
    """Mixture weights by EM; ``chosen`` (M, T) is each member's log-probability of each byte."""
    log_w = torch.full((chosen.shape[0], 1), -math.log(chosen.shape[0]), dtype=torch.float64)
    for _ in range(steps):
        joint = chosen + log_w
        posterior = (joint - joint.logsumexp(0, keepdim=True)).exp()  # (M, T)
        log_w = posterior.mean(1, keepdim=True).clamp_min(1e-300).log()
    return log_w.exp().flatten().tolist()


def _product(table: torch.Tensor, targets: torch.Tensor, steps: int, lr: float) -> list[float]:
    """Geometric-mean weights by Adam on their softmax logits (start: equal weights)."""
    finite = torch.where(torch.isfinite(table), table, torch.finfo(table.dtype).min / 4)
    logits = torch.zeros(table.shape[0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    rows = torch.arange(table.shape[1])
    for _ in range(steps):
        weights = logits.softmax(0)
        combined = (finite * weights[:, None, None]).sum(0)  # (T, 257)
        loss = -(combined.log_softmax(-1)[rows, targets]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return logits.detach().softmax(0).tolist()
