"""Disk to disk: load a model and tokenizers, graft, and write a Hugging Face checkpoint.

A Hugging Face directory (safetensors, sharded or not) is grafted *streaming*: only the embedding
and head tensors are read into memory; every other tensor is copied through byte for byte. A GGUF
file (or the packaged default) is loaded whole with `transformers` (dequantised to fp32), grafted in
memory, and saved. Either way the output appears atomically and the input is never modified.
"""

from __future__ import annotations

import copy
import logging
import resource
import time
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from tokengraft import io
from tokengraft.config import GraftConfig, Slot
from tokengraft.errors import TokengraftError
from tokengraft.graft import (
    EmbeddingGraft,
    carry_chat_template,
    embedding_weights,
    graft,
    graft_embeddings,
    update_special_ids,
)
from tokengraft.methods import get_method
from tokengraft.report import GraftReport, build_report, model_card, tokens_tsv
from tokengraft.resources import Resources, load_extras

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def graft_pretrained(
    model: str,
    new_tokenizer: str,
    out: Path,
    config: GraftConfig,
    *,
    force: bool = False,
    allow_pickle: bool = False,
    progress: bool = False,
    resources: Resources | None = None,
) -> GraftReport:
    """Graft ``new_tokenizer`` onto ``model`` and write the result to ``out``.

    Args:
        model: an HF directory, a .gguf file, or a packaged model's name (``smollm2-135m``).
        new_tokenizer: anything :func:`tokengraft.io.load_tokenizer` reads.
        out: the output directory (created atomically; must not exist or be empty unless force).
        config: method, seed and parameters.
        force: replace an existing non-empty ``out``.
        allow_pickle: allow pickle (``pytorch_model.bin``) weights.
        progress: show progress bars.
        resources: paths to what the method needs beyond the model (donor, corpus, ...).

    Returns:
        The :class:`GraftReport` also written to ``out/report.json``.

    Raises:
        TokengraftError: bad input (see the messages).
    """
    started = time.perf_counter()
    source = io.resolve_model(model, allow_pickle=allow_pickle)
    with io.atomic_output_dir(out, force=force) as tmp:
        old_tok = io.load_tokenizer(model)
        new_tok = io.load_tokenizer(new_tokenizer)
        seconds = {"load_tokenizers": time.perf_counter() - started}
        if source.kind is io.ModelKind.HF_DIR:
            embeddings, tied, warnings, old_rows = _graft_hf_dir(
                source, old_tok, new_tok, config, tmp, seconds, progress, resources or Resources()
            )
        else:
            embeddings, tied, warnings, old_rows = _graft_loaded(
                source, old_tok, new_tok, config, tmp, seconds, progress, resources or Resources()
            )
        seconds["total"] = time.perf_counter() - started
        report = build_report(
            model=model,
            new_tokenizer=new_tokenizer,
            config=config,
            embeddings=embeddings,
            old_vocab_size=old_rows,
            tied=tied,
            seconds=seconds,
            warnings=warnings,
            peak_rss_mb=peak_rss_mb(),
        )
        write_graft_records(tmp, report, embeddings)
    return report


def write_graft_records(out: Path, report: GraftReport, embeddings: EmbeddingGraft) -> None:
    """report.json, README.md (model card) and tokens.tsv."""
    io.write_json(out / "report.json", report.to_dict())
    io.write_text(out / "README.md", model_card(report))
    io.write_text(out / "tokens.tsv", tokens_tsv(embeddings))


def _graft_loaded(
    source: io.ModelSource,
    old_tok: PreTrainedTokenizerBase,
    new_tok: PreTrainedTokenizerBase,
    config: GraftConfig,
    tmp: Path,
    seconds: dict[str, float],
    progress: bool,
    resources: Resources,
) -> tuple[EmbeddingGraft, bool, tuple[str, ...], int]:
    timer = time.perf_counter()
    base = io.load_model(source)
    seconds["load_model"] = time.perf_counter() - timer
    timer = time.perf_counter()
    extras = load_extras(get_method(config.method).needs, resources, new_tok, lambda: base)
    seconds["load_resources"] = time.perf_counter() - timer
    timer = time.perf_counter()
    result = graft(base, old_tok, new_tok, config, extras=extras, progress=progress)
    seconds["graft"] = time.perf_counter() - timer
    timer = time.perf_counter()
    io.save_pretrained(result.model, result.tokenizer, tmp)
    seconds["write"] = time.perf_counter() - timer
    old_rows = int(embedding_weights(base)[Slot.INPUT].shape[0])
    return result.embeddings, result.tied, result.warnings, old_rows


def _graft_hf_dir(
    source: io.ModelSource,
    old_tok: PreTrainedTokenizerBase,
    new_tok: PreTrainedTokenizerBase,
    config: GraftConfig,
    tmp: Path,
    seconds: dict[str, float],
    progress: bool,
    resources: Resources,
) -> tuple[EmbeddingGraft, bool, tuple[str, ...], int]:
    model_dir = source.path
    timer = time.perf_counter()
    names = io.embedding_names(model_dir)
    wanted = [n for n in (names.input, names.output) if n is not None]
    tensors = io.read_tensors(model_dir, wanted)
    weights = {Slot.INPUT: tensors[names.input]}
    if names.output is not None:
        weights[Slot.OUTPUT] = tensors[names.output]
    seconds["load_model"] = time.perf_counter() - timer
    timer = time.perf_counter()
    needs = get_method(config.method).needs
    extras = load_extras(needs, resources, new_tok, lambda: io.load_model(source))
    seconds["load_resources"] = time.perf_counter() - timer
    timer = time.perf_counter()
    embeddings = graft_embeddings(
        weights, old_tok, new_tok, config, extras=extras, progress=progress
    )
    seconds["graft"] = time.perf_counter() - timer
    timer = time.perf_counter()
    replacements = {names.input: embeddings.weights[Slot.INPUT]}
    tied = Slot.OUTPUT not in embeddings.weights
    if not tied:
        head = names.output or names.head
        if head is None:
            raise TokengraftError(f"{model_dir}: this architecture has no output head to untie")
        replacements[head] = embeddings.weights[Slot.OUTPUT]
    io.rewrite_checkpoint(model_dir, tmp, replacements, progress=progress)
    tokenizer = copy.deepcopy(new_tok)
    warnings = tuple(carry_chat_template(old_tok, tokenizer))
    configs = io.load_configs(model_dir)
    configs.model.vocab_size = len(embeddings.sources)
    configs.model.tie_word_embeddings = tied
    present = [c for c in (configs.model, configs.generation) if c is not None]
    update_special_ids(present, tokenizer, embeddings.alignment)
    io.save_configs(configs, tmp)
    io.save_tokenizer(tokenizer, tmp)
    seconds["write"] = time.perf_counter() - timer
    return embeddings, tied, warnings, int(tensors[names.input].shape[0])
