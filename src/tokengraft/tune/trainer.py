"""The live state of a run and its one training step.

:func:`create_trainer` prepares a model, its starting matrices and the rows to train;
:meth:`Trainer.step` draws the next global batch of windows, computes this process's losses,
sums the gradients over processes and moves the rows. The model is never modified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from transformers import PreTrainedModel

from tokengraft.config import Slot
from tokengraft.errors import TokengraftError
from tokengraft.tune.config import TuneConfig
from tokengraft.tune.data import TrainData, sample_starts
from tokengraft.tune.device import model_device, move
from tokengraft.tune.distributed import Ranks
from tokengraft.tune.model import Student, student
from tokengraft.tune.optim import adam, set_lr
from tokengraft.tune.rows import Rows, trainable_rows
from tokengraft.tune.step import losses, make_batch


@dataclass(kw_only=True)
class History:
    """What a run has done so far (kept across resumes).

    Attributes:
        step: optimiser steps taken.
        tokens: window tokens seen, over all processes.
        seconds: wall seconds spent in :func:`~tokengraft.tune.loop.fit`.
        loss: per step, the total loss of the global batch.
        lm: per step, its weighted next-token part.
        distill: per step, its weighted distillation part (empty without a teacher).
        bpb: held-out scores, ``{"step", "seconds", "bits_per_byte"}`` each.
    """

    step: int = 0
    tokens: int = 0
    seconds: float = 0.0
    loss: list[float] = field(default_factory=list)
    lm: list[float] = field(default_factory=list)
    distill: list[float] = field(default_factory=list)
    bpb: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The history as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """The history :meth:`to_dict` gave."""
        return cls(**dict(data))


@dataclass(kw_only=True)
class Trainer:
    """Everything a run needs between steps; see :func:`create_trainer`."""

    student: Student
    rows: Rows
    data: TrainData
    config: TuneConfig
    optimizer: torch.optim.Adam
    generator: torch.Generator
    device: torch.device
    teacher: PreTrainedModel | None = None
    ranks: Ranks = field(default_factory=Ranks)
    history: History = field(default_factory=History)

    def step(self) -> dict[str, float]:
        """One optimiser step on the next global batch.

        Returns:
            The global batch's losses: ``loss``, ``lm`` and (with a teacher) ``distill``.
        """
        starts = sample_starts(self.data, self.config.batch_size, self.generator)
        batch = make_batch(self.data, starts, self.ranks, self.device)
        set_lr(self.optimizer, self.config, self.history.step)
        parts = losses(self.student, self.rows.matrices(), batch, self.config, self.teacher)
        total = _total(parts)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grads = [t.grad for t in self.rows.trained.values() if t.grad is not None]
        self.ranks.sum_(grads)
        self.optimizer.step()
        return self._record(parts)

    def _record(self, parts: Mapping[str, torch.Tensor]) -> dict[str, float]:
        values = torch.stack([p.detach().float() for p in parts.values()])
        self.ranks.sum_([values])
        logged = dict(zip(parts, values.tolist(), strict=True))
        logged["loss"] = sum(logged.values())
        history = self.history
        history.step += 1
        history.tokens += self.config.batch_size * self.data.length
        history.loss.append(logged["loss"])
        history.lm.append(logged.get("lm", 0.0))
        if "distill" in logged:
            history.distill.append(logged["distill"])
        return logged

    def matrices(self) -> dict[Slot, torch.Tensor]:
        """Slot -> (V, D) float32, the whole matrices now (detached)."""
        return self.rows.full()


def _total(parts: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The sum of the loss parts, in their order (one part: that part itself)."""
    values = list(parts.values())
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


def create_trainer(
    model: PreTrainedModel,
    weights: Mapping[Slot, torch.Tensor],
    rows: torch.Tensor,
    data: TrainData,
    config: TuneConfig,
    *,
    generator: torch.Generator | None = None,
    teacher: PreTrainedModel | None = None,
    ranks: Ranks | None = None,
) -> Trainer:
    """Prepare to train ``rows`` of ``weights`` as the embeddings of ``model``.

    Args:
        model: the model whose embeddings are replaced by ``weights`` (never modified); it
            runs where its parameters are, and so does the training.
        weights: slot -> (V, D) starting matrices; with an output slot the head trains on its
            own, without one the input matrix is also the head.
        rows: (V,) boolean mask or (N,) ids of the rows that train (in every slot).
        data: the stream(s) windows are cut from.
        config: optimiser, schedule, batch and loss weights.
        generator: the one source of randomness (default: seeded with ``config.seed``).
        teacher: the model to distil from, on the same device (None: next-token loss only).
        ranks: this process's place in a multi-process run (default: alone).

    Returns:
        A trainer at step 0.

    Raises:
        TokengraftError: no loss has a weight (no teacher and ``lm_weight`` 0).
    """
    if config.lm_weight == 0 and (teacher is None or config.distill_weight == 0):
        raise TokengraftError("nothing to learn from: --lm-weight is 0 and no --teacher distils")
    device = model_device(model)
    prepared = student(model, untied=Slot.OUTPUT in weights)
    trainable = trainable_rows({s: move(w, device) for s, w in weights.items()}, rows)
    return Trainer(
        student=prepared,
        rows=trainable,
        data=data,
        config=config,
        optimizer=adam(list(trainable.trained.values()), config),
        generator=generator
        if generator is not None
        else torch.Generator().manual_seed(config.seed),
        device=device,
        teacher=teacher,
        ranks=ranks or Ranks(),
    )
