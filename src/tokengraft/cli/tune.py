"""``tokengraft tune``: continue training a checkpoint's new rows, resumably, on CPU or GPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tokengraft.cli.export import (
    DEFAULT_TYPE,
    GGUFFlag,
    GGUFTypeFlag,
    check_gguf_flag,
    echo_checkpoint_gguf,
)
from tokengraft.cli.options import AsJson, Force, Quiet
from tokengraft.errors import TokengraftError

if TYPE_CHECKING:  # annotations only: the command imports what it runs lazily (fast --help)
    from tokengraft.tune.config import TuneConfig
    from tokengraft.tune.record import TuneReport

Checkpoint = Annotated[Path, typer.Argument(help="Hugging Face directory (a graft, trim, extend).")]
Out = Annotated[Path, typer.Argument(help="Output directory (rewritten whole at each save).")]
Texts = Annotated[list[Path], typer.Option("--texts", help="Training text file(s).")]
Teacher = Annotated[str | None, typer.Option(help="Distil from this model (its own tokenizer).")]
Steps = Annotated[int | None, typer.Option(help="Optimiser steps (default 60).")]
Minutes = Annotated[float | None, typer.Option(help="Wall minutes (over resumed runs too).")]
AllEmbeddings = Annotated[bool, typer.Option(help="Train every row, not only new ones.")]
Resume = Annotated[bool, typer.Option(help="Continue the run saved in OUT.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.")]
CheckpointEvery = Annotated[int | None, typer.Option(help="Save every N steps (50; 0: end only).")]
EvalTexts = Annotated[list[Path], typer.Option("--eval-texts", help="Held-out text file(s).")]
EvalEvery = Annotated[int | None, typer.Option(help="Score held-out every N steps (50).")]
EvalMaxBytes = Annotated[
    int | None, typer.Option(help="Score only the first N bytes of each --eval-texts file.")
]
Seed = Annotated[int | None, typer.Option(help="Seed of the window sampler (0).")]
Lr = Annotated[float | None, typer.Option(help="Adam learning rate (0.003).")]
Eps = Annotated[float | None, typer.Option(help="Adam epsilon (0.001).")]
BatchSize = Annotated[int | None, typer.Option(help="Windows per step, all processes (4).")]
SeqLen = Annotated[int | None, typer.Option(help="Tokens per window (256).")]
Warmup = Annotated[int | None, typer.Option(help="Warm-up steps (5).")]
LmWeight = Annotated[float | None, typer.Option(help="Weight of the next-token loss (1).")]
DistillWeight = Annotated[float | None, typer.Option(help="Weight of the teacher loss (1).")]


def tune_cmd(
    checkpoint: Checkpoint,
    out: Out,
    texts: Texts = [],  # noqa: B006
    teacher: Teacher = None,
    steps: Steps = None,
    minutes: Minutes = None,
    all_embeddings: AllEmbeddings = False,
    resume: Resume = False,
    force: Force = False,
    device: DeviceOpt = None,
    checkpoint_every: CheckpointEvery = None,
    eval_texts: EvalTexts = [],  # noqa: B006
    eval_every: EvalEvery = None,
    eval_max_bytes: EvalMaxBytes = None,
    seed: Seed = None,
    lr: Lr = None,
    eps: Eps = None,
    batch_size: BatchSize = None,
    seq_len: SeqLen = None,
    warmup: Warmup = None,
    lm_weight: LmWeight = None,
    distill_weight: DistillWeight = None,
    gguf: GGUFFlag = False,
    gguf_type: GGUFTypeFlag = DEFAULT_TYPE,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Train CHECKPOINT's new rows on --texts (next-token loss, or distilled from --teacher)."""
    given = _given(locals())  # first: only the parameters are local yet
    from tokengraft.tune.distributed import env_ranks
    from tokengraft.tune.run import tune_checkpoint

    if not texts:
        raise TokengraftError("no training texts: pass --texts FILE...")
    if force and resume:
        raise TokengraftError("--force starts over and --resume continues: pass one of them")
    if gguf:
        check_gguf_flag(str(checkpoint), str(checkpoint), gguf_type, None)
    report = tune_checkpoint(
        checkpoint,
        out,
        texts,
        _config(out, given, resume=resume),
        teacher=teacher,
        eval_texts=eval_texts,
        resume=resume,
        force=force,
        progress=not quiet,
    )
    if env_ranks().main:
        if gguf:  # the final save only: OUT is complete, model.gguf appears whole or not at all
            from tokengraft.io import write_gguf

            write_gguf(out, out / "model.gguf", gguf_type, force=True)
        typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else _summary(report, out))
        echo_checkpoint_gguf(out, gguf_type if gguf and not as_json else None)


def _given(flags: dict[str, Any]) -> dict[str, Any]:
    """The TuneConfig fields the user gave (flags left out are None or False).

    A budget given replaces the whole budget: ``--minutes`` alone means no step limit.
    """
    from tokengraft.tune.config import TuneConfig

    fields = set(TuneConfig.__dataclass_fields__)
    given = {k: v for k, v in flags.items() if k in fields and v is not None and v is not False}
    if "steps" in given or "minutes" in given:
        given.update(steps=flags["steps"], minutes=flags["minutes"])
    return given


def _config(out: Path, given: dict[str, Any], *, resume: bool) -> TuneConfig:
    """A fresh run's config from the flags, or the resumed run's with the flags applied."""
    from tokengraft.tune.config import TuneConfig
    from tokengraft.tune.run import resumed_config

    return resumed_config(out, given) if resume else TuneConfig(**given)


def _summary(report: TuneReport, out: Path) -> str:
    """One line: rows, steps, tokens, time, loss and held-out score, where it went."""
    history = report.history
    line = (
        f"tuned {report.rows} rows ({', '.join(report.slots)}) for {history.step} steps, "
        f"{history.tokens} tokens, {history.seconds:.1f} s"
    )
    if history.loss:
        line += f"; loss {history.loss[0]:.4f} -> {history.loss[-1]:.4f}"
    if history.bpb:
        first, last = history.bpb[0]["bits_per_byte"], history.bpb[-1]["bits_per_byte"]
        line += f"; held-out {first:.4f} -> {last:.4f} bits per byte"
    return f"{line}; wrote {out}"
