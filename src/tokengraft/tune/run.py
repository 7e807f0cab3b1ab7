"""Disk to disk: continue training a checkpoint's rows and write checkpoints that can resume.

:func:`tune_checkpoint` reads a Hugging Face directory (a graft, or an extended or trimmed
vocabulary), trains the rows its ``tokens.tsv`` names as computed or fallback (or every row),
and writes OUT atomically every ``checkpoint_every`` steps and at the end: the weights (every
tensor but the embeddings copied byte for byte from CHECKPOINT), the checkpoint's other files
(configs, tokenizer, ``tokens.tsv``, ``report.json``), ``tune.json`` and ``train_state/``.
CHECKPOINT is only read. Under ``torchrun`` every process runs this function; process 0 writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft import io
from tokengraft.config import RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.io import training as disk
from tokengraft.io.tokenizers import load_tokenizer_path
from tokengraft.tune import distributed
from tokengraft.tune.align import distill_data
from tokengraft.tune.config import RUN_FIELDS, TuneConfig, flag
from tokengraft.tune.data import lm_data
from tokengraft.tune.device import place, resolve_device
from tokengraft.tune.distributed import Ranks
from tokengraft.tune.heldout import record_bpb
from tokengraft.tune.loop import Every, fit
from tokengraft.tune.record import TuneReport
from tokengraft.tune.state import restore, state_meta, state_tensors
from tokengraft.tune.trainer import Trainer, create_trainer

log = logging.getLogger(__name__)

_TRAINED = (RowSource.COMPUTED, RowSource.FALLBACK)
_INPUT_NAMES = {
    "checkpoint": "CHECKPOINT is not the one",
    "texts": "--texts are not the texts",
    "teacher": "--teacher is not the teacher",
}


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What a run reads, named as it was given.

    Attributes:
        checkpoint: the Hugging Face directory whose rows train (never modified).
        texts: ``(name, text)`` training texts.
        teacher: the model to distil from, as typed (None: next-token loss only).
        eval_texts: ``(name, text)`` held-out texts (empty: no held-out score).
    """

    checkpoint: Path
    texts: Sequence[tuple[str, str]]
    teacher: str | None = None
    eval_texts: Sequence[tuple[str, str]] = ()

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the interrupted one."""
        return {
            "checkpoint": str(self.checkpoint.resolve()),
            "texts": io.cache_key(*(text for _, text in self.texts)),
            "teacher": self.teacher,
        }


@dataclass(frozen=True, kw_only=True)
class _Run:
    inputs: Inputs
    out: Path
    trainer: Trainer
    tokenizer: PreTrainedTokenizerBase
    names: io.EmbeddingNames
    progress: bool


def tune_checkpoint(
    checkpoint: Path | str,
    out: Path | str,
    texts: Sequence[Path | str],
    config: TuneConfig = TuneConfig(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    teacher: str | None = None,
    eval_texts: Sequence[Path | str] = (),
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> TuneReport:
    """Train CHECKPOINT's new rows on ``texts`` and write the result, resumably, to ``out``.

    Args:
        checkpoint: a Hugging Face directory; its ``tokens.tsv`` names the rows to train unless
            ``config.all_embeddings``.
        out: the output directory (written whole at every save; never half there).
        texts: training text files.
        config: budget, batch, optimiser, loss weights, device, save and score intervals.
        teacher: distil from this model (packaged name, directory or GGUF) reading the texts
            with its own tokenizer.
        eval_texts: held-out text files scored at the start, every ``config.eval_every`` steps
            and at the end (the first ``config.eval_max_bytes`` bytes of each, when set).
        resume: continue the run saved in ``out`` (its config must match ``config`` except the
            budget, device and intervals).
        force: replace an existing ``out``.
        progress: show a progress bar.

    Returns:
        The report also written to ``out/tune.json``.

    Raises:
        TokengraftError: bad input (see the messages); nothing is written then.
    """
    checkpoint, out = Path(checkpoint).expanduser(), Path(out).expanduser()
    disk.check_checkpoint(checkpoint)
    disk.check_tune_output(out, checkpoint, force=force, resume=resume)
    held_out = io.read_texts(eval_texts, max_bytes=config.eval_max_bytes) if eval_texts else ()
    inputs = Inputs(
        checkpoint=checkpoint, texts=io.read_texts(texts), teacher=teacher, eval_texts=held_out
    )
    if not config.all_embeddings:
        _sources(checkpoint)  # before anything heavy is loaded
    saved = disk.load_train_state(out) if resume else None
    if saved is not None:
        check_same_run(saved.meta, config, inputs)
    ranks = distributed.env_ranks()
    distributed.check_batch(ranks, config.batch_size)
    device = resolve_device(config.device, local_rank=ranks.local_rank)
    distributed.start(ranks, device)
    try:
        run = _prepare(inputs, out, config, ranks, device, progress=progress)
        if saved is not None:
            restore(run.trainer, saved.tensors, saved.meta)
        return _train(run)
    finally:
        distributed.stop(ranks)


def check_same_run(meta: Mapping[str, Any], config: TuneConfig, inputs: Inputs) -> None:
    """Refuse to resume with other inputs or settings than the run being resumed.

    Raises:
        TokengraftError: naming the first setting or input that differs.
    """
    saved = TuneConfig.from_dict(dict(meta["config"])).to_dict()
    given = config.to_dict()
    for name, value in saved.items():
        if name not in RUN_FIELDS and given[name] != value:
            raise TokengraftError(
                f"{flag(name)} {given[name]} differs from the run being resumed ({value}); "
                "drop it, or start over with --force"
            )
    given_inputs = inputs.fingerprint()
    for name, value in meta.get("inputs", {}).items():
        if given_inputs[name] != value:
            raise TokengraftError(
                f"{_INPUT_NAMES[name]} the run being resumed used; pass the same, or start "
                "over with --force"
            )


def resumed_config(out: Path, changes: Mapping[str, Any]) -> TuneConfig:
    """The config of the run saved in ``out``, with ``changes`` (the flags given) applied.

    Raises:
        TokengraftError: ``out`` holds no run to resume.
    """
    out = Path(out).expanduser()
    disk.recover_output(out)
    if not (out / disk.STATE_DIR).is_dir():
        raise TokengraftError(f"--resume: {out} holds no run to resume (no {disk.STATE_DIR}/)")
    meta = disk.load_train_state(out).meta
    return TuneConfig.from_dict(dict(meta["config"])).with_changes(**changes)


def _prepare(
    inputs: Inputs,
    out: Path,
    config: TuneConfig,
    ranks: Ranks,
    device: torch.device,
    *,
    progress: bool,
) -> _Run:
    """Read the tokenizers and texts, then load the models and build the trainer at step 0."""
    tokenizer = load_tokenizer_path(inputs.checkpoint)
    teacher_tok = None if inputs.teacher is None else io.load_tokenizer(inputs.teacher)
    if teacher_tok is None:
        data = lm_data([text for _, text in inputs.texts], tokenizer, config.seq_len)
    else:
        data = distill_data(inputs.texts, tokenizer, teacher_tok, config.seq_len)
    names = io.embedding_names(inputs.checkpoint)
    source = io.ModelSource(
        kind=io.ModelKind.HF_DIR, path=inputs.checkpoint, name=str(inputs.checkpoint)
    )
    model = place(io.load_model(source), device)
    weights = _weights(model, untied=names.output is not None)
    rows = _rows(inputs.checkpoint, int(weights[Slot.INPUT].shape[0]), config)
    teacher = None if inputs.teacher is None else place(io.load_model(inputs.teacher), device)
    trainer = create_trainer(model, weights, rows, data, config, teacher=teacher, ranks=ranks)
    return _Run(
        inputs=inputs,
        out=out,
        trainer=trainer,
        tokenizer=tokenizer,
        names=names,
        progress=progress and ranks.main,
    )


def _weights(model: PreTrainedModel, *, untied: bool) -> dict[Slot, torch.Tensor]:
    """Slot -> the model's (V, D) embedding matrix; the head only when it is its own."""
    weights = {Slot.INPUT: _matrix(model.get_input_embeddings())}
    head = model.get_output_embeddings()
    if untied and head is not None:
        weights[Slot.OUTPUT] = _matrix(head)
    return weights


def _matrix(module: torch.nn.Module) -> torch.Tensor:
    weight = module.weight
    if not isinstance(weight, torch.Tensor):
        raise TokengraftError(f"{type(module).__name__} has no weight matrix")
    return weight.detach()


def _rows(checkpoint: Path, vocab_size: int, config: TuneConfig) -> torch.Tensor:
    """(N,) long: every row with ``all_embeddings``, else the computed and fallback rows.

    Raises:
        TokengraftError: no tokens.tsv (without --all-embeddings), or it names no new row, or
            more rows than the checkpoint has.
    """
    if config.all_embeddings:
        return torch.arange(vocab_size)
    sources = _sources(checkpoint)
    if len(sources) > vocab_size:
        raise TokengraftError(
            f"{checkpoint}/tokens.tsv names {len(sources)} rows, the model has {vocab_size}"
        )
    ids = [i for i, source in enumerate(sources) if source in _TRAINED]
    if not ids:
        raise TokengraftError(
            f"{checkpoint}/tokens.tsv names no computed or fallback row; pass --all-embeddings "
            "to train every row"
        )
    return torch.tensor(ids, dtype=torch.long)


def _sources(checkpoint: Path) -> list[RowSource]:
    sources = disk.read_row_sources(checkpoint)
    if sources is None:
        raise TokengraftError(
            f"{checkpoint} has no tokens.tsv saying which rows are new; pass --all-embeddings "
            "to train every row"
        )
    return sources


def _train(run: _Run) -> TuneReport:
    """Score, fit with periodic saves and scores, score and save the end (process 0 writes)."""
    trainer, main = run.trainer, run.trainer.ranks.main
    held_out = main and bool(run.inputs.eval_texts)
    if held_out and not trainer.history.bpb:
        record_bpb(trainer, run.tokenizer, run.inputs.eval_texts)
    every = []
    if held_out:
        every.append(Every(steps=trainer.config.eval_every, action=lambda t: _score(run)))
    if main:
        every.append(Every(steps=trainer.config.checkpoint_every, action=lambda t: _periodic(run)))
    fit(trainer, every=every, progress=run.progress)
    if held_out and trainer.history.bpb[-1]["step"] != trainer.history.step:
        _score(run)
    return _save(run, finished=True) if main else _report(run, finished=True)


def _periodic(run: _Run) -> None:
    if run.trainer.history.step != run.trainer.config.steps:  # the last step saves anyway
        _save(run)


def _score(run: _Run) -> None:
    bpb = record_bpb(run.trainer, run.tokenizer, run.inputs.eval_texts)
    log.info("step %d: held-out %.4f bits per byte", run.trainer.history.step, bpb)


def _report(run: _Run, *, finished: bool) -> TuneReport:
    trainer = run.trainer
    return TuneReport(
        checkpoint=str(run.inputs.checkpoint),
        teacher=run.inputs.teacher,
        texts=tuple(name for name, _ in run.inputs.texts),
        eval_texts=tuple(name for name, _ in run.inputs.eval_texts),
        config=trainer.config,
        rows=len(trainer.rows.ids),
        slots=tuple(slot.value for slot in trainer.rows.trained),
        processes=trainer.ranks.world,
        device=str(trainer.device),
        history=trainer.history,
        finished=finished,
    )


def _save(run: _Run, *, finished: bool = False) -> TuneReport:
    """Write OUT whole: weights, the checkpoint's other files, tune.json, train_state/."""
    report = _report(run, finished=finished)
    trainer, names = run.trainer, run.names
    matrices = {slot: m.cpu() for slot, m in trainer.matrices().items()}
    replacements = {names.input: matrices[Slot.INPUT]}
    if names.output is not None:
        replacements[names.output] = matrices[Slot.OUTPUT]
    meta = {**state_meta(trainer), "inputs": run.inputs.fingerprint()}
    checkpoint = run.inputs.checkpoint
    with io.atomic_output_dir(run.out, force=True, protect=[checkpoint]) as tmp:
        io.rewrite_checkpoint(checkpoint, tmp, replacements)
        disk.copy_side_files(checkpoint, tmp, skip={disk.REPORT_FILE})
        io.write_json(tmp / disk.REPORT_FILE, report.to_dict())
        disk.save_train_state(tmp, state_tensors(trainer), meta)
    log.info("saved step %d to %s", trainer.history.step, run.out)
    return report
