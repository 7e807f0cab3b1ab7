"""``tokengraft export gguf``: a checkpoint as one GGUF file for llama.cpp, Ollama, LM Studio."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from tokengraft.cli.options import AsJson

DEFAULT_TYPE = "f16"  # llama.cpp's own converter's default: half the size, no measurable loss

app = typer.Typer(help="Export checkpoints to other formats.", no_args_is_help=True)

GGUFTypeOption = Annotated[
    str, typer.Option("--type", help="Weight format: f32, f16 or q8_0 (norms stay f32).")
]
ReplaceFile = Annotated[bool, typer.Option(help="Replace an existing output file.")]


@app.command("gguf")
def export_gguf_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Hugging Face model directory.")],
    out: Annotated[Path, typer.Argument(help="The .gguf file to write (atomically).")],
    gguf_type: GGUFTypeOption = DEFAULT_TYPE,
    force: ReplaceFile = False,
    as_json: AsJson = False,
) -> None:
    """Write CHECKPOINT (a Llama-family or Gemma-3 model) as the GGUF file OUT."""
    from tokengraft.io.gguf_writer import write_gguf

    summary = write_gguf(checkpoint, out, gguf_type, force=force)
    if as_json:
        fields = dataclasses.asdict(summary)
        typer.echo(json.dumps({**fields, "path": str(summary.path)}, indent=2))
        return
    pre = f", pre-tokenizer {summary.pre_tokenizer}" if summary.pre_tokenizer else ""
    typer.echo(
        f"wrote {summary.path}: {summary.arch}, {summary.type.value}, {summary.n_tensors} tensors, "
        f"{summary.n_vocab} tokens ({summary.tokenizer_model}{pre}), "
        f"{summary.n_bytes / 2**20:.1f} MiB"
    )


# `--gguf` for the commands that write a checkpoint directory: graft, trim, extend and tune.
GGUFFlag = Annotated[bool, typer.Option("--gguf", help="Also write OUT/model.gguf (llama.cpp).")]
GGUFTypeFlag = Annotated[
    str, typer.Option("--gguf-type", help="Weight format of model.gguf: f32, f16 or q8_0.")
]


def check_gguf_flag(model: str, new_tokenizer: str, gguf_type: str, encoding: str | None) -> None:
    """Refuse ``--gguf`` before a long run whose result could not be written as GGUF.

    Raises:
        TokengraftError: an unsupported type, model architecture or tokenizer.
    """
    from tokengraft import io
    from tokengraft.io.gguf_writer import check_gguf_export

    check_gguf_export(model, io.load_tokenizer(new_tokenizer, encoding=encoding), gguf_type)


def gguf_request(gguf: bool, gguf_type: str) -> str | None:
    """The weight format the library writes ``model.gguf`` in (None without ``--gguf``)."""
    return gguf_type if gguf else None


def echo_checkpoint_gguf(out: Path, gguf_type: str | None) -> None:
    """Say that ``out/model.gguf`` was written (with the rest of ``out``), if it was asked for."""
    if gguf_type is None:
        return
    path = out / "model.gguf"
    typer.echo(f"wrote {path} ({gguf_type}, {path.stat().st_size / 2**20:.1f} MiB)")
