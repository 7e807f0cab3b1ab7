"""The model being tuned, called with new embedding matrices and never modified.

The model is called through ``torch.func.functional_call`` with the new matrices in place of its
embedding parameters: no resize, no flag changes, and everything the architecture does around
the embeddings (input scaling, logit soft-capping) is kept. Slots are mapped to parameter names
through the modules, so a tied model, whose two names share one parameter, still maps each slot
to its own name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from tokengraft.config import Slot
from tokengraft.errors import TokengraftError


def embedding_parameter_names(model: PreTrainedModel, *, untied: bool) -> dict[Slot, str]:
    """Slot -> the model's parameter name for its input embeddings and (untied) output head.

    Args:
        model: a causal LM.
        untied: also name the output head (a model with its own head).

    Returns:
        ``{INPUT: name}``, plus ``{OUTPUT: name}`` when ``untied``.

    Raises:
        TokengraftError: ``untied`` but the model has no output head.
    """
    modules = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    out: dict[Slot, str] = {Slot.INPUT: f"{modules[id(model.get_input_embeddings())]}.weight"}
    if untied:
        head = model.get_output_embeddings()
        if head is None:
            raise TokengraftError("tune: the model has no output head to tune")
        out[Slot.OUTPUT] = f"{modules[id(head)]}.weight"
    return out


def frozen_weights(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """Name -> every parameter but the input embeddings and output head, detached.

    Detached, so that no weight gradient is computed. Every name of a shared parameter is kept
    (``remove_duplicate=False``), as ``functional_call`` needs.
    """
    replaced = {id(model.get_input_embeddings().weight)}
    if (head := model.get_output_embeddings()) is not None:
        replaced.add(id(head.weight))
    return {
        name: p.detach()
        for name, p in model.named_parameters(remove_duplicate=False)
        if id(p) not in replaced
    }


@dataclass(frozen=True, kw_only=True)
class Student:
    """A model prepared for functional calls with trained embedding matrices.

    Attributes:
        model: the model (never modified).
        names: slot -> parameter name of each trained matrix; no output slot: the head is tied.
        frozen: every other parameter, detached.
        dtype: the model's embedding dtype (matrices are cast to it for the call).
    """

    model: PreTrainedModel
    names: Mapping[Slot, str]
    frozen: Mapping[str, torch.Tensor]
    dtype: torch.dtype

    @property
    def tied(self) -> bool:
        """The input matrix also serves as the output head."""
        return Slot.OUTPUT not in self.names

    def weights(self, matrices: Mapping[Slot, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Name -> tensor for ``functional_call``: the frozen weights and ``matrices``."""
        overrides = {self.names[slot]: matrices[slot].to(self.dtype) for slot in self.names}
        return {**self.frozen, **overrides}

    def __call__(self, matrices: Mapping[Slot, torch.Tensor], **kwargs: Any) -> Any:
        """The model's output for ``kwargs`` (``input_ids=...``) with ``matrices`` in place."""
        return torch.func.functional_call(
            self.model, self.weights(matrices), args=(), kwargs=kwargs, tie_weights=self.tied
        )


def student(model: PreTrainedModel, *, untied: bool) -> Student:
    """Prepare ``model`` for training its embeddings (its untied head too when ``untied``)."""
    dtype: torch.dtype = model.get_input_embeddings().weight.dtype  # type: ignore[assignment]
    return Student(
        model=model,
        names=embedding_parameter_names(model, untied=untied),
        frozen=frozen_weights(model),
        dtype=dtype,
    )


class WithMatrices(nn.Module):
    """A read-only view of a student with given matrices, callable like the model itself.

    For code that calls a model (``tokengraft.eval.lm.score_texts``): ``config`` and
    ``parameters()`` are the model's, ``forward`` runs it with the matrices in place.
    """

    def __init__(self, student: Student, matrices: Mapping[Slot, torch.Tensor]) -> None:
        super().__init__()
        self.inner = student.model
        self.config = student.model.config
        self._student = student
        self._matrices = {slot: m.detach() for slot, m in matrices.items()}
        self.train(student.model.training)  # callers restore this flag on the model itself

    def forward(self, **kwargs: Any) -> Any:
        """The model's output with the matrices in place."""
        return self._student(self._matrices, **kwargs)
