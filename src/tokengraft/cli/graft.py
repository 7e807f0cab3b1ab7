"""``tokengraft graft`` and ``tokengraft methods``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tokengraft.cli.options import (
    AllowPickle,
    AsJson,
    Force,
    Quiet,
    load_config_file,
    parse_params,
)
from tokengraft.config import GraftConfig
from tokengraft.errors import TokengraftError


def graft_cmd(
    model: Annotated[str, typer.Argument(help="HF directory, .gguf file, or 'smollm2-135m'.")],
    new_tokenizer: Annotated[
        str, typer.Argument(help="Tokenizer dir/file, .model, .tiktoken, .gguf.")
    ],
    out: Annotated[Path, typer.Argument(help="Output directory (written atomically).")],
    method: Annotated[
        str | None, typer.Option(help="Initialisation method (tokengraft methods).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Method parameter key=value.")
    ] = [],  # noqa: B006
    config: Annotated[Path | None, typer.Option(help="JSON file with GraftConfig fields.")] = None,
    donor: Annotated[str | None, typer.Option(help="Donor model using NEW_TOKENIZER.")] = None,
    corpus: Annotated[list[Path], typer.Option(help="Target-language text file(s).")] = [],  # noqa: B006
    source_corpus: Annotated[
        list[Path], typer.Option(help="Text file(s) in the model's language.")
    ] = [],  # noqa: B006
    dictionary: Annotated[Path | None, typer.Option(help="source<TAB>target word pairs.")] = None,
    aux_model: Annotated[str | None, typer.Option(help="Auxiliary embedding model dir.")] = None,
    max_corpus_bytes: Annotated[
        int | None, typer.Option(help="Bytes read per corpus file.")
    ] = None,
    untie: Annotated[bool, typer.Option(help="Give a tied model its own output head.")] = False,
    force: Force = False,
    allow_pickle: AllowPickle = False,
    quiet: Quiet = False,
) -> None:
    """Replace MODEL's tokenizer by NEW_TOKENIZER and write a Hugging Face checkpoint to OUT."""
    from tokengraft.graft.inputs import Resources
    from tokengraft.graft.pipeline import graft_pretrained
    from tokengraft.io.cache import cache_dir
    from tokengraft.methods import get_method

    fields = load_config_file(config)
    if method is not None:
        fields["method"] = method
    if seed is not None:
        fields["seed"] = seed
    if untie:
        fields["untie"] = True
    fields["params"] = {**fields.get("params", {}), **parse_params(param)}
    try:
        cfg = GraftConfig(**fields)
    except TypeError as exc:
        raise TokengraftError(f"bad graft config: {exc}") from None
    get_method(cfg.method)  # fail fast on an unknown name, before loading anything
    resources = Resources(
        donor=donor,
        corpus=tuple(corpus),
        source_corpus=tuple(source_corpus),
        dictionary=dictionary,
        aux_model=aux_model,
        cache_dir=cache_dir() / "methods",
        max_corpus_bytes=max_corpus_bytes,
    )
    report = graft_pretrained(
        model,
        new_tokenizer,
        out,
        cfg,
        force=force,
        allow_pickle=allow_pickle,
        progress=not quiet,
        resources=resources,
    )
    c = report.counts
    typer.echo(
        f"wrote {out}: {report.old_vocab_size} -> {report.new_vocab_size} tokens "
        f"({c['copied']} copied, {c['role']} by role, {c['computed']} computed, "
        f"{c['fallback']} fallback) with {cfg.method} in {report.seconds['total']:.1f}s"
    )
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)


def methods_cmd(
    as_json: AsJson = False,
) -> None:
    """List the initialisation methods."""
    from tokengraft.methods import load_all

    specs = [spec.to_dict() for spec in load_all().values()]
    if as_json:
        typer.echo(json.dumps(specs, indent=2))
        return
    for spec in specs:
        needs = ", ".join(spec["needs"]) or "-"
        typer.echo(f"{spec['name']:<14} needs: {needs:<12} {spec['summary']}")
