"""The optimiser and the learning-rate schedule, stateless so that a resumed run continues exactly.

Adam over the trained rows only; its ``eps`` is large by default (see ``methods/tune.py``: with
a tiny eps, rows with only the softmax normaliser's gradient take full-size steps). The rate of
each step is set from the step number alone (:func:`lr_factor`), so resuming needs no scheduler
state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from tokengraft.tune.config import TuneConfig


def adam(params: Sequence[torch.Tensor], config: TuneConfig) -> torch.optim.Adam:
    """Adam over ``params`` with the config's learning rate, betas and eps."""
    return torch.optim.Adam(list(params), lr=config.lr, betas=config.betas, eps=config.eps)


def lr_factor(step: int, steps: int | None, warmup: int) -> float:
    """Learning-rate factor of step ``step`` (0-based).

    Linear warm-up over ``warmup`` steps, multiplied by a cosine decay to zero over ``steps``
    (not transformers' ``get_cosine_schedule_with_warmup``: that starts its decay after the
    warm-up, which would change the measured defaults). Without ``steps`` the factor stays at 1
    after the warm-up.
    """
    ramp = min(1.0, (step + 1) / warmup)
    if steps is None:
        return ramp
    return ramp * 0.5 * (1.0 + math.cos(math.pi * step / max(steps, 1)))


def set_lr(optimizer: torch.optim.Optimizer, config: TuneConfig, step: int) -> None:
    """Give every parameter group the learning rate of step ``step``."""
    for group in optimizer.param_groups:
        group["lr"] = config.lr * lr_factor(step, config.steps, config.warmup)
