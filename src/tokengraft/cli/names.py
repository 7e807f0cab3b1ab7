"""``tokengraft tokenizers``: the well-known tokenizers and helper models usable by name."""

from __future__ import annotations

import dataclasses
import json

import typer

from tokengraft.cli.options import AsJson


def tokenizers_cmd(as_json: AsJson = False) -> None:
    """List the tokenizers (for NEW_TOKENIZER) and auxiliary models (--aux-model) known by name."""
    from tokengraft.io.named import named_entries

    entries = named_entries()
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
        return
    for entry in entries:
        state = "" if entry.installed else f"  (not installed: {entry.install})"
        typer.echo(f"{entry.name:<17} {entry.kind:<10} {entry.about}{state}")
