"""Everything that touches disk: models (HF directories, GGUF), tokenizers, texts, outputs.

The bottom layer of tokengraft: it imports nothing above ``config`` and ``errors``. Inside it,
``errors``, ``atomic`` and ``cache`` are at the bottom; ``texts``, ``tensors``, ``checkpoint``,
``gguf`` and ``packaged`` above them; ``models`` and ``tokenizers`` load from paths;
``converted`` caches chunked packaged models; ``resolve`` turns what the user typed into paths.
Checkpoints are read through their safetensors headers so that single tensors can be loaded and
whole checkpoints rewritten by streaming byte ranges. Every failure caused by input is raised as
:class:`~tokengraft.errors.TokengraftError` naming the offending path.
"""

from tokengraft.io.atomic import (
    atomic_file,
    atomic_output_dir,
    write_bytes,
    write_json,
    write_text,
)
from tokengraft.io.cache import cache_dir
from tokengraft.io.checkpoint import (
    EmbeddingNames,
    TensorInfo,
    embedding_names,
    read_embeddings,
    read_tensors,
    rewrite_checkpoint,
    safetensors_index,
)
from tokengraft.io.gguf_writer import GGUFType, write_gguf
from tokengraft.io.models import (
    ModelConfigs,
    has_safetensors,
    load_configs,
    save_configs,
    save_pretrained,
)
from tokengraft.io.packaged import PACKAGED_MODELS, PackagedModel, packaged_model_path
from tokengraft.io.resolve import (
    ModelKind,
    ModelSource,
    load_encoder,
    load_model,
    load_tokenizer,
    model_context,
    resolve_model,
)
from tokengraft.io.tensors import cache_key, cached_tensors, load_tensors, save_tensors
from tokengraft.io.texts import read_dictionary, read_json, read_texts
from tokengraft.io.tokenizers import GPT4_SPLIT_PATTERN, save_tokenizer

__all__ = [
    "GPT4_SPLIT_PATTERN",
    "PACKAGED_MODELS",
    "EmbeddingNames",
    "GGUFType",
    "ModelConfigs",
    "ModelKind",
    "ModelSource",
    "PackagedModel",
    "TensorInfo",
    "atomic_file",
    "atomic_output_dir",
    "cache_dir",
    "cache_key",
    "cached_tensors",
    "embedding_names",
    "has_safetensors",
    "load_configs",
    "load_encoder",
    "load_model",
    "load_tensors",
    "load_tokenizer",
    "model_context",
    "packaged_model_path",
    "read_dictionary",
    "read_embeddings",
    "read_json",
    "read_tensors",
    "read_texts",
    "resolve_model",
    "rewrite_checkpoint",
    "safetensors_index",
    "save_configs",
    "save_pretrained",
    "save_tensors",
    "save_tokenizer",
    "write_bytes",
    "write_gguf",
    "write_json",
    "write_text",
]
