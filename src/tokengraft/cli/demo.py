"""``tokengraft demo``: the main job on the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokengraft.cli.options import Quiet, check_positive
from tokengraft.config import BEST_DONOR_FREE


def demo_cmd(
    out: Annotated[Path | None, typer.Option(help="Where the grafted model goes.")] = None,
    vocab_size: Annotated[int, typer.Option(help="Size of the new German tokenizer.")] = 32_000,
    method: Annotated[str, typer.Option(help="Initialisation method.")] = BEST_DONOR_FREE,
    max_bytes: Annotated[int, typer.Option(help="Held-out bytes scored per language.")] = 60_000,
    quiet: Quiet = False,
) -> None:
    """The main job: train a German tokenizer, graft SmolLM2 onto it, compare bits per byte."""
    from tokengraft.demo import DemoConfig, format_table, run_demo

    check_positive(max_bytes, "--max-bytes")
    cfg = DemoConfig(vocab_size=vocab_size, method=method, max_bytes=max_bytes, out=out)
    rows = run_demo(cfg, progress=not quiet, say=typer.echo)
    typer.echo(format_table(rows))
