"""``tokengraft eval model`` and ``tokengraft eval tokenizer``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tokengraft.cli.generate import Canonical, MaxHypotheses, Prune, byte_config
from tokengraft.cli.options import (
    AllowPickle,
    AsJson,
    HtmlOut,
    Model,
    Quiet,
    TokenizerEncoding,
    check_positive,
)
from tokengraft.config import EvalConfig
from tokengraft.errors import TokengraftError

app = typer.Typer(help="Evaluate models (bits per byte) and tokenizers.", no_args_is_help=True)


@app.command("model")
def eval_model_cmd(
    model: Model,
    texts: Annotated[list[Path], typer.Option("--texts", help="UTF-8 text files.")],
    as_json: AsJson = False,
    window: Annotated[
        int | None,
        typer.Option(help="Tokens per forward pass (default: 512, capped by the context)."),
    ] = None,
    stride: Annotated[int | None, typer.Option(help="Window stride (default: window/2).")] = None,
    batch_size: Annotated[
        int, typer.Option(help="Windows per forward pass.")
    ] = EvalConfig.batch_size,
    max_bytes: Annotated[
        int | None, typer.Option(help="Score only the first N bytes of a file.")
    ] = None,
    allow_pickle: AllowPickle = False,
    quiet: Quiet = False,
    byte_level: Annotated[
        bool, typer.Option(help="Byte-level probabilities, any span (docs/bytes.md).")
    ] = False,
    suffix_from: Annotated[
        int | None, typer.Option(help="With --byte-level: score bytes from this offset on.")
    ] = None,
    prune: Prune = None,
    max_hypotheses: MaxHypotheses = None,
    canonical: Canonical = None,
    html: HtmlOut = None,
) -> None:
    """Bits per byte of MODEL on each text file (comparable across tokenizers)."""
    from tokengraft import io
    from tokengraft.eval.lm import score_texts

    check_positive(max_bytes, "--max-bytes")
    if not byte_level and suffix_from is not None or (suffix_from or 0) < 0:
        raise TokengraftError("--suffix-from takes an offset >= 0 and needs --byte-level")
    config = byte_config(prune, max_hypotheses, canonical, byte_level=byte_level)
    source = io.resolve_model(model, allow_pickle=allow_pickle)
    docs = io.read_texts(texts, max_bytes=max_bytes)
    if byte_level:
        from tokengraft.cli.generate import eval_byte_level

        opts = {"as_json": as_json, "allow_pickle": allow_pickle, "quiet": quiet}
        return eval_byte_level(model, docs, config, suffix_from=suffix_from, **opts)
    cfg = _eval_config(io.model_context(source), window, stride, batch_size, max_bytes)
    tok = io.load_tokenizer(model)
    lm = io.load_model(source, allow_pickle=allow_pickle, progress=not quiet)
    result = score_texts(lm, tok, docs, cfg, progress=not quiet)
    if html is not None:
        _write_model_html(html, model, result.to_dict())
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for score in [*result.per_file, result.overall]:
        typer.echo(
            f"{score.name:<40} {score.bits_per_byte:8.4f} bpb  {score.n_tokens:>9} tokens  "
            f"{score.bytes_per_token:6.2f} bytes/token"
        )


def _write_model_html(path: Path, model: str, result: dict[str, object]) -> None:
    """``--html``: the scores as one static page."""
    from tokengraft.report.html import write_html
    from tokengraft.report.sections import model_eval_sections

    write_html(path, f"tokengraft eval model {model}", model_eval_sections(model, result))


def _eval_config(
    context: int | None,
    window: int | None,
    stride: int | None,
    batch_size: int,
    max_bytes: int | None,
) -> EvalConfig:
    """The evaluation settings, checked against the model's context before the model is loaded.

    Raises:
        TokengraftError: a window longer than the context, or a bad stride or batch size.
    """
    from tokengraft.eval.metrics import window_spans

    if window is None:
        window = min(EvalConfig.window, context or EvalConfig.window)
    if context is not None and window > context:
        raise TokengraftError(f"--window {window} exceeds the model's context of {context} tokens")
    stride = stride if stride is not None else max(1, window // 2)
    window_spans(0, window, stride)  # validates window and stride
    check_positive(batch_size, "--batch-size")
    return EvalConfig(window=window, stride=stride, batch_size=batch_size, max_bytes=max_bytes)


@app.command("tokenizer")
def eval_tokenizer_cmd(
    tokenizers: Annotated[list[str], typer.Argument(help="Tokenizers to compare.")],
    texts: Annotated[list[Path], typer.Option("--texts", help="UTF-8 text files.")],
    parallel: Annotated[
        bool, typer.Option(help="The files are translations: add parity and Gini.")
    ] = False,
    english: Annotated[
        Path | None, typer.Option(help="With --parallel: the English file (default: by name).")
    ] = None,
    as_json: AsJson = False,
    html: HtmlOut = None,
    max_bytes: Annotated[
        int | None, typer.Option(help="Use only the first N bytes of a file.")
    ] = None,
    encoding: TokenizerEncoding = None,
) -> None:
    """Fertility, compression, efficiency, vocabulary use and round trip of each tokenizer."""
    from tokengraft import io
    from tokengraft.eval.compare import TokenizerEvalConfig, evaluate_tokenizers
    from tokengraft.eval.parallel import language_of

    check_positive(max_bytes, "--max-bytes")
    if english is not None and not parallel:
        raise TokengraftError("--english needs --parallel")
    docs = io.read_texts(texts, max_bytes=max_bytes)
    languages = {name: language_of(str(path)) for (name, _), path in zip(docs, texts, strict=True)}
    cfg = TokenizerEvalConfig(parallel=parallel, english=_english_name(english, texts, docs))
    toks = [(spec, io.load_tokenizer(spec, encoding=encoding)) for spec in tokenizers]
    result = evaluate_tokenizers(toks, docs, cfg, languages=languages).to_dict()
    if html is not None:
        _write_html(html, result)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print_tokenizer_table(result)
    for warning in result["warnings"]:
        typer.echo(f"warning: {warning}", err=True)


def _english_name(
    english: Path | None, texts: list[Path], docs: list[tuple[str, str]]
) -> str | None:
    """The name ``read_texts`` gave the ``--english`` file (None without the flag)."""
    if english is None:
        return None
    for path, (name, _) in zip(texts, docs, strict=True):
        if path.expanduser().resolve() == english.expanduser().resolve():
            return name
    raise TokengraftError(f"--english {english} is not one of the --texts files")


def _write_html(out: Path, data: dict[str, Any]) -> None:
    from tokengraft.report.html import write_html
    from tokengraft.report.sections import tokenizer_sections

    write_html(out, "tokengraft eval tokenizer", tokenizer_sections(data))


def _print_tokenizer_table(data: dict[str, Any]) -> None:
    typer.echo(
        f"{'tokenizer':<24} {'file':<20} {'lang':<8} {'fertility':>14} {'bytes/tok':>9} "
        f"{'renyi':>6} {'shannon':>7} {'vocab':>6} {'split':>6} {'unk':>6} {'bytefb':>6} rt"
    )
    for r in data["rows"]:
        fert = f"{r['fertility']:.3f}/{r['fertility_unit']}"
        typer.echo(
            f"{r['tokenizer'][-24:]:<24} {r['file'][-20:]:<20} {r['language'][:8]:<8} "
            f"{fert:>14} {r['bytes_per_token']:9.3f} {r['renyi_efficiency']:6.3f} "
            f"{r['shannon_efficiency']:7.3f} {r['vocab_utilisation']:6.3f} "
            f"{r['split_word_share']:6.3f} {r['unk_rate']:6.3f} {r['byte_fallback_rate']:6.3f} "
            f"{'yes' if r['roundtrip'] else 'NO'}"
        )
    for name, p in (data["parallel"] or {}).items():
        parity = "  ".join(f"{lang} {v:.2f}" for lang, v in p["parity"].items())
        typer.echo(f"parity {name}: {parity}  (Gini {p['gini']:.3f})")
    for name, s in data["schemes"].items():
        typer.echo(f"schemes {name}: digits: {s['digits']}; {s['whitespace']}")
