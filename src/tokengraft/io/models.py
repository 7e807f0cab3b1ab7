"""Loading and saving Hugging Face models: GGUF files, model directories, configs, encoders.

Paths only; names (packaged models) are resolved above, in :mod:`tokengraft.io.resolve`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
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
from tokengraft.io.checkpoint import INDEX_FILE, safetensors_index
from tokengraft.io.errors import reraise, writing
from tokengraft.io.gguf import check_gguf_magic

logger = logging.getLogger(__name__)


def check_model_dir(path: Path, *, allow_pickle: bool) -> None:
    """Refuse a directory without config.json or without weights tokengraft may load.

    Raises:
        TokengraftError: no config.json, no weights, or pickle weights without ``allow_pickle``.
    """
    if not (path / "config.json").is_file():
        raise TokengraftError(f"{path} is not a model directory: it has no config.json")
    if has_safetensors(path):
        return
    if any(path.glob("pytorch_model*.bin")):
        if allow_pickle:
            return
        raise TokengraftError(
            f"{path} has only pickle weights (pytorch_model*.bin), which can run arbitrary code "
            "when loaded; pass --allow-pickle if you trust it"
        )
    raise TokengraftError(f"{path} is not a model directory: it has no *.safetensors weights")


def has_safetensors(path: Path) -> bool:
    """Whether the model directory ``path`` has safetensors weights (one file or an index)."""
    return any(path.glob("*.safetensors")) or (path / INDEX_FILE).is_file()


@contextmanager
def progress_bars(show: bool) -> Iterator[None]:
    """Show or hide the progress bars ``transformers`` draws while it loads a model.

    Its own bars follow a switch of its logging module; the GGUF dequantisation bar is a plain
    ``tqdm`` in its module, replaced by a disabled one for the duration.
    """
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    bar = gguf_utils.tqdm
    (hf_logging.enable_progress_bar if show else hf_logging.disable_progress_bar)()
    if not show:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()


def load_gguf_model(path: Path, *, progress: bool = True) -> PreTrainedModel:
    """A causal LM from a GGUF file, dequantised to float32, in eval mode.

    The quantizer transformers attaches is dropped so that ``save_pretrained`` works on it.

    Raises:
        TokengraftError: the file is not GGUF, or is truncated or corrupt.
    """
    check_gguf_magic(path)
    logger.info("loading %s (GGUF, dequantised to float32)", path)
    with reraise("GGUF model", path, " (corrupt or truncated?)"), progress_bars(progress):
        model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32, local_files_only=True
        )
    drop_gguf_quantizer(model)
    return model.float().eval()


def load_model_dir(
    path: Path, *, allow_pickle: bool = False, progress: bool = True
) -> PreTrainedModel:
    """A causal LM from a Hugging Face directory, in float32, eval mode.

    Raises:
        TokengraftError: not a model directory, pickle weights without ``allow_pickle``, or a
            missing, truncated or corrupt file.
    """
    check_model_dir(path, allow_pickle=allow_pickle)
    safetensors = has_safetensors(path)
    if safetensors:
        safetensors_index(path)  # names a truncated shard before transformers fails
    logger.info("loading %s (float32)", path)
    with reraise("model", path), progress_bars(progress):
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, local_files_only=True, use_safetensors=safetensors
        )
    return model.float().eval()


def save_pretrained(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
    *,
    progress: bool = True,
) -> None:
    """Save weights (safetensors), config, generation config and tokenizer into dir ``out``.

    Raises:
        TokengraftError: ``cannot write checkpoint to <out>: <cause>`` (disk full, read-only).
    """
    drop_gguf_quantizer(model)
    tokenizer.init_kwargs.pop("gguf_file", None)
    with writing("checkpoint to", out), progress_bars(progress):
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)


def drop_gguf_quantizer(model: PreTrainedModel) -> None:
    """Forget the GGUF quantizer of an already dequantised model, so that it can be saved."""
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
    with reraise("model config in", model_dir):
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    generation = None
    if (model_dir / "generation_config.json").is_file():
        with reraise("generation config in", model_dir):
            generation = GenerationConfig.from_pretrained(model_dir, local_files_only=True)
    return ModelConfigs(model=config, generation=generation)


def save_configs(configs: ModelConfigs, out: Path) -> None:
    """Write config.json (and generation_config.json) into dir ``out``."""
    with writing("configs to", out):
        configs.model.save_pretrained(out)
        if configs.generation is not None:
            configs.generation.save_pretrained(out)


def load_encoder(
    spec: str, *, allow_pickle: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An auxiliary text-embedding model (``AutoModel``) and its tokenizer from an HF directory.

    Raises:
        TokengraftError: not a model directory, or pickle weights without ``allow_pickle``.
    """
    path = Path(spec)
    if not (path / "config.json").is_file():
        raise TokengraftError(f"{spec} is not a Hugging Face model directory (no config.json)")
    check_model_dir(path, allow_pickle=allow_pickle)
    with reraise("encoder model", path):
        model = AutoModel.from_pretrained(
            path, local_files_only=True, dtype=torch.float32, use_safetensors=has_safetensors(path)
        )
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model.eval(), tokenizer
