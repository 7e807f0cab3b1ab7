"""Write a model whose vocabulary rows were selected or appended (trim, extend), disk to disk.

Two backends, as in :mod:`tokengraft.grafting.pipeline`: a Hugging Face directory is rewritten
streaming (every tensor indexed by token id -- input embedding, untied head, an MLM bias -- gets its
new rows, every other tensor is copied byte for byte), a GGUF file or packaged model is loaded
whole, given its new matrices and saved. Both finish through
:func:`~tokengraft.grafting.model.finish` (vocabulary size, tie flag, special ids, tokenizer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft import io
from tokengraft.config import Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting.embeddings import EmbeddingGraft
from tokengraft.grafting.model import embedding_weights, finish, with_embeddings


class Resizable(Protocol):
    """A model on disk whose token-indexed rows can be replaced."""

    def weights(self) -> dict[Slot, torch.Tensor]:
        """Slot -> (V, D) embedding matrices (the output slot only when untied)."""
        ...

    def full_model(self) -> PreTrainedModel:
        """The whole model (for methods that need forward passes)."""
        ...

    def parameters(self) -> int:
        """Parameters of the model as it is on disk."""
        ...

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> tuple[int, tuple[str, ...]]:
        """Write the resized checkpoint into ``out``; its parameter count and the warnings."""
        ...


def _count(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters())


class _Whole:
    """A model loaded whole (GGUF, packaged), resized in memory and saved."""

    def __init__(self, source: io.ModelSource) -> None:
        self.model = io.load_model(source)

    def weights(self) -> dict[Slot, torch.Tensor]:
        return embedding_weights(self.model)

    def full_model(self) -> PreTrainedModel:
        return self.model

    def parameters(self) -> int:
        return _count(self.model)

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> tuple[int, tuple[str, ...]]:
        result = with_embeddings(self.model, old_tok, new_tok, embeddings)
        io.save_pretrained(result.model, result.tokenizer, out)
        return _count(result.model), result.warnings


class _Streamed:
    """A Hugging Face directory: token-indexed tensors replaced, the rest copied byte for byte."""

    def __init__(self, source: io.ModelSource) -> None:
        self.path = source.path
        self.source = source
        self.index = io.safetensors_index(source.path)
        self.names = io.embedding_names(source.path)
        self.rows = self.index[self.names.input].shape[0]

    def weights(self) -> dict[Slot, torch.Tensor]:
        return io.read_embeddings(self.path, self.names)

    def full_model(self) -> PreTrainedModel:
        return io.load_model(self.source)

    def parameters(self) -> int:
        total = 0
        for info in self.index.values():
            n = 1
            for d in info.shape:
                n *= d
            total += n
        return total

    def token_indexed(self) -> list[str]:
        """Checkpoint tensors with one entry per token id along their first dimension."""
        return [n for n, info in self.index.items() if info.shape and info.shape[0] == self.rows]

    def write(
        self,
        out: Path,
        old_tok: PreTrainedTokenizerBase,
        new_tok: PreTrainedTokenizerBase,
        embeddings: EmbeddingGraft,
        progress: bool,
    ) -> tuple[int, tuple[str, ...]]:
        replacements = self._replacements(embeddings)
        io.rewrite_checkpoint(self.path, out, replacements, progress=progress)
        configs = io.load_configs(self.path)
        tokenizer, warnings = finish(
            old_tok, new_tok, embeddings, [configs.model, configs.generation]
        )
        io.save_configs(configs, out)
        io.save_tokenizer(tokenizer, out)
        grown = sum(t.numel() - _numel(self.index[n].shape) for n, t in replacements.items())
        return self.parameters() + grown, warnings

    def _replacements(self, embeddings: EmbeddingGraft) -> dict[str, torch.Tensor]:
        """New tensors: the matrices of ``embeddings``, other token-indexed tensors re-indexed."""
        out = {self.names.input: embeddings.weights[Slot.INPUT]}
        if Slot.OUTPUT in embeddings.weights:
            if self.names.output is None:
                raise TokengraftError(f"{self.path}: this architecture has no untied output head")
            out[self.names.output] = embeddings.weights[Slot.OUTPUT]
        others = [n for n in self.token_indexed() if n not in out]
        for name, tensor in io.read_tensors(self.path, others).items():
            out[name] = gather_rows(tensor, embeddings.alignment.old_ids)
        return out


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def gather_rows(tensor: torch.Tensor, old_ids: torch.Tensor) -> torch.Tensor:
    """(V_new, ...) rows of ``tensor`` by old id; rows with no old id (-1) get the mean row."""
    taken = old_ids >= 0  # (V_new,)
    out = (
        tensor.float()
        .mean(dim=0, keepdim=True)
        .to(tensor.dtype)
        .repeat(old_ids.shape[0], *([1] * (tensor.ndim - 1)))
    )
    out[taken] = tensor[old_ids[taken]]
    return out


def open_resizable(source: io.ModelSource) -> Resizable:
    """The backend for ``source``: streamed for an HF directory, loaded whole otherwise."""
    return _Streamed(source) if source.kind is io.ModelKind.HF_DIR else _Whole(source)
