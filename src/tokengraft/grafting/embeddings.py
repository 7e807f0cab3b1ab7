"""Compute every row of the new vocabulary's embedding matrices (pure tensors, no model).

:func:`graft_embeddings` aligns the vocabularies, spells each new token in old pieces, runs the
method once per embedding slot (and its optional refine pass), and assembles the matrices so that
copied rows are bit-identical whatever the method returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.methods import Extras, MethodInput, MethodRows, MethodSpec, RefineInput, get_method
from tokengraft.vocab import Alignment, align
from tokengraft.vocab.spell import decompose

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EmbeddingGraft:
    """New embedding matrices and how each row was made.

    Attributes:
        weights: slot -> (V_new, D) new matrix (only the slots that were given).
        alignment: the byte-exact alignment of the two vocabularies.
        sources: per new id, how its row was made (copied, role, computed, fallback).
        pieces: per new id, the old ids spelling it (computed rows only; else None).
        seconds: wall time per step.
    """

    weights: dict[Slot, torch.Tensor]
    alignment: Alignment
    sources: tuple[RowSource, ...]
    pieces: tuple[tuple[int, ...] | None, ...]
    seconds: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per source; the values add up to the new vocabulary size."""
        return {kind.value: sum(1 for s in self.sources if s is kind) for kind in RowSource}


def graft_embeddings(
    weights: Mapping[Slot, torch.Tensor],
    old_tok: PreTrainedTokenizerBase,
    new_tok: PreTrainedTokenizerBase,
    config: GraftConfig,
    *,
    extras: Extras | None = None,
    progress: bool = False,
) -> EmbeddingGraft:
    """Compute every row of the new vocabulary for each embedding slot.

    Args:
        weights: slot -> (V_old, D) matrix of the base model (input; output too when untied).
            A tied model gives only the input slot; with ``config.untie`` its output slot is
            made from the same matrix.
        old_tok: the base model's tokenizer.
        new_tok: the tokenizer to graft on.
        config: method, seed and parameters.
        extras: inputs some methods need (donor model, corpus, ...), see ``Need``.
        progress: let methods show progress bars.

    Returns:
        The new (V_new, D) matrices with shared rows copied bit-identically.

    Raises:
        TokengraftError: unknown method or parameter, a missing need, or a tokenizer/model
            vocabulary mismatch.
    """
    spec = get_method(config.method)
    params = spec.resolve_params(config.params)
    extras = extras or Extras()
    if missing := extras.missing(spec.needs):
        raise TokengraftError(f"method {spec.name!r} needs: {', '.join(missing)}")
    untie = config.untie or spec.unties  # a method with a head of its own unties a tied model
    timer = time.perf_counter()
    alignment = align(old_tok, new_tok, copy_shared=config.copy_shared)
    _check_vocab_fits(alignment, weights)
    template = _method_input(
        alignment,
        old_tok,
        new_tok,
        seed=config.seed,
        tied=Slot.OUTPUT not in weights and not untie,
        progress=progress,
        params=params,
        extras=extras,
    )
    seconds = {"align": time.perf_counter() - timer}
    if untie and Slot.OUTPUT not in weights:
        weights = {Slot.INPUT: weights[Slot.INPUT], Slot.OUTPUT: weights[Slot.INPUT]}
    new_weights, fallback, method_seconds = _run_method(spec, template, weights, alignment)
    seconds.update(method_seconds)
    sources, pieces = _final_sources(alignment, template.pieces, fallback)
    return EmbeddingGraft(
        weights=new_weights, alignment=alignment, sources=sources, pieces=pieces, seconds=seconds
    )


def _method_input(
    alignment: Alignment,
    old_tok: PreTrainedTokenizerBase,
    new_tok: PreTrainedTokenizerBase,
    *,
    seed: int,
    tied: bool,
    progress: bool,
    params: Mapping[str, Any],
    extras: Extras,
) -> MethodInput:
    """What the method reads, with every new token to compute spelled in old pieces.

    ``old`` and ``slot`` are placeholders: :func:`_run_method` sets them per slot. The one
    generator is shared by the slots (``replace`` keeps it), so the output slot's draws continue
    the input slot's stream.
    """
    to_compute = alignment.to_compute
    tokens = [alignment.new_vocab.tokens[i] for i in to_compute]
    anchor_new, anchor_old = alignment.anchors()
    return MethodInput(
        old=torch.empty(0, 0),
        slot=Slot.INPUT,
        to_compute=torch.tensor(to_compute, dtype=torch.long),
        pieces=decompose(old_tok, alignment.old_vocab, tokens),
        n_new=len(alignment.source),
        generator=torch.Generator().manual_seed(seed),
        tied=tied,
        progress=progress,
        tokens=tokens,
        anchor_new=anchor_new,
        anchor_old=anchor_old,
        old_tokenizer=old_tok,
        new_tokenizer=new_tok,
        params=params,
        extras=extras,
    )


def _run_method(
    spec: MethodSpec,
    template: MethodInput,
    weights: Mapping[Slot, torch.Tensor],
    alignment: Alignment,
) -> tuple[dict[Slot, torch.Tensor], torch.Tensor | None, dict[str, float]]:
    """Run the method on each slot, then its refine pass if it has one.

    Returns:
        slot -> (V_new, D) assembled matrix; the (N,) bool rows the method reports as fallback
        in every slot (None: it reported none, see :class:`MethodRows`); and the wall seconds of
        ``method`` (and ``refine``).
    """
    to_compute = alignment.to_compute
    timer = time.perf_counter()
    results = {
        slot: spec.fn(replace(template, old=old, slot=slot)) for slot, old in weights.items()
    }
    new_weights = {
        slot: _assemble(weights[slot], alignment, to_compute, _rows(result, len(to_compute)))
        for slot, result in results.items()
    }
    fallback = _reported_fallback(results.values())
    seconds = {"method": time.perf_counter() - timer}
    if spec.refine is not None and to_compute:
        timer = time.perf_counter()
        refined = spec.refine(RefineInput.of(template, new_weights))
        new_weights = {
            slot: _assemble(weights[slot], alignment, to_compute, refined[slot])
            for slot in new_weights
        }
        seconds["refine"] = time.perf_counter() - timer
    return new_weights, fallback, seconds


def _rows(result: torch.Tensor | MethodRows, n: int) -> torch.Tensor:
    """The (N, D) rows of a method's result, checking its fallback report has one entry a row."""
    if not isinstance(result, MethodRows):
        return result
    if result.fallback.shape != (n,) or result.fallback.dtype != torch.bool:
        raise RuntimeError(
            f"method reported fallback {tuple(result.fallback.shape)} {result.fallback.dtype}, "
            f"expected ({n},) bool"
        )
    return result.rows


def _reported_fallback(results: Iterable[torch.Tensor | MethodRows]) -> torch.Tensor | None:
    """(N,) bool: the rows every reporting slot fell back on; None when no slot reported."""
    masks = [r.fallback for r in results if isinstance(r, MethodRows)]
    if not masks:
        return None
    out = masks[0].clone()
    for mask in masks[1:]:
        out &= mask
    return out


def _check_vocab_fits(alignment: Alignment, weights: Mapping[Slot, torch.Tensor]) -> None:
    n_old = len(alignment.old_vocab)
    for slot, matrix in weights.items():
        if matrix.ndim != 2:
            raise TokengraftError(f"{slot} embedding has shape {tuple(matrix.shape)}, expected 2-D")
        if matrix.shape[0] < n_old:
            raise TokengraftError(
                f"vocabulary mismatch: the tokenizer has {n_old} tokens but the model's {slot} "
                f"embedding has {matrix.shape[0]} rows (is this the model's own tokenizer?)"
            )


def _assemble(
    old: torch.Tensor, alignment: Alignment, to_compute: list[int], rows: torch.Tensor
) -> torch.Tensor:
    """(V_new, D): copied/role rows taken bit-identically from ``old``, the rest from ``rows``."""
    if rows.shape != (len(to_compute), old.shape[1]):
        raise RuntimeError(
            f"method returned {tuple(rows.shape)}, expected {(len(to_compute), old.shape[1])}"
        )
    new = torch.empty(len(alignment.source), old.shape[1], dtype=old.dtype)
    taken = alignment.old_ids >= 0  # (V_new,)
    new[taken] = old[alignment.old_ids[taken]]
    if to_compute:
        new[torch.tensor(to_compute, dtype=torch.long)] = rows.to(old.dtype)
    return new


def _final_sources(
    alignment: Alignment,
    spelled: Sequence[Sequence[int] | None],
    fallback: torch.Tensor | None = None,
) -> tuple[tuple[RowSource, ...], tuple[tuple[int, ...] | None, ...]]:
    """Per new id, how its row was made and the old pieces spelling it.

    A computed row is marked ``FALLBACK`` where the method reported it fell back (``fallback``,
    (N,) bool over ``alignment.to_compute``); without a report, where no old pieces spell it.
    """
    sources = list(alignment.source)
    pieces: list[tuple[int, ...] | None] = [None] * len(sources)
    failed = [not ids for ids in spelled] if fallback is None else fallback.tolist()
    for new_id, ids, fell_back in zip(alignment.to_compute, spelled, failed, strict=True):
        if ids:
            pieces[new_id] = tuple(ids)
        if fell_back:
            sources[new_id] = RowSource.FALLBACK
    return tuple(sources), tuple(pieces)
