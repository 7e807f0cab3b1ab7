"""Data parallelism over processes with ``torch.distributed`` (gloo on CPUs, nccl on GPUs).

Launched with ``torchrun --nproc-per-node N``, every process draws the same global batch of
windows from the same seeded generator, runs its own contiguous slice of it, and the gradients of
the trained rows are summed over processes. Each process scales its losses by its share of the
global batch, so the sum is the gradient of the global batch's mean loss: N processes give the
rows one process gives with the same global batch, up to the order of floating-point sums.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from tokengraft.errors import TokengraftError
from tokengraft.tune.device import backend

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Ranks:
    """This process's place among the processes of a run.

    Attributes:
        rank: this process's index, 0 .. world - 1.
        world: how many processes train together (1: no ``torch.distributed``).
        local_rank: this process's index on its machine (picks its GPU).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Process 0, the one that writes, shows progress and evaluates."""
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> Sequence[T]:
        """This process's contiguous slice of ``items`` (the slices cover all, in order)."""
        n = len(items)
        return items[self.rank * n // self.world : (self.rank + 1) * n // self.world]

    def sum_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Replace each tensor by its sum over all processes (in place; a no-op alone)."""
        if self.world > 1:
            for t in tensors:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is true in any process (every process must call this)."""
        if self.world == 1:
            return flag
        value = torch.tensor([int(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        """Wait for every process (a no-op alone)."""
        if self.world > 1:
            dist.barrier()


def env_ranks() -> Ranks:
    """The ranks ``torchrun`` sets in the environment (one process when it did not).

    Raises:
        TokengraftError: the variables are not integers or contradict each other.
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise TokengraftError(f"bad torchrun environment: {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise TokengraftError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return Ranks(rank=rank, world=world, local_rank=local)


def start(ranks: Ranks, device: torch.device, *, timeout: timedelta | None = None) -> None:
    """Join the process group of a multi-process run (``MASTER_ADDR``/``PORT`` from torchrun).

    Args:
        ranks: this process's place (alone: nothing to join).
        device: where this process trains (picks gloo or nccl, and the GPU for nccl).
        timeout: how long a collective waits for the other processes (torch's default: None).
    """
    if ranks.world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend=backend(device),
            rank=ranks.rank,
            world_size=ranks.world,
            timeout=timeout,
            device_id=device if device.type == "cuda" else None,
        )


def stop(ranks: Ranks) -> None:
    """Leave the process group :func:`start` joined."""
    if ranks.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def check_batch(ranks: Ranks, batch_size: int) -> None:
    """Every process needs at least one window of each batch.

    Raises:
        TokengraftError: ``batch_size`` is smaller than the number of processes.
    """
    if batch_size < ranks.world:
        raise TokengraftError(
            f"--batch-size {batch_size} is smaller than the {ranks.world} processes; "
            "the batch is the global one, split over the processes"
        )
