"""Configuration: frozen, keyword-only dataclasses, parsed once at the edge (CLI or JSON file)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Slot(enum.StrEnum):
    """An embedding matrix indexed by token id."""

    INPUT = "input"  # the input embedding table, (V, D)
    OUTPUT = "output"  # the output head (unembedding), (V, D)


class RowSource(enum.StrEnum):
    """How a row of the new embedding matrices was made."""

    COPIED = "copied"  # same canonical bytes in both vocabularies: bit-identical copy
    ROLE = "role"  # special token matched by role (bos, eos, pad, unk, chat markers)
    COMPUTED = "computed"  # produced by the initialisation method
    FALLBACK = "fallback"  # the method had nothing to go on (e.g. unspellable token): mean row


class Need(enum.StrEnum):
    """Inputs beyond the model's own embeddings that a method requires.

    Each is a field of :class:`tokengraft.methods.Extras` and is supplied on the command line by
    the flag in :data:`NEED_FLAGS` (the one table the CLI, the benchmark runner and the docs use).
    """

    DONOR = "donor"  # a donor model that already has the new tokenizer
    CORPUS = "corpus"  # target-language text
    SOURCE_CORPUS = "source_corpus"  # text in the base model's language
    DICTIONARY = "dictionary"  # a bilingual dictionary
    MODEL = "model"  # the full base model (forward passes), not only its embeddings
    AUX_MODEL = "aux_model"  # an auxiliary text-embedding model (TokenAdapt)


# The best donor-free method measured (BENCHMARKS.md, de-fresh and code-fresh): the default of
# `tokengraft demo` and `tokengraft extend`. It needs the model and a corpus, which both have.
BEST_DONOR_FREE = "tune"

# need -> the `tokengraft graft` flag that supplies it (None: the graft loads it itself)
NEED_FLAGS: dict[Need, str | None] = {
    Need.DONOR: "--donor",
    Need.CORPUS: "--corpus",
    Need.SOURCE_CORPUS: "--source-corpus",
    Need.DICTIONARY: "--dictionary",
    Need.MODEL: None,
    Need.AUX_MODEL: "--aux-model",
}


@dataclass(frozen=True, kw_only=True)
class GraftConfig:
    """What `graft` does.

    Attributes:
        method: name of a registered initialisation method (see `tokengraft methods`).
        seed: seed of the only random generator used.
        params: method-specific parameters (e.g. ``{"k": 64}``), validated by the method.
        copy_shared: copy rows of tokens with identical canonical bytes bit-identically.
        untie: give a tied model a separate output head (each slot computed by the method on its
            own); off by default, so a tied model stays tied.
    """

    method: str = "subword_mean"
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    copy_shared: bool = True
    untie: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values (``params`` copied into a ``dict``)."""
        return {
            "method": self.method,
            "seed": self.seed,
            "params": dict(self.params),
            "copy_shared": self.copy_shared,
            "untie": self.untie,
        }


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """How bits per byte are computed.

    Attributes:
        window: tokens per forward pass (the model's context is capped to this).
        stride: how far the window moves; each token is scored once, with at least
            ``window - stride`` tokens of context once the first window is full.
        batch_size: windows per forward pass.
        max_bytes: score only the first this many bytes of each file (None: all).
    """

    window: int = 512
    stride: int = 256
    batch_size: int = 1
    max_bytes: int | None = None
