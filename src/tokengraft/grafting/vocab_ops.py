"""Trim and extend a model's vocabulary, in memory (tensors) and disk to disk.

:func:`trim_embeddings` keeps the rows of the kept ids, bit for bit; :func:`extend_embeddings`
keeps every old row and computes the new ones with a graft method. :func:`trim_pretrained` and
:func:`extend_pretrained` read a model and texts, call them, and write a checkpoint that
``transformers`` loads, with report.json and tokens.tsv, atomically (nothing half-written).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft import io
from tokengraft.config import BEST_DONOR_FREE, GraftConfig, Need, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting.embeddings import EmbeddingGraft, graft_embeddings
from tokengraft.grafting.inputs import Resources, load_extras
from tokengraft.grafting.pipeline import (
    Backend,
    checkpoint_output_dir,
    open_backend,
    peak_rss_mb,
)
from tokengraft.methods import get_method
from tokengraft.report.tsv import tokens_tsv
from tokengraft.report.vocab import VocabReport
from tokengraft.vocab import Alignment, canonical_vocab
from tokengraft.vocab.extend import TokenizerExtension, extend_tokenizer, merges_for_tokens
from tokengraft.vocab.trim import TokenizerTrim, TrimConfig, trim_tokenizer

_EXTEND_NEEDS = frozenset({Need.CORPUS, Need.MODEL})


def trim_embeddings(
    weights: Mapping[Slot, torch.Tensor],
    old_tok: PreTrainedTokenizerBase,
    trim: TokenizerTrim,
) -> EmbeddingGraft:
    """(V_kept, D) matrices: row ``i`` is old row ``trim.kept[i]``, bit-identical.

    Raises:
        TokengraftError: a kept id has no row (the tokenizer is not the model's).
    """
    kept = torch.tensor(trim.kept, dtype=torch.long)
    for slot, matrix in weights.items():
        if int(kept.max()) >= matrix.shape[0]:
            raise TokengraftError(
                f"vocabulary mismatch: token id {int(kept.max())} has no row in the model's "
                f"{slot} embedding ({matrix.shape[0]} rows)"
            )
    sources = (RowSource.COPIED,) * len(trim.kept)
    alignment = Alignment(sources, kept, canonical_vocab(trim.tokenizer), canonical_vocab(old_tok))
    return EmbeddingGraft(
        weights={slot: matrix[kept].clone() for slot, matrix in weights.items()},
        alignment=alignment,
        sources=sources,
        pieces=(None,) * len(sources),
    )


def extend_embeddings(
    weights: Mapping[Slot, torch.Tensor],
    old_tok: PreTrainedTokenizerBase,
    extension: TokenizerExtension,
    config: GraftConfig,
    **graft_kwargs: Any,
) -> EmbeddingGraft:
    """Every old row kept bit-identically; the new rows computed by ``config.method``.

    Args:
        weights: slot -> (V_old, D).
        old_tok: the model's tokenizer.
        extension: the extended tokenizer (old ids unchanged, new ids after them).
        config: the graft method, seed and parameters.
        **graft_kwargs: ``extras`` and ``progress`` for :func:`graft_embeddings`.

    Returns:
        slot -> (V_new, D); rows below ``len(old_tok)`` equal the old rows.
    """
    graft = graft_embeddings(weights, old_tok, extension.tokenizer, config, **graft_kwargs)
    n_old = min(len(old_tok), *(m.shape[0] for m in weights.values()))
    pinned = {}
    for slot, matrix in graft.weights.items():
        matrix = matrix.clone()
        matrix[:n_old] = weights[slot][:n_old]
        pinned[slot] = matrix
    old_ids = graft.alignment.old_ids.clone()
    old_ids[:n_old] = torch.arange(n_old)
    sources = tuple(RowSource.COPIED if i < n_old else s for i, s in enumerate(graft.sources))
    alignment = replace(graft.alignment, source=sources, old_ids=old_ids)
    return replace(graft, weights=pinned, sources=sources, alignment=alignment)


@dataclass(frozen=True, kw_only=True)
class ExtendConfig:
    """What extend adds and how the new rows are made.

    Attributes:
        add: new tokens to learn by continued BPE training on the texts (0 with ``tokens``).
        tokens: given tokens to add instead (their text; a leading space marks a word start).
        min_frequency: minimum pair count of continued training.
        graft: the method (default ``BEST_DONOR_FREE``, ``tune``), seed and parameters of the new rows.
    """

    add: int = 0
    tokens: tuple[str, ...] = ()
    min_frequency: int = 2
    graft: GraftConfig = field(default_factory=lambda: GraftConfig(method=BEST_DONOR_FREE))


def _read_corpus(texts: Sequence[Path]) -> list[str]:
    return [text for _, text in io.read_texts(texts)]


def trim_pretrained(
    model: str,
    out: Path,
    texts: Sequence[Path],
    config: TrimConfig = TrimConfig(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    force: bool = False,
    progress: bool = False,
    gguf: str | None = None,
) -> VocabReport:
    """Trim ``model`` to the tokens ``texts`` use and write the checkpoint to ``out``.

    Args:
        model: an HF directory, a .gguf file or a packaged name.
        out: output directory (atomic; must be empty unless ``force``).
        texts: the corpus files to trim to.
        config: minimum count and tokens kept anyway.
        force: replace a non-empty ``out``.
        progress: show progress bars.
        gguf: also write ``out/model.gguf`` in this format (``f32``, ``f16``, ``q8_0``).

    Returns:
        The report also written to ``out/report.json``.

    Raises:
        TokengraftError: bad input (an unsupported tokenizer, an empty corpus, ...).
    """
    started = time.perf_counter()
    source = io.resolve_model(model)
    protect = [source.path, *texts]
    with checkpoint_output_dir(out, force=force, protect=protect, gguf=gguf) as tmp:
        old_tok = io.load_tokenizer(model)
        trim = trim_tokenizer(old_tok, _read_corpus(texts), config)
        backend = open_backend(source, progress=progress, reindex=True)
        weights = backend.weights()
        embeddings = trim_embeddings(weights, old_tok, trim)
        details = {
            "old_rows": weights[Slot.INPUT].shape[0],
            "corpus_tokens": trim.corpus_tokens,
            "used_tokens": trim.used,
            "min_count": config.min_count,
            "family": trim.family.value,
        }
        report = _write(tmp, "trim", model, (old_tok, trim.tokenizer), backend, embeddings,
                        details, started, progress)  # fmt: skip
    return report


def extend_pretrained(
    model: str,
    out: Path,
    texts: Sequence[Path],
    config: ExtendConfig,
    *,
    cache_dir: Path | None = None,
    force: bool = False,
    progress: bool = False,
    gguf: str | None = None,
) -> VocabReport:
    """Add tokens to ``model`` (continued BPE on ``texts``, or ``config.tokens``); write ``out``.

    Args:
        model: an HF directory, a .gguf file or a packaged name.
        out: output directory (atomic; must be empty unless ``force``).
        texts: the domain corpus (continued training, and the corpus of methods that need one).
        config: how many or which tokens, and the graft method of the new rows.
        cache_dir: where methods may cache what they train.
        force: replace a non-empty ``out``.
        progress: show progress bars.
        gguf: also write ``out/model.gguf`` in this format (``f32``, ``f16``, ``q8_0``).

    Returns:
        The report also written to ``out/report.json``.

    Raises:
        TokengraftError: bad input (``--add`` below 1, only present tokens, a non-BPE
            tokenizer, a method needing inputs extend does not take, ...).
    """
    started = time.perf_counter()
    needs = get_method(config.graft.method).needs
    if extra := sorted(n.value for n in needs - _EXTEND_NEEDS):
        raise TokengraftError(
            f"extend runs methods that need at most the corpus (--texts) and the model; "
            f"{config.graft.method!r} needs {', '.join(extra)}"
        )
    if not config.tokens and config.add < 1:
        raise TokengraftError(f"--add must be at least 1, got {config.add}")
    source = io.resolve_model(model)
    protect = [source.path, *texts]
    with checkpoint_output_dir(out, force=force, protect=protect, gguf=gguf) as tmp:
        old_tok = io.load_tokenizer(model)
        docs = _read_corpus(texts)
        extension, details = _extension(old_tok, docs, config, progress)
        backend = open_backend(source, progress=progress, reindex=True)
        resources = Resources(corpus=tuple(texts), cache_dir=cache_dir)
        extras = load_extras(needs, resources, extension.tokenizer, backend.full_model)
        weights = backend.weights()
        embeddings = extend_embeddings(
            weights, old_tok, extension, config.graft, extras=extras, progress=progress
        )
        details["method"] = config.graft.to_dict()
        details["old_rows"] = weights[Slot.INPUT].shape[0]
        report = _write(tmp, "extend", model, (old_tok, extension.tokenizer), backend,
                        embeddings, details, started, progress)  # fmt: skip
    return report


def _extension(
    tok: PreTrainedTokenizerBase, docs: Sequence[str], config: ExtendConfig, progress: bool
) -> tuple[TokenizerExtension, dict[str, Any]]:
    """The extended tokenizer and what to report about it."""
    from tokengraft.tokenizers.continued import ContinueConfig, continue_bpe

    if not config.tokens:
        cfg = ContinueConfig(n_new=config.add, min_frequency=config.min_frequency)
        merges = continue_bpe(tok, docs, cfg, progress=progress)
        extension = extend_tokenizer(tok, merges)
        if not extension.new_ids:
            raise TokengraftError(
                f"no pair of tokens occurs {config.min_frequency} times or more in the corpus; "
                "nothing to add (pass more text or a lower --min-frequency)"
            )
        return extension, {"requested": config.add, "merges": len(merges)}
    wanted = merges_for_tokens(tok, config.tokens)
    if not wanted.merges:
        raise TokengraftError(
            "every --tokens entry is already one token: " + ", ".join(map(repr, wanted.present))
        )
    extension = extend_tokenizer(tok, wanted.merges)
    details: dict[str, Any] = {"requested": len(config.tokens), "merges": len(wanted.merges)}
    details["already_present"] = list(wanted.present)
    details["intermediate"] = list(wanted.intermediate)
    return extension, details


def _write(
    tmp: Path,
    operation: str,
    model: str,
    tokenizers: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase],
    backend: Backend,
    embeddings: EmbeddingGraft,
    details: dict[str, Any],
    started: float,
    progress: bool,
) -> VocabReport:
    """Write checkpoint, report.json and tokens.tsv into ``tmp``; the report."""
    old_tok, new_tok = tokenizers
    old_rows = int(details.pop("old_rows"))
    old_parameters = backend.parameters()
    written = backend.write(tmp, old_tok, new_tok, embeddings, progress)
    warnings = written.warnings
    added, requested = len(new_tok) - len(old_tok), details.get("requested", 0)
    if operation == "extend" and not details.get("already_present") and added < requested:
        warnings += (f"the corpus gave only {added} of the {requested} tokens asked for",)
    present = details.get("already_present")
    if present:
        warnings += (f"already in the vocabulary, not added: {', '.join(map(repr, present))}",)
    report = VocabReport(
        operation=operation,
        model=model,
        old_vocab_size=len(old_tok),
        new_vocab_size=len(new_tok),
        old_rows=old_rows,
        new_rows=len(embeddings.sources),
        old_parameters=old_parameters,
        new_parameters=written.parameters,
        counts=embeddings.counts(),
        details=details,
        seconds={**embeddings.seconds, "total": time.perf_counter() - started},
        warnings=list(warnings),
        peak_rss_mb=peak_rss_mb(),
    )
    io.write_json(tmp / "report.json", report.to_dict())
    tsv = tokens_tsv(embeddings.alignment, embeddings.sources, embeddings.pieces)
    io.write_text(tmp / "tokens.tsv", tsv)
    return report
