"""Gemma-3 text checkpoints in llama.cpp's terms (GGUF architecture ``gemma3``).

Differences from the Llama plan (:mod:`.gguf_arch`): four norms per layer (before and after
attention and feed-forward) plus RMS norms on queries and keys, all stored as ``1 + w`` because
Gemma's RMSNorm scales by ``1 + w`` and llama.cpp's by ``w`` (the transformers GGUF loader
subtracts the one again); no rotary reordering (Gemma's projections are already in the layout
llama.cpp's Gemma expects); sliding-window layers with their own rotary base, written per layer.
The scaled embeddings (``sqrt(hidden)``) and the GELU feed-forward are llama.cpp's own Gemma-3 graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import gguf

from tokengraft.errors import TokengraftError
from tokengraft.io.gguf_arch import (
    PROJECTIONS,
    ArchPlan,
    TensorPlan,
    layer_tensor,
    shared_metadata,
    tensor_order,
)

_T = gguf.MODEL_TENSOR
_IN_LAYER: dict[str, gguf.MODEL_TENSOR] = {
    **PROJECTIONS,
    "input_layernorm.weight": _T.ATTN_NORM,
    "self_attn.q_norm.weight": _T.ATTN_Q_NORM,
    "self_attn.k_norm.weight": _T.ATTN_K_NORM,
    "post_attention_layernorm.weight": _T.ATTN_POST_NORM,
    "pre_feedforward_layernorm.weight": _T.FFN_NORM,
    "post_feedforward_layernorm.weight": _T.FFN_POST_NORM,
}
_TOP = {"model.embed_tokens.weight": _T.TOKEN_EMBD, "model.norm.weight": _T.OUTPUT_NORM}


def _rope(config: Any, kind: str) -> dict[str, Any]:
    params = getattr(config, "rope_parameters", None) or {}
    return params.get(kind, params) if isinstance(params, dict) else {}


def check_gemma3(config: Any, what: str) -> None:
    """Refuse a Gemma-3 variant llama.cpp's ``gemma3`` graph would compute differently.

    Raises:
        TokengraftError: softcapping, scaled rotary embeddings, another attention scale or
            activation, or bidirectional attention.
    """
    head_dim = config.head_dim
    problems = {
        "logit softcapping": config.final_logit_softcapping or config.attn_logit_softcapping,
        "an activation other than gelu_pytorch_tanh": config.hidden_activation
        != "gelu_pytorch_tanh",
        "a query scale other than 1/sqrt(head_dim)": config.query_pre_attn_scalar != head_dim,
        "bidirectional attention": getattr(config, "use_bidirectional_attention", False),
        "scaled rotary embeddings": any(
            _rope(config, kind).get("rope_type", "default") != "default"
            for kind in ("full_attention", "sliding_attention")
        ),
    }
    found = [name for name, bad in problems.items() if bad]
    if found:
        raise TokengraftError(f"{what}: GGUF export does not support Gemma-3 with {found[0]}")


def gemma3_plan(config: Any, names: Iterable[str], *, what: str, model_name: str) -> ArchPlan:
    """Metadata and tensor plan of a Gemma-3 text checkpoint (tied embeddings, as Gemma-3 has).

    Raises:
        TokengraftError: an unsupported variant, or a tensor with no GGUF counterpart.
    """
    check_gemma3(config, what)
    tensors = [_tensor_plan(name, what) for name in sorted(names, key=tensor_order)]
    return ArchPlan(
        arch="gemma3",
        n_vocab=config.vocab_size,
        metadata=_metadata(config, model_name),
        tensors=[t for t in tensors if t is not None],
    )


def _tensor_plan(name: str, what: str) -> TensorPlan | None:
    if name == "lm_head.weight":
        return None  # tied: llama.cpp's gemma3 reads the embeddings
    if name in _TOP:
        return TensorPlan(name, gguf.TENSOR_NAMES[_TOP[name]] + ".weight", add_one="norm" in name)
    _, gguf_name = layer_tensor(name, _IN_LAYER, arch="gemma3", what=what)
    return TensorPlan(name, gguf_name, add_one=name.endswith("norm.weight"))


def _metadata(config: Any, model_name: str) -> list[Callable[[gguf.GGUFWriter], None]]:
    layer_types = getattr(config, "layer_types", None) or []
    full = _rope(config, "full_attention").get("rope_theta", 1_000_000.0)
    local = _rope(config, "sliding_attention").get("rope_theta", 10_000.0)
    items = shared_metadata(config, model_name) + [
        lambda w: w.add_key_length(config.head_dim),
        lambda w: w.add_value_length(config.head_dim),
        lambda w: w.add_layer_norm_rms_eps(config.rms_norm_eps),
        lambda w: w.add_rope_freq_base(float(full)),
    ]
    if config.sliding_window and layer_types:
        items += [
            lambda w: w.add_sliding_window(config.sliding_window),
            lambda w: w.add_sliding_window_pattern([t == "sliding_attention" for t in layer_types]),
            lambda w: w.add_rope_freq_base_swa(float(local)),
        ]
    return items
