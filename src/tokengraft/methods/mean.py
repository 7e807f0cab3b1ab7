"""`mean`: every new row is the mean of the old rows (the common baseline, e.g. arXiv 2112.06598 §4)."""

from __future__ import annotations

import torch

from tokengraft.methods.registry import MethodInput, MethodSpec, register


def mean_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D): the mean of ``inp.old`` (V_old, D), repeated for each row to compute."""
    mu = inp.old.double().mean(dim=0)  # (D,)
    return mu.to(inp.old.dtype).expand(len(inp.to_compute), -1).clone()


SPEC = register(
    MethodSpec(
        name="mean",
        fn=mean_rows,
        summary="mean of all old rows",
        paper="",
    )
)
