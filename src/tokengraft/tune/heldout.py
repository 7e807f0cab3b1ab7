"""Held-out bits per byte of the model being tuned, with its current rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.config import EvalConfig
from tokengraft.eval.lm import score_texts
from tokengraft.tune.model import WithMatrices
from tokengraft.tune.trainer import Trainer


def eval_config(model: PreTrainedModel) -> EvalConfig:
    """``tokengraft eval model``'s defaults: 512-token windows (capped by the context), stride half."""
    context = getattr(model.config, "max_position_embeddings", None) or EvalConfig.window
    window = min(EvalConfig.window, int(context))
    return EvalConfig(window=window, stride=max(1, window // 2))


def held_out_bpb(
    trainer: Trainer, tokenizer: PreTrainedTokenizerBase, texts: Sequence[tuple[str, str]]
) -> float:
    """Bits per byte over all ``texts`` of the student with its rows now (the model unchanged).

    Args:
        trainer: the run.
        tokenizer: the student's tokenizer.
        texts: ``(name, text)`` pairs.

    Returns:
        Total bits over total bytes, as ``tokengraft eval model`` computes them.
    """
    model = WithMatrices(trainer.student, trainer.matrices())
    config = eval_config(trainer.student.model)
    return score_texts(cast(PreTrainedModel, model), tokenizer, texts, config).overall.bits_per_byte


def record_bpb(
    trainer: Trainer, tokenizer: PreTrainedTokenizerBase, texts: Sequence[tuple[str, str]]
) -> float:
    """Score the held-out texts now and append the score to ``trainer.history.bpb``."""
    bpb = held_out_bpb(trainer, tokenizer, texts)
    history = trainer.history
    history.bpb.append({"step": history.step, "seconds": history.seconds, "bits_per_byte": bpb})
    return bpb
