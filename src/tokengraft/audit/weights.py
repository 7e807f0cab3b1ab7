"""Under-trained token indicators from a model's own weights (no forward pass).

Land & Bartolo (2024), "Fishing for Magikarp: Automatically Detecting Under-trained Tokens in
Large Language Models", arXiv 2405.05417. A token that (almost) never occurred in pretraining
keeps the row that initialisation and weight decay left it: its output-head row points the same
way as the rows of tokens known to be unused, once the directions every row shares are removed.
The indicator here is the cosine similarity between a token's output-head row and the mean row of
a reference set of unused tokens, both centred on the mean row and with the first principal
component(s) removed; high means "looks unused". The input-embedding norm is reported beside it
(small norms are the other signature of rows that never received a gradient).

Where this differs from the paper and its code:

* The reference set is built automatically, not from a hand-kept table per model: special tokens
  named as unused or reserved (``<unused12>``, ``<|reserved_special_token_3|>``, ``[unused7]``)
  plus the unreachable tokens (:mod:`tokengraft.audit.reach`). When both are empty (SmolLM2 has
  neither), there is no reference, and the ranking falls back to how far a row's input-embedding
  norm lies from the typical norm (:func:`norm_outliers`); the result says so
  (``reference_kind="none"``). The lowest-norm rows are no substitute for a reference: in
  SmolLM2-135M they are frequent first names (`` John``, `` Michael``), which it repeats easily.
* Principal components come from the eigen-decomposition of the (D, D) covariance (deterministic,
  no random projections).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

UNUSED_NAME = re.compile(r"^[<\[](\|)?(unused|reserved)[a-z_]*\d+(\|)?[>\]]$", re.IGNORECASE)


def unused_named(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Ids of added tokens named as unused or reserved (``<unused3>``, ``[unused7]``, ...).

    Args:
        tokenizer: any Hugging Face tokenizer.

    Returns:
        The ids, ascending.
    """
    return sorted(
        i for i, token in tokenizer.added_tokens_decoder.items() if UNUSED_NAME.match(token.content)
    )


def norm_outliers(embeddings: torch.Tensor) -> torch.Tensor:
    """How far each row's L2 norm lies from the typical norm: ``|z|`` over the rows.

    The indicator when no token is known to be unused: rows that training never moved sit at
    either end of the norm distribution (decayed towards zero, or left at a large initial norm).

    Args:
        embeddings: (V, D) input embeddings.

    Returns:
        (V,) float32, ``|norm - mean| / std`` of the norms.
    """
    norms = embeddings.float().norm(dim=1)
    return ((norms - norms.mean()) / norms.std().clamp_min(1e-12)).abs()


def remove_components(matrix: torch.Tensor, n_components: int) -> torch.Tensor:
    """Centre the rows on their mean and project out the first principal components.

    Args:
        matrix: (V, D) rows.
        n_components: how many leading principal components to remove (0: centre only).

    Returns:
        (V, D) float32 rows orthogonal to the removed components.

    Example:
        >>> x = torch.randn(100, 8)
        >>> y = remove_components(x, 1)
        >>> bool(y.mean(0).abs().max() < 1e-4)
        True
    """
    centred = matrix.float() - matrix.float().mean(dim=0)
    if n_components < 1:
        return centred
    covariance = centred.T @ centred  # (D, D)
    _, vectors = torch.linalg.eigh(covariance.double())  # eigenvalues ascending
    top = vectors[:, -n_components:].float()  # (D, k)
    return centred - (centred @ top) @ top.T


def unused_similarity(
    head: torch.Tensor, reference: Sequence[int], *, n_components: int = 1
) -> torch.Tensor:
    """Cosine similarity of every row to the mean reference row, principal components removed.

    Args:
        head: (V, D) output-head rows (the input embeddings for a tied model).
        reference: ids of tokens known to be unused (at least one).
        n_components: leading principal components removed first.

    Returns:
        (V,) float32 similarities in [-1, 1]; high means the row looks unused.
    """
    rows = remove_components(head, n_components)
    centre = rows[torch.tensor(list(reference), dtype=torch.long)].mean(dim=0)
    return torch.nn.functional.cosine_similarity(rows, centre[None, :], dim=1)
