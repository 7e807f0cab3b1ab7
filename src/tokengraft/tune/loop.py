"""The training loop: steps until the budget is spent, with periodic actions and a progress bar.

The budget is ``config.steps`` and/or ``config.minutes`` (wall time, summed over resumed runs);
periodic actions (held-out evaluation, checkpoints) run after every n-th step. In a
multi-process run every process stops at the same step: the time limit is agreed on by all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from tokengraft.tune.trainer import History, Trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Every:
    """An action run after every ``steps``-th step (0: never).

    Attributes:
        steps: how often.
        action: called with the trainer; it may append to ``trainer.history.bpb``.
    """

    steps: int
    action: Callable[[Trainer], None]


def finished(trainer: Trainer) -> bool:
    """Whether the run's budget is spent (every process must call this at the same step)."""
    config, history = trainer.config, trainer.history
    if config.steps is not None and history.step >= config.steps:
        return True
    if config.minutes is None:
        return False
    return trainer.ranks.any(history.seconds >= 60 * config.minutes, trainer.device)


def fit(
    trainer: Trainer,
    *,
    every: Sequence[Every] = (),
    progress: bool = False,
    desc: str = "tune",
) -> History:
    """Train until the budget is spent.

    Args:
        trainer: the run (from :func:`~tokengraft.tune.trainer.create_trainer`, maybe restored).
        every: periodic actions, in order.
        progress: show a progress bar (steps, loss, last held-out bits per byte).
        desc: the bar's label.

    Returns:
        ``trainer.history``, updated.
    """
    history = trainer.history
    first = history.step
    bar = tqdm(
        total=trainer.config.steps, initial=first, desc=desc, unit="step", disable=not progress
    )
    while not finished(trainer):
        began = time.perf_counter()
        logged = trainer.step()
        for periodic in every:
            if periodic.steps and history.step % periodic.steps == 0:
                periodic.action(trainer)
        history.seconds += time.perf_counter() - began
        bar.update(1)
        bar.set_postfix(_postfix(logged, history))
    bar.close()
    if history.step > first:
        log.info(
            "tune: loss %.4f -> %.4f over steps %d-%d",
            history.loss[first],
            history.loss[-1],
            first + 1,
            history.step,
        )
    return history


def _postfix(logged: dict[str, float], history: History) -> dict[str, str]:
    shown = {"loss": f"{logged['loss']:.3f}"}
    if history.bpb:
        shown["bpb"] = f"{history.bpb[-1]['bits_per_byte']:.4f}"
    return shown
