"""Digit and whitespace scheme warnings that ``graft``, ``extend`` and ``eval tokenizer`` print."""

from __future__ import annotations

import typer


def echo_scheme_warnings(base: str, new: str, *, encoding: str | None = None) -> None:
    """Print one ``warning:`` line on stderr per scheme difference between two tokenizers.

    Args:
        base: the model's tokenizer (anything ``io.load_tokenizer`` reads: model, file, name).
        new: the tokenizer it gets.
        encoding: ``--encoding`` of a tiktoken file given as ``new``.

    Raises:
        TokengraftError: a tokenizer cannot be loaded.
    """
    from tokengraft import io
    from tokengraft.vocab.schemes import compare_schemes

    old_tok = io.load_tokenizer(base)
    new_tok = io.load_tokenizer(new, encoding=encoding)
    for line in compare_schemes(old_tok, new_tok):
        typer.echo(f"warning: {line}", err=True)
