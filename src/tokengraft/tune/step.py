"""One batch and its losses: next-token cross-entropy and hidden-state distillation.

Every loss is a mean over the global batch: a process computes the mean over its own slice and
scales it by the slice's share of the global count (windows for the next-token loss, aligned
positions for distillation), so the scaled losses of all processes sum to the global mean. With
one process every share is exactly 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from transformers import PreTrainedModel

from tokengraft.config import Slot
from tokengraft.tune.align import TeacherBatch, align_window, teacher_batch
from tokengraft.tune.config import TuneConfig
from tokengraft.tune.data import TrainData, windows
from tokengraft.tune.device import move
from tokengraft.tune.distributed import Ranks
from tokengraft.tune.model import Student


@dataclass(frozen=True, kw_only=True)
class Batch:
    """One process's slice of a global batch.

    Attributes:
        ids: (B_local, L) long, the student windows.
        teacher: the teacher's windows and the aligned positions (None: no distillation).
        lm_share: this slice's share of the global batch's next-token targets.
        distill_share: this slice's share of the global batch's aligned positions.
    """

    ids: torch.Tensor
    teacher: TeacherBatch | None = None
    lm_share: float = 1.0
    distill_share: float = 0.0


def make_batch(data: TrainData, starts: Sequence[int], ranks: Ranks, device: torch.device) -> Batch:
    """This process's slice of the global batch of windows at ``starts``, on ``device``."""
    mine = list(ranks.shard(starts))
    ids = windows(data.student.ids, mine, data.length, data.student.start)
    share = len(mine) / len(starts)
    if data.teacher is None:
        return Batch(ids=move(ids, device), lm_share=share)
    aligned = [align_window(data, s) for s in starts]  # all of them: the global count
    local = list(ranks.shard(aligned))
    count = sum(len(a.student_pos) for a in aligned)
    local_count = sum(len(a.student_pos) for a in local)
    t = teacher_batch(local, data.length)
    return Batch(
        ids=move(ids, device),
        teacher=TeacherBatch(
            ids=move(t.ids, device),
            mask=None if t.mask is None else move(t.mask, device),
            student_index=move(t.student_index, device),
            teacher_index=move(t.teacher_index, device),
        ),
        lm_share=share,
        distill_share=local_count / count if count else 0.0,
    )


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``logits`` (B, L, V) on the windows ``ids`` (B, L)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())


def teacher_hidden(teacher: PreTrainedModel, batch: TeacherBatch) -> torch.Tensor:
    """(B * L_t, D) float32: the teacher's last-layer hidden states, without gradients."""
    kwargs = {} if batch.mask is None else {"attention_mask": batch.mask}
    with torch.no_grad():
        out = teacher(input_ids=batch.ids, use_cache=False, output_hidden_states=True, **kwargs)
    return out.hidden_states[-1].flatten(0, 1).float()


def losses(
    student: Student,
    matrices: Mapping[Slot, torch.Tensor],
    batch: Batch,
    config: TuneConfig,
    teacher: PreTrainedModel | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted losses of one slice, each scaled by the slice's share of the global batch.

    Args:
        student: the model being trained.
        matrices: slot -> (V, D), its embedding matrices now (differentiable).
        batch: this process's windows.
        config: the loss weights.
        teacher: the model to distil from (None: next-token loss only).

    Returns:
        ``{"lm": ...}`` and, with a teacher, ``{"distill": ...}``: scalar tensors whose sum is
        the loss to minimise.
    """
    distil = teacher is not None and batch.teacher is not None and config.distill_weight > 0
    kwargs = {"input_ids": batch.ids, "use_cache": False}
    out = (
        student(matrices, **kwargs, output_hidden_states=True)
        if distil
        else student(matrices, **kwargs)
    )
    parts: dict[str, torch.Tensor] = {}
    if config.lm_weight > 0:
        parts["lm"] = lm_loss(out.logits, batch.ids) * batch.lm_share * config.lm_weight
    if distil and teacher is not None and batch.teacher is not None:
        parts["distill"] = _distill(out.hidden_states[-1], teacher, batch) * config.distill_weight
    return parts


def _distill(hidden: torch.Tensor, teacher: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Mean squared difference of last-layer hidden states at aligned positions, scaled.

    Token Distillation (arXiv 2505.20133): the student at a position must carry what the
    teacher carries after reading the same bytes.
    """
    assert batch.teacher is not None
    if len(batch.teacher.student_index) == 0:
        return hidden.sum() * 0.0  # no aligned position in this slice: no gradient
    ours = hidden.flatten(0, 1)[batch.teacher.student_index].float()
    theirs = teacher_hidden(teacher, batch.teacher)[batch.teacher.teacher_index]
    return F.mse_loss(ours, theirs) * batch.distill_share
