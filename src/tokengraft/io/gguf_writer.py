"""Write a Hugging Face checkpoint as one GGUF file for llama.cpp (and Ollama, LM Studio).

:func:`write_gguf` is the one entry point; ``tokengraft export gguf`` and the ``--gguf`` flags
call it. It reads the checkpoint's config, tokenizer and safetensors, plans the file
(:mod:`.gguf_arch` for the architecture, :mod:`.gguf_vocab` for the tokenizer, both checked
before anything is written), and streams the tensors one at a time through ``gguf.GGUFWriter``
into a temporary file that is renamed into place only when complete.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
import torch
from safetensors import safe_open
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.io.atomic import atomic_file
from tokengraft.io.checkpoint import TensorInfo, safetensors_index
from tokengraft.io.errors import reraise, writing
from tokengraft.io.gguf import read_gguf_metadata, read_gguf_tokenizer
from tokengraft.io.gguf_arch import (
    ArchPlan,
    TensorPlan,
    architecture_plan,
    check_supported,
    interleave_rotary_rows,
)
from tokengraft.io.gguf_vocab import GGUFVocab, gguf_vocab
from tokengraft.io.models import check_model_dir, load_configs
from tokengraft.io.packaged import PACKAGED_MODELS, packaged_model_path
from tokengraft.io.tokenizers import load_tokenizer_dir

logger = logging.getLogger(__name__)

_Q = gguf.GGMLQuantizationType


class GGUFType(enum.StrEnum):
    """The number format of the written weight matrices (norms always stay float32)."""

    F32 = "f32"
    F16 = "f16"
    Q8_0 = "q8_0"


_FILE_TYPES = {
    GGUFType.F32: gguf.LlamaFileType.ALL_F32,
    GGUFType.F16: gguf.LlamaFileType.MOSTLY_F16,
    GGUFType.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
}


@dataclass(frozen=True, kw_only=True)
class GGUFSummary:
    """What :func:`write_gguf` wrote."""

    path: Path
    type: GGUFType
    arch: str
    tokenizer_model: str
    pre_tokenizer: str | None
    n_vocab: int
    n_tensors: int
    n_bytes: int


def gguf_type(value: str | GGUFType) -> GGUFType:
    """Parse ``--type``.

    Raises:
        TokengraftError: not one of the supported types (the message lists them).
    """
    try:
        return GGUFType(value)
    except ValueError:
        known = ", ".join(t.value for t in GGUFType)
        raise TokengraftError(f"unsupported GGUF type {value!r}; choose one of {known}") from None


def write_gguf(
    checkpoint: Path,
    out: Path,
    type: str | GGUFType = GGUFType.F32,
    *,
    force: bool = False,
    name: str | None = None,
) -> GGUFSummary:
    """Write the Hugging Face checkpoint ``checkpoint`` as the GGUF file ``out``.

    Args:
        checkpoint: a model directory (config.json, safetensors, tokenizer).
        out: the ``.gguf`` file to write (atomically).
        type: ``f32``, ``f16`` or ``q8_0`` for the weight matrices.
        force: replace an existing ``out``.
        name: the model's name in the file (``general.name``); default the checkpoint
            directory's name (pass the final name when ``checkpoint`` is a temporary directory).

    Returns:
        A summary of the written file.

    Raises:
        TokengraftError: an unsupported type, architecture or tokenizer, an existing ``out``
            without ``force``, or an unreadable checkpoint; nothing is written then.

    Example:
        >>> write_gguf(Path("out"), Path("out/model.gguf"), "q8_0")  # doctest: +SKIP
    """
    kind = gguf_type(type)
    out = Path(out).expanduser()
    check_gguf_output(out, force=force)
    checkpoint = Path(checkpoint).expanduser()
    check_model_dir(checkpoint, allow_pickle=False)
    index = safetensors_index(checkpoint)
    configs = load_configs(checkpoint)
    what = str(checkpoint)
    model_name = checkpoint.name if name is None else name
    plan = architecture_plan(configs.model, index, what=what, model_name=model_name)
    _check_rows(plan, index, checkpoint)
    tok = load_tokenizer_dir(checkpoint)
    vocab = gguf_vocab(
        tok, plan.n_vocab, pre_hint=own_pre_tokenizer(tok), what=f"the tokenizer of {checkpoint}"
    )
    with atomic_file(out, "GGUF file") as tmp, writing("GGUF file", out):
        _write(tmp, plan, vocab, kind, index)
    return GGUFSummary(
        path=out,
        type=kind,
        arch=plan.arch,
        tokenizer_model=vocab.model,
        pre_tokenizer=vocab.pre,
        n_vocab=plan.n_vocab,
        n_tensors=len(plan.tensors),
        n_bytes=out.stat().st_size,
    )


def check_gguf_output(out: Path, *, force: bool = False) -> None:
    """Refuse an output path that is a directory, or an existing file without ``force``.

    Raises:
        TokengraftError: naming the path and the flag to pass.
    """
    if out.is_dir():
        raise TokengraftError(f"output {out} is a directory; give the .gguf file to write")
    if out.exists() and not force:
        raise TokengraftError(f"output {out} exists; pass --force to replace it")


def _check_rows(plan: ArchPlan, index: dict[str, TensorInfo], checkpoint: Path) -> None:
    embed = index.get("model.embed_tokens.weight")
    if embed is None:
        raise TokengraftError(f"{checkpoint}: no model.embed_tokens.weight in the checkpoint")
    if embed.shape[0] != plan.n_vocab:
        raise TokengraftError(
            f"{checkpoint}: the embeddings have {embed.shape[0]} rows but config.json says "
            f"vocab_size {plan.n_vocab}"
        )


def own_pre_tokenizer(tok: PreTrainedTokenizerBase) -> str | None:
    """The pre-tokenizer name of the packaged model whose vocabulary ``tok`` is, if any.

    A model's own tokenizer keeps the name its GGUF file gave it (SmolLM2's ``smollm``), when that
    name still splits text as the tokenizer does.
    """
    for name in PACKAGED_MODELS:
        try:
            pre, tokens = read_gguf_tokenizer(packaged_model_path(name))
        except TokengraftError:
            continue  # not installed: nothing to compare with
        size = len(tokens)
        if size == len(tok) and tokens == tok.convert_ids_to_tokens(list(range(size))):
            return pre
    return None


def _qtype(shape: tuple[int, ...], kind: GGUFType) -> gguf.GGMLQuantizationType:
    """Norms and vectors stay float32; a matrix takes ``kind`` (Q8_0 needs rows of 32k values)."""
    if len(shape) < 2 or kind is GGUFType.F32:
        return _Q.F32
    if kind is GGUFType.Q8_0 and shape[-1] % gguf.GGML_QUANT_SIZES[_Q.Q8_0][0] == 0:
        return _Q.Q8_0
    return _Q.F16


def _tensor_info(
    writer: gguf.GGUFWriter, name: str, shape: tuple[int, ...], kind: GGUFType
) -> None:
    qtype = _qtype(shape, kind)
    if qtype is _Q.Q8_0:
        byte_shape = gguf.quant_shape_to_byte_shape(shape, qtype)
        writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), math.prod(byte_shape), qtype)
        return
    dtype = np.dtype(np.float32 if qtype is _Q.F32 else np.float16)
    writer.add_tensor_info(name, shape, dtype, math.prod(shape) * dtype.itemsize)


def _array(tensor: torch.Tensor, plan: TensorPlan, kind: GGUFType) -> np.ndarray:
    """The tensor in GGUF's layout and number format."""
    weight = tensor.detach().to(torch.float32)
    if plan.rotary_heads is not None:
        weight = interleave_rotary_rows(weight, plan.rotary_heads)
    if plan.add_one:
        weight = weight + 1.0
    data = weight.contiguous().numpy()
    qtype = _qtype(data.shape, kind)
    if qtype is _Q.Q8_0:
        return gguf.quants.quantize(data, qtype)
    return data.astype(np.float16 if qtype is _Q.F16 else np.float32)


def _read(info: TensorInfo, name: str) -> torch.Tensor:
    with reraise("safetensors file", info.file), safe_open(info.file, framework="pt") as f:
        return f.get_tensor(name)


def _write_vocab(writer: gguf.GGUFWriter, vocab: GGUFVocab) -> None:
    writer.add_tokenizer_model(vocab.model)
    if vocab.pre is not None:
        writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    setters = {
        "bos": writer.add_bos_token_id,
        "eos": writer.add_eos_token_id,
        "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id,
    }
    for role, token_id in vocab.special_ids.items():
        setters[role](token_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    writer.add_add_space_prefix(vocab.add_space_prefix)
    if vocab.chat_template is not None:
        writer.add_chat_template(vocab.chat_template)


def _write(
    path: Path,
    plan: ArchPlan,
    vocab: GGUFVocab,
    kind: GGUFType,
    index: dict[str, TensorInfo],
) -> None:
    """Header and metadata first, then each tensor read, converted and written in turn."""
    writer = gguf.GGUFWriter(path, plan.arch)
    for item in plan.metadata:
        item(writer)
    writer.add_file_type(_FILE_TYPES[kind])
    if kind is GGUFType.Q8_0:
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _write_vocab(writer, vocab)
    for tensor in plan.tensors:
        _tensor_info(writer, tensor.name, tuple(index[tensor.source].shape), kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    try:
        for tensor in plan.tensors:
            writer.write_tensor_data(
                _array(_read(index[tensor.source], tensor.source), tensor, kind)
            )
    finally:
        writer.close()
    logger.info("wrote %d tensors (%s) to %s", len(plan.tensors), kind.value, path)


def check_gguf_export(model: str, tokenizer: PreTrainedTokenizerBase, type: str) -> None:
    """Check, before a long run, that its result can be written as GGUF.

    Args:
        model: the base model as the user typed it (packaged name, directory or .gguf file).
        tokenizer: the tokenizer the result will carry.
        type: the GGUF weight format.

    Raises:
        TokengraftError: an unsupported type, architecture or tokenizer (the messages of
            :func:`write_gguf`).
    """
    from tokengraft.io.resolve import ModelKind, resolve_model

    gguf_type(type)
    source = resolve_model(model)
    if source.kind is ModelKind.GGUF:
        arch = read_gguf_metadata(source.path, ["general.architecture"]).get("general.architecture")
        if arch not in ("llama", "gemma3"):
            raise TokengraftError(
                f"{model} is a {arch!r} model; GGUF export supports llama and gemma3 models"
            )
    else:
        check_supported(load_configs(source.path).model, str(model))
    gguf_vocab(
        tokenizer, len(tokenizer), pre_hint=own_pre_tokenizer(tokenizer), what="the tokenizer"
    )
