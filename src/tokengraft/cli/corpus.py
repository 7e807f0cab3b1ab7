"""``tokengraft corpus fetch``."""

from __future__ import annotations

from typing import Annotated

import typer

from tokengraft.cli.options import Quiet

app = typer.Typer(help="Build plain-text corpora from UDHR and Debian docs.", no_args_is_help=True)


@app.command("fetch")
def corpus_fetch_cmd(
    lang: Annotated[
        list[str] | None, typer.Option("--lang", help="Languages (default: all).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if cached.")] = False,
    quiet: Quiet = False,
) -> None:
    """Download and build the corpora into $TOKENGRAFT_CACHE (default ~/.cache/tokengraft)."""
    from tokengraft.data.corpus import LANGUAGES, fetch_corpora

    files = fetch_corpora(tuple(lang or LANGUAGES), force=force, progress=not quiet)
    for code, entry in files.items():
        typer.echo(
            f"{code:<5} train {entry.n_train_bytes:>10,} bytes  held-out {entry.n_heldout_bytes:>9,} "
            f"bytes  {entry.train.parent}"
        )
