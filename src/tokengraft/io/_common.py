"""Shared by the io modules: translating parser errors, atomic small-file writes."""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from safetensors import SafetensorError

from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)


# What parsers (json, safetensors, gguf/numpy, protobuf, transformers) raise on bad input.
_READ_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, RuntimeError, KeyError)
_READ_ERRORS += (IndexError, EOFError, SafetensorError, DecodeError)
_INDEX = "model.safetensors.index.json"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


@contextmanager
def _reraise(what: str, path: Path | str, hint: str = "") -> Iterator[None]:
    """Re-raise a parser's exception (json, safetensors, gguf, protobuf...) as TokengraftError."""
    try:
        yield
    except TokengraftError:
        raise
    except _READ_ERRORS as exc:
        raise TokengraftError(f"cannot read {what} {path}{hint}: {_one_line(exc)}") from exc


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically: to a temporary file in the same directory, then rename."""
    tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TokengraftError(f"cannot write {path}: {_one_line(exc)}") from exc


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
