"""Turning what parsers and the operating system raise into one-line :class:`TokengraftError`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from google.protobuf.message import DecodeError
from safetensors import SafetensorError

from tokengraft.errors import TokengraftError

# What parsers (json, safetensors, gguf/numpy, protobuf, transformers) raise on bad input.
READ_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, RuntimeError, KeyError)
READ_ERRORS += (IndexError, EOFError, SafetensorError, DecodeError)

# How Rust libraries (safetensors, tokenizers) spell an OS error in their messages:
# `Os { code: 28, kind: StorageFull, message: "No space left on device" }` or `... (os error 28)`.
_RUST_OS_MESSAGE = re.compile(r'Os \{ code: \d+, kind: \w+, message: "([^"]+)" \}')
_RUST_OS_ERROR = re.compile(r"([^:(]+?) \(os error \d+\)")


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), capped."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def os_cause(exc: BaseException) -> str | None:
    """The operating system's reason a write failed (``No space left on device``), or None.

    Python's ``OSError`` gives it as ``strerror``; safetensors and tokenizers (Rust) raise their
    own exception types with the OS error inside the message.
    """
    if isinstance(exc, OSError):
        return exc.strerror or one_line(exc)
    text = str(exc)
    found = _RUST_OS_MESSAGE.search(text) or _RUST_OS_ERROR.search(text)
    return found.group(1).strip() if found else None


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
    """Re-raise a failed write as ``cannot write <what> <path>: <cause>``.

    The cause is the operating system's (disk full, read-only file system, permission denied),
    whether Python or a Rust library (safetensors, tokenizers) saw it. Any other exception is not
    a failed write and passes through.
    """
    try:
        yield
    except TokengraftError:
        raise
    except Exception as exc:
        cause = os_cause(exc)
        if cause is None:
            raise
        raise TokengraftError(f"cannot write {what} {path}: {cause}") from exc
