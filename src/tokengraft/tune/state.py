"""A trainer's state as named tensors and JSON, and back: what ``--resume`` continues from.

Tensors: the trained rows (float32), their ids, Adam's moments and step counts, the window
generator's state and torch's global generator state. JSON: the step, the history and the
config. Restored into a trainer built from the same inputs, the next steps are exactly the ones
the interrupted run would have taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from tokengraft.errors import TokengraftError
from tokengraft.tune.device import move
from tokengraft.tune.trainer import History, Trainer


def state_tensors(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Name -> CPU tensor: rows, ids, optimiser moments, generator states."""
    rows = trainer.rows
    out = {"rows.ids": rows.ids.cpu()}
    out.update({f"rows.{slot.value}": t.detach().cpu() for slot, t in rows.trained.items()})
    for index, values in trainer.optimizer.state_dict()["state"].items():
        out.update({f"adam.{index}.{key}": v.detach().cpu() for key, v in values.items()})
    out["rng.windows"] = trainer.generator.get_state()
    out["rng.torch"] = torch.get_rng_state()
    return out


def state_meta(trainer: Trainer) -> dict[str, Any]:
    """The JSON half of the state: config, slots and history."""
    return {
        "config": trainer.config.to_dict(),
        "slots": [slot.value for slot in trainer.rows.trained],
        "history": trainer.history.to_dict(),
    }


def restore(trainer: Trainer, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Put a saved state into a trainer built from the same inputs.

    Raises:
        TokengraftError: the saved rows are other rows, or other slots, than the trainer's.
    """
    rows = trainer.rows
    if [slot.value for slot in rows.trained] != list(meta["slots"]):
        raise TokengraftError(
            f"the saved run trained {meta['slots']}, this one {[s.value for s in rows.trained]}"
        )
    saved_ids = tensors["rows.ids"]
    if saved_ids.shape != rows.ids.shape or not torch.equal(saved_ids, rows.ids.cpu()):
        raise TokengraftError("the saved run trained other rows than this checkpoint names")
    with torch.no_grad():
        for slot, t in rows.trained.items():
            t.copy_(move(tensors[f"rows.{slot.value}"], t.device))
    trainer.optimizer.load_state_dict(
        {
            "state": _adam_state(tensors),
            "param_groups": trainer.optimizer.state_dict()["param_groups"],
        }
    )
    trainer.generator.set_state(tensors["rng.windows"])
    torch.set_rng_state(tensors["rng.torch"])
    trainer.history = History.from_dict(meta["history"])


def _adam_state(tensors: Mapping[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        kind, _, rest = name.partition(".")
        if kind == "adam":
            index, _, key = rest.partition(".")
            state.setdefault(int(index), {})[key] = value
    return state
