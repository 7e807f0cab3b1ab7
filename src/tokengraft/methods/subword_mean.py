"""`subword_mean`: a new token's row is the mean of the rows of its old-tokenizer pieces.

Fast Vocabulary Transfer (Gee et al., 2022, https://aclanthology.org/2022.emnlp-industry.41) and
tokenizer-adapter's ``average``. Applied to the output head too. A token the old tokenizer cannot
spell at all gets the mean of all old rows.
"""

from __future__ import annotations

import torch

from tokengraft.methods.registry import MethodInput, MethodSpec, register


def piece_matrix(pieces: list[list[int]], n_old: int) -> torch.Tensor:
    """(N, V_old) sparse row-stochastic matrix: row n averages the old ids in ``pieces[n]``."""
    rows = [n for n, ids in enumerate(pieces) for _ in ids]
    cols = [i for ids in pieces for i in ids]
    vals = [1.0 / len(ids) for ids in pieces for _ in ids]
    index = torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1)
    values = torch.tensor(vals, dtype=torch.float64)
    shape = (len(pieces), n_old)
    return torch.sparse_coo_tensor(index, values, shape, check_invariants=False).coalesce()


def subword_mean_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D): mean of ``inp.old`` (V_old, D) rows over each token's pieces; unspellable: mean row."""
    old = inp.old.double()
    spelled = [list(ids) if ids else [] for ids in inp.pieces]
    out = torch.sparse.mm(piece_matrix(spelled, old.shape[0]), old)  # (N, D)
    missing = torch.tensor([not ids for ids in spelled], dtype=torch.bool)
    out[missing] = old.mean(dim=0)
    return out.to(inp.old.dtype)


SPEC = register(
    MethodSpec(
        name="subword_mean",
        fn=subword_mean_rows,
        summary="mean of the rows of the token's old-tokenizer pieces (FVT)",
        paper="https://aclanthology.org/2022.emnlp-industry.41",
    )
)
