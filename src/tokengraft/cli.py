"""The `tokengraft` command: parse flags, build configs, call the library, print.

Every user-caused failure is a :class:`TokengraftError`, printed as one line (exit status 2).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from tokengraft.config import EvalConfig, GraftConfig
from tokengraft.errors import TokengraftError

app = typer.Typer(
    help="Make pretrained language models tokenizer-flexible.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
eval_app = typer.Typer(help="Evaluate models (bits per byte) and tokenizers.", no_args_is_help=True)
corpus_app = typer.Typer(
    help="Build plain-text corpora from UDHR and Debian docs.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")
app.add_typer(corpus_app, name="corpus")

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; values parsed as JSON where they are JSON (numbers, booleans), else text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TokengraftError(f"--param takes key=value, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _load_config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    from tokengraft import io

    data = io.read_json(path)
    if not isinstance(data, dict):
        raise TokengraftError(f"{path}: a config file holds a JSON object")
    return data


@app.command("graft")
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
    force: Annotated[bool, typer.Option(help="Replace a non-empty OUT.")] = False,
    allow_pickle: Annotated[bool, typer.Option(help="Allow pickle (.bin) weights.")] = False,
    quiet: Quiet = False,
) -> None:
    """Replace MODEL's tokenizer by NEW_TOKENIZER and write a Hugging Face checkpoint to OUT."""
    from tokengraft.corpus import cache_dir
    from tokengraft.methods import get_method
    from tokengraft.pipeline import graft_pretrained
    from tokengraft.resources import Resources

    fields = _load_config_file(config)
    if method is not None:
        fields["method"] = method
    if seed is not None:
        fields["seed"] = seed
    if untie:
        fields["untie"] = True
    fields["params"] = {**fields.get("params", {}), **_parse_params(param)}
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


@eval_app.command("model")
def eval_model_cmd(
    model: Annotated[str, typer.Argument(help="HF directory, .gguf file, or 'smollm2-135m'.")],
    texts: Annotated[list[Path], typer.Option("--texts", help="UTF-8 text files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    window: Annotated[
        int | None, typer.Option(help="Tokens per forward pass [default: 512, capped by context].")
    ] = None,
    stride: Annotated[int | None, typer.Option(help="Window stride [default: window/2].")] = None,
    batch_size: Annotated[
        int, typer.Option(help="Windows per forward pass.")
    ] = EvalConfig.batch_size,
    max_bytes: Annotated[
        int | None, typer.Option(help="Score only the first N bytes of a file.")
    ] = None,
    allow_pickle: Annotated[bool, typer.Option(help="Allow pickle (.bin) weights.")] = False,
    quiet: Quiet = False,
) -> None:
    """Bits per byte of MODEL on each text file (comparable across tokenizers)."""
    from tokengraft import io
    from tokengraft.evaluate import score_texts

    docs = io.read_texts(texts, max_bytes=max_bytes)
    lm = io.load_model(model, allow_pickle=allow_pickle)
    if window is None:
        context = getattr(lm.config, "max_position_embeddings", None) or EvalConfig.window
        window = min(EvalConfig.window, int(context))
    stride = stride if stride is not None else max(1, window // 2)
    cfg = EvalConfig(window=window, stride=stride, batch_size=batch_size, max_bytes=max_bytes)
    tok = io.load_tokenizer(model)
    result = score_texts(lm, tok, docs, cfg, progress=not quiet)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for score in [*result.per_file, result.overall]:
        typer.echo(
            f"{score.name:<40} {score.bits_per_byte:8.4f} bpb  {score.n_tokens:>9} tokens  "
            f"{score.bytes_per_token:6.2f} bytes/token"
        )


@eval_app.command("tokenizer")
def eval_tokenizer_cmd(
    tokenizers: Annotated[list[str], typer.Argument(help="Tokenizers to compare.")],
    texts: Annotated[list[Path], typer.Option("--texts", help="UTF-8 text files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    max_bytes: Annotated[
        int | None, typer.Option(help="Use only the first N bytes of a file.")
    ] = None,
) -> None:
    """Fertility, bytes per token, Renyi efficiency and round-trip of each tokenizer."""
    from tokengraft import io
    from tokengraft.evaluate import evaluate_tokenizer

    docs = io.read_texts(texts, max_bytes=max_bytes)
    results = {
        spec: evaluate_tokenizer(io.load_tokenizer(spec), docs).to_dict() for spec in tokenizers
    }
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for spec, res in results.items():
        o = res["overall"]
        typer.echo(
            f"{spec:<40} fertility {o['fertility']:.3f}  bytes/token {o['bytes_per_token']:.3f}  "
            f"renyi {o['renyi_efficiency']:.3f}  round-trip {o['roundtrip']}"
        )


@app.command("train-tokenizer")
def train_tokenizer_cmd(
    files: Annotated[list[Path], typer.Argument(help="UTF-8 training text files.")],
    vocab_size: Annotated[int, typer.Option(help="Vocabulary size incl. special tokens.")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    like: Annotated[
        str, typer.Option(help="Take special tokens and roles from this model.")
    ] = "smollm2-135m",
    min_frequency: Annotated[int, typer.Option(help="Minimum pair frequency.")] = 2,
    force: Annotated[bool, typer.Option(help="Replace a non-empty OUT.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train a byte-level BPE tokenizer (GPT-2 pre-tokenisation) with a model's special tokens."""
    from tokengraft import io
    from tokengraft.train import config_from_model_tokenizer, train_byte_level_bpe

    docs = [text for _, text in io.read_texts(files)]
    cfg = replace(
        config_from_model_tokenizer(io.load_tokenizer(like), vocab_size),
        min_frequency=min_frequency,
    )
    with io.atomic_output_dir(out, force=force) as tmp:
        tok = train_byte_level_bpe(docs, cfg, progress=not quiet)
        io.save_tokenizer(tok, tmp)
    typer.echo(f"wrote {out}: {len(tok)} tokens ({len(cfg.special_tokens)} special)")


@app.command("methods")
def methods_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
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


@corpus_app.command("fetch")
def corpus_fetch_cmd(
    lang: Annotated[
        list[str] | None, typer.Option("--lang", help="Languages (default: all).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if cached.")] = False,
    quiet: Quiet = False,
) -> None:
    """Download and build the corpora into $TOKENGRAFT_CACHE (default ~/.cache/tokengraft)."""
    from tokengraft.corpus import LANGUAGES, fetch_corpora

    files = fetch_corpora(tuple(lang or LANGUAGES), force=force, progress=not quiet)
    for code, entry in files.items():
        typer.echo(
            f"{code:<5} train {entry.n_train_bytes:>10,} bytes  held-out {entry.n_heldout_bytes:>9,} "
            f"bytes  {entry.train.parent}"
        )


@app.command("demo")
def demo_cmd(
    out: Annotated[Path | None, typer.Option(help="Where the grafted model goes.")] = None,
    vocab_size: Annotated[int, typer.Option(help="Size of the new German tokenizer.")] = 32_000,
    method: Annotated[str, typer.Option(help="Initialisation method.")] = "subword_mean",
    max_bytes: Annotated[int, typer.Option(help="Held-out bytes scored per language.")] = 60_000,
    quiet: Quiet = False,
) -> None:
    """The main job: train a German tokenizer, graft SmolLM2 onto it, compare bits per byte."""
    from tokengraft.demo import DemoConfig, format_table, run_demo

    cfg = DemoConfig(vocab_size=vocab_size, method=method, max_bytes=max_bytes, out=out)
    rows = run_demo(cfg, progress=not quiet, say=typer.echo)
    typer.echo(format_table(rows))


# Options that take several files, as in `--texts a.txt b.txt` (click options take one value each).
_MULTI_VALUE = frozenset({"--texts", "--corpus", "--source-corpus"})


def expand_multi_value(argv: list[str]) -> list[str]:
    """Rewrite ``--texts a b`` as ``--texts a --texts b`` (values run until the next ``-`` flag)."""
    out: list[str] = []
    current: str | None = None
    for arg in argv:
        if arg.startswith("-"):
            current = arg if arg in _MULTI_VALUE else None
            out.append(arg)
        elif current is not None and out[-1] != current:
            out += [current, arg]
        else:
            out.append(arg)
    return out


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = expand_multi_value(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="tokengraft")
    except TokengraftError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except SystemExit as exc:  # click's own exit, usage errors included (status 2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
