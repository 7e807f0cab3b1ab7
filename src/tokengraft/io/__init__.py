"""Everything that touches disk: models (HF directories, GGUF), tokenizers, texts, outputs.

No other module of tokengraft reads or writes files (the corpus builder excepted, which downloads
and caches corpora). Checkpoints are read through their safetensors headers so that single tensors
can be loaded and whole checkpoints rewritten by streaming byte ranges. Every failure caused by
input is raised as :class:`~tokengraft.errors.TokengraftError` naming the offending path.
"""

from tokengraft.io._common import write_json, write_text
from tokengraft.io.arrays import cache_key, load_tensors, save_tensors
from tokengraft.io.checkpoint import (
    EmbeddingNames,
    TensorInfo,
    embedding_names,
    read_tensors,
    rewrite_checkpoint,
    safetensors_index,
)
from tokengraft.io.files import (
    atomic_output_dir,
    read_dictionary,
    read_json,
    read_texts,
    save_pretrained,
    save_tokenizer,
)
from tokengraft.io.models import (
    PACKAGED_MODELS,
    ModelConfigs,
    ModelKind,
    ModelSource,
    PackagedModel,
    load_configs,
    load_encoder,
    load_model,
    packaged_model_path,
    resolve_model,
    save_configs,
)
from tokengraft.io.tokenizers import GPT4_SPLIT_PATTERN, load_tokenizer

__all__ = [
    "GPT4_SPLIT_PATTERN",
    "PACKAGED_MODELS",
    "EmbeddingNames",
    "ModelConfigs",
    "ModelKind",
    "ModelSource",
    "PackagedModel",
    "TensorInfo",
    "atomic_output_dir",
    "cache_key",
    "embedding_names",
    "load_configs",
    "load_encoder",
    "load_model",
    "load_tensors",
    "load_tokenizer",
    "packaged_model_path",
    "read_dictionary",
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
    "write_json",
    "write_text",
]
