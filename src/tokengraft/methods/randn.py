"""`randn`: rows drawn from a Gaussian with the old rows' mean and covariance.

Hewitt (2021), "Initializing new word embeddings for pretrained language models"
(https://nlp.stanford.edu/~johnhew/vocab-expansion.html): sampling from N(mu, Sigma) keeps new
tokens' logits close to the average token's instead of dominating the softmax.
"""

from __future__ import annotations

import torch

from tokengraft.methods.registry import MethodInput, MethodSpec, Param, register


def randn_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D) samples of N(mu, scale * Sigma) with mu (D,), Sigma (D, D) from ``inp.old``."""
    old = inp.old.double()  # (V_old, D)
    mu = old.mean(dim=0)
    cov = torch.cov(old.T) * float(inp.params["scale"])  # (D, D); torch.cov wants variables as rows
    jitter = 1e-8 * cov.diagonal().mean().clamp_min(1e-12)
    chol = torch.linalg.cholesky(cov + jitter * torch.eye(cov.shape[0], dtype=cov.dtype))
    # Sampled by hand, not with torch.distributions.MultivariateNormal: that draws from the
    # global random state, and every method's randomness must come from inp.generator.
    noise = torch.randn(
        len(inp.to_compute), old.shape[1], generator=inp.generator, dtype=torch.float64
    )
    return (mu + noise @ chol.T).to(inp.old.dtype)


SPEC = register(
    MethodSpec(
        name="randn",
        fn=randn_rows,
        summary="Gaussian with the old rows' mean and covariance",
        paper="https://nlp.stanford.edu/~johnhew/vocab-expansion.html",
        params={
            "scale": Param(
                default=1.0, type=float, min=0.0, max=1e6, help="factor on the covariance"
            )
        },
    )
)
