"""Compare tokenizers on texts: one row per tokenizer and text, parity, schemes, warnings.

The in-memory function behind ``tokengraft eval tokenizer``. Definitions are in ``docs/eval.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.eval import parallel as par
from tokengraft.eval.encoding import Encoded
from tokengraft.eval.lm import truncate_utf8
from tokengraft.eval.tokenizer import TokenizerScore, score_texts_with
from tokengraft.vocab.schemes import Schemes, detect_schemes, scheme_differences

KIND = "tokenizer_eval"


@dataclass(frozen=True, kw_only=True)
class TokenizerEvalConfig:
    """Settings of :func:`evaluate_tokenizers`.

    Attributes:
        parallel: the texts are translations of one another: add parity and Gini.
        english: with ``parallel``, the name of the English text (None: the text whose language
            is ``en`` or ``eng``).
        max_bytes: use only the first this many UTF-8 bytes of each text (None: all).
        threads: threads for splitting text into pre-tokens (None: the CPU count).
    """

    parallel: bool = False
    english: str | None = None
    max_bytes: int | None = None
    threads: int | None = None


@dataclass(frozen=True, kw_only=True)
class TokenizerRow:
    """One tokenizer on one text."""

    tokenizer: str
    language: str
    score: TokenizerScore

    def to_dict(self) -> dict[str, Any]:
        """``{"tokenizer", "file", "language", ...every score field but name}``."""
        fields = self.score.to_dict()
        head = {"tokenizer": self.tokenizer, "file": fields.pop("name"), "language": self.language}
        return head | fields


@dataclass(frozen=True, kw_only=True)
class ParallelScore:
    """Parity of each language and the Gini coefficient of their token counts, one tokenizer."""

    parity: dict[str, float]
    gini: float


@dataclass(frozen=True, kw_only=True)
class TokenizerComparison:
    """Result of :func:`evaluate_tokenizers`.

    Attributes:
        rows: one per tokenizer and text, tokenizers in input order, then texts.
        parallel: per tokenizer, with ``parallel`` set; else None.
        schemes: each tokenizer's digit and whitespace schemes.
        warnings: scheme differences from the first tokenizer, round-trip failures, unknown
            tokens; one line each.
        examples: each tokenizer's tokens of the first non-empty line of the first text.
        token_lengths: per tokenizer, how many tokens of all texts have each length in UTF-8
            bytes (a leading space counted).
    """

    rows: list[TokenizerRow]
    parallel: dict[str, ParallelScore] | None
    schemes: dict[str, Schemes]
    warnings: list[str]
    examples: dict[str, list[str]]
    token_lengths: dict[str, dict[int, int]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``kind: "tokenizer_eval"``) that ``eval tokenizer --json`` prints."""
        return {
            "kind": KIND,
            "rows": [r.to_dict() for r in self.rows],
            "parallel": None
            if self.parallel is None
            else {k: {"parity": v.parity, "gini": v.gini} for k, v in self.parallel.items()},
            "schemes": {k: v.to_dict() for k, v in self.schemes.items()},
            "warnings": list(self.warnings),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "token_lengths": {
                k: {str(n): c for n, c in v.items()} for k, v in self.token_lengths.items()
            },
        }


def _text_warnings(name: str, rows: Sequence[TokenizerRow]) -> list[str]:
    out = []
    for row in rows:
        s = row.score
        if not s.roundtrip:
            out.append(f"{name} does not round-trip {s.name}: decode(encode(text)) != text")
        if s.unk_rate > 0:
            out.append(f"{name}: {s.unk_rate:.2%} of the tokens of {s.name} are the unknown token")
    return out


def _parallel(
    rows: Sequence[TokenizerRow], names: Sequence[str], english: str
) -> dict[str, ParallelScore]:
    out = {}
    for name in names:
        tokens = {r.language: r.score.n_tokens for r in rows if r.tokenizer == name}
        english_lang = next(r.language for r in rows if r.score.name == english)
        out[name] = ParallelScore(parity=par.parity(tokens, english_lang), gini=par.gini(tokens))
    return out


def _piece_bytes(piece: str, byte_level: bool) -> int:
    """UTF-8 bytes a vocabulary piece stands for (a leading-space marker is one byte)."""
    if byte_level:
        return len(piece)  # one character per byte
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        return 1  # a SentencePiece byte-fallback piece
    return len(piece.removeprefix("##").replace("▁", " ").encode("utf-8"))


def _token_lengths(tok: PreTrainedTokenizerBase, encs: Sequence[Encoded]) -> dict[int, int]:
    """Tokens of each length in bytes over all encodings, lengths ascending."""
    counts = np.sum([e.counts for e in encs], axis=0)
    decoder = getattr(tok.backend_tokenizer, "decoder", None)
    byte_level = decoder is not None and "ByteLevel" in str(decoder.__getstate__())
    lengths: dict[int, int] = {}
    for i in np.flatnonzero(counts):
        piece = tok.convert_ids_to_tokens(int(i))
        n = _piece_bytes(piece, byte_level) if isinstance(piece, str) else 0
        lengths[n] = lengths.get(n, 0) + int(counts[i])
    return dict(sorted(lengths.items()))


def _examples(tok: PreTrainedTokenizerBase, ids: Sequence[int]) -> list[str]:
    return [str(tok.decode([i], clean_up_tokenization_spaces=False)) for i in ids]


def _check_names(names: Sequence[str]) -> None:
    if not names:
        raise TokengraftError("no tokenizers to evaluate")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TokengraftError(f"tokenizer {twice[0]} is given twice; give each tokenizer once")


def evaluate_tokenizers(
    tokenizers: Sequence[tuple[str, PreTrainedTokenizerBase]],
    texts: Sequence[tuple[str, str]],
    config: TokenizerEvalConfig | None = None,
    *,
    languages: Mapping[str, str] | None = None,
) -> TokenizerComparison:
    """Score every tokenizer on every text; with ``config.parallel``, parity and Gini as well.

    Args:
        tokenizers: ``(name, tokenizer)`` pairs of fast tokenizers; the first is the base for
            the scheme comparison.
        texts: ``(name, text)`` pairs.
        config: settings (default: :class:`TokenizerEvalConfig`).
        languages: the language of each text name (default: :func:`parallel.language_of`).

    Returns:
        Rows, parity, schemes, warnings and examples; nothing raised for a failed round trip.

    Raises:
        TokengraftError: no tokenizers or texts, a text without words, a slow tokenizer, or (with
            ``parallel``) texts that are not line-aligned or have no English one.

    Example:
        >>> evaluate_tokenizers([("a", tok)], [("en.txt", "Hi there.")]).to_dict()["rows"]
        ... # doctest: +SKIP
    """
    cfg = config or TokenizerEvalConfig()
    _check_names([name for name, _ in tokenizers])
    cut = [(name, truncate_utf8(text, cfg.max_bytes)) for name, text in texts]
    langs = {name: (languages or {}).get(name) or par.language_of(name) for name, _ in cut}
    english = par.english_text(cut, langs, cfg.english) if cfg.parallel else None
    rows: list[TokenizerRow] = []
    warnings: list[str] = []
    examples: dict[str, list[str]] = {}
    lengths: dict[str, dict[int, int]] = {}
    schemes: dict[str, Schemes] = {}
    for name, tok in tokenizers:
        per_file, _, encs = score_texts_with(tok, cut, threads=cfg.threads, overall=False)
        mine = [TokenizerRow(tokenizer=name, language=langs[s.name], score=s) for s in per_file]
        rows += mine
        warnings += _text_warnings(name, mine)
        examples[name] = _examples(tok, encs[0].first_line)
        lengths[name] = _token_lengths(tok, encs)
        schemes[name] = detect_schemes(tok)
    base = tokenizers[0][0]
    for name, _ in tokenizers[1:]:
        lines = scheme_differences(schemes[base], schemes[name])
        warnings += [f"{base} -> {name}: {line}" for line in lines]
    names = [name for name, _ in tokenizers]
    return TokenizerComparison(
        rows=rows,
        parallel=None if english is None else _parallel(rows, names, english),
        schemes=schemes,
        warnings=warnings,
        examples=examples,
        token_lengths=lengths,
    )
