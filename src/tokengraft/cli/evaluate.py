"""``tokengraft eval model`` and ``tokengraft eval tokenizer``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tokengraft.cli.options import AllowPickle, AsJson, Model, Quiet
from tokengraft.config import EvalConfig

app = typer.Typer(help="Evaluate models (bits per byte) and tokenizers.", no_args_is_help=True)


@app.command("model")
def eval_model_cmd(
    model: Model,
    texts: Annotated[list[Path], typer.Option("--texts", help="UTF-8 text files.")],
    as_json: AsJson = False,
    window: Annotated[
        int | None, typer.Option(help="Tokens per forward pass (default: 512, capped by the context).")
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


@app.command("tokenizer")
def eval_tokenizer_cmd(
    tokenizers: Annotated[list[str], typer.Argument(help="Tokenizers to compare.")],
    texts: Annotated[list[Path], typer.Option("--texts", help="UTF-8 text files.")],
    as_json: AsJson = False,
    max_bytes: Annotated[
        int | None, typer.Option(help="Use only the first N bytes of a file.")
    ] = None,
) -> None:
    """Fertility, bytes per token, Renyi efficiency and round-trip of each tokenizer."""
    from tokengraft import io
    from tokengraft.eval.tokenizer import evaluate_tokenizer

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
