"""``tokengraft eval model`` and ``tokengraft eval tokenizer``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tokengraft.cli.options import (
    AllowPickle,
    AsJson,
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
) -> None:
    """Bits per byte of MODEL on each text file (comparable across tokenizers)."""
    from tokengraft import io
    from tokengraft.eval.lm import score_texts

    check_positive(max_bytes, "--max-bytes")
    source = io.resolve_model(model, allow_pickle=allow_pickle)
    docs = io.read_texts(texts, max_bytes=max_bytes)
    cfg = _eval_config(io.model_context(source), window, stride, batch_size, max_bytes)
    tok = io.load_tokenizer(model)
    lm = io.load_model(source, allow_pickle=allow_pickle, progress=not quiet)
    result = score_texts(lm, tok, docs, cfg, progress=not quiet)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for score in [*result.per_file, result.overall]:
        typer.echo(
            f"{score.name:<40} {score.bits_per_byte:8.4f} bpb  {score.n_tokens:>9} tokens  "
            f"{score.bytes_per_token:6.2f} bytes/token"
        )


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
    as_json: AsJson = False,
    max_bytes: Annotated[
        int | None, typer.Option(help="Use only the first N bytes of a file.")
    ] = None,
    encoding: TokenizerEncoding = None,
) -> None:
    """Fertility, bytes per token, Renyi efficiency and round-trip of each tokenizer."""
    from tokengraft import io
    from tokengraft.eval.tokenizer import evaluate_tokenizer

    check_positive(max_bytes, "--max-bytes")
    docs = io.read_texts(texts, max_bytes=max_bytes)
    results = {
        spec: evaluate_tokenizer(io.load_tokenizer(spec, encoding=encoding), docs).to_dict()
        for spec in tokenizers
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
