"""`tokalign`: copy the row of the best-matching old token, matched by co-occurrence vectors.

TokAlign (Li, Zhang & Zong, 2025, "TokAlign: Efficient Vocabulary Adaptation via Token Alignment",
arXiv 2506.03523). The same corpus is tokenised by both tokenizers, and static vectors are trained
for the token ids of each tokenisation. Each space is re-expressed relative to shared "pivot"
tokens: a token's relative representation is its cosine similarity to each pivot in its own space
(its code's default, 300 pivots drawn at random from the shared tokens). Relative
representations are comparable across the two spaces. Each new token is matched to the old token
whose relative representation is most similar, and the matched old row is copied (the paper's
one-to-one "token alignment matrix"). Both slots use the same match.

Parameters beyond the paper: ``alignment="procrustes"`` maps the new space onto the old one by
orthogonal Procrustes on all shared tokens, instead of relative representations. ``top_k`` > 1
blends the k best matches with weights softmax(cos / ``temperature``) instead of copying one.

Where this differs from the paper and its code:

* Static vectors are PPMI + truncated SVD (:mod:`tokengraft.embeddings.static`), not GloVe, and they are
  trained on ``corpus`` (the target-language text given to the graft).
* Matching uses the cosine of relative representations; the code takes the dot product of
  unnormalised ones.
* A token rarer than ``min_count`` in its tokenisation of the corpus has no vector. A new token
  without one gets the subword mean of its old-tokenizer pieces (:mod:`tokengraft.methods.
  subword_mean`); so do special tokens and tokens without bytes, and a token the old tokenizer
  cannot spell gets the mean row. The code maps such tokens to ``<unk>`` or id 0. Old tokens
  without a vector, and special old tokens, are never matched.
* TokAlign then fine-tunes the model in two stages; this is only its initialisation.
* When ``extras.cache_dir`` is given, the static vectors are cached under ``tokalign/``.
"""

from __future__ import annotations

import logging

import torch

from tokengraft.embeddings.static import procrustes, unit_rows
from tokengraft.errors import TokengraftError
from tokengraft.methods.common import (
    corpus_static,
    neighbour_params,
    neighbour_rows,
    subword_mean,
)
from tokengraft.methods.registry import MethodInput, MethodSpec, Need, Param, register

log = logging.getLogger(__name__)

ALIGNMENTS = ("relative", "procrustes")


def tokalign_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D) rows of the best-matching old tokens; subword mean where a token has no vector."""
    out = subword_mean(inp.old, inp.pieces).double()  # (N, D): the fallback, overwritten below
    alignment = str(inp.params["alignment"])
    if alignment not in ALIGNMENTS:
        raise TokengraftError(f"tokalign: alignment must be one of {', '.join(ALIGNMENTS)}")
    if len(inp.to_compute) == 0:
        return out.to(inp.old.dtype)
    new = corpus_static(inp, inp.new_tokenizer, inp.n_new, "tokalign")  # (V_new, dim)
    old = corpus_static(inp, inp.old_tokenizer, inp.old.shape[0], "tokalign")  # (V_old, dim)
    both = new.known[inp.anchor_new] & old.known[inp.anchor_old]  # (S,)
    anchor_new, anchor_old = inp.anchor_new[both], inp.anchor_old[both]
    if anchor_new.numel() == 0:
        log.warning(
            "tokalign %s: no shared token has vectors; all rows are subword means", inp.slot
        )
        return out.to(inp.old.dtype)
    gen = torch.Generator().manual_seed(int(inp.generator.initial_seed()))
    new_space, old_space = aligned_spaces(
        new.unit(),
        old.unit(),
        anchor_new,
        anchor_old,
        alignment=alignment,
        pivots=int(inp.params["pivots"]),
        generator=gen,
    )
    old_space = old_space * old.known[:, None]
    queries = new_space[inp.to_compute] * new.known[inp.to_compute][:, None]
    rows, ok = neighbour_rows(
        inp, old_space, queries, old.known, new.known[inp.to_compute], k=int(inp.params["top_k"])
    )
    out[ok] = rows[ok]
    log.info(
        "tokalign %s (%s): %d anchors, %d rows matched, %d subword-mean fallbacks",
        inp.slot,
        alignment,
        anchor_new.numel(),
        int(ok.sum()),
        int((~ok).sum()),
    )
    return out.to(inp.old.dtype)


def aligned_spaces(
    new_unit: torch.Tensor,
    old_unit: torch.Tensor,
    anchor_new: torch.Tensor,
    anchor_old: torch.Tensor,
    *,
    alignment: str,
    pivots: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both vocabularies' vectors in one space where cosine compares a new token to an old one.

    Args:
        new_unit: (V_new, d) unit static vectors of the new tokens.
        old_unit: (V_old, d') unit static vectors of the old tokens.
        anchor_new: (S,) new ids of the shared tokens.
        anchor_old: (S,) old ids of the same tokens, in the same order.
        alignment: ``"relative"``: cosines to ``pivots`` random anchors in each space
            (arXiv 2506.03523); ``"procrustes"``: the new space rotated onto the old (needs d = d').
        pivots: number of pivot anchors (relative only).
        generator: draws the pivots.

    Returns:
        (V_new, P) and (V_old, P) unit rows (zero rows stay zero).
    """
    if alignment == "relative":
        chosen = torch.randperm(anchor_new.numel(), generator=generator)[: max(pivots, 1)]
        new_space = new_unit @ new_unit[anchor_new[chosen]].T  # (V_new, P) relative representation
        old_space = old_unit @ old_unit[anchor_old[chosen]].T  # (V_old, P)
    else:
        rotation = procrustes(new_unit[anchor_new].double(), old_unit[anchor_old].double())
        new_space, old_space = (new_unit.double() @ rotation).float(), old_unit
    return unit_rows(new_space), unit_rows(old_space)


SPEC = register(
    MethodSpec(
        name="tokalign",
        fn=tokalign_rows,
        summary="copy the best-matching old token's row, matched by co-occurrence vectors",
        paper="https://arxiv.org/abs/2506.03523",
        needs=frozenset({Need.CORPUS}),
        params={
            "alignment": Param(
                default="relative",
                type=str,
                choices=("relative", "procrustes"),
                help="how the two vector spaces are matched",
            ),
            "pivots": Param(
                default=300,
                type=int,
                min=1,
                max=1000000,
                help="shared tokens of the relative representation",
            ),
            **neighbour_params(
                k="top_k",
                default_k=1,
                k_help="best matches blended per token",
                temperature=0.1,
                blend="blend",
            ),
            "dim": Param(default=300, type=int, min=1, max=4096, help="static vector size"),
            "window": Param(default=5, type=int, min=1, max=100, help="co-occurrence window"),
            "min_count": Param(
                default=5, type=int, min=1, help="occurrences a token needs for a vector"
            ),
        },
    )
)
