"""`subword_mean`: a new token's row is the mean of the rows of its old-tokenizer pieces.

Fast Vocabulary Transfer (Gee et al., 2022, https://aclanthology.org/2022.emnlp-industry.41) and
tokenizer-adapter's ``average``. Applied to the output head too. A token the old tokenizer cannot
spell at all gets the mean of all old rows.
"""

from __future__ import annotations

import torch

from tokengraft.methods.common import subword_mean
from tokengraft.methods.registry import MethodInput, MethodSpec, register


def subword_mean_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D): mean of ``inp.old`` (V_old, D) rows over each token's pieces; unspellable: mean row."""
    return subword_mean(inp.old, inp.pieces)


SPEC = register(
    MethodSpec(
        name="subword_mean",
        fn=subword_mean_rows,
        summary="mean of the rows of the token's old-tokenizer pieces (FVT)",
        paper="https://aclanthology.org/2022.emnlp-industry.41",
    )
)
