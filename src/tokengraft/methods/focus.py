"""`focus`: a sparse convex combination of shared tokens, weighted by similarity in target text.

FOCUS (Dobler & de Melo, 2023, "FOCUS: Effective Embedding Initialization for Monolingual
Specialization of Multilingual Models", arXiv 2305.14481). Static token embeddings are trained on
target-language text tokenised by the new tokenizer. For each new token, the cosine similarities
of its static vector to those of the shared (anchor) tokens go through sparsemax (Martins &
Astudillo, 2016). The resulting weights are nonnegative, sum to 1 and are mostly exactly zero. The
row is the same weighted sum of the anchors' rows in the base model. Both slots use the same
weights, each with its own matrix. Shared tokens are copied by the pipeline, as in FOCUS.

Where this differs from the paper and its code (``deepfocus``):

* Static embeddings are PPMI + truncated SVD (:mod:`tokengraft.embeddings.static`), not fastText CBOW.
  ``dim`` defaults to 100 and ``min_count`` to 10, as in deepfocus. ``min_count`` is the number of
  occurrences needed for a vector; the default fits corpora of tens of MB. Of the 24.6k tokens that
  the de-fresh 32k BPE does not share with SmolLM2-135M, only 2.9k reach it on the first 2 MB of
  the German training split (5.5k on the whole 4.3 MB). ``min_count=3`` covers 10k of them on
  2 MB, but their rows scored worse (bits per byte, SmolLM2-135M, no training) than with the
  default.
* fastText embeds unseen or rare tokens from character n-grams. deepfocus gives tokens below its
  ``min_count`` random rows drawn from N(mean, std) of the base rows. We give them, and any token
  that is special or has no bytes, the subword mean of their old-tokenizer pieces
  (:mod:`tokengraft.methods.subword_mean`); a token the old tokenizer cannot spell gets the mean
  row. Anchors rarer than ``min_count`` are not used, as in deepfocus.
* Anchors are the byte-exact shared tokens of :func:`tokengraft.vocab.align`. deepfocus matches
  tokens by their string form, optionally fuzzily (case and whitespace); we have no fuzzy match.
* Sparsemax is computed exactly on the ``_TOP`` largest similarities of each token. The row falls
  back to all anchors when the support could extend past them, so the result equals sparsemax
  over all anchors.
* When ``extras.cache_dir`` is given, the static embeddings are cached under ``focus/``, keyed
  by the tokenizer, the corpus, the settings and the seed.
"""

from __future__ import annotations

import logging

import torch

from tokengraft.methods.common import corpus_static, plain_tokens, subword_mean
from tokengraft.methods.registry import MethodInput, MethodSpec, Need, Param, register

log = logging.getLogger(__name__)

_TOP = 256  # similarities per token handed to sparsemax before checking the support is inside
_CHUNK = 2048  # tokens per block of the similarity matrix


def focus_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D) FOCUS rows for ``inp.to_compute``; subword mean where there is no static vector."""
    out = subword_mean(inp.old, inp.pieces).double()  # (N, D): the fallback, overwritten below
    if len(inp.to_compute) == 0:
        return out.to(inp.old.dtype)
    if inp.anchor_new.numel() == 0:
        log.warning(
            "focus %s: no shared tokens to combine; every row is the subword mean", inp.slot
        )
        return out.to(inp.old.dtype)
    emb = corpus_static(inp, inp.new_tokenizer, inp.n_new, "focus")  # (V_new, dim)
    anchor_ok = emb.known[inp.anchor_new]  # (S,)
    token_ok = emb.known[inp.to_compute] & plain_tokens(inp)  # (N,)
    if not anchor_ok.any() or not token_ok.any():
        log.warning(
            "focus %s: the corpus gives no vectors; every row is the subword mean", inp.slot
        )
        return out.to(inp.old.dtype)
    unit = emb.unit()
    weights = focus_weights(unit[inp.to_compute[token_ok]], unit[inp.anchor_new[anchor_ok]])
    anchors_old = inp.old.double()[inp.anchor_old[anchor_ok]]  # (S', D)
    out[token_ok] = torch.sparse.mm(weights, anchors_old)
    log.info(
        "focus %s: %d rows from %d anchors (mean support %.1f), %d subword-mean fallbacks",
        inp.slot,
        int(token_ok.sum()),
        int(anchor_ok.sum()),
        weights.values().numel() / max(int(token_ok.sum()), 1),
        int((~token_ok).sum()),
    )
    return out.to(inp.old.dtype)


def focus_weights(targets: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(M, S) sparse COO sparsemax weights over anchors, from unit-norm static vectors.

    Args:
        targets: (M, d) unit vectors of the tokens to initialise.
        anchors: (S, d) unit vectors of the shared tokens.

    Returns:
        Row m is sparsemax(cos(targets[m], anchors)); every row sums to 1.
    """
    rows, cols, values = [], [], []
    k = min(_TOP, anchors.shape[0])
    for start in range(0, targets.shape[0], _CHUNK):
        sims = (targets[start : start + _CHUNK] @ anchors.T).double()  # (B, S)
        top, idx = sims.topk(k, dim=1)  # sorted, descending
        w = sparsemax(top)  # (B, k)
        spill = w[:, -1] > 0  # the support may reach past the top k: redo over all anchors
        r, c = ((w > 0) & ~spill[:, None]).nonzero(as_tuple=True)
        rows.append(start + r)
        cols.append(idx[r, c])
        values.append(w[r, c])
        if spill.any():
            full = sparsemax(sims[spill])  # (B', S)
            r, c = (full > 0).nonzero(as_tuple=True)
            rows.append(start + spill.nonzero().squeeze(1)[r])
            cols.append(c)
            values.append(full[r, c])
    index = torch.stack([torch.cat(rows), torch.cat(cols)]) if rows else torch.zeros(2, 0)
    shape = (targets.shape[0], anchors.shape[0])
    vals = torch.cat(values) if values else torch.zeros(0, dtype=torch.float64)
    return torch.sparse_coo_tensor(index.long(), vals, shape, check_invariants=False).coalesce()


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Sparsemax over the last dimension (Martins & Astudillo, 2016, arXiv 1602.02068).

    The Euclidean projection of ``z`` onto the probability simplex: max(z - tau, 0) with tau such
    that the result sums to 1. Entries far enough below the largest are exactly 0. Written out
    because torch has no sparsemax.

    Example:
        >>> sparsemax(torch.tensor([[1.0, 0.2, -1.0]]))
        tensor([[0.9000, 0.1000, 0.0000]])
    """
    ranked, _ = z.sort(dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cumsum = ranked.cumsum(dim=-1) - 1.0
    support = (ranked * k > cumsum).sum(dim=-1, keepdim=True)  # (…, 1), at least 1
    tau = cumsum.gather(-1, support - 1) / support.to(z.dtype)
    return (z - tau).clamp_min(0.0)


SPEC = register(
    MethodSpec(
        name="focus",
        fn=focus_rows,
        summary="sparsemax-weighted shared tokens, by similarity of static vectors on target text",
        paper="https://arxiv.org/abs/2305.14481",
        needs=frozenset({Need.CORPUS}),
        params={
            "dim": Param(default=100, type=int, min=1, max=4096, help="static vector size"),
            "window": Param(default=5, type=int, min=1, max=100, help="co-occurrence window"),
            "min_count": Param(
                default=10, type=int, min=1, help="occurrences a token needs for a vector"
            ),
        },
    )
)
