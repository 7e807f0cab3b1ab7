"""How a tokenizer splits numbers and whitespace, found by probing it, and what a change risks.

Goddard & Fernandes Neto (2025), "Training-Free Tokenizer Transplantation via Orthogonal Matching
Pursuit" (arXiv 2506.06607) saw GSM8K accuracy collapse after a graft when the base and the new
tokenizer split digits differently: the model's arithmetic is learned on its own digit chunks.
Whitespace matters the same way for code: a model that saw indentation as one token per run of
spaces has to read it as many tokens, or the other way round.

Everything here is a pure function of a fast tokenizer: it encodes a few probe strings and looks
at the token spans. Definitions are in ``docs/eval.md`` ("Number and whitespace schemes").
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError

# Probe numbers of 1 to 10 digits: lengths that are and are not multiples of 2, 3 and 4 tell the
# grouping direction apart. No repeated digit pairs, so that a learned merge is rarely "regular".
DIGIT_PROBES = (
    "7", "42", "358", "1967", "20481", "314159", "2718281", "60221407", "141421356",
    "9876543210",
)  # fmt: skip
RUN_LENGTH = 8  # characters in a probed run of spaces, tabs or newlines
OMP_PAPER = "arXiv 2506.06607"


class DigitKind(enum.StrEnum):
    """How a tokenizer cuts a run of digits into tokens."""

    SINGLE = "single"  # one token per digit (Llama-2, Gemma, SmolLM2)
    GROUP_LTR = "group_ltr"  # fixed groups from the left: 1234 -> 123|4 (cl100k, Llama-3)
    GROUP_RTL = "group_rtl"  # fixed groups from the right: 1234 -> 1|234
    WHOLE = "whole"  # every probe number is one token
    LEARNED = "learned"  # BPE merges with no fixed rule (GPT-2)


@dataclass(frozen=True, kw_only=True)
class DigitScheme:
    """A tokenizer's digit scheme.

    Attributes:
        kind: the rule.
        max_group: most digits seen in one token over the probes.
    """

    kind: DigitKind
    max_group: int

    def __str__(self) -> str:
        """A short phrase: ``groups of up to 3 digits, left to right``."""
        n = self.max_group
        return {
            DigitKind.SINGLE: "single digits",
            DigitKind.GROUP_LTR: f"groups of up to {n} digits, left to right",
            DigitKind.GROUP_RTL: f"groups of up to {n} digits, right to left",
            DigitKind.WHOLE: f"whole numbers (up to {n} digits per token)",
            DigitKind.LEARNED: f"learned merges (irregular, up to {n} digits per token)",
        }[self.kind]


@dataclass(frozen=True, kw_only=True)
class RunHandling:
    """What a tokenizer does with a run of one whitespace character between two words.

    Attributes:
        kept: the run decodes back exactly.
        unknown: the character encodes to the unknown token.
        tokens: tokens the run of :data:`RUN_LENGTH` costs beyond a single character.
    """

    kept: bool
    unknown: bool
    tokens: int

    def __str__(self) -> str:
        """``merged``, ``one token each``, ``partly merged (...)``, ``unknown`` or ``lost``."""
        if self.unknown:
            return "unknown token"
        if not self.kept:
            return "lost on decode"
        if self.tokens <= 1:
            return "runs merged"
        if self.tokens >= RUN_LENGTH - 1:
            return "one token each"
        return f"runs partly merged ({self.tokens + 1} tokens per {RUN_LENGTH})"

    @property
    def merged(self) -> bool:
        """Kept, and a run of :data:`RUN_LENGTH` costs at most half as many tokens."""
        return self.kept and not self.unknown and self.tokens + 1 <= RUN_LENGTH // 2


@dataclass(frozen=True, kw_only=True)
class WhitespaceScheme:
    """A tokenizer's whitespace handling.

    Attributes:
        marker: how tokens carry a leading space: ``Ġ`` (byte-level), ``▁`` (SentencePiece style)
            or ``none`` (WordPiece and others keep spaces out of tokens).
        prefix_space: ``encode("word")`` starts with a word-start token, as if the text began
            with a space (SentencePiece's dummy prefix).
        spaces: runs of spaces.
        tabs: runs of tabs.
        newlines: runs of newlines.
    """

    marker: str
    prefix_space: bool
    spaces: RunHandling
    tabs: RunHandling
    newlines: RunHandling

    def __str__(self) -> str:
        """One line: ``marker Ġ, no prefix space; spaces: runs merged; tabs: ...``."""
        prefix = "prefix space" if self.prefix_space else "no prefix space"
        return (
            f"marker {self.marker}, {prefix}; spaces: {self.spaces}; tabs: {self.tabs}; "
            f"newlines: {self.newlines}"
        )


@dataclass(frozen=True, kw_only=True)
class Schemes:
    """Digit and whitespace schemes of one tokenizer (:func:`detect_schemes`)."""

    digits: DigitScheme
    whitespace: WhitespaceScheme

    def to_dict(self) -> dict[str, str]:
        """``{"digits": ..., "whitespace": ...}`` as one-line descriptions."""
        return {"digits": str(self.digits), "whitespace": str(self.whitespace)}


def _backend(tok: PreTrainedTokenizerBase) -> object:
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise TokengraftError(
            f"{type(tok).__name__} is not a fast tokenizer; load it with tokengraft"
        )
    return backend


def _digit_groups(tok: PreTrainedTokenizerBase, number: str) -> list[int]:
    """Digits of ``number`` in each token that holds any, in order (encoded after a space)."""
    text = " " + number
    enc = _backend(tok).encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
    groups = [sum(c.isdigit() for c in text[s:e]) for s, e in enc.offsets]
    return [g for g in groups if g]


def _fixed_groups(length: int, n: int, *, left: bool) -> list[int]:
    """Group sizes of ``length`` digits cut into groups of ``n`` from the left or the right."""
    full, rest = divmod(length, n)
    head = [rest] if rest and not left else []
    tail = [rest] if rest and left else []
    return head + [n] * full + tail


def detect_digits(tok: PreTrainedTokenizerBase) -> DigitScheme:
    """The digit scheme of ``tok``, from how it encodes :data:`DIGIT_PROBES`.

    Args:
        tok: a fast tokenizer.

    Returns:
        The scheme; :attr:`DigitKind.LEARNED` when no fixed rule explains every probe.

    Raises:
        TokengraftError: ``tok`` is not a fast tokenizer.

    Example:
        >>> str(detect_digits(load_tokenizer("llama3")))  # doctest: +SKIP
        'groups of up to 3 digits, left to right'
    """
    groups = [_digit_groups(tok, p) for p in DIGIT_PROBES]
    n = max((max(g, default=1) for g in groups), default=1)
    if n == 1:
        return DigitScheme(kind=DigitKind.SINGLE, max_group=1)
    if all(g == [len(p)] for g, p in zip(groups, DIGIT_PROBES, strict=True)):
        return DigitScheme(kind=DigitKind.WHOLE, max_group=n)
    for kind, left in ((DigitKind.GROUP_LTR, True), (DigitKind.GROUP_RTL, False)):
        if all(
            g == _fixed_groups(len(p), n, left=left)
            for g, p in zip(groups, DIGIT_PROBES, strict=True)
        ):
            return DigitScheme(kind=kind, max_group=n)
    return DigitScheme(kind=DigitKind.LEARNED, max_group=n)


def _run(tok: PreTrainedTokenizerBase, char: str) -> RunHandling:
    """How ``tok`` encodes ``a<char>b`` and ``a<char * RUN_LENGTH>b``."""
    backend = _backend(tok)
    one = backend.encode(f"a{char}b", add_special_tokens=False)  # type: ignore[attr-defined]
    text = f"a{char * RUN_LENGTH}b"
    run = backend.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
    decoded = backend.decode(run.ids, skip_special_tokens=False)  # type: ignore[attr-defined]
    unk = tok.unk_token_id
    return RunHandling(
        kept=decoded == text,
        unknown=unk is not None and unk in run.ids,
        tokens=len(run.ids) - len(one.ids),
    )


def _marker(tok: PreTrainedTokenizerBase) -> tuple[str, bool]:
    """The leading-space marker and whether a bare word gets a prefix space."""
    backend = _backend(tok)
    spaced = backend.encode(" word", add_special_tokens=False).tokens  # type: ignore[attr-defined]
    bare = backend.encode("word", add_special_tokens=False).tokens  # type: ignore[attr-defined]
    marker = next((m for m in ("Ġ", "▁") if spaced and spaced[0].startswith(m)), "none")
    prefix = marker != "none" and bool(bare) and bare[0].startswith(marker)
    return marker, prefix


def detect_whitespace(tok: PreTrainedTokenizerBase) -> WhitespaceScheme:
    """The whitespace handling of ``tok``: marker, prefix space, runs of spaces, tabs, newlines.

    Args:
        tok: a fast tokenizer.

    Returns:
        The scheme.

    Raises:
        TokengraftError: ``tok`` is not a fast tokenizer.
    """
    marker, prefix = _marker(tok)
    return WhitespaceScheme(
        marker=marker,
        prefix_space=prefix,
        spaces=_run(tok, " "),
        tabs=_run(tok, "\t"),
        newlines=_run(tok, "\n"),
    )


def detect_schemes(tok: PreTrainedTokenizerBase) -> Schemes:
    """Digit and whitespace schemes of ``tok`` (a few dozen short encodings).

    Args:
        tok: a fast tokenizer.

    Returns:
        Both schemes.

    Raises:
        TokengraftError: ``tok`` is not a fast tokenizer.
    """
    return Schemes(digits=detect_digits(tok), whitespace=detect_whitespace(tok))


def _run_risks(name: str, base: RunHandling, new: RunHandling, risk: str) -> list[str]:
    if str(base) == str(new) or (base.merged and new.merged):
        return []
    return [f"{name}: base tokenizer {base}, new tokenizer {new}; {risk}"]


def compare_schemes(base: PreTrainedTokenizerBase, new: PreTrainedTokenizerBase) -> list[str]:
    """One line per difference between the schemes of ``base`` and ``new``, with its risk.

    Args:
        base: the model's own tokenizer.
        new: the tokenizer it gets.

    Returns:
        Lines such as ``digits: base tokenizer splits single digits, new tokenizer ...; ...``;
        empty when the schemes agree.

    Raises:
        TokengraftError: either is not a fast tokenizer.
    """
    return scheme_differences(detect_schemes(base), detect_schemes(new))


def _digits_differ(base: DigitScheme, new: DigitScheme) -> bool:
    grouped = {DigitKind.GROUP_LTR, DigitKind.GROUP_RTL}
    return base.kind != new.kind or (base.kind in grouped and base.max_group != new.max_group)


def scheme_differences(base: Schemes, new: Schemes) -> list[str]:
    """:func:`compare_schemes` on schemes already detected."""
    lines: list[str] = []
    if _digits_differ(base.digits, new.digits):
        lines.append(
            f"digits: base tokenizer uses {base.digits}, new tokenizer {new.digits}; arithmetic "
            f"may break after grafting ({OMP_PAPER} saw GSM8K collapse when digit schemes differ)"
        )
    b, n = base.whitespace, new.whitespace
    code = "code indentation will be tokenised unlike anything the model saw"
    lines += _run_risks("runs of spaces", b.spaces, n.spaces, code)
    lines += _run_risks("tabs", b.tabs, n.tabs, code)
    lines += _run_risks("newlines", b.newlines, n.newlines, "line and paragraph breaks change")
    if b.prefix_space != n.prefix_space and "none" not in (b.marker, n.marker):
        has = {True: "adds a prefix space", False: "adds no prefix space"}
        lines.append(
            f"prefix space: base tokenizer {has[b.prefix_space]}, new tokenizer "
            f"{has[n.prefix_space]}; the first word of a prompt gets a different token"
        )
    if (b.marker == "none") != (n.marker == "none"):
        lines.append(
            f"word boundaries: base tokenizer marks leading spaces with {b.marker}, new tokenizer "
            f"with {n.marker}; spacing may not survive decoding"
        )
    return lines


def describe_all(tokenizers: Sequence[tuple[str, PreTrainedTokenizerBase]]) -> dict[str, Schemes]:
    """:func:`detect_schemes` of each named tokenizer."""
    return {name: detect_schemes(tok) for name, tok in tokenizers}
