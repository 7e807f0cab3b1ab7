"""``tokengraft generate`` and the byte-level branch of ``tokengraft eval model``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from tokengraft.cli.options import AllowPickle, AsJson, Model, Quiet, check_positive
from tokengraft.errors import TokengraftError

if TYPE_CHECKING:
    from tokengraft.bytes import ByteLM


def _byte_lm(model: str, *, allow_pickle: bool, quiet: bool) -> ByteLM:
    from tokengraft import io
    from tokengraft.bytes import ByteLM

    source = io.resolve_model(model, allow_pickle=allow_pickle)
    tok = io.load_tokenizer(model)
    return ByteLM(io.load_model(source, allow_pickle=allow_pickle, progress=not quiet), tok)


def generate_cmd(
    model: Model,
    prompt: Annotated[str, typer.Option(help="The text to continue (may end mid-word).")],
    byte_level: Annotated[
        bool,
        typer.Option(help="Generate byte by byte (token healing) instead of token by token."),
    ] = False,
    max_bytes: Annotated[int, typer.Option(help="Generate at most this many bytes.")] = 64,
    temperature: Annotated[
        float, typer.Option(help="0: the most likely next byte/token; above 0: sample.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the sampler.")] = 0,
    as_json: AsJson = False,
    allow_pickle: AllowPickle = False,
    quiet: Quiet = False,
) -> None:
    """Continue --prompt with MODEL; --byte-level lets the prompt end inside a token."""
    from tokengraft.bytes import generate_bytes, generate_tokens

    check_positive(max_bytes, "--max-bytes")
    if temperature < 0:
        raise TokengraftError(f"--temperature must be >= 0, got {temperature}")
    lm = _byte_lm(model, allow_pickle=allow_pickle, quiet=quiet)
    data = prompt.encode("utf-8")
    if byte_level:
        out = generate_bytes(lm, data, max_bytes=max_bytes, temperature=temperature, seed=seed)
    else:
        out = generate_tokens(
            lm.model, lm.tokenizer, data, max_bytes=max_bytes, temperature=temperature, seed=seed
        )
    text = out.text.decode("utf-8", errors="replace")
    if as_json:
        record: dict[str, object] = {
            "prompt": prompt,
            "continuation": text,
            "continuation_hex": out.text.hex(),
        }
        record |= {"ended": out.ended, "byte_level": byte_level, "seconds": out.seconds}
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    typer.echo(prompt + text)


def eval_byte_level(
    model: str,
    docs: list[tuple[str, str]],
    *,
    suffix_from: int | None,
    as_json: bool,
    allow_pickle: bool,
    quiet: bool,
) -> None:
    """``eval model --byte-level``: bits per byte of each text's bytes from ``suffix_from`` on.

    Raises:
        TokengraftError: an offset that leaves nothing to score, or an unexpressible byte.
    """
    from tokengraft.bytes.score import overall, score_span

    start = suffix_from or 0
    data = [(name, text.encode("utf-8")) for name, text in docs]
    for name, raw in data:
        if start >= len(raw):
            raise TokengraftError(f"--suffix-from {start}: {name} has only {len(raw)} bytes")
    lm = _byte_lm(model, allow_pickle=allow_pickle, quiet=quiet)
    scores = [score_span(lm, name, raw, start=start) for name, raw in data]
    total = overall(scores)
    if as_json:
        out = {"per_file": [s.to_dict() for s in scores], "overall": total.to_dict()}
        typer.echo(json.dumps(out | {"byte_level": True}, indent=2))
        return
    for s in [*scores, total]:
        typer.echo(
            f"{s.name:<40} {s.bits_per_byte:8.4f} bpb  {s.n_bytes:>9} bytes scored  "
            f"{s.forwarded_tokens / s.n_bytes:6.2f} tokens forwarded/byte"
        )
