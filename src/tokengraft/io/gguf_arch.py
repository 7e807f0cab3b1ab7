"""A Hugging Face checkpoint's architecture in llama.cpp's terms: metadata, tensor names, layouts.

Llama-family decoders are written (``model_type`` ``llama``, ``mistral``) as GGUF
architecture ``llama``: RMSNorm, SwiGLU, rotary position embeddings without scaling, grouped-query
attention, no biases, tied or untied output head. Tensor names come from the ``gguf`` package's
own tables. The one change of layout is rotary: Hugging Face's Llama rotates the two halves of
each head (``rotate_half``), llama.cpp adjacent pairs, so the rows of the query and key
projections are reordered within each head (:func:`interleave_rotary_rows`); the transformers GGUF
loader undoes exactly this. Everything else is copied as is. Gemma-3 is planned in
:mod:`.gguf_gemma`; :func:`architecture_plan` picks the plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gguf
import torch

from tokengraft.errors import TokengraftError

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "gemma3_text")
_T = gguf.MODEL_TENSOR
_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
# The attention and feed-forward projections of a layer, named alike in Llama and Gemma-3.
PROJECTIONS: dict[str, gguf.MODEL_TENSOR] = {
    "self_attn.q_proj.weight": _T.ATTN_Q,
    "self_attn.k_proj.weight": _T.ATTN_K,
    "self_attn.v_proj.weight": _T.ATTN_V,
    "self_attn.o_proj.weight": _T.ATTN_OUT,
    "mlp.gate_proj.weight": _T.FFN_GATE,
    "mlp.up_proj.weight": _T.FFN_UP,
    "mlp.down_proj.weight": _T.FFN_DOWN,
}
_IN_LAYER: dict[str, gguf.MODEL_TENSOR] = {
    **PROJECTIONS,
    "input_layernorm.weight": _T.ATTN_NORM,
    "post_attention_layernorm.weight": _T.FFN_NORM,
}
_TOP: dict[str, gguf.MODEL_TENSOR] = {
    "model.embed_tokens.weight": _T.TOKEN_EMBD,
    "model.norm.weight": _T.OUTPUT_NORM,
    "lm_head.weight": _T.OUTPUT,
}


@dataclass(frozen=True)
class TensorPlan:
    """One checkpoint tensor and where it goes.

    Attributes:
        source: its name in the safetensors checkpoint.
        name: its GGUF name (``blk.3.attn_q.weight``).
        rotary_heads: for the query and key projections, the number of heads whose rows are
            interleaved; None for every other tensor.
        add_one: store ``1 + w`` (Gemma's RMSNorm scales by ``1 + w``, llama.cpp's by ``w``).
    """

    source: str
    name: str
    rotary_heads: int | None = None
    add_one: bool = False


@dataclass(frozen=True, kw_only=True)
class ArchPlan:
    """What the GGUF writer needs of an architecture."""

    arch: str
    n_vocab: int
    metadata: list[Callable[[gguf.GGUFWriter], None]]
    tensors: list[TensorPlan]


def _get(config: Any, name: str, default: Any = None) -> Any:
    return getattr(config, name, default)


def _rope_theta(config: Any, what: str) -> float:
    """The rotary base, refusing scaled rotary embeddings llama.cpp's llama would get wrong."""
    params = _get(config, "rope_parameters") or {}
    scaling = _get(config, "rope_scaling") or {}
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if kind != "default":
        raise TokengraftError(f"{what}: rotary scaling {kind!r} is not supported by GGUF export")
    theta = params.get("rope_theta", _get(config, "rope_theta", 10000.0))
    return float(theta)


def check_supported(config: Any, what: str) -> None:
    """Refuse a checkpoint the writer cannot express faithfully.

    Raises:
        TokengraftError: an unsupported model type, activation, biases or rotary scaling.
    """
    model_type = _get(config, "model_type", "unknown")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise TokengraftError(
            f"{what} is a {model_type!r} model; GGUF export supports the Llama family and "
            f"Gemma-3 text models (model_type {', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    if model_type == "gemma3_text":
        from tokengraft.io.gguf_gemma import check_gemma3

        check_gemma3(config, what)
        return
    if _get(config, "hidden_act", "silu") != "silu":
        raise TokengraftError(f"{what}: activation {config.hidden_act!r} is not Llama's silu")
    if _get(config, "attention_bias") or _get(config, "mlp_bias"):
        raise TokengraftError(f"{what}: attention or MLP biases are not supported by GGUF export")
    window = _get(config, "sliding_window")
    if window is not None and window < _get(config, "max_position_embeddings", window):
        raise TokengraftError(f"{what}: sliding-window attention is not supported by GGUF export")
    _rope_theta(config, what)


def llama_plan(config: Any, names: Iterable[str], *, what: str, model_name: str) -> ArchPlan:
    """Metadata and tensor plan of a Llama-family checkpoint.

    Args:
        config: the checkpoint's config (``PretrainedConfig``).
        names: the tensor names in its safetensors files.
        what: how the checkpoint is named in error messages.
        model_name: ``general.name``.

    Returns:
        The plan; a tied checkpoint has no ``output.weight`` (llama.cpp reuses the embeddings).

    Raises:
        TokengraftError: unsupported architecture, or a tensor with no GGUF counterpart.
    """
    if _get(config, "model_type") not in ("llama", "mistral"):
        check_supported(config, what)  # refuses everything but llama, mistral (and Gemma-3)
        raise TokengraftError(f"{what}: not a Llama-family checkpoint")
    check_supported(config, what)
    heads = config.num_attention_heads
    kv_heads = config.num_key_value_heads or heads
    head_dim = _get(config, "head_dim") or config.hidden_size // heads
    tied = bool(_get(config, "tie_word_embeddings", False))
    tensors = [
        plan
        for name in sorted(names, key=tensor_order)
        if (plan := _tensor_plan(name, heads, kv_heads, what)) is not None
        and not (tied and plan.name == "output.weight")
    ]
    metadata = _llama_metadata(config, head_dim, model_name, what)
    return ArchPlan(arch="llama", n_vocab=config.vocab_size, metadata=metadata, tensors=tensors)


def tensor_order(name: str) -> tuple[int, str]:
    """Sort key of a checkpoint tensor: top-level tensors first, then layer by layer."""
    layer = _LAYER.match(name)
    return (int(layer.group(1)) + 1, name) if layer else (0, name)


def layer_tensor(
    name: str, table: dict[str, gguf.MODEL_TENSOR], *, arch: str, what: str
) -> tuple[gguf.MODEL_TENSOR, str]:
    """The GGUF kind and name (``blk.3.attn_q.weight``) of the layer tensor ``name``.

    Args:
        name: the checkpoint name (``model.layers.3.self_attn.q_proj.weight``).
        table: the architecture's names within a layer -> GGUF kinds.
        arch: the GGUF architecture, for the message.
        what: how the checkpoint is named in the message.

    Raises:
        TokengraftError: ``name`` is not a layer tensor of ``table``.
    """
    layer = _LAYER.match(name)
    kind = table.get(layer.group(2)) if layer else None
    if layer is None or kind is None:
        raise TokengraftError(f"{what}: tensor {name} has no counterpart in GGUF's {arch}")
    return kind, gguf.TENSOR_NAMES[kind].format(bid=int(layer.group(1))) + ".weight"


def _tensor_plan(name: str, heads: int, kv_heads: int, what: str) -> TensorPlan | None:
    if name.endswith("rotary_emb.inv_freq"):
        return None  # a buffer older checkpoints saved; llama.cpp computes it
    if name in _TOP:
        return TensorPlan(name, gguf.TENSOR_NAMES[_TOP[name]] + ".weight")
    kind, gguf_name = layer_tensor(name, _IN_LAYER, arch="llama", what=what)
    rotary = {_T.ATTN_Q: heads, _T.ATTN_K: kv_heads}.get(kind)
    return TensorPlan(name, gguf_name, rotary)


def shared_metadata(config: Any, model_name: str) -> list[Callable[[gguf.GGUFWriter], None]]:
    """The metadata every architecture writes first: name, vocabulary, sizes and heads.

    Args:
        config: the checkpoint's config (``PretrainedConfig``).
        model_name: ``general.name``.

    Returns:
        Writer calls, in the order they are written.
    """
    heads = config.num_attention_heads
    return [
        lambda w: w.add_name(model_name),
        lambda w: w.add_vocab_size(config.vocab_size),
        lambda w: w.add_context_length(config.max_position_embeddings),
        lambda w: w.add_embedding_length(config.hidden_size),
        lambda w: w.add_block_count(config.num_hidden_layers),
        lambda w: w.add_feed_forward_length(config.intermediate_size),
        lambda w: w.add_head_count(heads),
        lambda w: w.add_head_count_kv(config.num_key_value_heads or heads),
    ]


def _llama_metadata(
    config: Any, head_dim: int, model_name: str, what: str
) -> list[Callable[[gguf.GGUFWriter], None]]:
    heads = config.num_attention_heads
    items = shared_metadata(config, model_name) + [
        lambda w: w.add_rope_dimension_count(head_dim),
        lambda w: w.add_rope_freq_base(_rope_theta(config, what)),
        lambda w: w.add_layer_norm_rms_eps(config.rms_norm_eps),
    ]
    if head_dim * heads != config.hidden_size:
        items += [lambda w: w.add_key_length(head_dim), lambda w: w.add_value_length(head_dim)]
    return items


def interleave_rotary_rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Reorder a query/key projection's rows from rotate-half to adjacent-pair rotary layout.

    Within each head of ``d`` rows, row ``j`` (first half) and row ``j + d/2`` (second half) form
    one rotary pair in Hugging Face's Llama; llama.cpp expects that pair at rows ``2j, 2j + 1``.

    Args:
        weight: (heads * d, D) projection weight.
        heads: attention heads (key/value heads for the key projection).

    Returns:
        (heads * d, D), the rows reordered.
    """
    out_features = weight.shape[0]
    halves = weight.reshape(heads, 2, out_features // heads // 2, *weight.shape[1:])
    return halves.transpose(1, 2).reshape(weight.shape)


def architecture_plan(config: Any, names: Iterable[str], *, what: str, model_name: str) -> ArchPlan:
    """The plan for any supported checkpoint: Llama family or Gemma-3 text.

    Raises:
        TokengraftError: an unsupported architecture (the message lists the supported ones).
    """
    if _get(config, "model_type") == "gemma3_text":
        from tokengraft.io.gguf_gemma import gemma3_plan

        return gemma3_plan(config, names, what=what, model_name=model_name)
    return llama_plan(config, names, what=what, model_name=model_name)
