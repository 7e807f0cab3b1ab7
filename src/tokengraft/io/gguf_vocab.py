"""A Hugging Face tokenizer as GGUF tokenizer metadata (``tokenizer.ggml.*``), checked for llama.cpp.

Two kinds are written: a byte-level BPE (GPT-2, SmolLM2, Llama-3, Qwen, tiktoken files) as
llama.cpp's ``gpt2`` model with its merges and a pre-tokenizer name (:mod:`.gguf_pre`), and a
SentencePiece-style BPE with byte fallback (Llama-2, Mistral, Gemma) as its ``llama`` model with
scores. WordPiece and Unigram vocabularies are refused. Either way the tokenizer is run against an
emulation of llama.cpp's own algorithm on probe texts first, and refused where they differ.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from gguf import TokenType
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.io.gguf_pre import PROBE_TEXTS, choose_pre_tokenizer

_BYTE_PIECE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")
_NO_MERGE_SCORE = -1e9  # a token no merge makes: llama.cpp's SentencePiece loop never prefers it


@dataclass(frozen=True, kw_only=True)
class GGUFVocab:
    """Everything llama.cpp reads about a tokenizer.

    Attributes:
        model: ``gpt2`` (byte-level BPE) or ``llama`` (SentencePiece-style BPE).
        pre: the pre-tokenizer name (``gpt2`` only).
        tokens: one string per id, padded to the embedding rows with ``[PADn]``.
        token_types: a :class:`gguf.TokenType` value per token.
        merges: ``"a b"`` per merge, best first (``gpt2`` only).
        scores: one per token (``llama`` only): higher merges first.
        special_ids: ``bos``/``eos``/``unk``/``pad`` -> id, for the roles the tokenizer has.
        add_bos: encoding a text prepends BOS.
        add_eos: encoding a text appends EOS.
        add_space_prefix: a space is put before the text (SentencePiece's dummy prefix).
        chat_template: the Jinja chat template, if any.
    """

    model: str
    pre: str | None
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    scores: list[float] | None
    special_ids: dict[str, int]
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool
    chat_template: str | None


def gguf_vocab(
    tok: PreTrainedTokenizerBase, n_vocab: int, *, pre_hint: str | None = None, what: str = ""
) -> GGUFVocab:
    """The GGUF description of ``tok`` for a model with ``n_vocab`` embedding rows.

    Args:
        tok: a fast tokenizer.
        n_vocab: rows of the embedding matrix (at least ``len(tok)``; the rest become ``[PADn]``).
        pre_hint: a pre-tokenizer name to try first (the model's own GGUF file's).
        what: how the tokenizer is named in error messages.

    Returns:
        The metadata, checked to tokenise the probe texts like ``tok`` in llama.cpp.

    Raises:
        TokengraftError: the tokenizer is neither byte-level nor SentencePiece-style BPE, llama.cpp
            cannot split text as it does, or it has more tokens than the model has rows.
    """
    what = what or "tokenizer"
    spec = json.loads(tok.backend_tokenizer.to_str())
    if len(tok) > n_vocab:
        raise TokengraftError(f"{what} has {len(tok)} tokens but the model only {n_vocab} rows")
    kind = _kind(spec, what)
    tokens, types = _tokens(tok, n_vocab, sentencepiece=kind == "llama")
    adds = _adds(tok)
    base = GGUFVocab(
        model=kind,
        pre=None,
        tokens=tokens,
        token_types=types,
        merges=[],
        scores=None,
        special_ids=_special_ids(tok),
        add_bos=adds["add_bos"],
        add_eos=adds["add_eos"],
        add_space_prefix=False,
        chat_template=_chat_template(tok),
    )
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    if kind == "gpt2":
        return replace(base, pre=choose_pre_tokenizer(tok, hint=pre_hint, what=what), merges=merges)
    scores = merge_scores(tokens, merges)
    prefix = _space_prefix(spec)
    _check_sentencepiece(tok, scores, prefix, what)
    return replace(base, scores=scores, add_space_prefix=prefix)


def _kind(spec: dict[str, Any], what: str) -> str:
    """``gpt2`` or ``llama``, from the tokenizer.json structure; anything else is refused."""
    model = spec.get("model") or {}
    steps = json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")], ensure_ascii=False)
    if model.get("type") == "BPE" and '"ByteLevel"' in steps:
        return "gpt2"
    if model.get("type") == "BPE" and model.get("byte_fallback") and "▁" in steps:
        return "llama"
    kind = model.get("type", "unknown")
    raise TokengraftError(
        f"{what} is a {kind} tokenizer of a kind llama.cpp's Llama models cannot use; GGUF export "
        "supports byte-level BPE (gpt2) and SentencePiece-style BPE with byte fallback (llama)"
    )


def _tokens(
    tok: PreTrainedTokenizerBase, n_vocab: int, *, sentencepiece: bool
) -> tuple[list[str], list[int]]:
    """Token strings by id and their llama.cpp types; rows past the tokenizer become [PADn]."""
    backend, added, size, unk = tok.backend_tokenizer, tok.added_tokens_decoder, len(tok), -1
    if sentencepiece and tok.unk_token_id is not None:
        unk = tok.unk_token_id  # SentencePiece's <unk> is UNKNOWN; GPT-2's keeps its added type
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        piece = backend.id_to_token(i) if i < size else None
        if piece is None:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
            continue
        tokens.append(piece)
        if i == unk:
            types.append(TokenType.UNKNOWN)
        elif i in added:
            types.append(TokenType.CONTROL if added[i].special else TokenType.USER_DEFINED)
        elif sentencepiece and _BYTE_PIECE.match(piece):
            types.append(TokenType.BYTE)
        else:
            types.append(TokenType.NORMAL)
    return tokens, [int(t) for t in types]


def _special_ids(tok: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = {
        "bos": tok.bos_token_id,
        "eos": tok.eos_token_id,
        "unk": tok.unk_token_id,
        "pad": tok.pad_token_id,
    }
    return {role: int(i) for role, i in ids.items() if isinstance(i, int)}


def _adds(tok: PreTrainedTokenizerBase) -> dict[str, bool]:
    """Whether encoding a text puts BOS in front of it and EOS after it."""
    ids = tok("a").input_ids
    bos, eos = tok.bos_token_id, tok.eos_token_id
    return {
        "add_bos": bos is not None and bool(ids) and ids[0] == bos,
        "add_eos": eos is not None and bool(ids) and ids[-1] == eos,
    }


def _chat_template(tok: PreTrainedTokenizerBase) -> str | None:
    template = tok.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    return template if isinstance(template, str) else None


def merge_scores(tokens: list[str], merges: list[str]) -> list[float]:
    """SentencePiece scores that make llama.cpp merge in the order of ``merges``.

    llama.cpp's SentencePiece loop merges the adjacent pair whose concatenation has the highest
    score; a token made by the merge of rank ``r`` scores ``-r``, so better merges come first.
    Tokens no merge makes (characters, bytes, special tokens) score far below every merge.
    """
    best: dict[str, int] = {}
    for rank, merge in enumerate(merges):
        best.setdefault(merge.replace(" ", "", 1), rank)
    return [float(-best[t]) if t in best else _NO_MERGE_SCORE for t in tokens]


def _space_prefix(spec: dict[str, Any]) -> bool:
    """Whether the tokenizer puts ``▁`` before the text (Metaspace or a Prepend normalizer)."""
    text = json.dumps([spec.get("normalizer"), spec.get("pre_tokenizer")])
    if '"Prepend"' in text:
        return True
    return '"Metaspace"' in text and '"prepend_scheme": "never"' not in text


def spm_emulate_ids(
    vocab: dict[str, int], scores: list[float], add_space_prefix: bool, text: str
) -> list[int]:
    """Token ids of ``text`` as llama.cpp's SentencePiece tokenizer would produce them.

    Args:
        vocab: token -> id.
        scores: one per id (:func:`merge_scores`).
        add_space_prefix: put a space before the text, as SentencePiece's dummy prefix does.
        text: the text, without special tokens.

    Returns:
        The ids: the best-scoring adjacent pair in the vocabulary is merged until none is left,
        and a character outside the vocabulary becomes its ``<0xNN>`` byte pieces.
    """
    text = (" " + text if add_space_prefix else text).replace(" ", "▁")
    symbols = list(text)
    while True:
        best, at = None, -1
        for i in range(len(symbols) - 1):
            merged = symbols[i] + symbols[i + 1]
            if merged in vocab and (best is None or scores[vocab[merged]] > best):
                best, at = scores[vocab[merged]], i
        if best is None:
            break
        symbols[at : at + 2] = [symbols[at] + symbols[at + 1]]
    ids: list[int] = []
    for symbol in symbols:
        if symbol in vocab:
            ids.append(vocab[symbol])
        else:
            ids.extend(vocab.get(f"<0x{b:02X}>", vocab.get("<unk>", 0)) for b in symbol.encode())
    return ids


def _check_sentencepiece(
    tok: PreTrainedTokenizerBase, scores: list[float], add_space_prefix: bool, what: str
) -> None:
    vocab = tok.get_vocab()
    for text in PROBE_TEXTS:
        if (
            spm_emulate_ids(vocab, scores, add_space_prefix, text)
            != tok(text, add_special_tokens=False).input_ids
        ):
            raise TokengraftError(
                f"{what}: llama.cpp's SentencePiece tokenizer would not give this tokenizer's "
                f"tokens (first difference on {text[:30]!r}): its pre-tokenizer cannot be "
                "expressed in GGUF"
            )
