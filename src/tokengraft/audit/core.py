"""``audit_model``: under-trained, unreachable and costly tokens of a model and its tokenizer.

In memory only: the model, its tokenizer, texts as ``(name, text)`` pairs and the row sources of
a grafted checkpoint arrive as objects; :mod:`tokengraft.audit.pipeline` reads them from disk.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.audit.loss import TokenLoss, token_losses, weight
from tokengraft.audit.reach import Reachability, unreachable_tokens
from tokengraft.audit.records import AuditConfig, Candidate, LossRow, LossSummary, ModelAudit
from tokengraft.audit.verify import repeat_probability
from tokengraft.audit.weights import norm_outliers, unused_named, unused_similarity
from tokengraft.config import RowSource
from tokengraft.errors import TokengraftError
from tokengraft.vocab import CanonicalVocab, canonical_vocab

log = logging.getLogger(__name__)

NEW_SOURCES = frozenset({RowSource.COMPUTED, RowSource.FALLBACK})  # rows a graft made up


def display(vocab: CanonicalVocab, token_id: int) -> str:
    """Readable text of a token (``␣`` for a leading space; special tokens as written)."""
    token = vocab.tokens[token_id] if token_id < len(vocab.tokens) else None
    if token is None:
        return ""
    if token.special:
        return token.text.decode("utf-8", errors="backslashreplace")
    if token.byte_fallback:
        return f"<0x{token.text[0]:02X}>"
    return token.display()


def _matrices(model: PreTrainedModel) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(V, D) input embeddings, (V, D) output head, and whether they are one matrix."""
    embed = weight(model.get_input_embeddings())
    output = model.get_output_embeddings()
    head = embed if output is None else weight(output)
    return embed, head, head.data_ptr() == embed.data_ptr()


def reference_set(
    tokenizer: PreTrainedTokenizerBase, reach: Reachability, embed: torch.Tensor
) -> tuple[list[int], str]:
    """The tokens known to be unused, and how they were chosen (see :mod:`.weights`).

    Args:
        tokenizer: the model's tokenizer.
        reach: its reachability.
        embed: (V, D) input embeddings.

    Returns:
        ``(ids, kind)``: kind ``"unused"``, or ``"none"`` with no ids when the tokenizer names no
        unused token and every token is reachable.
    """
    rows = embed.shape[0]
    known = sorted({*unused_named(tokenizer), *reach.unreachable} & set(range(rows)))
    return known, ("unused" if known else "none")


def _pool(vocab: CanonicalVocab, rows: int, excluded: set[int]) -> list[int]:
    """Ids that can be candidates: a non-special token, a row, not in the reference set."""
    return [
        i
        for i, token in enumerate(vocab.tokens[:rows])
        if token is not None and not token.special and i not in excluded
    ]


def _verified(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    ranked: list[Candidate],
    config: AuditConfig,
) -> list[Candidate]:
    """``ranked`` with repeat probabilities and verdicts filled in."""
    if not ranked:
        return []
    probs = repeat_probability(
        model, tokenizer, [c.id for c in ranked], batch_size=config.batch_size
    )
    return [
        Candidate(**{**asdict(c), "repeat_probability": p, "under_trained": p < config.threshold})
        for c, p in zip(ranked, probs, strict=True)
    ]


def _candidates(
    ids: Sequence[int], vocab: CanonicalVocab, scores: torch.Tensor, norms: torch.Tensor
) -> list[Candidate]:
    return [
        Candidate(id=i, token=display(vocab, i), score=float(scores[i]), norm=float(norms[i]))
        for i in ids
    ]


def _controls(pool: list[int], scores: torch.Tensor, config: AuditConfig) -> list[int]:
    """Ordinary tokens: a seeded random draw from the half of the pool that looks least unused."""
    if config.controls < 1 or config.verify < 1 or not pool:
        return []
    order = torch.tensor(pool)[scores[torch.tensor(pool)].argsort()]  # ascending score
    lower = order[: max(1, len(order) // 2)]
    generator = torch.Generator().manual_seed(config.seed)
    picked = torch.randperm(len(lower), generator=generator)[: config.controls]
    return sorted(lower[picked].tolist())


def _by_source(loss: TokenLoss, sources: Sequence[RowSource]) -> dict[str, dict[str, float]]:
    """Per row source: tokens, scored occurrences, summed and mean nats, share of all nats."""
    total = float(loss.nats.sum())
    out: dict[str, dict[str, float]] = {}
    for source in RowSource:
        ids = torch.tensor([i for i, s in enumerate(sources) if s is source], dtype=torch.long)
        ids = ids[ids < len(loss.nats)]
        nats, count = float(loss.nats[ids].sum()), int(loss.counts[ids].sum())
        out[source.value] = {
            "tokens": float(len(ids)),
            "occurrences": float(count),
            "nats": nats,
            "mean_nats": nats / count if count else 0.0,
            "share": nats / total if total else 0.0,
        }
    return out


def _top_rows(
    loss: TokenLoss, vocab: CanonicalVocab, sources: Sequence[RowSource] | None, top: int
) -> list[LossRow]:
    """The tokens of largest summed loss: only new rows (computed, fallback) with sources."""
    total = float(loss.nats.sum())
    order = [i for i in loss.nats.argsort(descending=True).tolist() if loss.counts[i] > 0]
    if sources is not None:
        order = [i for i in order if i < len(sources) and sources[i] in NEW_SOURCES]
    return [
        LossRow(
            id=i,
            token=display(vocab, i),
            source=None if sources is None else sources[i].value,
            count=int(loss.counts[i]),
            nats=float(loss.nats[i]),
            mean_nats=float(loss.nats[i]) / int(loss.counts[i]),
            share=float(loss.nats[i]) / total if total else 0.0,
        )
        for i in order[:top]
    ]


def loss_summary(
    loss: TokenLoss, vocab: CanonicalVocab, sources: Sequence[RowSource] | None, *, top: int
) -> LossSummary:
    """Summarise per-token losses: per-source totals and the costliest (new) tokens.

    Args:
        loss: per-id counts and nats.
        vocab: the canonical vocabulary, for token texts.
        sources: how each row was made (tokens.tsv), None for a model that was not grafted.
        top: rows listed.

    Returns:
        The summary; ``by_source`` is empty without sources.
    """
    total = float(loss.nats.sum())
    return LossSummary(
        n_bytes=loss.n_bytes,
        n_tokens=int(loss.counts.sum()),
        bits_per_byte=total / math.log(2) / loss.n_bytes if loss.n_bytes else 0.0,
        by_source={} if sources is None else _by_source(loss, sources),
        top=_top_rows(loss, vocab, sources, top),
    )


def _check(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: AuditConfig) -> None:
    """Refuse a tokenizer that does not fit the model, and counts below their range."""
    rows = int(weight(model.get_input_embeddings()).shape[0])
    if len(tokenizer) > rows:
        raise TokengraftError(
            f"the tokenizer has {len(tokenizer)} tokens but the model only {rows} embedding "
            "rows: audit a model with its own tokenizer"
        )
    for name in ("top", "batch_size", "window", "window_batch"):
        if getattr(config, name) < 1:
            raise TokengraftError(f"{name} must be positive, got {getattr(config, name)}")


def audit_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    name: str = "model",
    texts: Sequence[tuple[str, str]] = (),
    sources: Sequence[RowSource] | None = None,
    config: AuditConfig = AuditConfig(),  # noqa: B008 - frozen, so a shared default is safe
) -> ModelAudit:
    """Audit a model and its tokenizer: under-trained, unreachable and (with texts) costly tokens.

    Args:
        model: a causal LM (left unchanged).
        tokenizer: its own tokenizer (a fast tokenizer).
        name: what the user called the model, for the record.
        texts: held-out ``(name, text)`` pairs; with them, loss per token is measured.
        sources: per row, how a graft made it (tokens.tsv); the loss table then lists new rows.
        config: sizes and thresholds.

    Returns:
        The audit.

    Raises:
        TokengraftError: a tokenizer larger than the embedding matrix, a bad config value, or an
            empty text.

    Example:
        >>> audit = audit_model(model, tokenizer, config=AuditConfig(verify=10))  # doctest: +SKIP
        >>> audit.n_unreachable  # doctest: +SKIP
        114
    """
    _check(model, tokenizer, config)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    vocab = canonical_vocab(tokenizer)
    reach = unreachable_tokens(tokenizer, vocab=vocab)
    seconds["reachability"] = time.perf_counter() - started
    found = _rank(model, tokenizer, vocab, reach, config)
    seconds["indicators_and_verify"] = time.perf_counter() - started - sum(seconds.values())
    loss = None
    if texts:
        measured = token_losses(
            model, tokenizer, texts, window=config.window, batch_size=config.window_batch
        )
        loss = loss_summary(measured, vocab, sources, top=config.top)
        seconds["loss"] = time.perf_counter() - started - sum(seconds.values())
    seconds["total"] = time.perf_counter() - started
    return ModelAudit(
        model=name,
        tokenizer_size=len(tokenizer),
        special=len(reach.special),
        partial=len(reach.partial),
        unreachable=[{"id": i, "token": display(vocab, i)} for i in reach.unreachable],
        n_unreachable=len(reach.unreachable),
        n_under_trained=sum(bool(c.under_trained) for c in found["candidates"]),
        loss=loss,
        config=asdict(config),
        seconds=seconds,
        **found,
    )


def _rank(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    vocab: CanonicalVocab,
    reach: Reachability,
    config: AuditConfig,
) -> dict[str, Any]:
    """The fields of :class:`ModelAudit` about under-trained tokens: indicators, then verdicts."""
    embed, head, tied = _matrices(model)
    reference, kind = reference_set(tokenizer, reach, embed)
    if reference:
        scores = unused_similarity(head, reference, n_components=config.n_components)
    else:
        scores = norm_outliers(embed)
    norms = embed.float().norm(dim=1)
    pool = _pool(vocab, embed.shape[0], set(reference))
    order = torch.tensor(pool, dtype=torch.long)
    order = order[scores[order].argsort(descending=True)]
    ranked = _candidates(order[: config.verify or config.top].tolist(), vocab, scores, norms)
    controls = _candidates(_controls(pool, scores, config), vocab, scores, norms)
    if config.verify > 0:
        ranked = _verified(model, tokenizer, ranked, config)
        controls = _verified(model, tokenizer, controls, config)
    return {
        "vocab_size": int(embed.shape[0]),
        "tied": tied,
        "reference_kind": kind,
        "reference_size": len(reference),
        "candidates": ranked,
        "controls": controls,
    }
