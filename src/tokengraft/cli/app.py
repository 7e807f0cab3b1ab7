"""The `tokengraft` command: the typer app, its command groups, and the error contract.

Every user-caused failure is a :class:`TokengraftError`, printed as one line (exit status 2).
Command modules import heavy libraries (torch, transformers) inside their commands only, so that
``tokengraft --help`` starts fast.
"""

from __future__ import annotations

import logging
import sys

import typer

from tokengraft.cli import corpus, demo, evaluate, graft, tokenizers
from tokengraft.cli.options import expand_multi_value
from tokengraft.errors import TokengraftError

app = typer.Typer(
    help="Make pretrained language models tokenizer-flexible.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("graft")(graft.graft_cmd)
app.command("methods")(graft.methods_cmd)
app.command("train-tokenizer")(tokenizers.train_tokenizer_cmd)
app.command("demo")(demo.demo_cmd)
app.add_typer(evaluate.app, name="eval")
app.add_typer(corpus.app, name="corpus")


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
