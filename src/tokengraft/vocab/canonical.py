"""Canonical token bytes for every tokenizer family, and special-token roles.

Every token of every family is mapped to the exact bytes it contributes to decoded text:

* byte-level BPE (GPT-2, SmolLM2, Llama-3, Qwen, tiktoken files converted by `transformers`):
  each character stands for one byte through GPT-2's ``bytes_to_unicode`` table (``Ġ`` = space);
* SentencePiece style (Llama-2, Mistral, Gemma, XLM-R Unigram): ``▁`` is a space and ``<0xNN>``
  byte-fallback pieces are the byte ``0xNN``;
* WordPiece (BERT): a ``##`` piece continues a word, any other piece starts one (a space before it);
* anything else: the token's UTF-8 text.

A token's :class:`CanonicalToken` is its bytes without the leading space, plus a ``word_start``
flag for that space, so ``Ġhello``, ``▁hello`` and WordPiece ``hello`` are the same token.
Special tokens keep their text and are matched by role (bos, eos, pad, unk, chat markers).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class Family(enum.StrEnum):
    """How a tokenizer writes the bytes of its tokens."""

    BYTE_LEVEL = "byte_level"
    METASPACE = "metaspace"
    WORDPIECE = "wordpiece"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class CanonicalToken:
    """The exact bytes a token stands for.

    Attributes:
        text: the token's bytes, without the leading space when ``word_start`` is set.
        word_start: the token begins with a space (``Ġ``, ``▁``, or a WordPiece word start).
        special: a special/control token (matched by role, never by bytes).
        byte_fallback: a SentencePiece ``<0xNN>`` piece.
    """

    text: bytes
    word_start: bool = False
    special: bool = False
    byte_fallback: bool = False

    @property
    def key(self) -> tuple[bytes, bool, bool]:
        """What two tokens must share to be the same token."""
        return (self.text, self.word_start, self.special)

    @property
    def surface(self) -> bytes:
        """The bytes this token adds to decoded text (a special token adds its own text)."""
        return (b" " + self.text) if self.word_start else self.text

    def display(self) -> str:
        """A readable, single-line rendering for reports (``␣`` marks the word-start space)."""
        body = self.text.decode("utf-8", errors="backslashreplace")
        body = "".join(c if c.isprintable() or c == " " else _escape(c) for c in body)
        return ("␣" + body) if self.word_start else body


def _escape(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")


def _from_surface(raw: bytes, *, byte_fallback: bool = False) -> CanonicalToken:
    # A lone space stays a space: only a space followed by something marks a word start.
    if len(raw) > 1 and raw[:1] == b" ":
        return CanonicalToken(raw[1:], word_start=True, byte_fallback=byte_fallback)
    return CanonicalToken(raw, byte_fallback=byte_fallback)


@cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character -> byte table (the inverse of ``bytes_to_unicode``)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _backend_json(tok: PreTrainedTokenizerBase) -> dict[str, Any]:
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise TokengraftError(
            f"{type(tok).__name__} is not a fast tokenizer; load it with tokengraft"
        )
    return json.loads(backend.to_str())


def _components(node: Any) -> list[dict[str, Any]]:
    """Flatten a pre-tokenizer/normalizer/decoder tree into its parts."""
    if not isinstance(node, dict):
        return []
    parts = [node]
    for key in ("pretokenizers", "normalizers", "decoders"):
        for child in node.get(key) or []:
            parts.extend(_components(child))
    return parts


@dataclass(frozen=True, kw_only=True)
class TokenizerInfo:
    """What :func:`describe` finds out about a tokenizer's byte conventions."""

    family: Family
    prepends_space: bool  # encode("a") yields a word-start token (SentencePiece dummy prefix, BERT)
    continuing_prefix: str = "##"


def describe(tok: PreTrainedTokenizerBase) -> TokenizerInfo:
    """Detect the tokenizer family from its backend (model, pre-tokenizer, normalizer, decoder)."""
    spec = _backend_json(tok)
    model = spec.get("model") or {}
    parts = [
        p for k in ("normalizer", "pre_tokenizer", "decoder") for p in _components(spec.get(k))
    ]
    types = {p.get("type") for p in parts}
    if "ByteLevel" in types:
        return TokenizerInfo(family=Family.BYTE_LEVEL, prepends_space=False)
    if model.get("type") == "WordPiece":
        prefix = model.get("continuing_subword_prefix") or "##"
        return TokenizerInfo(family=Family.WORDPIECE, prepends_space=True, continuing_prefix=prefix)
    metaspace = [p for p in parts if p.get("type") == "Metaspace"]
    uses_marker = bool(metaspace) or any(
        "▁" in json.dumps(p, ensure_ascii=False) for p in parts if p.get("type") in {"Replace"}
    )
    if uses_marker:
        prepends = any(p.get("prepend_scheme", "always") != "never" for p in metaspace) or any(
            p.get("type") == "Prepend" for p in parts
        )
        return TokenizerInfo(family=Family.METASPACE, prepends_space=prepends)
    return TokenizerInfo(family=Family.RAW, prepends_space=False)


def canonical_piece(piece: str, info: TokenizerInfo) -> CanonicalToken:
    """Canonical bytes of one (non-special) vocabulary piece of a tokenizer of ``info.family``."""
    if info.family is Family.BYTE_LEVEL:
        table = _byte_decoder()
        raw = bytes(table[c] for c in piece) if all(c in table for c in piece) else piece.encode()
        return _from_surface(raw)
    if info.family is Family.METASPACE:
        match = _BYTE_FALLBACK.match(piece)
        if match:
            return CanonicalToken(bytes([int(match.group(1), 16)]), byte_fallback=True)
        return _from_surface(piece.replace("▁", " ").encode())
    if info.family is Family.WORDPIECE:
        if piece.startswith(info.continuing_prefix) and len(piece) > len(info.continuing_prefix):
            return CanonicalToken(piece[len(info.continuing_prefix) :].encode())
        return CanonicalToken(piece.encode(), word_start=True)
    return _from_surface(piece.encode())


@dataclass(frozen=True)
class CanonicalVocab:
    """Canonical form of every id of a tokenizer (``None`` for ids with no token)."""

    tokens: tuple[CanonicalToken | None, ...]
    info: TokenizerInfo
    index: dict[tuple[bytes, bool, bool], int]

    def __len__(self) -> int:
        return len(self.tokens)

    def lookup(self, token: CanonicalToken) -> int | None:
        """The id of the token with the same canonical form, if any."""
        return self.index.get(token.key)


def canonical_vocab(tok: PreTrainedTokenizerBase) -> CanonicalVocab:
    """Map every id of ``tok`` to its :class:`CanonicalToken`.

    Example:
        >>> cv = canonical_vocab(tokenizer)  # doctest: +SKIP
        >>> cv.tokens[tokenizer.convert_tokens_to_ids("Ġthe")].surface  # doctest: +SKIP
        b' the'
    """
    info = describe(tok)
    added = {i: t for i, t in tok.added_tokens_decoder.items()}
    size = max(len(tok), max(added, default=-1) + 1)
    pieces: list[str | None] = [None] * size
    for text, i in tok.get_vocab().items():
        if i < size:
            pieces[i] = text
    tokens: list[CanonicalToken | None] = []
    for i, piece in enumerate(pieces):
        if i in added:
            tokens.append(CanonicalToken(added[i].content.encode(), special=bool(added[i].special)))
        else:
            tokens.append(None if piece is None else canonical_piece(piece, info))
    return CanonicalVocab(tuple(tokens), info, _build_index(tokens))


def _build_index(tokens: Sequence[CanonicalToken | None]) -> dict[tuple[bytes, bool, bool], int]:
    index: dict[tuple[bytes, bool, bool], int] = {}
    for i, token in enumerate(tokens):
        if token is None:
            continue
        seen = index.get(token.key)
        # Prefer a real piece over a <0xNN> fallback piece with the same bytes.
        if seen is None or (tokens[seen].byte_fallback and not token.byte_fallback):  # type: ignore[union-attr]
            index[token.key] = i
    return index


def decode_canonical(vocab: CanonicalVocab, ids: Sequence[int]) -> bytes:
    """Concatenate the canonical bytes of ``ids`` (the text they encode, as bytes).

    A tokenizer that prepends a space to the text (SentencePiece dummy prefix, WordPiece) gets its
    first space removed, as its own decoder does.
    """
    out = b"".join(vocab.tokens[i].surface for i in ids if vocab.tokens[i] is not None)  # type: ignore[union-attr]
    if vocab.info.prepends_space and out[:1] == b" ":
        out = out[1:]
    return out


# ---------------------------------------------------------------------------------------------
# Special tokens by role.

_ROLE_ALIASES: dict[str, frozenset[str]] = {
    "turn_start": frozenset({"<|im_start|>", "<start_of_turn>", "<|start_header_id|>", "[INST]"}),
    "turn_end": frozenset({"<|im_end|>", "<end_of_turn>", "<|eot_id|>", "[/INST]"}),
    "end_of_text": frozenset({"<|endoftext|>", "<|end_of_text|>", "<eos>", "</s>", "[SEP]"}),
    "begin_of_text": frozenset({"<|begin_of_text|>", "<bos>", "<s>", "[CLS]"}),
    "pad": frozenset({"<pad>", "[PAD]", "<|pad|>"}),
    "unk": frozenset({"<unk>", "[UNK]"}),
}
_ATTRIBUTE_ROLES = ("bos", "eos", "pad", "unk")


def special_roles(tok: PreTrainedTokenizerBase) -> dict[str, int]:
    """Role name -> token id for a tokenizer's special tokens (bos, eos, pad, unk, chat markers)."""
    roles: dict[str, int] = {}
    vocab = tok.get_vocab()
    for role, names in _ROLE_ALIASES.items():
        for name in sorted(names):
            if name in vocab:
                roles.setdefault(role, vocab[name])
    for role in _ATTRIBUTE_ROLES:
        token_id = getattr(tok, f"{role}_token_id", None)
        if token_id is not None:
            roles[role] = int(token_id)
    return roles


def roles_of(content: str, token_id: int, roles: dict[str, int]) -> list[str]:
    """The roles a special token plays: from the tokenizer's attributes and from its text."""
    found = [role for role, i in roles.items() if i == token_id and role in _ATTRIBUTE_ROLES]
    found += [role for role, names in _ROLE_ALIASES.items() if content in names]
    return found
