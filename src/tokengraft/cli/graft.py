"""``tokengraft graft`` and ``tokengraft methods``."""

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
from tokengraft.cli.options import (
    AllowPickle,
    AsJson,
    Force,
    HtmlOut,
    Model,
    Quiet,
    TokenizerEncoding,
    load_config_file,
    parse_params,
)
from tokengraft.cli.schemes import echo_scheme_warnings
from tokengraft.config import GraftConfig
from tokengraft.errors import TokengraftError

if TYPE_CHECKING:  # annotations only: the command imports what it runs lazily (fast --help)
    from tokengraft.report.record import GraftReport

# The arguments and options of `tokengraft graft`; the resource flags (--donor to
# --max-corpus-bytes) are the ones tokengraft.config.NEED_FLAGS names.
NewTokenizer = Annotated[str, typer.Argument(help="Tokenizer dir/file, .model, .tiktoken, .gguf.")]
Out = Annotated[Path, typer.Argument(help="Output directory (written atomically).")]
Method = Annotated[str | None, typer.Option(help="Initialisation method (tokengraft methods).")]
Seed = Annotated[int | None, typer.Option(help="Random seed.")]
Params = Annotated[list[str], typer.Option("--param", "-p", help="Method parameter key=value.")]
ConfigFile = Annotated[Path | None, typer.Option(help="JSON file with GraftConfig fields.")]
Donor = Annotated[str | None, typer.Option(help="Donor model using NEW_TOKENIZER.")]
Corpus = Annotated[list[Path], typer.Option(help="Target-language text file(s).")]
SourceCorpus = Annotated[list[Path], typer.Option(help="Text file(s) in the model's language.")]
Dictionary = Annotated[Path | None, typer.Option(help="source<TAB>target word pairs.")]
AuxModel = Annotated[
    str | None, typer.Option(help="Auxiliary embedding model dir, or all-minilm-l6-v2.")
]
MaxCorpusBytes = Annotated[int | None, typer.Option(help="Bytes read per corpus file.")]
Untie = Annotated[bool, typer.Option(help="Give a tied model its own output head.")]


def graft_cmd(
    model: Model,
    new_tokenizer: NewTokenizer,
    out: Out,
    method: Method = None,
    seed: Seed = None,
    param: Params = [],  # noqa: B006
    config: ConfigFile = None,
    donor: Donor = None,
    corpus: Corpus = [],  # noqa: B006
    source_corpus: SourceCorpus = [],  # noqa: B006
    dictionary: Dictionary = None,
    aux_model: AuxModel = None,
    max_corpus_bytes: MaxCorpusBytes = None,
    untie: Untie = False,
    force: Force = False,
    allow_pickle: AllowPickle = False,
    encoding: TokenizerEncoding = None,
    gguf: GGUFFlag = False,
    gguf_type: GGUFTypeFlag = DEFAULT_TYPE,
    html: HtmlOut = None,
    quiet: Quiet = False,
) -> None:
    """Replace MODEL's tokenizer by NEW_TOKENIZER and write a Hugging Face checkpoint to OUT."""
    from tokengraft.grafting.inputs import Resources
    from tokengraft.grafting.pipeline import graft_pretrained
    from tokengraft.io.cache import cache_dir

    cfg = _graft_config(config, method=method, seed=seed, untie=untie, params=param)
    if gguf:
        check_gguf_flag(model, new_tokenizer, gguf_type, encoding)
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
        encoding=encoding,
        gguf=gguf_request(gguf, gguf_type),
    )
    _echo_report(out, report)
    echo_scheme_warnings(model, new_tokenizer, encoding=encoding)
    echo_checkpoint_gguf(out, gguf_request(gguf, gguf_type))
    if html is not None:
        from tokengraft.report.html import write_html
        from tokengraft.report.sections import graft_sections

        write_html(html, f"tokengraft graft: {out}", graft_sections(report.to_dict()))


def _graft_config(
    path: Path | None, *, method: str | None, seed: int | None, untie: bool, params: list[str]
) -> GraftConfig:
    """The graft configuration: the JSON file at ``path``, overridden by the command-line flags.

    Args:
        path: a JSON object of :class:`GraftConfig` fields (None: defaults only).
        method: ``--method``, if given.
        seed: ``--seed``, if given.
        untie: ``--untie``; only ever turns untying on.
        params: ``--param key=value`` pairs, merged over the file's ``params``.

    Returns:
        The configuration, its method checked to exist before anything is loaded.

    Raises:
        TokengraftError: a bad file, an unknown field or method, or a malformed parameter.
    """
    from tokengraft.methods import get_method

    fields = load_config_file(path)
    if method is not None:
        fields["method"] = method
    if seed is not None:
        fields["seed"] = seed
    if untie:
        fields["untie"] = True
    fields["params"] = {**fields.get("params", {}), **parse_params(params)}
    try:
        cfg = GraftConfig(**fields)
    except TypeError as exc:
        raise TokengraftError(f"bad graft config: {exc}") from None
    # fail fast on an unknown method or a bad parameter, before loading any model
    get_method(cfg.method).resolve_params(cfg.params)
    return cfg


def _echo_report(out: Path, report: GraftReport) -> None:
    """One summary line on stdout, then each warning on stderr."""
    c = report.counts
    typer.echo(
        f"wrote {out}: {report.old_vocab_size} -> {report.new_vocab_size} tokens "
        f"({c['copied']} copied, {c['role']} by role, {c['computed']} computed, "
        f"{c['fallback']} fallback) with {report.config['method']} in "
        f"{report.seconds['total']:.1f}s"
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
