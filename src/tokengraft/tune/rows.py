"""Which rows train, and the matrices they make.

Only the chosen rows are trainable tensors; every other row of each matrix stays exactly as it
was (copied and role rows of a graft stay bit-identical).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from tokengraft.config import Slot
from tokengraft.errors import TokengraftError


def row_ids(rows: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(N,) long ids from a boolean row mask (V,) or an id tensor (N,).

    Raises:
        TokengraftError: a mask of the wrong length, or ids outside ``[0, vocab_size)``.
    """
    if rows.dtype == torch.bool:
        if rows.shape != (vocab_size,):
            raise TokengraftError(f"row mask has shape {tuple(rows.shape)}, not ({vocab_size},)")
        return rows.nonzero().squeeze(1)
    ids = rows.long().reshape(-1)
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise TokengraftError(f"row ids must lie in [0, {vocab_size})")
    return ids


@dataclass(frozen=True, kw_only=True)
class Rows:
    """The trainable rows of each slot's matrix.

    Attributes:
        ids: (N,) long, the rows that train (the same ids in every slot).
        fixed: slot -> (V, D) float32, the starting matrix (its other rows never change).
        trained: slot -> (N, D) float32 leaf tensors, the only ones the optimiser moves.
    """

    ids: torch.Tensor
    fixed: Mapping[Slot, torch.Tensor]
    trained: Mapping[Slot, torch.Tensor]

    def matrices(self) -> dict[Slot, torch.Tensor]:
        """Slot -> (V, D): the fixed matrix with the trained rows put in (differentiable)."""
        return {
            slot: self.fixed[slot].index_put((self.ids,), self.trained[slot]) for slot in self.fixed
        }

    def result(self) -> dict[Slot, torch.Tensor]:
        """Slot -> (N, D) float32, the trained rows, detached."""
        return {slot: t.detach().clone() for slot, t in self.trained.items()}

    def full(self) -> dict[Slot, torch.Tensor]:
        """Slot -> (V, D) float32, the whole matrices now, detached."""
        with torch.no_grad():
            return {slot: m.detach() for slot, m in self.matrices().items()}


def trainable_rows(weights: Mapping[Slot, torch.Tensor], rows: torch.Tensor) -> Rows:
    """Start training ``rows`` of every slot of ``weights`` from their current values.

    Args:
        weights: slot -> (V, D) matrix (any dtype; kept as float32).
        rows: a (V,) boolean mask or (N,) ids of the rows that train.

    Returns:
        The rows, ready for an optimiser (``trained`` requires grad).
    """
    fixed = {slot: w.detach().float() for slot, w in weights.items()}
    size = int(next(iter(fixed.values())).shape[0])
    ids = row_ids(rows, size).to(next(iter(fixed.values())).device)
    trained = {slot: w[ids].clone().requires_grad_(True) for slot, w in fixed.items()}
    return Rows(ids=ids, fixed=fixed, trained=trained)
