"""Encode whole texts fast and keep only what the tokenizer metrics need: counts, splits, round trip.

Two paths give the same token counts:

* **pre-token path**, for byte-level BPE tokenizers whose pipeline is one regular expression (GPT-2,
  SmolLM2, Llama-3, Qwen, tiktoken files; optionally NFC first). For the well-known expressions
  (:data:`SEGMENT_SAFE`) the text is first cut before every space that a non-space follows, which
  no pre-token crosses, and each distinct segment is kept once with its count. The segments are
  cut into pre-tokens with the same expression in Python's ``regex`` module (GIL released, in
  threads), each distinct pre-token is encoded once, and its tokens are counted as often as it
  occurs. A text holding one of the tokenizer's added tokens takes the chunk path.
* **chunk path**, for everything else: ``encode_batch`` on chunks of at most :data:`CHUNK_CHARS`
  characters cut after a newline, with offsets. A text shorter than that is one chunk, so its
  tokens are exactly those of ``tokenizer(text)``; at a chunk boundary a SentencePiece-style
  tokenizer may add its prefix space once (one token in hundreds of thousands).

A token belongs to the whitespace word that holds its last character; a token ending in whitespace
belongs to none. No model, no I/O. ``tests/test_eval_tokenizer.py`` checks both paths against a
plain encode on random text.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import regex
from tokenizers import Tokenizer, decoders, pre_tokenizers
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError

CHUNK_CHARS = 256_000
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_CL100K = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_O200K = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+"
    r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Expressions whose matches never hold a space followed by a non-space except at their start
# (GPT-2, cl100k / Llama-3, Qwen, o200k): a text can be cut before every such space and the
# pieces pre-tokenised alone, so that each distinct piece is split once.
SEGMENT_SAFE = frozenset({GPT2_PATTERN, _CL100K, _CL100K.replace(r"\p{N}{1,3}", r"\p{N}"), _O200K})
_SEGMENT = re.compile(r" (?=\S)")
# Code points str.split() splits on, so that word counts agree with len(text.split()).
_SPACES = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)


@dataclass(frozen=True, kw_only=True)
class Encoded:
    """What the metrics need from one text's encoding.

    Attributes:
        counts: how often each token id occurs, (V,) int64.
        n_tokens: tokens of the text, no special tokens added.
        n_words: whitespace-separated words, ``len(text.split())``.
        n_split_words: words whose characters are covered by two or more tokens.
        roundtrip: the tokens decode to the text exactly.
        first_line: the ids of the text's first non-empty line, encoded alone.
    """

    counts: np.ndarray
    n_tokens: int
    n_words: int
    n_split_words: int
    roundtrip: bool
    first_line: list[int]


@dataclass(frozen=True)
class _PreTokens:
    """The pre-token path of one tokenizer: its expression and a tokenizer without pre-tokenizer."""

    pattern: Any  # regex.Pattern with one capturing group around the tokenizer's expression
    model: Tokenizer  # the same BPE model behind a byte-level mapping only
    nfc: bool
    segmented: bool  # the expression is in SEGMENT_SAFE
    specials: tuple[str, ...]


def _backend(tok: PreTrainedTokenizerBase) -> Tokenizer:
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise TokengraftError(
            f"{type(tok).__name__} is not a fast tokenizer; load it with tokengraft"
        )
    return backend  # type: ignore[no-any-return]


def _split_pattern(pre: dict[str, Any] | None) -> str | None:
    """The one expression of a byte-level pre-tokenizer, or None when it is anything else."""
    if not pre:
        return None
    if pre.get("type") == "ByteLevel":
        plain = pre.get("use_regex", True) and not pre.get("add_prefix_space")
        return GPT2_PATTERN if plain else None
    parts = pre.get("pretokenizers") or []
    if pre.get("type") != "Sequence" or len(parts) != 2:
        return None
    split, byte_level = parts
    if byte_level.get("type") != "ByteLevel" or byte_level.get("use_regex", True):
        return None
    if byte_level.get("add_prefix_space") or split.get("type") != "Split":
        return None
    if split.get("behavior") != "Isolated" or split.get("invert"):
        return None
    return (split.get("pattern") or {}).get("Regex")


def _state(component: Any) -> dict[str, Any]:
    """A backend component (normalizer, pre-tokenizer, decoder) as its JSON dict ({} for none)."""
    return {} if component is None else dict(json.loads(component.__getstate__()))


def pre_token_path(tok: PreTrainedTokenizerBase) -> _PreTokens | None:
    """The pre-token path of ``tok`` if its pipeline allows one (see the module docstring)."""
    backend = _backend(tok)
    normalizer = _state(backend.normalizer)
    nfc = normalizer.get("type") == "NFC"
    plain = not normalizer or nfc or normalizer == {"type": "Sequence", "normalizers": []}
    pattern = _split_pattern(_state(backend.pre_tokenizer))
    decoder = _state(backend.decoder).get("type")
    if not plain or pattern is None or decoder != "ByteLevel":
        return None
    try:
        compiled = regex.compile(f"({pattern})")
    except regex.error:
        return None
    if compiled.groups != 1 or type(backend.model).__name__ != "BPE":
        return None
    specials = tuple(t.content for t in backend.get_added_tokens_decoder().values())
    model = Tokenizer(backend.model)
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    model.decoder = decoders.ByteLevel()
    return _PreTokens(compiled, model, nfc, pattern in SEGMENT_SAFE, specials)


def _chunks(text: str, size: int) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters, each cut after a newline."""
    start = 0
    while start < len(text):
        cut = text.find("\n", start + size)
        end = len(text) if cut < 0 else cut + 1
        yield text[start:end]
        start = end


def _split(pattern: Any, chunk: str) -> list[str]:
    # findall is faster than split; it is the same when the matches cover every character, as
    # tokenizers' expressions do (their last alternative is \s+).
    found: list[str] = pattern.findall(chunk, concurrent=True)
    if sum(map(len, found)) == len(chunk):
        return found
    return [p for p in pattern.split(chunk, concurrent=True) if p]


def _segments(text: str, segmented: bool) -> tuple[list[str], np.ndarray]:
    """Distinct segments of ``text`` and how often each occurs, (S,) int64.

    The text is cut before each space that a non-space follows; its first segment comes first.
    """
    if not segmented:
        return [text], np.ones(1, dtype=np.int64)
    parts = _SEGMENT.split(text)
    counts = Counter(parts[1:])
    head = [parts[0]] if parts[0] else []
    segs = head + [" " + s for s in counts]
    return segs, np.array([1] * len(head) + list(counts.values()), dtype=np.int64)


def _pieces(path: _PreTokens, segs: list[str], threads: int) -> list[str]:
    """Every pre-token of the segments in order, split in up to ``threads`` threads."""
    total = sum(map(len, segs))
    k = max(1, min(threads, total // 65_536, len(segs)))
    step = -(-len(segs) // k)
    groups = ["".join(segs[i : i + step]) for i in range(0, len(segs), step)]
    if len(groups) == 1:
        return _split(path.pattern, groups[0])
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(lambda g: _split(path.pattern, g), groups))
    return [p for part in parts for p in part]


def _space_mask(text: str) -> np.ndarray:
    """(len(text),) bool: the characters ``str.split`` splits on."""
    return np.isin(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), _SPACES)


def _word_tokens(uniq: Sequence[str], enc: Any) -> np.ndarray:
    """Tokens of each distinct pre-token whose last character is not whitespace, (U,).

    As in the chunk path, a token belongs to the word that holds its last character, and a token
    that ends in whitespace belongs to no word. ``enc`` encodes ``uniq`` as pre-tokenised words,
    so its offsets count characters within each pre-token.
    """
    owner = np.array(enc.word_ids, dtype=np.int64)
    offsets = np.array(enc.offsets, dtype=np.int64).reshape(-1, 2)
    base = np.concatenate([[0], np.cumsum([len(p) for p in uniq])[:-1]])
    last = base[owner] + offsets[:, 1] - 1
    keep = offsets[:, 1] > offsets[:, 0]
    keep[keep] = ~_space_mask("".join(uniq))[last[keep]]
    return np.bincount(owner[keep], minlength=len(uniq))


def _split_words(
    uniq: Sequence[str], idx: np.ndarray, word_tokens: np.ndarray, weight: np.ndarray
) -> int:
    """Words covered by two or more tokens, from the pre-token sequence ``idx`` into ``uniq``.

    ``word_tokens`` (U,) counts each distinct pre-token's tokens that belong to a word,
    ``weight`` (P,) how often each pre-token of the sequence stands in the text.
    """
    starts = np.fromiter((p[0].isspace() for p in uniq), dtype=bool, count=len(uniq))
    ends = np.fromiter((p[-1].isspace() for p in uniq), dtype=bool, count=len(uniq))
    blank = np.fromiter((p.isspace() for p in uniq), dtype=bool, count=len(uniq))
    in_word = ~blank[idx]
    after_space = np.concatenate([[True], ends[idx[:-1]]])
    word = np.cumsum(in_word & (starts[idx] | after_space)) - 1
    per_word = np.bincount(word[in_word], weights=word_tokens[idx][in_word])
    times = np.zeros(len(per_word), dtype=np.int64)
    times[word[in_word]] = weight[in_word]  # a word lies in one segment: one weight
    return int(times[per_word >= 2].sum())


def _encode_pre_tokens(path: _PreTokens, text: str, vocab: int, threads: int) -> Encoded:
    normal = unicodedata.normalize("NFC", text) if path.nfc else text
    segs, seg_times = _segments(normal, path.segmented)
    pieces = _pieces(path, segs, threads)
    ends = np.cumsum(np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces)))
    seg_ends = np.cumsum(np.fromiter(map(len, segs), dtype=np.int64, count=len(segs)))
    weight = seg_times[np.searchsorted(seg_ends, ends - 1, side="right")]  # (P,)
    uniq = list(dict.fromkeys(pieces))
    index = {p: i for i, p in enumerate(uniq)}
    idx = np.fromiter(map(index.__getitem__, pieces), dtype=np.int64, count=len(pieces))
    times = np.bincount(idx, weights=weight, minlength=len(uniq)).astype(np.int64)
    # One encoding of all distinct pre-tokens; word_ids says which pre-token each token is from.
    enc = path.model.encode(uniq, is_pretokenized=True, add_special_tokens=False)
    ids = np.array(enc.ids, dtype=np.int64)
    owner = np.array(enc.word_ids, dtype=np.int64)
    tokens = np.bincount(owner, minlength=len(uniq))
    return Encoded(
        counts=np.bincount(ids, weights=times[owner], minlength=vocab).astype(np.int64),
        n_tokens=int((tokens * times).sum()),
        n_words=len(text.split()),
        n_split_words=_split_words(uniq, idx, _word_tokens(uniq, enc), weight),
        roundtrip=normal == text and path.model.decode(enc.ids) == "".join(uniq),
        first_line=[],
    )


def _chunk_words(chunk: str, offsets: np.ndarray) -> tuple[int, np.ndarray]:
    """Words of ``chunk`` and the tokens of each, from the tokens' (start, end) char offsets."""
    space = _space_mask(chunk)
    start = ~space & np.concatenate([[True], space[:-1]])
    word = np.cumsum(start) - 1
    last = offsets[:, 1] - 1
    valid = offsets[:, 1] > offsets[:, 0]  # trimmed offsets leave a lone space token empty
    valid[valid] = ~space[last[valid]]
    return int(start.sum()), np.bincount(word[last[valid]], minlength=int(start.sum()))


def _encode_chunks(backend: Tokenizer, text: str, vocab: int) -> Encoded:
    chunks = list(_chunks(text, CHUNK_CHARS))
    encodings = backend.encode_batch(chunks, add_special_tokens=False)
    ids = [e.ids for e in encodings]
    n_tokens = sum(len(i) for i in ids)
    flat = np.fromiter((t for i in ids for t in i), dtype=np.int64, count=n_tokens)
    n_words = n_split = 0
    for chunk, enc in zip(chunks, encodings, strict=True):
        offsets = np.array(enc.offsets, dtype=np.int64).reshape(-1, 2)
        words, per_word = _chunk_words(chunk, offsets)
        n_words, n_split = n_words + words, n_split + int((per_word >= 2).sum())
    decoded = backend.decode_batch(ids, skip_special_tokens=False)
    return Encoded(
        counts=np.bincount(flat, minlength=vocab).astype(np.int64),
        n_tokens=n_tokens,
        n_words=n_words,
        n_split_words=n_split,
        roundtrip=decoded == chunks,
        first_line=[],
    )


def _has_special(text: str, specials: Sequence[str]) -> bool:
    """Whether ``text`` holds an added token (a special token is matched before pre-tokens)."""
    heads = {s[:2] for s in specials if s}
    present = {h for h in heads if h in text}  # one scan per distinct start, not per token
    return any(s in text for s in specials if s[:2] in present)


def vocab_size(tok: PreTrainedTokenizerBase) -> int:
    """Ids the tokenizer can produce: ``len(tok)``, or more when the backend has more."""
    return max(len(tok), _backend(tok).get_vocab_size(with_added_tokens=True))


def byte_fallback_ids(tok: PreTrainedTokenizerBase) -> list[int]:
    """Ids of SentencePiece-style ``<0xNN>`` byte-fallback pieces (none for byte-level BPE)."""
    backend = _backend(tok)
    found = (backend.token_to_id(f"<0x{b:02X}>") for b in range(256))
    return sorted(i for i in found if i is not None)


def encode_texts(
    tok: PreTrainedTokenizerBase, texts: Sequence[str], *, threads: int | None = None
) -> list[Encoded]:
    """Encode each text without special tokens; counts, word splits and round trip of each.

    Args:
        tok: a fast tokenizer.
        texts: the texts, each non-empty.
        threads: threads for the pre-token split (default: the CPU count).

    Returns:
        One :class:`Encoded` per text, in order.

    Raises:
        TokengraftError: ``tok`` is not a fast tokenizer.
    """
    backend = _backend(tok)
    vocab = vocab_size(tok)
    path = pre_token_path(tok)
    n = threads or os.cpu_count() or 1
    out = []
    for text in texts:
        if path is not None and not _has_special(text, path.specials):
            enc = _encode_pre_tokens(path, text, vocab, n)
        else:
            enc = _encode_chunks(backend, text, vocab)
        line = next((ln for ln in text.splitlines() if ln.strip()), "")
        first = backend.encode(line, add_special_tokens=False).ids
        out.append(dataclasses.replace(enc, first_line=first))
    return out


def encoding_path(tok: PreTrainedTokenizerBase) -> str:
    """Which path counts ``tok``'s tokens: ``"pre-token"`` (fast, cached pieces) or ``"chunk"``."""
    return "pre-token" if pre_token_path(tok) is not None else "chunk"
