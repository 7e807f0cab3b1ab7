"""The method registry: name -> pure tensor function, its paper, what it needs, its parameters.

A method module registers itself with :func:`register`; :func:`load_all` imports every module in
this package, so adding a method is adding a file.
"""

from __future__ import annotations

import importlib
import math
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


@dataclass(frozen=True)
class MethodRows:
    """A method's rows with its own account of which of them fell back.

    A method returns this instead of a bare (N, D) tensor when its rows do not follow the
    spelling: it computes real rows for tokens the old tokenizer cannot spell (from a donor row,
    from neighbours), or falls back for tokens it can spell. For a bare tensor the graft labels
    exactly the unspellable tokens ``fallback`` in ``tokens.tsv``; with a report, the rows that
    fell back in every slot it ran on (input embeddings, and an untied head).

    Attributes:
        rows: (N, D), one row per entry of ``to_compute``.
        fallback: (N,) bool; the method had nothing to go on for that row (e.g. the mean row).
    """

    rows: torch.Tensor
    fallback: torch.Tensor


# -> (N, D), one row per entry of to_compute; or MethodRows, those rows and which fell back
MethodFn = Callable[[MethodInput], torch.Tensor | MethodRows]


@dataclass(frozen=True, kw_only=True)
class RefineInput:
    """What a method's optional second pass reads: every slot's first-pass matrix at once.

    Attributes:
        weights: slot -> (V_new, D) new matrix after the per-slot pass (copied rows included).
            A tied result has only the input slot.
        to_compute: (N,) long; the new ids the method may change (the rest are copied rows).
        tied: the input matrix also serves as the output head.
        new_tokenizer: the tokenizer the matrices belong to.
        old_tokenizer / pieces / generator / progress / params / extras: as in
            :class:`MethodInput`.
    """

    weights: Mapping[Slot, torch.Tensor]
    to_compute: torch.Tensor
    tied: bool
    new_tokenizer: PreTrainedTokenizerBase | None
    generator: torch.Generator
    old_tokenizer: PreTrainedTokenizerBase | None = None
    pieces: Sequence[Sequence[int] | None] = ()
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
            old_tokenizer=inp.old_tokenizer,
            pieces=inp.pieces,
            progress=inp.progress,
            params=inp.params,
            extras=inp.extras,
        )


# -> slot -> (N, D), the refined rows of ``to_compute`` for every slot of ``weights``
RefineFn = Callable[[RefineInput], dict[Slot, torch.Tensor]]


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclass(frozen=True, kw_only=True)
class Param:
    """One method parameter: its default, type and valid values, and a line of help.

    Attributes:
        default: the value used when the parameter is not given.
        type: ``int``, ``float``, ``str`` or ``bool``.
        help: one line saying what it does.
        min / max: inclusive bounds of a number (None: unbounded).
        positive: a number must be > 0 (for rates and temperatures, where ``min`` would be 0).
        choices: the allowed strings (empty: any string).
        divides: the name of another integer parameter that this one must divide.

    Example:
        >>> Param(default=8, type=int, min=1, help="atoms per row").check(3, "k")
        3
    """

    default: Any
    type: type
    help: str
    min: float | None = None
    max: float | None = None
    positive: bool = False
    choices: tuple[str, ...] = ()
    divides: str | None = None

    def valid(self) -> str:
        """The valid values in words, e.g. ``an integer in [1, 4096]``."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        what = _TYPE_NAMES[self.type]
        low = "0" if self.positive else (None if self.min is None else _number(self.min))
        if low is not None and self.max is not None:
            bracket = "(" if self.positive else "["
            return f"{what} in {bracket}{low}, {_number(self.max)}]"
        if low is not None:
            return f"{what} {'>' if self.positive else '>='} {low}"
        return what if self.max is None else f"{what} <= {_number(self.max)}"

    def check(self, value: Any, name: str) -> Any:
        """``value`` converted to this parameter's type, or an error naming it and the range.

        Args:
            value: as given (JSON value or text from ``-p key=value``).
            name: how the parameter is named in the message.

        Raises:
            TokengraftError: the value has the wrong type or lies outside the valid range.
        """
        converted = _convert(value, self.type)
        if converted is None or not self._in_range(converted):
            raise TokengraftError(f"{name}={value!r} is invalid; valid: {self.valid()}")
        return converted

    def _in_range(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if self.type not in (int, float):
            return True
        too_low = (self.min is not None and value < self.min) or (self.positive and value <= 0)
        return not too_low and (self.max is None or value <= self.max)

    def to_dict(self) -> dict[str, Any]:
        """The schema as JSON-ready data: default, type name, bounds, choices, help."""
        out: dict[str, Any] = {"default": self.default, "type": self.type.__name__}
        out |= {k: getattr(self, k) for k in ("min", "max") if getattr(self, k) is not None}
        if self.choices:
            out["choices"] = list(self.choices)
        if self.divides:
            out["divides"] = self.divides
        if self.positive:
            out["exclusive_min"] = 0
        return out | {"valid": self.valid(), "help": self.help}


def _number(x: float) -> str:
    """A bound as written: whole numbers without a point (``1000000``), others as ``%g``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _convert(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (numbers from numeric text too); None when it is not one."""
    if isinstance(value, str) and kind in (int, float):
        try:
            value = float(value)
        except ValueError:
            return None
    if kind is bool:
        return value if isinstance(value, bool) else None
    if kind is str:
        return value if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if kind is int:
        return int(value) if float(value).is_integer() else None
    return float(value)


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """A registered initialisation method.

    ``params`` declares every parameter: name -> :class:`Param` (default, type, valid range).
    """

    name: str
    fn: MethodFn
    summary: str
    paper: str  # arXiv id or URL; "" for baselines without one
    needs: frozenset[Need] = frozenset()
    params: Mapping[str, Param] = field(default_factory=dict)
    refine: RefineFn | None = None  # optional joint second pass over all slots (see RefineInput)
    unties: bool = False  # the method fits an output head of its own: a tied model is untied
    optional: frozenset[Need] = frozenset()  # used when the user supplies them, never required

    def defaults(self) -> dict[str, Any]:
        """Parameter name -> default value."""
        return {name: p.default for name, p in self.params.items()}

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``, each value checked and converted to its type.

        Raises:
            TokengraftError: an unknown name, or a value of the wrong type or out of range; the
                message names the parameter, the value and the valid range.
        """
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            valid = ", ".join(sorted(self.params)) or "none"
            raise TokengraftError(
                f"method {self.name!r} has no parameter {', '.join(unknown)} (valid: {valid})"
            )
        checked = {
            k: self.params[k].check(v, f"method {self.name!r}: parameter {k}")
            for k, v in given.items()
        }
        resolved = {**self.defaults(), **checked}
        for k, param in self.params.items():
            other = param.divides
            if other is not None and resolved[other] % resolved[k]:
                raise TokengraftError(
                    f"method {self.name!r}: parameter {k}={resolved[k]} must divide "
                    f"{other}={resolved[other]}"
                )
        return resolved

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (no function): name, summary, paper, needs, param schemas."""
        return {
            "name": self.name,
            "summary": self.summary,
            "paper": self.paper,
            "needs": sorted(n.value for n in self.needs),
            "params": {name: p.to_dict() for name, p in self.params.items()},
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
