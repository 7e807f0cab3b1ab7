"""``tokengraft trim`` and ``tokengraft extend``: vocabulary operations on a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tokengraft.cli.export import (
    DEFAULT_TYPE,
    GGUFFlag,
    GGUFTypeFlag,
    check_gguf_flag,
    echo_checkpoint_gguf,
    gguf_request,
)
from tokengraft.cli.options import AsJson, Force, Model, Quiet, parse_params
from tokengraft.cli.schemes import echo_scheme_warnings
from tokengraft.config import BEST_DONOR_FREE

if TYPE_CHECKING:  # annotations only: commands import what they run lazily (fast --help)
    from tokengraft.report.vocab import VocabReport

Out = Annotated[Path, typer.Argument(help="Output directory (written atomically).")]
Texts = Annotated[list[Path], typer.Option(help="UTF-8 corpus file(s).")]


def _lines(path: Path | None) -> tuple[str, ...]:
    """The non-empty lines of ``path`` (trailing newline removed, inner spaces kept)."""
    if path is None:
        return ()
    from tokengraft.errors import TokengraftError
    from tokengraft.io import read_texts

    ((_, text),) = read_texts([path])
    lines = tuple(line for line in text.split("\n") if line.strip())
    if not lines:
        raise TokengraftError(f"{path} lists no tokens")
    return lines


def _echo(report: VocabReport, out: Path, as_json: bool, gguf: str | None) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(f"wrote {out}: {report.summary()} in {report.seconds['total']:.1f}s")
        echo_checkpoint_gguf(out, gguf)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)


def _gguf(model: str, gguf: bool, gguf_type: str) -> str | None:
    """The ``--gguf`` format, checked on the model and its tokenizer before the run."""
    if gguf:
        check_gguf_flag(model, model, gguf_type, None)
    return gguf_request(gguf, gguf_type)


def trim_cmd(
    model: Model,
    out: Out,
    texts: Texts = [],  # noqa: B006
    min_count: Annotated[int, typer.Option(help="Keep tokens used this often or more.")] = 1,
    keep_tokens: Annotated[
        Path | None, typer.Option(help="File: one token (or text) to keep per line.")
    ] = None,
    force: Force = False,
    gguf: GGUFFlag = False,
    gguf_type: GGUFTypeFlag = DEFAULT_TYPE,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Drop the tokens TEXTS do not use from MODEL's tokenizer and embeddings; write OUT."""
    from tokengraft.errors import TokengraftError
    from tokengraft.grafting.vocab_ops import trim_pretrained
    from tokengraft.vocab.trim import TrimConfig

    if not texts:
        raise TokengraftError("trim needs --texts FILE... (the corpus to trim to)")
    config = TrimConfig(min_count=min_count, keep=_lines(keep_tokens))
    gguf_out = _gguf(model, gguf, gguf_type)
    report = trim_pretrained(
        model, out, texts, config, force=force, progress=not quiet, gguf=gguf_out
    )
    _echo(report, out, as_json, gguf_out)


def extend_cmd(
    model: Model,
    out: Out,
    texts: Texts = [],  # noqa: B006
    add: Annotated[int | None, typer.Option(help="New tokens to learn from TEXTS.")] = None,
    tokens: Annotated[
        Path | None, typer.Option(help="File: one token to add per line (instead of --add).")
    ] = None,
    method: Annotated[str, typer.Option(help="Graft method of the new rows.")] = BEST_DONOR_FREE,
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Method parameter key=value.")
    ] = [],  # noqa: B006
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    min_frequency: Annotated[int, typer.Option(help="Minimum pair count of new merges.")] = 2,
    force: Force = False,
    gguf: GGUFFlag = False,
    gguf_type: GGUFTypeFlag = DEFAULT_TYPE,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Add tokens to MODEL (continued BPE on TEXTS, or --tokens); old ids and rows unchanged."""
    from tokengraft.config import GraftConfig
    from tokengraft.errors import TokengraftError
    from tokengraft.grafting.vocab_ops import ExtendConfig, extend_pretrained
    from tokengraft.io.cache import cache_dir
    from tokengraft.methods import get_method

    if not texts:
        raise TokengraftError("extend needs --texts FILE... (the domain corpus)")
    if (add is None) == (tokens is None):
        raise TokengraftError("extend needs exactly one of --add N and --tokens FILE")
    get_method(method)
    graft = GraftConfig(method=method, seed=seed, params=parse_params(param))
    config = ExtendConfig(
        add=add or 0, tokens=_lines(tokens), min_frequency=min_frequency, graft=graft
    )
    gguf_out = _gguf(model, gguf, gguf_type)
    report = extend_pretrained(
        model,
        out,
        texts,
        config,
        cache_dir=cache_dir() / "methods",
        force=force,
        progress=not quiet,
        gguf=gguf_out,
    )
    _echo(report, out, as_json, gguf_out)
    echo_scheme_warnings(model, str(out))
