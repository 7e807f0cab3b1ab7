"""Disk to disk: load a model and tokenizers, graft, and write a Hugging Face checkpoint.

One path with two backends. A Hugging Face directory (safetensors, sharded or not) is grafted
*streaming* (:class:`_Streamed`): only the embedding and head tensors are read into memory, every
other tensor is copied through byte for byte. A GGUF file (or the packaged default) is loaded whole
with ``transformers`` (:class:`_Loaded`, dequantised to fp32), grafted in memory, and saved. Both
finish through :func:`tokengraft.grafting.model.finish` and leave the same records behind. The
output appears atomically and the input is never modified.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft import io
from tokengraft.config import GraftConfig, Need, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting.embeddings import EmbeddingGraft, graft_embeddings
from tokengraft.grafting.inputs import Resources, load_extras
from tokengraft.grafting.model import embedding_weights, finish, with_embeddings, write_records
from tokengraft.methods import get_method
from tokengraft.report.record import GraftReport, build_report

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class _Timer:
    """Wall seconds per named phase, and in all since the timer was made."""

    seconds: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    begun: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        """Record the time since the last lap (or the start) as phase ``name``."""
        now = time.perf_counter()
        self.seconds[name] = now - self.started
        self.started = now

    def total(self) -> float:
        """Seconds since the timer was made."""
        return time.perf_counter() - self.begun


class _Backend(Protocol):
    def weights(self) -> dict[Slot, torch.Tensor]: ...

    def full_model(self) -> PreTrainedModel: ...

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> tuple[str, ...]: ...


class _Loaded:
    """A model loaded whole (GGUF, packaged, pickle weights): grafted in memory and saved."""

    def __init__(
        self, source: io.ModelSource, *, allow_pickle: bool = False, progress: bool = True
    ) -> None:
        self.model = io.load_model(source, allow_pickle=allow_pickle, progress=progress)

    def weights(self) -> dict[Slot, torch.Tensor]:
        return embedding_weights(self.model)

    def full_model(self) -> PreTrainedModel:
        return self.model

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> tuple[str, ...]:
        result = with_embeddings(self.model, old_tok, new_tok, embeddings)
        io.save_pretrained(result.model, result.tokenizer, out, progress=progress)
        return result.warnings


class _Streamed:
    """A Hugging Face directory: embedding tensors read alone, the rest copied byte for byte."""

    def __init__(self, source: io.ModelSource, *, progress: bool = True) -> None:
        self.source = source
        self.progress = progress
        self.names = io.embedding_names(source.path)

    def weights(self) -> dict[Slot, torch.Tensor]:
        return io.read_embeddings(self.source.path, self.names)

    def full_model(self) -> PreTrainedModel:
        return io.load_model(self.source, progress=self.progress)

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> tuple[str, ...]:
        replacements = {self.names.input: embeddings.weights[Slot.INPUT]}
        if Slot.OUTPUT in embeddings.weights:
            head = self.names.output or self.names.head
            if head is None:
                raise TokengraftError(
                    f"{self.source.path}: this architecture has no output head to untie"
                )
            replacements[head] = embeddings.weights[Slot.OUTPUT]
        io.rewrite_checkpoint(self.source.path, out, replacements, progress=progress)
        configs = io.load_configs(self.source.path)
        tokenizer, warnings = finish(
            old_tok, new_tok, embeddings, [configs.model, configs.generation]
        )
        io.save_configs(configs, out)
        io.save_tokenizer(tokenizer, out)
        return warnings


def _backend(source: io.ModelSource, *, allow_pickle: bool, progress: bool) -> _Backend:
    """Streaming for a safetensors checkpoint; anything else (GGUF, pickle) is loaded whole."""
    if source.kind is io.ModelKind.HF_DIR and io.has_safetensors(source.path):
        return _Streamed(source, progress=progress)
    return _Loaded(source, allow_pickle=allow_pickle, progress=progress)


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
    encoding: str | None = None,
) -> GraftReport:
    """Graft ``new_tokenizer`` onto ``model`` and write the result to ``out``.

    Args:
        model: an HF directory, a .gguf file, or a packaged model's name (``smollm2-135m``).
        new_tokenizer: anything :func:`tokengraft.io.load_tokenizer` reads.
        out: the output directory (created atomically; must not exist or be empty unless force).
        config: method, seed and parameters.
        force: replace an existing non-empty ``out``.
        allow_pickle: allow pickle (``pytorch_model.bin``) weights, for the model and the donor.
        progress: show progress bars.
        resources: paths to what the method needs beyond the model (donor, corpus, ...).
        encoding: the encoding of a tiktoken ``new_tokenizer`` (default: recognised by ranks).

    Returns:
        The :class:`GraftReport` also written to ``out/report.json``.

    Raises:
        TokengraftError: bad input (see the messages); parameters, resource flags and the
            output directory are checked before anything is loaded.
    """
    timer = _Timer()
    spec = get_method(config.method)
    spec.resolve_params(config.params)
    resources = replace(resources or Resources(), allow_pickle=allow_pickle)
    resources.check(spec.needs)
    source = io.resolve_model(model, allow_pickle=allow_pickle)
    protect = [source.path, Path(new_tokenizer), *resources.paths()]
    with io.atomic_output_dir(out, force=force, protect=protect) as tmp:
        old_tok = io.load_tokenizer(model)
        new_tok = io.load_tokenizer(new_tokenizer, encoding=encoding)
        timer.lap("load_tokenizers")
        extras = load_extras(spec.needs, resources, new_tok)  # all but the base model
        timer.lap("load_resources")
        backend = _backend(source, allow_pickle=allow_pickle, progress=progress)
        weights = backend.weights()
        if Need.MODEL in spec.needs:
            extras = replace(extras, model=backend.full_model())
        timer.lap("load_model")
        embeddings = graft_embeddings(
            weights, old_tok, new_tok, config, extras=extras, progress=progress
        )
        timer.lap("graft")
        warnings = backend.write(tmp, old_tok, new_tok, embeddings, progress)
        timer.lap("write")
        old_vocab_size = int(weights[Slot.INPUT].shape[0])
        report = _report(model, new_tokenizer, config, embeddings, old_vocab_size, warnings, timer)
        write_records(tmp, report, embeddings)
    return report


def _report(
    model: str,
    new_tokenizer: str,
    config: GraftConfig,
    embeddings: EmbeddingGraft,
    old_vocab_size: int,
    warnings: tuple[str, ...],
    timer: _Timer,
) -> GraftReport:
    """The report of a finished graft, its timings closed now and peak memory read now."""
    return build_report(
        model=model,
        new_tokenizer=new_tokenizer,
        config=config,
        counts=embeddings.counts(),
        old_vocab_size=old_vocab_size,
        tied=Slot.OUTPUT not in embeddings.weights,
        seconds={**embeddings.seconds, **timer.seconds, "total": timer.total()},
        warnings=warnings,
        peak_rss_mb=peak_rss_mb(),
    )
