"""Graft in memory: a Hugging Face model with new embedding matrices, tying and config ids.

Tying is detected in one place (:func:`embedding_weights`); :func:`graft` applies
:func:`~tokengraft.grafting.embeddings.graft_embeddings` to a loaded model and finishes the result
(tokenizer copy, chat template, vocabulary size, tie flag, special ids).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from tokengraft import io
from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting.embeddings import EmbeddingGraft, graft_embeddings
from tokengraft.methods import Extras
from tokengraft.report.card import model_card
from tokengraft.report.record import GraftReport, build_report
from tokengraft.report.tsv import tokens_tsv
from tokengraft.vocab import Alignment

log = logging.getLogger(__name__)


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
        config: the configuration the graft ran with.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    embeddings: EmbeddingGraft
    tied: bool
    warnings: tuple[str, ...] = ()
    config: GraftConfig = field(default_factory=GraftConfig)

    def save_pretrained(self, out: Path, report: GraftReport | None = None) -> None:
        """Write the checkpoint and what every graft leaves behind into the directory ``out``.

        Args:
            out: an existing directory (use ``io.atomic_output_dir`` for an atomic result).
            report: the run's record; None writes one with the in-memory defaults.
        """
        io.save_pretrained(self.model, self.tokenizer, out)
        if report is None:
            report = build_report(
                model="(in memory)",
                new_tokenizer="(in memory)",
                config=self.config,
                counts=self.embeddings.counts(),
                old_vocab_size=len(self.embeddings.alignment.old_vocab),
                tied=self.tied,
                seconds=self.embeddings.seconds,
                warnings=self.warnings,
            )
        write_records(out, report, self.embeddings)


def write_records(out: Path, report: GraftReport, embeddings: EmbeddingGraft) -> None:
    """report.json, README.md (model card) and tokens.tsv into the directory ``out``."""
    io.write_json(out / "report.json", report.to_dict())
    io.write_text(out / "README.md", model_card(report))
    tsv = tokens_tsv(embeddings.alignment, embeddings.sources, embeddings.pieces)
    io.write_text(out / "tokens.tsv", tsv)


def graft(
    model: PreTrainedModel,
    old_tok: PreTrainedTokenizerBase,
    new_tok: PreTrainedTokenizerBase,
    config: GraftConfig,
    *,
    extras: Extras | None = None,
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
    return replace(with_embeddings(model, old_tok, new_tok, embeddings), config=config)


def with_embeddings(
    model: PreTrainedModel,
    old_tok: PreTrainedTokenizerBase,
    new_tok: PreTrainedTokenizerBase,
    embeddings: EmbeddingGraft,
) -> GraftResult:
    """``model`` with the grafted matrices, finished (tokenizer, config ids); ``model`` unchanged."""
    tied = Slot.OUTPUT not in embeddings.weights
    new_model = _replace_embeddings(model, embeddings.weights, tied)
    configs = [new_model.config, getattr(new_model, "generation_config", None)]
    tokenizer, warnings = finish(old_tok, new_tok, embeddings, configs)
    return GraftResult(
        model=new_model, tokenizer=tokenizer, embeddings=embeddings, tied=tied, warnings=warnings
    )


def _replace_embeddings(
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
    return new_model


def finish(
    old_tok: PreTrainedTokenizerBase,
    new_tok: PreTrainedTokenizerBase,
    embeddings: EmbeddingGraft,
    configs: Sequence[Any],
) -> tuple[PreTrainedTokenizerBase, tuple[str, ...]]:
    """The one finishing step of every graft, in memory or streamed.

    Copies the new tokenizer and gives it the old chat template if it has none; sets the
    vocabulary size and tie flag of the model config and points the bos/eos/pad ids of every
    config object (model and generation config; None entries are skipped) at the new vocabulary.

    Returns:
        The finished tokenizer and the warnings worth telling the user.
    """
    tokenizer = copy.deepcopy(new_tok)
    warnings = tuple(carry_chat_template(old_tok, tokenizer) + missing_roles(old_tok, tokenizer))
    present = [c for c in configs if c is not None]
    for cfg in present:
        if isinstance(cfg, PretrainedConfig):
            cfg.vocab_size = len(embeddings.sources)
            cfg.tie_word_embeddings = Slot.OUTPUT not in embeddings.weights
    update_special_ids(present, tokenizer, embeddings.alignment)
    return tokenizer, warnings


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
    log.info(message)  # returned as a warning; the caller shows it once
    return [message]


def missing_roles(old_tok: PreTrainedTokenizerBase, new_tok: PreTrainedTokenizerBase) -> list[str]:
    """Warnings for a new tokenizer without an end-of-text token, or without the model's bos.

    Without eos, generation never stops by itself; without bos, a model trained to see one
    first reads text it was not trained on. Both configs then hold null for that id.
    """
    warnings = []
    for role, why in (("eos", "generation will not stop by itself"), ("bos", "")):
        old, new = getattr(old_tok, f"{role}_token", None), getattr(new_tok, f"{role}_token", None)
        if new is None and (old is not None or role == "eos"):
            had = f" (the model's is {old})" if old is not None else ""
            warnings.append(
                f"the new tokenizer has no {role} token{had}; {role}_token_id is null"
                + (f", {why}" if why else "")
            )
    return warnings


def update_special_ids(
    configs: list[Any], new_tok: PreTrainedTokenizerBase, alignment: Alignment
) -> None:
    """Rewrite bos/eos/pad/unk token ids of each config object in place (null where none)."""
    for cfg in configs:
        for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
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
