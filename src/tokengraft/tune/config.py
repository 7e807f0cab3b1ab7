"""`TuneConfig`: what one continued-training run does, parsed once at the edge."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from tokengraft.errors import TokengraftError


class Device(enum.StrEnum):
    """Where the model runs: ``auto`` is CUDA when a GPU is available, else the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    """How the rows are trained.

    The defaults are the ``tune`` method's (60 steps of 4 windows of 256 tokens, Adam 3e-3 with
    eps 1e-3, see ``methods/tune.py`` for why eps is large).

    Attributes:
        steps: optimiser steps; the learning rate warms up linearly over ``warmup`` steps, then
            decays to zero on a cosine over ``steps``. None: no step limit (``minutes`` stops the
            run, and the rate stays constant after the warm-up).
        minutes: stop once this many wall minutes have passed (summed over resumed runs).
        batch_size: windows per step, over all processes together (the global batch).
        seq_len: tokens per window, the opening start token included.
        lr: Adam's learning rate.
        eps: Adam's epsilon.
        betas: Adam's moment decay rates.
        warmup: steps of linear warm-up.
        lm_weight: weight of the next-token loss.
        distill_weight: weight of the hidden-state loss against a teacher (ignored without one).
        all_embeddings: train every row, not only the computed and fallback rows.
        seed: seed of the one generator that draws the windows.
        device: ``auto``, ``cpu`` or ``cuda``.
        checkpoint_every: write a checkpoint every this many steps (0: only at the end).
        eval_every: score the held-out texts every this many steps (0: only at start and end).
        eval_max_bytes: score only the first this many bytes of each held-out file, cut back to
            a whole character as by ``tokengraft eval model --max-bytes`` (None: whole files).
    """

    steps: int | None = 60
    minutes: float | None = None
    batch_size: int = 4
    seq_len: int = 256
    lr: float = 3e-3
    eps: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    warmup: int = 5
    lm_weight: float = 1.0
    distill_weight: float = 1.0
    all_embeddings: bool = False
    seed: int = 0
    device: Device = Device.AUTO
    checkpoint_every: int = 50
    eval_every: int = 50
    eval_max_bytes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", _device(self.device))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.steps is None and self.minutes is None:
            raise TokengraftError("give a budget: --steps N or --minutes M")
        _at_least("steps", self.steps, 0)
        _positive("minutes", self.minutes)
        for name in ("batch_size", "warmup"):
            _at_least(name, getattr(self, name), 1)
        _at_least("seq_len", self.seq_len, 2)
        for name in ("lr", "eps"):
            _positive(name, getattr(self, name))
        for name in ("lm_weight", "distill_weight", "checkpoint_every", "eval_every"):
            _at_least(name, getattr(self, name), 0)
        _at_least("eval_max_bytes", self.eval_max_bytes, 1)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise TokengraftError(f"Adam betas must be two numbers in [0, 1), got {self.betas}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values."""
        data = asdict(self)
        data["betas"] = list(self.betas)
        data["device"] = self.device.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuneConfig:
        """The config :meth:`to_dict` gave; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TokengraftError(f"unknown tune setting(s): {', '.join(unknown)}")
        return cls(**{**data, "betas": tuple(data.get("betas", cls.betas))})

    def with_changes(self, **changes: Any) -> TuneConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


# Fields that only say how long and where a run goes: they may change when it is resumed.
RUN_FIELDS = frozenset(
    {"steps", "minutes", "device", "checkpoint_every", "eval_every", "eval_max_bytes"}
)


def flag(name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _device(value: str) -> Device:
    try:
        return Device(value)
    except ValueError:
        valid = ", ".join(d.value for d in Device)
        raise TokengraftError(f"--device must be one of {valid}, got {value!r}") from None


def _at_least(name: str, value: float | None, low: int) -> None:
    if value is not None and value < low:
        raise TokengraftError(f"{flag(name)} must be at least {low}, got {value}")


def _positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise TokengraftError(f"{flag(name)} must be positive, got {value}")
