"""Where the model runs: the one place that picks a device and moves things to it.

``auto`` is the first (or, under ``torchrun``, the local rank's) CUDA device when one is
available, else the CPU. Everything else calls :func:`move`; the window generator stays on the
CPU whatever the device, so the windows do not depend on it.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from tokengraft.errors import TokengraftError
from tokengraft.tune.config import Device


def resolve_device(choice: Device | str, *, local_rank: int = 0) -> torch.device:
    """The torch device for ``--device``.

    Args:
        choice: ``auto``, ``cpu`` or ``cuda``.
        local_rank: this process's index on its machine (``torchrun``'s ``LOCAL_RANK``); each
            process of a multi-GPU run takes its own GPU.

    Returns:
        ``cpu`` or ``cuda:<local_rank>``.

    Raises:
        TokengraftError: ``cuda`` was asked for but torch sees no CUDA device.
    """
    choice = Device(choice)
    if choice is Device.CPU or (choice is Device.AUTO and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise TokengraftError(
            f"--device cuda: torch {torch.__version__} sees no CUDA device; use --device cpu"
        )
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise TokengraftError(f"process {local_rank} has no GPU of its own ({count} visible)")
    return torch.device("cuda", local_rank)


def backend(device: torch.device) -> str:
    """The ``torch.distributed`` backend for processes on ``device``: nccl on GPUs, else gloo."""
    return "nccl" if device.type == "cuda" else "gloo"


def move(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device`` (itself when it is there already)."""
    return tensor.to(device)


def place(model: PreTrainedModel, device: torch.device) -> PreTrainedModel:
    """``model`` moved, in place, to ``device``."""
    return model.to(device)  # type: ignore[arg-type]


def model_device(model: PreTrainedModel) -> torch.device:
    """The device of a model's first parameter."""
    return next(model.parameters()).device
