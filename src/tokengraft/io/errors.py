"""Turning what parsers and the operating system raise into one-line :class:`TokengraftError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from google.protobuf.message import DecodeError
from safetensors import SafetensorError

from tokengraft.errors import TokengraftError

# What parsers (json, safetensors, gguf/numpy, protobuf, transformers) raise on bad input.
READ_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, RuntimeError, KeyError)
READ_ERRORS += (IndexError, EOFError, SafetensorError, DecodeError)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), capped."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


@contextmanager
def reraise(what: str, path: Path | str, hint: str = "") -> Iterator[None]:
    """Re-raise a parser's exception (json, safetensors, gguf, protobuf...) as TokengraftError."""
    try:
        yield
    except TokengraftError:
        raise
    except READ_ERRORS as exc:
        raise TokengraftError(f"cannot read {what} {path}{hint}: {one_line(exc)}") from exc


@contextmanager
def writing(what: str, path: Path | str) -> Iterator[None]:
    """Re-raise an ``OSError`` while writing as ``cannot write <what> <path>: <cause>``."""
    try:
        yield
    except OSError as exc:
        raise TokengraftError(f"cannot write {what} {path}: {one_line(exc)}") from exc
