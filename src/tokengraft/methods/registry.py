"""The method registry: name -> pure tensor function, its paper, what it needs, its parameters.

A method module registers itself with :func:`register`; :func:`load_all` imports every module in
this package, so adding a method is adding a file.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.config import Slot
from tokengraft.errors import TokengraftError
from tokengraft.vocab import CanonicalToken


class Need(enum.StrEnum):
    """Inputs beyond the model's own embeddings that a method requires.

    Each is a key of ``MethodInput.extras`` with a fixed type:
    ``donor``: :class:`Donor`; ``corpus`` and ``source_corpus``: ``Sequence[str]`` (target- and
    source-language documents); ``dictionary``: ``Sequence[tuple[str, str]]`` (source word, target
    word); ``model``: the base ``PreTrainedModel``; ``aux_model``: a ``(PreTrainedModel,
    PreTrainedTokenizerBase)`` pair of an auxiliary embedding model; ``cache_dir``: a ``Path`` where a
    method may keep what it trained (its own subdirectory, named after the method).
    """

    DONOR = "donor"  # a donor model that already has the new tokenizer
    CORPUS = "corpus"  # target-language text
    SOURCE_CORPUS = "source_corpus"  # text in the base model's language
    DICTIONARY = "dictionary"  # a bilingual dictionary
    MODEL = "model"  # the full base model (forward passes), not only its embeddings
    AUX_MODEL = "aux_model"  # an auxiliary text-embedding model (TokenAdapt)


@dataclass(frozen=True, kw_only=True)
class Donor:
    """Embeddings of a donor model that already uses the new tokenizer.

    Attributes:
        weights: slot -> (V_new, D_donor), rows indexed by new ids; a tied donor gives the same
            tensor for both slots.
    """

    weights: Mapping[Slot, torch.Tensor]


@dataclass(frozen=True, kw_only=True)
class MethodInput:
    """Everything a method may read; methods must not modify any of it.

    Attributes:
        old: (V_old, D) the slot's matrix in the base model.
        slot: which matrix this is (input embeddings or output head).
        tied: the result serves as both input embeddings and output head.
        to_compute: (N,) long; the new ids whose rows the method makes.
        pieces: per entry of ``to_compute``, the old ids spelling that token (None: unspellable).
        n_new: V_new, the size of the new vocabulary.
        tokens: per entry of ``to_compute``, its canonical bytes (None: an id with no token).
        anchor_new / anchor_old: (S,) long; new and old ids of the shared (copied, non-special)
            tokens, whose rows are known in both vocabularies.
        old_tokenizer / new_tokenizer: the two tokenizers (for methods that tokenise text).
        generator: the only source of randomness.
        progress: the method may show a progress bar for long work.
        params: the method's parameters, defaults filled in.
        extras: optional inputs named by ``Need`` (donor embeddings, corpus, ...).
    """

    old: torch.Tensor
    slot: Slot
    to_compute: torch.Tensor
    pieces: Sequence[Sequence[int] | None]
    n_new: int
    generator: torch.Generator
    tied: bool = False
    progress: bool = False
    tokens: Sequence[CanonicalToken | None] = ()
    anchor_new: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    anchor_old: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    old_tokenizer: PreTrainedTokenizerBase | None = None
    new_tokenizer: PreTrainedTokenizerBase | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)


MethodFn = Callable[[MethodInput], torch.Tensor]  # -> (N, D), one row per entry of to_compute


@dataclass(frozen=True, kw_only=True)
class RefineInput:
    """What a method's optional second pass reads: every slot's first-pass matrix at once.

    Attributes:
        weights: slot -> (V_new, D) new matrix after the per-slot pass (copied rows included).
            A tied result has only the input slot.
        to_compute: (N,) long; the new ids the method may change (the rest are copied rows).
        tied: the input matrix also serves as the output head.
        new_tokenizer: the tokenizer the matrices belong to.
        generator / progress / params / extras: as in :class:`MethodInput`.
    """

    weights: Mapping[Slot, torch.Tensor]
    to_compute: torch.Tensor
    tied: bool
    new_tokenizer: PreTrainedTokenizerBase | None
    generator: torch.Generator
    progress: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)


# -> slot -> (N, D), the refined rows of ``to_compute`` for every slot of ``weights``
RefineFn = Callable[[RefineInput], dict[Slot, torch.Tensor]]


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """A registered initialisation method."""

    name: str
    fn: MethodFn
    summary: str
    paper: str  # arXiv id or URL; "" for baselines without one
    needs: frozenset[Need] = frozenset()
    params: Mapping[str, Any] = field(default_factory=dict)  # name -> default
    refine: RefineFn | None = None  # optional joint second pass over all slots (see RefineInput)

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown names are an error."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            valid = ", ".join(sorted(self.params)) or "none"
            raise TokengraftError(
                f"method {self.name!r} has no parameter {', '.join(unknown)} (valid: {valid})"
            )
        return {**self.params, **given}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "paper": self.paper,
            "needs": sorted(n.value for n in self.needs),
            "params": dict(self.params),
        }


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method; names are unique."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name].fn is not spec.fn:
        raise ValueError(f"method {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def load_all() -> dict[str, MethodSpec]:
    """Import every method module of this package and return the registry, sorted by name."""
    package = importlib.import_module("tokengraft.methods")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "registry":
            importlib.import_module(f"tokengraft.methods.{module.name}")
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str) -> MethodSpec:
    """The method called ``name``; an unknown name lists the valid ones."""
    methods = load_all()
    if name not in methods:
        raise TokengraftError(f"unknown method {name!r}; valid methods: {', '.join(methods)}")
    return methods[name]
