"""`contextfit`: output rows fitted to the base model's own piece-chain probabilities in context.

tokengraft's own donor-free method. The output-head row of a new token ``t`` spelled by old pieces
``s1 .. sk`` should give, in every context ``h``, the logit the base model implicitly assigns to the
whole chain: ``h·w_t ≈ h·E[s1] + log P(s2 .. sk | h, s1)``. Averaging the pieces' rows (FVT) divides
that logit by ``k`` and ignores the completion cost; using ``E[s1]`` alone gives every token sharing
a first piece the first piece's whole probability. This method:

1. spells the target corpus with the new tokenizer, re-spells each new token with its old pieces,
   and runs the base model once over that old-token sequence (no gradients), recording at every
   new-token boundary the final hidden state ``h`` and the completion log-probability
   ``c = Σ_{j≥2} log P(s_j | ...)`` of the token that follows;
2. fits a "bias direction" ``u`` with ``h·u ≈ 1`` over all boundary states (ridge), so that adding
   ``c·u`` to a row shifts its logit by about ``c`` in any context;
3. initialises ``w_t = E[s1] + ĉ_t·u``, with ``ĉ_t`` the token's mean completion cost where it was
   seen, else the mean cost of tokens with as many pieces;
4. refines the rows of tokens seen in the corpus by ridge regression toward the exact targets
   ``h·E[s1] + c`` of their occurrences (Woodbury form: one small solve per token, batched).

Input rows are the subword mean (FVT). The fit concerns the output head, so the method is meant for
untied heads: with a tied model pass ``--untie`` (``GraftConfig(untie=True)``) to give it its own
head; on a tied matrix without untying it returns the subword mean (the input role dominates).
Cost: one forward pass of the base model over ``max_tokens`` old tokens plus small solves.

Status: experimental, and so far a negative result. Measured on SmolLM2-135M → the 32k German
BPE (``--untie``, defaults, first 30 kB of the German and English held-out files):
2.508 / 2.426 bits per byte, against 2.445 / 2.392 for ``subword_mean`` — worse, not better.
The fitted head assumes the hidden states of the base model reading the old pieces; the grafted
model reads subword-mean input rows instead, and the shift along ``u`` apparently mis-calibrates
the softmax normaliser. Kept for the record and for further work, not recommended.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from tqdm import tqdm

from tokengraft.config import Slot
from tokengraft.methods.common import subword_mean
from tokengraft.methods.registry import MethodInput, MethodSpec, Need, Param, register, required

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Boundaries:
    """What the base model says at each new-token boundary of the corpus.

    Attributes:
        hidden: (B, D) final hidden states just before a new token.
        completion: (B,) log-probability of the token's pieces after the first (0 for 1 piece).
        token: (B,) index into ``to_compute`` of the token that follows, -1 for shared tokens.
    """

    hidden: torch.Tensor
    completion: torch.Tensor
    token: torch.Tensor


def contextfit_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D) rows: fitted output rows for the output head, subword mean for input embeddings."""
    if inp.slot is Slot.INPUT or inp.tied:
        return subword_mean(inp.old, inp.pieces)
    spelled = [list(p) if p else [] for p in inp.pieces]
    data = _collect(inp, spelled)
    old = inp.old.float()  # (V_old, D)
    u = _bias_direction(data.hidden, float(inp.params["ridge"]))
    costs = _mean_costs(data, spelled)  # (N,)
    first = torch.tensor([p[0] if p else 0 for p in spelled], dtype=torch.long)
    rows = old[first] + costs[:, None] * u[None, :]  # (N, D)
    rows = _refine(
        rows, old, first, data, float(inp.params["ridge"]), int(inp.params["max_occurrences"])
    )
    missing = torch.tensor([not p for p in spelled], dtype=torch.bool)
    rows[missing] = old.mean(dim=0)
    return rows.to(inp.old.dtype)


def _collect(inp: MethodInput, spelled: Sequence[Sequence[int]]) -> _Boundaries:
    """Run the base model over the re-spelled corpus; keep boundary states and completion costs."""
    model = required(inp.extras.model, Need.MODEL)
    pieces = _piece_table(inp, spelled)
    window = int(inp.params["window"])
    hidden, completion, token = [], [], []
    budget = int(inp.params["max_tokens"])
    bar = tqdm(total=budget, unit="tok", desc="contextfit", disable=not inp.progress)
    for chunk in _chunks(inp, pieces, window, budget):
        old_ids, starts, lengths, which = chunk
        bar.update(len(old_ids))
        with torch.inference_mode():
            h = model.model(input_ids=old_ids[None]).last_hidden_state[0].float()  # (L, D)
            logp = F.log_softmax(h @ inp.old.float().T, dim=-1)  # (L, V_old)
        step = torch.zeros(len(old_ids))
        step[1:] = logp[:-1].gather(1, old_ids[1:, None])[:, 0]  # log P(x_i | x_<i)
        csum = torch.cat([torch.zeros(1), step.cumsum(0)])
        keep = starts >= 1
        s, k = starts[keep], lengths[keep]
        hidden.append(h[s - 1])
        completion.append(csum[s + k] - csum[s + 1])  # Σ over pieces 2..k
        token.append(which[keep])
    bar.close()
    return _Boundaries(torch.cat(hidden), torch.cat(completion), torch.cat(token))


def _piece_table(
    inp: MethodInput, spelled: Sequence[Sequence[int]]
) -> dict[int, tuple[list[int], int]]:
    """New id -> (old pieces, index into to_compute or -1) for every id the corpus can contain."""
    table: dict[int, tuple[list[int], int]] = {
        int(n): ([int(o)], -1) for n, o in zip(inp.anchor_new, inp.anchor_old, strict=True)
    }
    for index, (new_id, ids) in enumerate(zip(inp.to_compute.tolist(), spelled, strict=True)):
        if ids:
            table[new_id] = (list(ids), index)
    return table


def _chunks(
    inp: MethodInput, table: dict[int, tuple[list[int], int]], window: int, budget: int
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Windows of old ids with, per new token inside: start, number of pieces, token index."""
    tok = inp.new_tokenizer
    assert tok is not None
    used = 0
    for text in inp.extras.corpus:
        new_ids = tok(text, add_special_tokens=False).input_ids
        old_ids: list[int] = []
        starts: list[int] = []
        lengths: list[int] = []
        which: list[int] = []
        for new_id in new_ids:
            entry = table.get(new_id)
            if entry is None:
                continue  # an id with no old spelling (special token): skip it
            ids, index = entry
            if len(old_ids) + len(ids) > window:
                yield _as_tensors(old_ids, starts, lengths, which)
                used += len(old_ids)
                if used >= budget:
                    return
                old_ids, starts, lengths, which = [], [], [], []
            starts.append(len(old_ids))
            lengths.append(len(ids))
            which.append(index)
            old_ids.extend(ids)
        if len(old_ids) > 1:
            yield _as_tensors(old_ids, starts, lengths, which)
            used += len(old_ids)
            if used >= budget:
                return


def _as_tensors(*lists: list[int]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.tensor(x, dtype=torch.long) for x in lists)


def _bias_direction(hidden: torch.Tensor, ridge: float) -> torch.Tensor:
    """(D,) u minimising ||H u - 1||² + λ||u||² over boundary states H (B, D)."""
    h = hidden.double()
    lam = ridge * float(h.pow(2).sum(1).mean())
    gram = h.T @ h + lam * torch.eye(h.shape[1], dtype=h.dtype)
    u = torch.linalg.solve(gram, h.T @ torch.ones(len(h), dtype=h.dtype))
    fit = h @ u
    log.info("contextfit: bias direction h·u = %.3f ± %.3f", fit.mean(), fit.std())
    return u.float()


def _mean_costs(data: _Boundaries, spelled: Sequence[Sequence[int]]) -> torch.Tensor:
    """(N,) mean completion cost per token; tokens not seen get the mean of their piece count."""
    n = len(spelled)
    seen = data.token >= 0
    idx, cost = data.token[seen], data.completion[seen].double()
    total = torch.zeros(n, dtype=torch.float64).index_add_(0, idx, cost)
    count = torch.zeros(n, dtype=torch.float64).index_add_(0, idx, torch.ones_like(cost))
    n_pieces = torch.tensor([len(p) for p in spelled], dtype=torch.long)
    per_piece = _cost_by_pieces(total, count, n_pieces)
    prior = per_piece[n_pieces.clamp(max=len(per_piece) - 1)]
    return torch.where(count > 0, total / count.clamp(min=1), prior).float()


def _cost_by_pieces(
    total: torch.Tensor, count: torch.Tensor, n_pieces: torch.Tensor
) -> torch.Tensor:
    """Mean completion cost of seen tokens with k pieces, for k = 0..max (linear beyond the data)."""
    top = int(n_pieces.max()) if len(n_pieces) else 1
    k_total = torch.zeros(top + 1, dtype=torch.float64).index_add_(0, n_pieces, total)
    k_count = torch.zeros(top + 1, dtype=torch.float64).index_add_(0, n_pieces, count)
    extra = (n_pieces - 1).clamp(min=0).double()
    # One cost per extra piece from all data, for piece counts never seen.
    per_extra = float((total.sum() / (extra * count).sum().clamp(min=1)).item())
    fallback = per_extra * torch.arange(-1, top, dtype=torch.float64).clamp(min=0)
    return torch.where(k_count > 0, k_total / k_count.clamp(min=1), fallback)


def _refine(
    rows: torch.Tensor,
    old: torch.Tensor,
    first: torch.Tensor,
    data: _Boundaries,
    ridge: float,
    max_occurrences: int,
) -> torch.Tensor:
    """Ridge-regress each seen token's row toward h·E[s1] + c on its occurrences (Woodbury)."""
    seen = data.token >= 0
    tokens, hidden, cost = data.token[seen], data.hidden[seen], data.completion[seen]
    if len(tokens) == 0:
        return rows
    order = torch.argsort(tokens, stable=True)
    tokens, hidden, cost = tokens[order], hidden[order], cost[order]
    unique, counts = torch.unique_consecutive(tokens, return_counts=True)
    lam = ridge * float(hidden.pow(2).sum(1).mean())
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    for lo in range(0, len(unique), 512):
        batch = range(lo, min(lo + 512, len(unique)))
        _refine_batch(rows, old, first, unique, offsets, batch, hidden, cost, lam, max_occurrences)
    return rows


def _refine_batch(
    rows: torch.Tensor,
    old: torch.Tensor,
    first: torch.Tensor,
    unique: torch.Tensor,
    offsets: torch.Tensor,
    batch: range,
    hidden: torch.Tensor,
    cost: torch.Tensor,
    lam: float,
    cap: int,
) -> None:
    """One padded batch of tokens: w += Hᵀ (H Hᵀ + λI)⁻¹ (target - H w)."""
    n_max = min(cap, int((offsets[1:] - offsets[:-1])[batch.start : batch.stop].max()))
    d = hidden.shape[1]
    h = torch.zeros(len(batch), n_max, d, dtype=torch.float64)
    target = torch.zeros(len(batch), n_max, dtype=torch.float64)
    for b, u in enumerate(batch):
        lo, hi = int(offsets[u]), min(int(offsets[u + 1]), int(offsets[u]) + cap)
        h[b, : hi - lo] = hidden[lo:hi].double()
        target[b, : hi - lo] = cost[lo:hi].double()
    ids = unique[list(batch)]
    w = rows[ids].double()  # (T, D)
    target = target + torch.einsum("tnd,td->tn", h, old[first[ids]].double())  # h·E[s1] + c
    residual = target - torch.einsum("tnd,td->tn", h, w)  # padded entries: 0 - 0
    gram = h @ h.transpose(1, 2) + lam * torch.eye(n_max, dtype=h.dtype)
    alpha = torch.linalg.solve(gram, residual[..., None])  # (T, n, 1)
    rows[ids] = (w + (h.transpose(1, 2) @ alpha)[..., 0]).to(rows.dtype)


SPEC = register(
    MethodSpec(
        name="contextfit",
        fn=contextfit_rows,
        summary="(experimental, not better than subword_mean yet) output rows fitted to the base "
        "model's piece-chain log-probabilities in target contexts (use with --untie)",
        paper="tokengraft (this project)",
        needs=frozenset({Need.MODEL, Need.CORPUS}),
        params={
            "max_tokens": Param(
                default=32768, type=int, min=1, max=10**9, help="old tokens of corpus read"
            ),
            "window": Param(
                default=512, type=int, min=2, max=131072, help="tokens per forward pass"
            ),
            "ridge": Param(
                default=1.0, type=float, positive=True, help="ridge penalty of the least squares"
            ),
            "max_occurrences": Param(
                default=32, type=int, min=1, max=10**6, help="contexts kept per new token"
            ),
        },
    )
)
