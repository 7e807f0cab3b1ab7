"""Disk to disk: load a model and tokenizers, graft, and write a Hugging Face checkpoint.

One path with two backends. A Hugging Face directory (safetensors, sharded or not) is grafted
*streaming* (:class:`_Streamed`): only the embedding and head tensors are read into memory, every
other tensor is copied through byte for byte. A GGUF file (or the packaged default) is loaded whole
with ``transformers`` (:class:`_Loaded`, dequantised to fp32), grafted in memory, and saved. Both
finish through :func:`tokengraft.grafting.model.finish` and leave the same records behind. The
output appears atomically and the input is never modified. Trim and extend
(:mod:`tokengraft.grafting.vocab_ops`) write through the same backends (:func:`open_backend`).
"""

from __future__ import annotations

import logging
import math
import resource
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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

GGUF_FILE = "model.gguf"  # the name of the GGUF copy written with ``--gguf``


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


@dataclass(frozen=True)
class Written:
    """What a backend wrote: the new checkpoint's parameter count and the warnings to show."""

    parameters: int
    warnings: tuple[str, ...]


class Backend(Protocol):
    """A model on disk whose embedding rows are replaced: graft, trim and extend write through it."""

    def weights(self) -> dict[Slot, torch.Tensor]:
        """Slot -> (V, D) embedding matrices (the output slot only when untied)."""
        ...

    def full_model(self) -> PreTrainedModel:
        """The whole model (for methods that need forward passes)."""
        ...

    def parameters(self) -> int:
        """Parameters of the model as it is on disk."""
        ...

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> Written:
        """Write the checkpoint with the new rows into ``out``."""
        ...


def _count(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters())


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

    def parameters(self) -> int:
        return _count(self.model)

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> Written:
        result = with_embeddings(self.model, old_tok, new_tok, embeddings)
        io.save_pretrained(result.model, result.tokenizer, out, progress=progress)
        return Written(_count(result.model), result.warnings)


class _Streamed:
    """A Hugging Face directory: embedding tensors read alone, the rest copied byte for byte.

    With ``reindex`` (trim, extend), every other tensor with one entry per old token id along its
    first dimension (an MLM bias) gets its rows re-indexed by :func:`gather_rows` too.
    """

    def __init__(
        self, source: io.ModelSource, *, progress: bool = True, reindex: bool = False
    ) -> None:
        self.source = source
        self.progress = progress
        self.reindex = reindex
        self.index = io.safetensors_index(source.path)
        self.names = io.embedding_names(source.path)

    def weights(self) -> dict[Slot, torch.Tensor]:
        return io.read_embeddings(self.source.path, self.names)

    def full_model(self) -> PreTrainedModel:
        return io.load_model(self.source, progress=self.progress)

    def parameters(self) -> int:
        return sum(math.prod(info.shape) for info in self.index.values())

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> Written:
        replacements = self._replacements(embeddings)
        io.rewrite_checkpoint(self.source.path, out, replacements, progress=progress)
        configs = io.load_configs(self.source.path)
        tokenizer, warnings = finish(
            old_tok, new_tok, embeddings, [configs.model, configs.generation]
        )
        io.save_configs(configs, out)
        io.save_tokenizer(tokenizer, out)
        grown = sum(
            t.numel() - (math.prod(self.index[n].shape) if n in self.index else 0)
            for n, t in replacements.items()
        )
        return Written(self.parameters() + grown, warnings)

    def _replacements(self, embeddings: EmbeddingGraft) -> dict[str, torch.Tensor]:
        """New tensors: the matrices of ``embeddings`` (and, with ``reindex``, re-indexed rows)."""
        out = {self.names.input: embeddings.weights[Slot.INPUT]}
        if Slot.OUTPUT in embeddings.weights:
            head = self.names.output or self.names.head
            if head is None:
                raise TokengraftError(
                    f"{self.source.path}: this architecture has no output head to untie"
                )
            out[head] = embeddings.weights[Slot.OUTPUT]
        if self.reindex:
            others = [n for n in self._token_indexed() if n not in out]
            for name, tensor in io.read_tensors(self.source.path, others).items():
                out[name] = gather_rows(tensor, embeddings.alignment.old_ids)
        return out

    def _token_indexed(self) -> list[str]:
        """Checkpoint tensors with one entry per token id along their first dimension."""
        rows = self.index[self.names.input].shape[0]
        return [n for n, info in self.index.items() if info.shape and info.shape[0] == rows]


def gather_rows(tensor: torch.Tensor, old_ids: torch.Tensor) -> torch.Tensor:
    """(V_new, ...) rows of ``tensor`` by old id; rows with no old id (-1) get the mean row."""
    taken = old_ids >= 0  # (V_new,)
    out = (
        tensor.float()
        .mean(dim=0, keepdim=True)
        .to(tensor.dtype)
        .repeat(old_ids.shape[0], *([1] * (tensor.ndim - 1)))
    )
    out[taken] = tensor[old_ids[taken]]
    return out


def open_backend(
    source: io.ModelSource,
    *,
    allow_pickle: bool = False,
    progress: bool = True,
    reindex: bool = False,
) -> Backend:
    """Streaming for a safetensors checkpoint; anything else (GGUF, pickle) is loaded whole.

    Args:
        source: the resolved model.
        allow_pickle: allow pickle weights (loaded whole).
        progress: show progress bars while loading and saving.
        reindex: re-index every token-indexed tensor, not only the embeddings (trim, extend).
            A Hugging Face directory is then always streamed: only streaming can re-index.

    Returns:
        The backend that reads ``source`` and writes the new checkpoint.
    """
    if source.kind is io.ModelKind.HF_DIR and (reindex or io.has_safetensors(source.path)):
        return _Streamed(source, progress=progress, reindex=reindex)
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
    gguf: str | None = None,
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
        gguf: also write ``out/model.gguf`` in this format (``f32``, ``f16``, ``q8_0``).

    Returns:
        The :class:`GraftReport` also written to ``out/report.json``.

    Raises:
        TokengraftError: bad input; parameters, flags and ``out`` are checked before any load.
    """
    timer = _Timer()
    spec = get_method(config.method)
    spec.resolve_params(config.params)
    resources = replace(resources or Resources(), allow_pickle=allow_pickle)
    resources.check(spec.needs)
    source = io.resolve_model(model, allow_pickle=allow_pickle)
    protect = [source.path, Path(new_tokenizer), *resources.paths()]
    with checkpoint_output_dir(out, force=force, protect=protect, gguf=gguf) as tmp:
        old_tok = io.load_tokenizer(model)
        new_tok = io.load_tokenizer(new_tokenizer, encoding=encoding)
        timer.lap("load_tokenizers")
        given = {n for n in spec.optional if getattr(resources, n.value, None)}
        extras = load_extras(spec.needs | given, resources, new_tok)  # all but the base model
        timer.lap("load_resources")
        backend = open_backend(source, allow_pickle=allow_pickle, progress=progress)
        weights = backend.weights()
        extras = replace(extras, model=backend.full_model()) if Need.MODEL in spec.needs else extras
        timer.lap("load_model")
        embeddings = graft_embeddings(
            weights, old_tok, new_tok, config, extras=extras, progress=progress
        )
        timer.lap("graft")
        warnings = backend.write(tmp, old_tok, new_tok, embeddings, progress).warnings
        timer.lap("write")
        report = _report(model, new_tokenizer, config, embeddings, weights, warnings, timer)
        write_records(tmp, report, embeddings)
    return report


@contextmanager
def checkpoint_output_dir(
    out: Path, *, force: bool, protect: Sequence[Path], gguf: str | None = None
) -> Iterator[Path]:
    """:func:`io.atomic_output_dir`, and with ``gguf``, ``model.gguf`` written before the rename.

    The body writes a checkpoint into the yielded temporary directory; ``model.gguf`` is then
    made from it there, so the GGUF file appears with the rest of the output or not at all.

    Args:
        out: the output directory.
        force: replace a non-empty ``out``.
        protect: the command's input paths (refused as ``out``).
        gguf: the GGUF weight format (``f32``, ``f16``, ``q8_0``); None: no GGUF file.

    Yields:
        The temporary directory, renamed to ``out`` when the body and the GGUF file succeed.

    Raises:
        TokengraftError: a refused ``out``, or a checkpoint GGUF export does not support.
    """
    with io.atomic_output_dir(out, force=force, protect=protect) as tmp:
        yield tmp
        if gguf is not None:
            name = Path(out).expanduser().name  # general.name, not the temporary directory's
            io.write_gguf(tmp, tmp / GGUF_FILE, gguf, force=True, name=name)


def _report(
    model: str,
    new_tokenizer: str,
    config: GraftConfig,
    embeddings: EmbeddingGraft,
    weights: Mapping[Slot, torch.Tensor],
    warnings: tuple[str, ...],
    timer: _Timer,
) -> GraftReport:
    """The report of a finished graft, its timings closed now and peak memory read now."""
    return build_report(
        model=model,
        new_tokenizer=new_tokenizer,
        config=config,
        counts=embeddings.counts(),
        old_vocab_size=int(weights[Slot.INPUT].shape[0]),
        tied=Slot.OUTPUT not in embeddings.weights,
        seconds={**embeddings.seconds, **timer.seconds, "total": timer.total()},
        warnings=warnings,
        peak_rss_mb=peak_rss_mb(),
    )
