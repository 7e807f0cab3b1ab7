"""Graft a new tokenizer onto a model: align, compute new embedding rows, rebuild the model.

:func:`graft_embeddings` works on the embedding matrices alone (pure tensors, no model);
:func:`graft` applies it to an in-memory Hugging Face model. Disk-to-disk grafting, including the
streaming path for sharded checkpoints, lives in :mod:`tokengraft.pipeline`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.methods import MethodInput, RefineInput, get_method
from tokengraft.pieces import decompose
from tokengraft.vocab import Alignment, align

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
    extras: Mapping[str, Any] | None = None,
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
        extras: inputs some methods need (donor model, corpus, ...), keyed by ``Need``.
        progress: let methods show progress bars.

    Returns:
        The new (V_new, D) matrices with shared rows copied bit-identically.

    Raises:
        TokengraftError: unknown method or parameter, or a tokenizer/model vocabulary mismatch.
    """
    spec = get_method(config.method)
    params = spec.resolve_params(config.params)
    missing = sorted(n.value for n in spec.needs if n.value not in (extras or {}))
    if missing:
        raise TokengraftError(f"method {spec.name!r} needs: {', '.join(missing)}")
    timer = time.perf_counter()
    alignment = align(old_tok, new_tok, copy_shared=config.copy_shared)
    _check_vocab_fits(alignment, weights)
    to_compute = alignment.to_compute
    tokens = [alignment.new_vocab.tokens[i] for i in to_compute]
    spelled = decompose(old_tok, alignment.old_vocab, tokens)
    seconds = {"align": time.perf_counter() - timer}
    timer = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    anchor_new, anchor_old = alignment.anchors()
    compute_ids = torch.tensor(to_compute, dtype=torch.long)
    tied = Slot.OUTPUT not in weights and not config.untie
    if config.untie and Slot.OUTPUT not in weights:
        weights = {Slot.INPUT: weights[Slot.INPUT], Slot.OUTPUT: weights[Slot.INPUT]}
    new_weights = {}
    for slot, old in weights.items():
        inp = MethodInput(
            old=old,
            slot=slot,
            to_compute=compute_ids,
            pieces=spelled,
            n_new=len(alignment.source),
            generator=generator,
            tied=tied,
            progress=progress,
            tokens=tokens,
            anchor_new=anchor_new,
            anchor_old=anchor_old,
            old_tokenizer=old_tok,
            new_tokenizer=new_tok,
            params=params,
            extras=extras or {},
        )
        new_weights[slot] = _assemble(old, alignment, to_compute, spec.fn(inp))
    seconds["method"] = time.perf_counter() - timer
    if spec.refine is not None and to_compute:
        timer = time.perf_counter()
        refined = spec.refine(
            RefineInput(
                weights=new_weights,
                to_compute=compute_ids,
                tied=tied,
                new_tokenizer=new_tok,
                generator=generator,
                progress=progress,
                params=params,
                extras=extras or {},
            )
        )
        new_weights = {
            slot: _assemble(weights[slot], alignment, to_compute, refined[slot])
            for slot in new_weights
        }
        seconds["refine"] = time.perf_counter() - timer
    sources, pieces = _final_sources(alignment, to_compute, spelled)
    return EmbeddingGraft(
        weights=new_weights, alignment=alignment, sources=sources, pieces=pieces, seconds=seconds
    )


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
    alignment: Alignment, to_compute: list[int], spelled: list[list[int] | None]
) -> tuple[tuple[RowSource, ...], tuple[tuple[int, ...] | None, ...]]:
    sources = list(alignment.source)
    pieces: list[tuple[int, ...] | None] = [None] * len(sources)
    for new_id, ids in zip(to_compute, spelled, strict=True):
        if ids:
            pieces[new_id] = tuple(ids)
        else:
            sources[new_id] = RowSource.FALLBACK
    return tuple(sources), tuple(pieces)


# ---------------------------------------------------------------------------------------------
# In-memory models.


def _weight(module: nn.Module) -> torch.Tensor:
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise TokengraftError(f"{type(module).__name__} has no weight matrix")
    return weight


def embedding_weights(model: PreTrainedModel) -> dict[Slot, torch.Tensor]:
    """The model's embedding matrices; the output head only when it is not tied to the input.

    Tying is detected here and only here: the head shares the input table's storage, or the
    config says the embeddings are tied.
    """
    inp = model.get_input_embeddings()
    out = model.get_output_embeddings()
    weights = {Slot.INPUT: _weight(inp).detach()}
    if out is None or is_tied(model):
        return weights
    if getattr(out, "bias", None) is not None:
        raise TokengraftError("output heads with a bias are not supported yet")
    weights[Slot.OUTPUT] = _weight(out).detach()
    return weights


def is_tied(model: PreTrainedModel) -> bool:
    """Whether the output head is the input embedding table."""
    out = model.get_output_embeddings()
    if out is None:
        return True
    head, table = _weight(out), _weight(model.get_input_embeddings())
    return head is table or head.data_ptr() == table.data_ptr()


@dataclass(frozen=True, kw_only=True)
class GraftResult:
    """A grafted model with its tokenizer and what was done.

    Attributes:
        model: the new model (shares every non-embedding parameter with the input model).
        tokenizer: the new tokenizer (a copy, with the old chat template if it had none).
        embeddings: the new matrices and per-row provenance.
        tied: whether the output head is tied to the input embeddings.
        warnings: problems worth telling the user (e.g. chat-template tokens missing).
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    embeddings: EmbeddingGraft
    tied: bool
    warnings: tuple[str, ...] = ()


def graft(
    model: PreTrainedModel,
    old_tok: PreTrainedTokenizerBase,
    new_tok: PreTrainedTokenizerBase,
    config: GraftConfig,
    *,
    extras: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> GraftResult:
    """Replace ``model``'s tokenizer by ``new_tok`` in memory; ``model`` is left unchanged.

    Args:
        model: a causal LM (its tokenizer is ``old_tok``).
        old_tok: the model's tokenizer.
        new_tok: the tokenizer to graft on.
        config: method, seed and parameters.
        extras: inputs some methods need (see ``tokengraft methods``).
        progress: let methods show progress bars.

    Returns:
        A :class:`GraftResult`; a tied model stays tied, an untied one gets both matrices.

    Example:
        >>> result = graft(model, tok, new_tok, GraftConfig(method="subword_mean"))  # doctest: +SKIP
        >>> result.model.get_input_embeddings().weight.shape[0] == len(new_tok)  # doctest: +SKIP
        True
    """
    embeddings = graft_embeddings(
        embedding_weights(model), old_tok, new_tok, config, extras=extras, progress=progress
    )
    tied = Slot.OUTPUT not in embeddings.weights
    new_model = _with_embeddings(model, embeddings.weights, tied)
    tokenizer = copy.deepcopy(new_tok)
    warnings = carry_chat_template(old_tok, tokenizer)
    update_model_config(new_model, tokenizer, embeddings.alignment)
    return GraftResult(
        model=new_model,
        tokenizer=tokenizer,
        embeddings=embeddings,
        tied=tied,
        warnings=tuple(warnings),
    )


def _with_embeddings(
    model: PreTrainedModel, weights: Mapping[Slot, torch.Tensor], tied: bool
) -> PreTrainedModel:
    """A copy of ``model`` sharing all parameters but the embeddings, which are replaced."""
    shared = {
        id(p): p
        for p in model.parameters()
        if p is not model.get_input_embeddings().weight
        and (model.get_output_embeddings() is None or p is not model.get_output_embeddings().weight)
    }
    new_model = copy.deepcopy(model, memo=dict(shared))
    new_in = weights[Slot.INPUT]
    new_model.set_input_embeddings(nn.Embedding.from_pretrained(new_in.clone(), freeze=False))
    head = new_model.get_output_embeddings()
    if head is not None:
        table = _weight(new_model.get_input_embeddings())
        head.weight = table if tied else nn.Parameter(weights[Slot.OUTPUT].clone())
        head.out_features = new_in.shape[0]
    new_model.config.vocab_size = new_in.shape[0]
    new_model.config.tie_word_embeddings = tied
    return new_model


def carry_chat_template(
    old_tok: PreTrainedTokenizerBase, new_tok: PreTrainedTokenizerBase
) -> list[str]:
    """Give ``new_tok`` the old chat template if it has none; warn about tokens it lacks."""
    template = getattr(new_tok, "chat_template", None) or getattr(old_tok, "chat_template", None)
    if not isinstance(template, str):
        return []
    new_tok.chat_template = template
    markers = [t.content for t in old_tok.added_tokens_decoder.values() if t.content in template]
    vocab = new_tok.get_vocab()
    missing = sorted(m for m in markers if m not in vocab)
    if not missing:
        return []
    message = (
        "the new tokenizer lacks tokens the chat template needs: "
        + ", ".join(missing)
        + " (add them as special tokens, e.g. train-tokenizer adds the model's special tokens)"
    )
    log.warning(message)
    return [message]


def update_model_config(
    model: PreTrainedModel, new_tok: PreTrainedTokenizerBase, alignment: Alignment
) -> None:
    """Point bos/eos/pad ids of the model's config and generation config at the new vocabulary."""
    configs = [model.config, getattr(model, "generation_config", None)]
    update_special_ids([c for c in configs if c is not None], new_tok, alignment)


def update_special_ids(
    configs: list[Any], new_tok: PreTrainedTokenizerBase, alignment: Alignment
) -> None:
    """Rewrite bos/eos/pad token ids of each config object in place."""
    for cfg in configs:
        for attr in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if hasattr(cfg, attr):
                setattr(cfg, attr, remap_special_id(getattr(cfg, attr), attr, new_tok, alignment))


def remap_special_id(
    old_value: int | list[int] | None,
    attr: str,
    new_tok: PreTrainedTokenizerBase,
    alignment: Alignment,
) -> int | list[int] | None:
    """The new id(s) standing for ``old_value``: the row copied from it, else the new role's id."""
    if isinstance(old_value, list):
        mapped = [remap_special_id(v, attr, new_tok, alignment) for v in old_value]
        return sorted({v for v in mapped if isinstance(v, int)}) or None
    if old_value is not None:
        for new_id, old_id in enumerate(alignment.old_ids.tolist()):
            if old_id == old_value and alignment.source[new_id] in (
                RowSource.COPIED,
                RowSource.ROLE,
            ):
                return new_id
    fallback = getattr(new_tok, attr, None)
    return int(fallback) if fallback is not None else None
