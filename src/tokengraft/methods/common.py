"""What several methods share; a method imports these from here, never from a sibling method.

* :func:`subword_mean`: the mean of a token's piece rows, the FVT rule of ``subword_mean`` and the
  fallback of ``focus``, ``wechsel``, ``tokalign`` and ``contextfit``.
* :func:`plain_tokens`, :func:`old_tokens`, :func:`special_old`: which tokens a similarity-based
  method may compute or match.
* :func:`global_estimate`: the softmax-weighted k nearest old rows (``tokenadapt``, ``wechsel``,
  ``tokalign``).
* :func:`neighbour_params`, :func:`neighbour_rows` (at the end): the parameters of that estimate,
  and the rows it gives to plain new tokens in a static-vector space (``wechsel``, ``tokalign``).
* :func:`corpus_static`: static vectors of a tokenizer's ids on the corpus, through the method's
  cache (``focus``, ``tokalign``).
* :func:`torch_threads`: how many intra-op threads a method's own small-tensor work uses.
* :func:`init_rows` (at the end): another method's rows, for methods that refine them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.embeddings.static import StaticEmbeddings, static_key, token_static
from tokengraft.errors import TokengraftError
from tokengraft.io.tensors import cached_tensors
from tokengraft.methods.registry import MethodInput, MethodRows, Need, Param, get_method
from tokengraft.vocab import CanonicalToken, canonical_vocab

_CHUNK = 1024  # queries per block of the exact nearest-neighbour search


def subword_mean(old: torch.Tensor, pieces: Sequence[Sequence[int] | None]) -> torch.Tensor:
    """Each token's row as the mean of its pieces' rows; a token with no pieces gets the mean row.

    Args:
        old: (V_old, D) base rows.
        pieces: per token, the old ids spelling it (None or empty: unspellable).

    Returns:
        (N, D) in ``old``'s dtype, averaged in float64.
    """
    wide = old.double()
    spelled = [list(ids) if ids else [] for ids in pieces]
    out = torch.sparse.mm(piece_matrix(spelled, wide.shape[0]), wide)  # (N, D)
    missing = torch.tensor([not ids for ids in spelled], dtype=torch.bool)
    out[missing] = wide.mean(dim=0)
    return out.to(old.dtype)


def piece_matrix(pieces: Sequence[Sequence[int]], n_old: int) -> torch.Tensor:
    """(N, V_old) sparse row-stochastic matrix: row n averages the old ids in ``pieces[n]``.

    A sparse product rather than ``F.embedding_bag(mode="mean")``: that sums before dividing,
    which changes the last bit of about 0.5% of float32 entries against the published results.
    """
    rows = [n for n, ids in enumerate(pieces) for _ in ids]
    cols = [i for ids in pieces for i in ids]
    vals = [1.0 / len(ids) for ids in pieces for _ in ids]
    index = torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1)
    values = torch.tensor(vals, dtype=torch.float64)
    shape = (len(pieces), n_old)
    return torch.sparse_coo_tensor(index, values, shape, check_invariants=False).coalesce()


def plain_tokens(inp: MethodInput) -> torch.Tensor:
    """(N,) bool: the token has bytes and is not special (special tokens keep the fallback).

    Without ``inp.tokens`` (a direct call) every token counts as plain.
    """
    if len(inp.tokens) != len(inp.to_compute):
        return torch.ones(len(inp.to_compute), dtype=torch.bool)
    flags = [t is not None and bool(t.text) and not t.special for t in inp.tokens]
    return torch.tensor(flags, dtype=torch.bool)


def old_tokens(tokenizer: PreTrainedTokenizerBase, n_rows: int) -> list[CanonicalToken | None]:
    """The canonical token of each of the ``n_rows`` rows of the old matrix.

    Rows past the tokenizer's end (a matrix padded to a round size) get ``None``.
    """
    tokens = list(canonical_vocab(tokenizer).tokens[:n_rows])
    return tokens + [None] * (n_rows - len(tokens))


def special_old(inp: MethodInput) -> torch.Tensor:
    """(V_old,) bool: rows of ``inp.old`` that are special tokens or have no token."""
    tokens = old_tokens(inp.old_tokenizer, len(inp.old))  # type: ignore[arg-type]
    return torch.tensor([t is None or t.special for t in tokens], dtype=torch.bool)


def global_estimate(
    old: torch.Tensor,
    aux_old: torch.Tensor,
    aux_new: torch.Tensor,
    candidates: torch.Tensor,
    *,
    k: int,
    temperature: float,
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of each new token's k nearest old tokens, weighted by softmax(cos / T).

    Neighbours are found by exact search (one matrix product per block of queries).

    Args:
        old: (V_old, D) base rows.
        aux_old: (V_old, H) unit vectors of the old tokens (zero rows: no vector).
        aux_new: (N, H) unit vectors of the new tokens.
        candidates: (V_old,) bool, the old tokens that may serve as neighbours.
        k: neighbours per token.
        temperature: softmax temperature T.
        threshold: neighbours with a cosine below this are dropped.

    Returns:
        (N, D) weighted rows in ``old``'s dtype, and (N,) bool: the token kept any neighbour.
    """
    n = aux_new.shape[0]
    out = torch.zeros(n, old.shape[1], dtype=old.dtype)
    has = torch.zeros(n, dtype=torch.bool)
    pool = candidates.nonzero().squeeze(1)  # (C,)
    k = min(k, pool.numel())
    if n == 0 or k <= 0:
        return out, has
    keys = aux_old[pool]  # (C, H)
    for start in range(0, n, _CHUNK):
        sims = aux_new[start : start + _CHUNK] @ keys.T  # (B, C)
        top_sim, top_idx = sims.topk(k, dim=1)  # (B, k)
        top_sim = top_sim.double()
        keep = top_sim >= threshold
        logits = torch.where(keep, top_sim / temperature, float("-inf"))
        any_kept = keep.any(dim=1)
        weights = torch.softmax(logits.masked_fill(~any_kept[:, None], 0.0), dim=1)
        rows = old[pool[top_idx]]  # (B, k, D)
        out[start : start + _CHUNK] = (weights[:, :, None] * rows).sum(dim=1)
        has[start : start + _CHUNK] = any_kept
    return out, has


def corpus_static(
    inp: MethodInput, tokenizer: PreTrainedTokenizerBase | None, n_rows: int, method: str
) -> StaticEmbeddings:
    """Static vectors of ``tokenizer``'s ids on ``inp.extras.corpus``, through the cache.

    The settings are ``inp.params``' ``dim``, ``window`` and ``min_count``, and the seed is
    ``inp.generator``'s. With ``inp.extras.cache_dir`` the vectors are kept in
    ``<cache_dir>/<method>/static-<key>.safetensors``, keyed by all of these.

    Args:
        inp: the method's input (corpus, parameters, seed, cache).
        tokenizer: whose ids to embed.
        n_rows: rows of the result; ids past the tokenizer's end get zero rows (unknown).
        method: the method's name, the cache subdirectory.

    Returns:
        (n_rows, dim) :class:`StaticEmbeddings`.

    Raises:
        TokengraftError: ``tokenizer`` is None.
    """
    if tokenizer is None:
        raise TokengraftError(f"{method} needs both tokenizers")
    corpus = inp.extras.corpus
    params = inp.params
    dim, window, min_count = int(params["dim"]), int(params["window"]), int(params["min_count"])
    seed = int(inp.generator.initial_seed())
    cache = inp.extras.cache_dir
    path = None
    if cache is not None:
        key = static_key(tokenizer, corpus, dim, window, min_count, seed)
        path = Path(cache) / method / f"static-{key}.safetensors"

    def train() -> dict[str, torch.Tensor]:
        emb = token_static(
            tokenizer, corpus, dim=dim, window=window, min_count=min_count, seed=seed
        )
        return emb.to_tensors()

    return StaticEmbeddings.from_tensors(cached_tensors(path, train)).resized(n_rows)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` intra-op threads (0: unchanged), then restore the previous count.

    Small matrices gain little from a second thread, and on a shared machine the threads'
    synchronisation can make each step many times slower. Measured on 2 busy cores: a small
    training step took 35 ms with 1 thread and 1.9 s with 2, and MiniLM ran at 900 strings/s with
    1 thread against 90-1,400 (erratic) with 2.

    Args:
        n: intra-op threads for the body; 0 keeps the current setting.

    Yields:
        Nothing; the thread count is restored on exit.
    """
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --- Nearest-neighbour rows: the parameters and the use of global_estimate that tokalign,
# --- wechsel and tokenadapt share. (Keep this section together; other sections may follow.)


def neighbour_params(
    *, k: str, default_k: int, k_help: str, temperature: float, blend: str = "weights"
) -> dict[str, Param]:
    """The parameters of :func:`global_estimate`: neighbours per token and softmax temperature.

    Args:
        k: the method's name for the number of neighbours (``top_k``, ``neighbors``).
        default_k: its default.
        k_help: its one line of help.
        temperature: the default softmax temperature.
        blend: what the temperature shapes, in its help (``softmax temperature of the ...``).

    Returns:
        ``{k: Param, "temperature": Param}``, to splice into a :class:`MethodSpec`'s ``params``.
    """
    return {
        k: Param(default=default_k, type=int, min=1, max=4096, help=k_help),
        "temperature": Param(
            default=temperature,
            type=float,
            positive=True,
            max=1000000.0,
            help=f"softmax temperature of the {blend}",
        ),
    }


def neighbour_rows(
    inp: MethodInput,
    old_space: torch.Tensor,
    queries: torch.Tensor,
    old_known: torch.Tensor,
    new_known: torch.Tensor,
    *,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The softmax-weighted ``k`` nearest old rows of each new token, matched in one vector space.

    Neighbours are old tokens with a vector that are not special; the temperature is
    ``inp.params["temperature"]`` and no neighbour is dropped for its cosine.

    Args:
        inp: the method's input (old rows, tokens, temperature).
        old_space: (V_old, d) unit vectors of the old tokens (zero rows: no vector).
        queries: (N, d) unit vectors of the tokens to compute (zero rows: no vector).
        old_known: (V_old,) bool, the old tokens that have a vector.
        new_known: (N,) bool, the tokens to compute that have a vector.
        k: neighbours per token.

    Returns:
        (N, D) float64 rows, and (N,) bool: the row is set (a plain token with a vector and a
        neighbour); the method keeps its fallback for the others.
    """
    rows, has = global_estimate(
        inp.old.double(),
        old_space,
        queries,
        old_known & ~special_old(inp),
        k=k,
        temperature=float(inp.params["temperature"]),
        threshold=float("-inf"),
    )
    return rows, has & new_known & plain_tokens(inp)


def init_rows(
    inp: MethodInput, *, caller: str, allowed: frozenset[Need]
) -> torch.Tensor | MethodRows:
    """(N, D) first-pass rows from the method named by ``inp.params["init"]``, its defaults.

    For methods that refine another method's rows (``tune``, ``distill``).

    Raises:
        TokengraftError: the init method refines itself or needs more than ``allowed``.
    """
    spec = get_method(str(inp.params["init"]))
    if spec.refine is not None or not spec.needs <= allowed:
        raise TokengraftError(
            f"{caller}: init method {spec.name!r} cannot be used (it needs "
            f"{', '.join(sorted(n.value for n in spec.needs)) or 'nothing'}, or refines itself)"
        )
    return spec.fn(replace(inp, params=spec.resolve_params({})))
