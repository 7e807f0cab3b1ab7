"""``tokengraft generate`` and the byte-level branch of ``tokengraft eval model``."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer

from tokengraft.cli.options import AllowPickle, AsJson, Model, Quiet, check_positive
from tokengraft.errors import TokengraftError

if TYPE_CHECKING:
    from tokengraft.bytes import ByteConfig, ByteLM

Prune = Annotated[
    float | None,
    typer.Option(
        help="With --byte-level: drop a hypothesis whose share of the mass falls below this "
        "(0: keep all; default 1e-06)."
    ),
]
MaxHypotheses = Annotated[
    int | None,
    typer.Option(
        help="With --byte-level: keep at most N hypotheses per byte (0: no cap; default 64)."
    ),
]
Canonical = Annotated[
    bool | None,
    typer.Option(
        "--canonical/--all-tokenizations",
        help="With --byte-level: only canonical tokenizations (the default; BPE tokenizers), "
        "or every tokenization of the bytes (any tokenizer).",
    ),
]


def byte_config(
    prune: float | None, max_hypotheses: int | None, canonical: bool | None, *, byte_level: bool
) -> ByteConfig:
    """The ``ByteConfig`` of the byte-level flags, checked before any model is loaded.

    Raises:
        TokengraftError: a flag without ``--byte-level``, or a value out of range.
    """
    from tokengraft.bytes import ByteConfig

    flags = {"--prune": prune, "--max-hypotheses": max_hypotheses}
    flags["--canonical/--all-tokenizations"] = canonical
    given = [flag for flag, value in flags.items() if value is not None]
    if given and not byte_level:
        raise TokengraftError(f"{given[0]} needs --byte-level")
    if prune is not None and not 0.0 <= prune < 1.0:
        raise TokengraftError(f"--prune must be in [0, 1), got {prune}")
    if max_hypotheses is not None and max_hypotheses < 0:
        raise TokengraftError(f"--max-hypotheses must be >= 0, got {max_hypotheses}")
    if not byte_level:
        return ByteConfig(canonical=False)  # only the vocabulary is used: no pair index
    names = {"prune": prune, "max_hypotheses": max_hypotheses, "canonical": canonical}
    return ByteConfig(**{k: v for k, v in names.items() if v is not None})  # type: ignore[arg-type]


def _byte_lm(model: str, config: ByteConfig, *, allow_pickle: bool, quiet: bool) -> ByteLM:
    from tokengraft import io
    from tokengraft.bytes import ByteLM

    source = io.resolve_model(model, allow_pickle=allow_pickle)
    tok = io.load_tokenizer(model)
    lm = io.load_model(source, allow_pickle=allow_pickle, progress=not quiet)
    return ByteLM(lm, tok, config)


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
    prune: Prune = None,
    max_hypotheses: MaxHypotheses = None,
    canonical: Canonical = None,
    as_json: AsJson = False,
    allow_pickle: AllowPickle = False,
    quiet: Quiet = False,
) -> None:
    """Continue --prompt with MODEL; --byte-level lets the prompt end inside a token."""
    from tokengraft.bytes import generate_bytes, generate_tokens

    check_positive(max_bytes, "--max-bytes")
    if temperature < 0:
        raise TokengraftError(f"--temperature must be >= 0, got {temperature}")
    config = byte_config(prune, max_hypotheses, canonical, byte_level=byte_level)
    lm = _byte_lm(model, config, allow_pickle=allow_pickle, quiet=quiet)
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
        if byte_level:
            record["byte_config"] = dataclasses.asdict(config)
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    typer.echo(prompt + text)


def eval_byte_level(
    model: str,
    docs: list[tuple[str, str]],
    config: ByteConfig,
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
    lm = _byte_lm(model, config, allow_pickle=allow_pickle, quiet=quiet)
    scores = [score_span(lm, name, raw, start=start) for name, raw in data]
    total = overall(scores)
    if as_json:
        out: dict[str, object] = {"per_file": [s.to_dict() for s in scores]}
        out |= {"overall": total.to_dict(), "byte_level": True}
        out["byte_config"] = dataclasses.asdict(config)
        typer.echo(json.dumps(out, indent=2))
        return
    for s in [*scores, total]:
        typer.echo(
            f"{s.name:<40} {s.bits_per_byte:8.4f} bpb  {s.n_bytes:>9} bytes scored  "
            f"{s.forwarded_tokens / s.n_bytes:6.2f} tokens forwarded/byte"
        )
