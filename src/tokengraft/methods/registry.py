"""The method registry: name -> pure tensor function, its paper, what it needs, its parameters.

A method module registers itself with :func:`register`; :func:`load_all` imports every module in
this package, so adding a method is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.config import NEED_FLAGS, Need, Slot
from tokengraft.errors import TokengraftError
from tokengraft.vocab import CanonicalToken

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Donor:
    """Embeddings of a donor model that already uses the new tokenizer.

    Attributes:
        weights: slot -> (V_new, D_donor), rows indexed by new ids; a tied donor gives the same
            tensor for both slots.
    """

    weights: Mapping[Slot, torch.Tensor]


@dataclass(frozen=True, kw_only=True)
class Extras:
    """What a method may read beyond the base model's embeddings; each field is named by a ``Need``.

    A method reads only the fields its ``needs`` name (checked before it runs), plus
    ``cache_dir`` when it is given.

    Attributes:
        donor: embeddings of a model that already uses the new tokenizer.
        corpus: target-language documents.
        source_corpus: documents in the base model's language.
        dictionary: (source word, target word) pairs.
        model: the full base model (forward passes), not only its embeddings.
        aux_model: an auxiliary text-embedding model and its tokenizer.
        cache_dir: where a method may keep what it trained (its own subdirectory, named after
            the method); None: nothing is cached.
    """

    donor: Donor | None = None
    corpus: Sequence[str] = ()
    source_corpus: Sequence[str] = ()
    dictionary: Sequence[tuple[str, str]] = ()
    model: PreTrainedModel | None = None
    aux_model: tuple[PreTrainedModel, PreTrainedTokenizerBase] | None = None
    cache_dir: Path | None = None

    def missing(self, needs: Iterable[Need]) -> list[str]:
        """The ``needs`` these extras do not supply, sorted, each named with its flag.

        Example:
            >>> Extras().missing({Need.DONOR, Need.MODEL})
            ['donor (--donor)', 'model']
        """
        absent = sorted(need for need in needs if _is_empty(getattr(self, need.value)))
        return [_named(need) for need in absent]


def required(value: T | None, need: Need) -> T:
    """``value`` (an optional field of :class:`Extras`), or an error naming the need and its flag."""
    if value is None:
        raise TokengraftError(f"this method needs {_named(need)}")
    return value


def _named(need: Need) -> str:
    """The need and the ``tokengraft graft`` flag that supplies it, e.g. ``donor (--donor)``."""
    flag = NEED_FLAGS[need]
    return f"{need.value} ({flag})" if flag else need.value


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, (list, tuple, Sequence)) and len(value) == 0)


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
        extras: inputs named by ``Need`` (donor embeddings, corpus, ...).
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
    extras: Extras = field(default_factory=lambda: Extras())


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
    extras: Extras = field(default_factory=lambda: Extras())

    @classmethod
    def of(cls, inp: MethodInput, weights: Mapping[Slot, torch.Tensor]) -> RefineInput:
        """The refine input sharing ``inp``'s ids, generator, parameters and extras."""
        return cls(
            weights=weights,
            to_compute=inp.to_compute,
            tied=inp.tied,
            new_tokenizer=inp.new_tokenizer,
            generator=inp.generator,
            progress=inp.progress,
            params=inp.params,
            extras=inp.extras,
        )


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
        """The spec as JSON-ready data (no function): name, summary, paper, needs, defaults."""
        return {
            "name": self.name,
            "summary": self.summary,
            "paper": self.paper,
            "needs": sorted(n.value for n in self.needs),
            "params": dict(self.params),
        }


_REGISTRY: dict[str, MethodSpec] = {}
_DISCOVERED = False  # every module of this package imported once


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method; names are unique."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name].fn is not spec.fn:
        raise ValueError(f"method {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def load_all() -> dict[str, MethodSpec]:
    """Every registered method, sorted by name (the package's modules are imported once)."""
    global _DISCOVERED
    if not _DISCOVERED:
        package = importlib.import_module("tokengraft.methods")
        for module in pkgutil.iter_modules(package.__path__):
            if module.name not in ("registry", "common"):
                importlib.import_module(f"tokengraft.methods.{module.name}")
        _DISCOVERED = True
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str) -> MethodSpec:
    """The method called ``name``; an unknown name lists the valid ones."""
    methods = load_all()
    if name not in methods:
        raise TokengraftError(f"unknown method {name!r}; valid methods: {', '.join(methods)}")
    return methods[name]
