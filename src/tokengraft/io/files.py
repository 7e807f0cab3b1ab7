"""Texts in, atomic outputs out."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tokengraft.errors import TokengraftError
from tokengraft.io._common import _one_line, _reraise
from tokengraft.io.models import _drop_gguf_quantizer

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------- texts


def read_texts(
    paths: Sequence[Path | str], *, max_bytes: int | None = None
) -> list[tuple[str, str]]:
    """Read UTF-8 text files as ``(name, text)``; name is the file name (the path if ambiguous).

    Args:
        max_bytes: read at most this many bytes per file, cut back to a whole character.

    Raises:
        TokengraftError: missing, empty or non-UTF-8 file (with the offset of the first bad byte).
    """
    files = [Path(p).expanduser() for p in paths]
    if not files:
        raise TokengraftError("corpus is empty: no text files given")
    names = [f.name for f in files]
    return [
        (f.name if names.count(f.name) == 1 else str(f), _read_text(f, max_bytes)) for f in files
    ]


def _read_text(path: Path, max_bytes: int | None) -> str:
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "not found"
        raise TokengraftError(f"text file {path} {problem}")
    with _reraise("text file", path), path.open("rb") as f:
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        cut = max_bytes
        while cut > 0 and data[cut] & 0xC0 == 0x80:  # do not split a UTF-8 sequence
            cut -= 1
        data = data[:cut]
    if not data.strip():
        raise TokengraftError(f"corpus is empty: {path} has no text")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise TokengraftError(
            f"{path} is not UTF-8: invalid byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from exc


# -------------------------------------------------------------------------------------- outputs


@contextmanager
def atomic_output_dir(
    out: Path, *, force: bool = False, protect: Iterable[Path] = ()
) -> Iterator[Path]:
    """Yield a fresh directory next to ``out`` that becomes ``out`` only if the body succeeds.

    Args:
        out: the final directory.
        force: replace an existing non-empty ``out``.
        protect: inputs that must survive: ``out`` may be neither one of them nor contain one.

    Raises:
        TokengraftError: ``out`` is a file, a non-empty directory (without force) or an input.
    """
    out = Path(out).expanduser()
    _check_output(out, force=force, protect=protect)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_output(out: Path, *, force: bool, protect: Iterable[Path]) -> None:
    target = out.resolve()
    for src in protect:
        src = Path(src).resolve()
        if target == src or target in src.parents:
            raise TokengraftError(f"refusing to write {out}: it is (or contains) the input {src}")
    if out.exists() and not out.is_dir():
        raise TokengraftError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise TokengraftError(f"output directory {out} is not empty; pass --force to replace it")


def _swap_in(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)  # same filesystem: an atomic rename
        return
    old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
    try:
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            os.replace(old, out)
            raise
    except OSError as exc:
        raise TokengraftError(f"cannot replace {out}: {_one_line(exc)}") from exc
    shutil.rmtree(old, ignore_errors=True)


def save_pretrained(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """Save weights (safetensors), config, generation config and tokenizer into dir ``out``."""
    _drop_gguf_quantizer(model)
    tokenizer.init_kwargs.pop("gguf_file", None)
    try:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    except OSError as exc:
        raise TokengraftError(f"cannot write checkpoint to {out}: {_one_line(exc)}") from exc


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """Save a tokenizer's files (tokenizer.json, tokenizer_config.json, ...) into dir ``out``."""
    tokenizer.init_kwargs.pop("gguf_file", None)
    try:
        tokenizer.save_pretrained(out)
    except OSError as exc:
        raise TokengraftError(f"cannot write tokenizer to {out}: {_one_line(exc)}") from exc


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or malformed file is a :class:`TokengraftError`."""
    if not path.is_file():
        raise TokengraftError(f"{path} does not exist")
    with _reraise("JSON file", path):
        return json.loads(path.read_text(encoding="utf-8"))


def read_dictionary(path: Path) -> list[tuple[str, str]]:
    """A bilingual dictionary: one ``source<TAB>target`` pair per line (``#`` lines skipped)."""
    ((name, text),) = read_texts([path])
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        source, sep, target = line.partition("\t")
        if not sep or not source.strip() or not target.strip():
            raise TokengraftError(f"{path}:{number}: a dictionary line is 'source<TAB>target'")
        pairs.append((source.strip(), target.strip()))
    if not pairs:
        raise TokengraftError(f"{path}: the dictionary has no entries")
    return pairs
