"""What several commands share: option types, ``key=value`` parameters, config files, argv."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tokengraft.errors import TokengraftError

Model = Annotated[str, typer.Argument(help="HF directory, .gguf file, or 'smollm2-135m'.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Force = Annotated[bool, typer.Option(help="Replace a non-empty OUT.")]
AllowPickle = Annotated[
    bool, typer.Option(help="Allow pickle (.bin) weights, for the model and a donor.")
]
TokenizerEncoding = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Encoding of a tiktoken file: cl100k_base, o200k_base, qwen, qwen3.5, llama3 "
        "(default: recognised by its rank table).",
    ),
]
HtmlOut = Annotated[
    Path | None, typer.Option("--html", help="Also write a static HTML report to this file.")
]

# Options that take several files, as in `--texts a.txt b.txt` (click options take one value each).
MULTI_VALUE = frozenset({"--texts", "--corpus", "--source-corpus", "--eval-texts"})


def parse_params(pairs: list[str]) -> dict[str, Any]:
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


def check_positive(value: int | None, flag: str) -> None:
    """Refuse a count flag below 1 before any work starts (None: the flag was not given).

    Raises:
        TokengraftError: ``<flag> must be positive, got <value>``.
    """
    if value is not None and value < 1:
        raise TokengraftError(f"{flag} must be positive, got {value}")


def load_config_file(path: Path | None) -> dict[str, Any]:
    """The JSON object in ``path`` (``{}`` without a path)."""
    if path is None:
        return {}
    from tokengraft.io.texts import read_json

    data = read_json(path)
    if not isinstance(data, dict):
        raise TokengraftError(f"{path}: a config file holds a JSON object")
    return data


def expand_multi_value(argv: list[str]) -> list[str]:
    """Rewrite ``--texts a b`` as ``--texts a --texts b``.

    Values run until the next ``-`` flag, so such an option goes after the positionals (or
    before a ``--`` flag): ``graft --corpus a.txt MODEL ...`` would read MODEL as a corpus file.
    """
    out: list[str] = []
    current: str | None = None
    for arg in argv:
        if arg.startswith("-"):
            current = arg if arg in MULTI_VALUE else None
            out.append(arg)
        elif current is not None and out[-1] != current:
            out += [current, arg]
        else:
            out.append(arg)
    return out
