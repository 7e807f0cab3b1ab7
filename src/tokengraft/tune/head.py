"""Fit output-head rows to the frozen model's own features, with no gradient through the model.

With the input rows fixed, the final hidden state at every position of a window is fixed too, so
fitting the output head is multinomial logistic regression: a convex problem on cached features.
One forward pass over ``tokens`` corpus tokens gives the features; the head rows then see them
for several epochs at the cost of a matrix product each, where the next-token fit of
:mod:`tokengraft.tune.trainer` pays a forward and a backward pass through the model per token
and sees each token once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from tokengraft.tune.data import TrainData, sample_starts, windows

# ids (B, L) -> the inputs of the output head (B, L, D)
Features = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, kw_only=True)
class HeadFit:
    """How the head rows are fitted.

    Attributes:
        tokens: corpus tokens whose features are collected (one forward pass each).
        epochs: passes of the optimiser over the features.
        batch: feature rows per optimiser step.
        lr: Adam's learning rate.
        eps: Adam's epsilon (large on purpose, as in ``tune``: rows without evidence only get
            the softmax normaliser's tiny gradient and must not take full-size steps).
    """

    tokens: int = 20_000
    epochs: int = 2
    batch: int = 2048
    lr: float = 3e-3
    eps: float = 1e-3


def collect(
    features: Features,
    data: TrainData,
    tokens: int,
    generator: torch.Generator,
    *,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, D) head inputs and (T,) next-token targets from random windows of ``data``.

    Windows are drawn as the next-token fit draws them; each window's last position has no
    target and is dropped.
    """
    count = max(1, tokens // (data.length - 1))
    starts = sample_starts(data, count, generator)
    inputs, targets = [], []
    with torch.no_grad():
        for start in tqdm(starts, desc="features", disable=not progress, unit="window"):
            ids = windows(data.student.ids, [start], data.length, data.student.start)
            inputs.append(features(ids)[0, :-1].float())
            targets.append(ids[0, 1:])
    return torch.cat(inputs), torch.cat(targets)


def fit_rows(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    head: torch.Tensor,
    rows: torch.Tensor,
    config: HeadFit,
    generator: torch.Generator,
    *,
    progress: bool = False,
) -> torch.Tensor:
    """(len(rows), D) new values of ``head[rows]`` that lower the next-token loss on the features.

    Args:
        inputs: (T, D) head inputs.
        targets: (T,) target ids.
        head: (V, D) the output head; rows outside ``rows`` stay fixed.
        rows: (N,) long, the rows that move.
        config: optimiser settings.
        generator: draws the order of the feature rows.
        progress: show a progress bar.
    """
    head = head.float()
    delta = torch.zeros((len(rows), head.shape[1]), requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=config.lr, eps=config.eps)
    steps = [
        torch.randperm(len(inputs), generator=generator).split(config.batch)
        for _ in range(config.epochs)
    ]
    bar = tqdm(total=sum(len(s) for s in steps), desc="head", disable=not progress)
    for epoch in steps:
        for index in epoch:
            matrix = head.index_add(0, rows, delta)
            loss = F.cross_entropy(inputs[index] @ matrix.T, targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return (head[rows] + delta).detach()
