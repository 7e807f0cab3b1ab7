"""`tokenadapt`: a blend of a local subword estimate and a global nearest-neighbour estimate.

TokenAdapt (Sharthak et al., 2025, "Achieving Tokenizer Flexibility in Language Models through
Heuristic Adaptation and Supertoken Learning", arXiv 2505.09738). Every string is embedded by an
auxiliary text encoder (mean-pooled last hidden state, L2-normalised). Then, for a new token t:

* local: t's old-tokenizer pieces p_i get the weights softmax_i(((cos(t, p_i) + |p_i| / |t|) / 2) / T),
  where cos is taken in the auxiliary space and |.| is a length, and the estimate is
  sum_i w_i * E_old[p_i];
* global: the k old tokens whose auxiliary embeddings are nearest to t's (cosine at least
  ``threshold``) get the weights softmax(cos / T), and the estimate is the weighted sum of their rows;
* hybrid: (1 - w) * local + w * global. If only one estimate exists, that estimate is used. If
  neither exists, the row is the mean of the old rows.

Both slots are computed in the same way from their own matrix. The output head of an untied model
uses the same weights and neighbours as the input embeddings.

Where this differs from the paper and its code:

* Pieces come from :mod:`tokengraft.vocab.spell`, a byte-exact spelling. The reference code re-encodes
  the decoded string and drops pieces that its cache lacks.
* Lengths are counted in bytes of the canonical surface, so the length terms of one token add up
  to 1. The code counts the characters of decoded strings.
* We find neighbours by exact search, a matrix product over every non-special old token. The paper
  uses FAISS. Ties between strings that the encoder cannot tell apart (case, a leading space) stay
  in the top k.
* ``threshold`` defaults to 0 (no filtering). The code's default is 0.6, but the paper reports that
  filtering the global neighbours lowered quality. Its 0.7x-scaled threshold on the local
  similarities (one version of the code) is left out. The paper's larger encoders (nomic-embed,
  bge-m3) are replaced by any encoder passed as ``aux_model`` (all-MiniLM-L6-v2 in our
  measurements).
* A token the old tokenizer cannot spell still gets the global estimate (labelled ``computed``).
  A token without bytes, or with no usable neighbour and no pieces, gets the mean row (labelled
  ``fallback``). The code leaves such rows random.
* Special tokens that are not matched by role are embedded as their text, as the code does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.io.tensors import cache_key, cached_tensors
from tokengraft.methods.common import global_estimate, neighbour_params, old_tokens, torch_threads
from tokengraft.methods.registry import (
    MethodInput,
    MethodRows,
    MethodSpec,
    Need,
    Param,
    register,
    required,
)
from tokengraft.vocab import CanonicalToken

log = logging.getLogger(__name__)


def tokenadapt_rows(inp: MethodInput) -> MethodRows:
    """(N, D) hybrid TokenAdapt rows for ``inp.to_compute`` from ``inp.old`` (V_old, D).

    Rows with neither estimate (the mean row) are reported as fallback.
    """
    if inp.old_tokenizer is None or len(inp.tokens) != len(inp.to_compute):
        raise TokengraftError("tokenadapt needs the old tokenizer and the new tokens' bytes")
    params = inp.params
    old = inp.old.double()
    if len(inp.to_compute) == 0:
        return MethodRows(inp.old.new_zeros(0, old.shape[1]), torch.zeros(0, dtype=torch.bool))
    old_toks = old_tokens(inp.old_tokenizer, old.shape[0])
    timer = time.perf_counter()
    with torch_threads(int(params["threads"])):
        aux_old = _aux_embeddings(inp, [_text(t) for t in old_toks])  # (V_old, H)
        aux_new = _aux_embeddings(inp, [_text(t) for t in inp.tokens])  # (N, H)
    log.info("tokenadapt: auxiliary embeddings in %.1f s", time.perf_counter() - timer)
    local, has_local = local_estimate(inp, old, old_toks, aux_old, aux_new)
    candidates = torch.tensor(
        [t is not None and not t.special and bool(t.text) for t in old_toks], dtype=torch.bool
    )
    has_text = torch.tensor([t is not None and bool(t.text) for t in inp.tokens])
    glob, has_global = global_estimate(
        old,
        aux_old,
        aux_new,
        candidates,
        k=int(params["top_k"]),
        temperature=float(params["temperature"]),
        threshold=float(params["threshold"]),
    )
    has_global &= has_text
    out = _blend(local, has_local, glob, has_global, float(params["global_weight"]), old)
    log.info(
        "tokenadapt %s: %d local+global, %d local only, %d global only, %d mean row",
        inp.slot,
        int((has_local & has_global).sum()),
        int((has_local & ~has_global).sum()),
        int((~has_local & has_global).sum()),
        int((~has_local & ~has_global).sum()),
    )
    return MethodRows(out.to(inp.old.dtype), ~has_local & ~has_global)


def _blend(
    local: torch.Tensor,
    has_local: torch.Tensor,
    glob: torch.Tensor,
    has_global: torch.Tensor,
    weight: float,
    old: torch.Tensor,
) -> torch.Tensor:
    """(N, D): (1-w)·local + w·global where both exist, else whichever exists, else the mean row."""
    w_global = torch.where(has_local, torch.full_like(has_local, weight, dtype=old.dtype), 1.0)
    w_global = torch.where(has_global, w_global, 0.0)[:, None]  # (N, 1)
    out = (1.0 - w_global) * local + w_global * glob
    out[~has_local & ~has_global] = old.mean(dim=0)
    return out


def local_estimate(
    inp: MethodInput,
    old: torch.Tensor,
    old_toks: Sequence[CanonicalToken | None],
    aux_old: torch.Tensor,
    aux_new: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each new token's piece rows, weighted by similarity and length.

    The score of piece p of token t is (cos(aux t, aux p) + |p| / |t|) / 2, and the weights are
    softmax(score / T) over t's pieces (arXiv 2505.09738, local heuristic).

    Args:
        inp: the method's input (pieces, new tokens, ``temperature``).
        old: (V_old, D) base rows.
        old_toks: the canonical token of each old row (lengths of the pieces).
        aux_old: (V_old, H) unit auxiliary embeddings of the old tokens.
        aux_new: (N, H) unit auxiliary embeddings of the new tokens.

    Returns:
        (N, D) weighted piece rows (zero without pieces), and (N,) bool: the token has pieces.
    """
    owner, ids = _flatten(inp.pieces)  # (M,), (M,)
    n = len(inp.pieces)
    out = torch.zeros(n, old.shape[1], dtype=old.dtype)
    has = torch.zeros(n, dtype=torch.bool)
    if owner.numel() == 0:
        return out, has
    has[owner] = True
    sim = (aux_new[owner] * aux_old[ids]).sum(dim=1).double()
    piece_len = torch.tensor([len(_surface(old_toks[i])) for i in ids.tolist()])
    token_len = torch.tensor([max(len(_surface(t)), 1) for t in inp.tokens])
    ratio = (piece_len / token_len[owner]).double()
    score = (sim + ratio) / 2.0 / float(inp.params["temperature"])
    weights = _segment_softmax(score, owner, n)  # (M,)
    out.index_add_(0, owner, weights[:, None] * old[ids])
    return out, has


def _segment_softmax(score: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    """(M,) softmax of ``score`` within each group of equal ``owner`` (groups 0..n-1).

    Written out because torch has no segment softmax (torch_scatter is not a dependency).
    """
    peak = torch.full((n,), float("-inf"), dtype=score.dtype)
    peak = peak.scatter_reduce(0, owner, score, reduce="amax")
    e = torch.exp(score - peak[owner])
    total = torch.zeros(n, dtype=score.dtype).index_add_(0, owner, e)
    return e / total[owner]


def _flatten(pieces: Sequence[Sequence[int] | None]) -> tuple[torch.Tensor, torch.Tensor]:
    owner = [n for n, ids in enumerate(pieces) for _ in ids or ()]
    ids = [i for p in pieces for i in p or ()]
    return torch.tensor(owner, dtype=torch.long), torch.tensor(ids, dtype=torch.long)


def _surface(token: CanonicalToken | None) -> bytes:
    return token.surface if token is not None else b""


def _text(token: CanonicalToken | None) -> str:
    return _surface(token).decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# The auxiliary encoder.


def _aux_embeddings(inp: MethodInput, texts: Sequence[str]) -> torch.Tensor:
    """(len(texts), H) normalised auxiliary embeddings, through the disk cache when there is one.

    The file ``tokenadapt/aux-<key>.safetensors`` is keyed by the encoder (config and weights),
    ``max_length`` and the texts themselves, so it always holds one row per text.
    """
    model, tokenizer = required(inp.extras.aux_model, Need.AUX_MODEL)
    batch_size, max_length = int(inp.params["batch_size"]), int(inp.params["max_length"])
    path = None
    if inp.extras.cache_dir is not None:
        key = cache_key(
            "tokenadapt-aux-v1", _fingerprint(model), str(max_length), [t.encode() for t in texts]
        )
        path = Path(inp.extras.cache_dir) / "tokenadapt" / f"aux-{key}.safetensors"

    def embed() -> dict[str, torch.Tensor]:
        emb = embed_texts(model, tokenizer, texts, batch_size=batch_size, max_length=max_length)
        return {"embeddings": emb}

    return cached_tensors(path, embed, metadata={"strings": str(len(texts))})["embeddings"]


def _fingerprint(model: PreTrainedModel) -> str:
    """Digest of an encoder's config and weights (a model built in memory has no path)."""
    state = model.state_dict()
    config: Any = model.config.to_dict()
    return cache_key(
        json.dumps(config, sort_keys=True, default=str), *[state[k] for k in sorted(state)]
    )


def embed_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    max_length: int = 32,
) -> torch.Tensor:
    """L2-normalised mean-pooled last hidden states of an encoder, one per text.

    Texts that the encoder's tokenizer maps to the same ids (case and spaces, for an uncased
    WordPiece model) are encoded once. The rest are sorted by length so that batches carry
    little padding. Pooling is written out (in :func:`_encode_batch`): transformers has no
    pooling for a bare encoder, and sentence-transformers is not a dependency.

    Args:
        model: the encoder; its output has ``last_hidden_state``.
        tokenizer: the encoder's tokenizer.
        texts: the strings to embed.
        batch_size: sequences per forward pass.
        max_length: longer encodings are truncated to this many ids.

    Returns:
        (len(texts), H) float32 unit rows.
    """
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    unique: dict[tuple[int, ...], int] = {}
    inverse = torch.tensor([unique.setdefault(tuple(ids), len(unique)) for ids in encoded])
    sequences = list(unique)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    hidden = int(model.config.hidden_size)
    out = torch.zeros(len(sequences), hidden)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = _encode_batch(model, [sequences[i] for i in idx], pad)
    return out[inverse] if len(texts) else torch.zeros(0, hidden)


def _encode_batch(model: PreTrainedModel, batch: list[tuple[int, ...]], pad: int) -> torch.Tensor:
    """(B, H) unit mean-pooled last hidden states of a batch of id sequences (right-padded)."""
    ids = pad_sequence(
        [torch.tensor(seq, dtype=torch.long) for seq in batch], batch_first=True, padding_value=pad
    )
    lengths = torch.tensor([len(seq) for seq in batch])
    mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()  # (B, L)
    states = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()  # (B, L, H)
    pooled = (states * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp_min(1)
    return torch.nn.functional.normalize(pooled, dim=1)


SPEC = register(
    MethodSpec(
        name="tokenadapt",
        fn=tokenadapt_rows,
        summary="(1-w)·similarity-weighted pieces + w·top-k neighbours in an auxiliary encoder",
        paper="https://arxiv.org/abs/2505.09738",
        needs=frozenset({Need.AUX_MODEL}),
        params={
            "global_weight": Param(
                default=0.3,
                type=float,
                min=0.0,
                max=1.0,
                help="weight of the auxiliary-encoder estimate",
            ),
            **neighbour_params(
                k="top_k",
                default_k=3,
                k_help="neighbours in the auxiliary encoder",
                temperature=0.3,
            ),
            "threshold": Param(
                default=0.0, type=float, min=-1.0, help="minimum cosine of a neighbour (> 1: none)"
            ),
            "batch_size": Param(
                default=64, type=int, min=1, max=65536, help="texts per encoder batch"
            ),
            "max_length": Param(
                default=32, type=int, min=1, max=8192, help="encoder tokens per text"
            ),
            "threads": Param(default=1, type=int, min=1, max=1024, help="torch threads"),
        },
    )
)
