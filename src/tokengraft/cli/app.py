"""The `tokengraft` command: the typer app, its command groups, and the error contract.

Every user-caused failure is a :class:`TokengraftError`, printed as one line (exit status 2).
Command modules import heavy libraries (torch, transformers) inside their commands only, so that
``tokengraft --help`` starts fast.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from tokengraft.cli import (
    audit,
    corpus,
    demo,
    evaluate,
    export,
    generate,
    graft,
    names,
    tokenizers,
    tune,
    vocab,
)
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
app.command("tokenizers")(names.tokenizers_cmd)
app.command("demo")(demo.demo_cmd)
app.command("generate")(generate.generate_cmd)
app.command("tune")(tune.tune_cmd)
app.command("trim")(vocab.trim_cmd)
app.command("extend")(vocab.extend_cmd)
app.command("audit")(audit.audit_cmd)
app.command("report")(audit.report_cmd)
app.add_typer(evaluate.app, name="eval")
app.add_typer(corpus.app, name="corpus")
app.add_typer(export.app, name="export")


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived: raised where the program is, so that ``with`` blocks clean up.

    A ``BaseException`` like ``KeyboardInterrupt``: neither tokengraft nor click catches it on
    the way up, and every temporary output is removed before :func:`run` reports it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Stopped` while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit status 2.

    SIGINT and SIGTERM stop the command with the temporary outputs removed (status 128 + signal).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = expand_multi_value(list(sys.argv[1:] if argv is None else argv))
    try:
        with _signals_raise():
            app(args=args, prog_name="tokengraft")
    except TokengraftError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except Stopped as exc:
        typer.echo(f"error: stopped by {exc}; temporary files removed", err=True)
        return 128 + exc.signum
    except SystemExit as exc:  # click's own exit, usage errors included (status 2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
