"""Byte-level BPE tokenizers from rank tables: tiktoken files and Mistral's tekken JSON.

Both formats list tokens by rank and leave the split pattern and the special tokens to the
encoding. A tiktoken file of a known encoding (:mod:`tokengraft.io.encodings`) gets that
encoding's pattern, special tokens at their real ids, and bos/eos/pad roles; a tekken file
carries its pattern and puts its special tokens first. The result encodes text to the same ids
as the reference implementation (tiktoken, mistral-common).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers import PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter

from tokengraft.errors import TokengraftError
from tokengraft.io.encodings import CL100K_PATTERN, ENCODINGS, Encoding, fingerprint, identify
from tokengraft.io.errors import reraise

logger = logging.getLogger(__name__)

# Mistral's tekken files before v7 carry no special tokens: these are ids 0..19 of every one.
_TEKKEN_SPECIALS = [
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "[IMG]",
    "<pad>",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[PREFIX]",
    "[MIDDLE]",
    "[SUFFIX]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
]


def read_ranks(path: Path) -> dict[bytes, int]:
    """Parse a tiktoken BPE file (optionally gzipped): ``base64(token) rank`` per line.

    Raises:
        TokengraftError: a line that is not ``base64 rank``, or ranks not 0..N-1.
    """
    with reraise("tiktoken file", path):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as exc:
            raise TokengraftError(f"{path}:{lineno}: not a tiktoken line: {line[:60]!r}") from exc
    _check_contiguous(path, ranks)
    return ranks


def _check_contiguous(path: Path, ranks: Mapping[bytes, int]) -> None:
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise TokengraftError(f"{path}: tiktoken ranks are not unique and contiguous from 0")


def tiktoken_tokenizer(
    path: Path,
    *,
    encoding: str | None = None,
    pattern: str | None = None,
    special_tokens: Sequence[str] = (),
) -> PreTrainedTokenizerFast:
    """A tiktoken file as a fast tokenizer: its encoding recognised, or named by the caller.

    Args:
        path: a ``*.tiktoken`` file (optionally gzipped).
        encoding: the name of a known encoding (:data:`~tokengraft.io.encodings.ENCODINGS`);
            None: recognised by the rank table.
        pattern: a split regex overriding the encoding's.
        special_tokens: for an unrecognised file, special tokens appended after the ranks.

    Raises:
        TokengraftError: an unreadable file, an unknown encoding name, or a named encoding whose
            size does not match the file.
    """
    ranks = read_ranks(path)
    known = _named_encoding(path, ranks, encoding) if encoding else identify(ranks)
    if known is None:
        logger.warning(
            "%s: unrecognised tiktoken rank table (%d tokens): split with the cl100k pattern, "
            "no special-token roles; name its encoding if it is one of %s",
            path,
            len(ranks),
            ", ".join(ENCODINGS),
        )
        specials = {len(ranks) + i: token for i, token in enumerate(special_tokens)}
        known = Encoding(name="", n_ranks=len(ranks), fingerprint="", pattern=CL100K_PATTERN)
    else:
        specials = dict(known.specials)
    backend = bpe_from_ranks(ranks, pattern or known.pattern, specials, nfc=known.nfc)
    roles = {"bos_token": known.bos, "eos_token": known.eos, "pad_token": known.pad}
    return _fast(backend, roles)


def _named_encoding(path: Path, ranks: Mapping[bytes, int], name: str) -> Encoding:
    if name not in ENCODINGS:
        raise TokengraftError(f"unknown encoding {name!r}; known: {', '.join(ENCODINGS)}")
    known = ENCODINGS[name]
    if len(ranks) != known.n_ranks:
        raise TokengraftError(
            f"{path} has {len(ranks)} ranked tokens, but {name} has {known.n_ranks}"
        )
    if fingerprint(ranks) != known.fingerprint:
        logger.warning("%s: not %s's rank table; using its pattern and special tokens", path, name)
    return known


def bpe_from_ranks(
    ranks: Mapping[bytes, int],
    pattern: str,
    specials: Mapping[int, str],
    *,
    offset: int = 0,
    nfc: bool = False,
) -> Tokenizer:
    """A byte-level BPE ``tokenizers`` pipeline equivalent to tiktoken on the same ranks.

    Args:
        ranks: token bytes -> rank (0..N-1).
        pattern: the pre-tokenisation regex.
        specials: id -> special token; ids not taken by a rank or a special up to the highest
            special become ``<|reserved_<id>|>`` so that ids match the reference exactly.
        offset: the id of rank 0 (tekken puts its special tokens first).
        nfc: NFC-normalise text first.
    """
    converter = _RanksConverter(dict(ranks), pattern=pattern)
    vocab, merges = converter.extract_vocab_merges_from_model("")
    vocab = {token: rank + offset for token, rank in vocab.items()}
    taken = set(range(offset, offset + len(ranks))) | set(specials)
    top = max([*taken, 0])
    filled = dict(specials) | {i: f"<|reserved_{i}|>" for i in range(top + 1) if i not in taken}
    backend = Tokenizer(models.BPE(vocab | {t: i for i, t in filled.items()}, merges))
    if hasattr(backend.model, "ignore_merges"):
        backend.model.ignore_merges = True  # tiktoken: a piece that is a token stays whole
    if nfc:
        backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.add_special_tokens(
        [AddedToken(filled[i], normalized=False, special=True) for i in sorted(filled)]
    )
    return backend


class _RanksConverter(TikTokenConverter):
    """transformers' tiktoken converter fed with ranks we parsed (it only reads via tiktoken)."""

    def __init__(self, ranks: dict[bytes, int], **kwargs: Any) -> None:
        super().__init__(vocab_file=None, **kwargs)
        self._ranks = ranks

    def load_tiktoken_bpe(self, tiktoken_url: str) -> dict[bytes, int]:  # type: ignore[override]
        return self._ranks


def _fast(backend: Tokenizer, roles: Mapping[str, str | None]) -> PreTrainedTokenizerFast:
    present = {role: token for role, token in roles.items() if token is not None}
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, clean_up_tokenization_spaces=False, **present
    )


def is_tekken(data: object) -> bool:
    """Whether parsed JSON is a Mistral tekken tokenizer (``config`` + ``vocab`` list)."""
    return isinstance(data, dict) and isinstance(data.get("config"), dict) and "vocab" in data


def tekken_tokenizer(path: Path, data: Mapping[str, Any]) -> PreTrainedTokenizerFast:
    """A Mistral tekken tokenizer (``tekken*.json``) as a fast tokenizer.

    Special tokens take ids 0..S-1 (the file's list, or the fixed list of files before v7,
    then ``<SPECIAL_<id>>`` fillers); rank r is id S + r, up to the default vocabulary size.

    Raises:
        TokengraftError: the file lacks a field or a vocabulary entry is malformed.
    """
    with reraise("tekken tokenizer", path, " (missing or malformed field)"):
        config = data["config"]
        n_special = int(config["default_num_special_tokens"])
        n_ranks = int(config["default_vocab_size"]) - n_special
        ranks = {
            base64.b64decode(entry["token_bytes"]): int(entry["rank"])
            for entry in data["vocab"][:n_ranks]
        }
        listed = data.get("special_tokens")
        names = [t["token_str"] for t in listed] if listed else _TEKKEN_SPECIALS
        pattern = str(config["pattern"])
    _check_contiguous(path, ranks)
    specials = {i: names[i] if i < len(names) else f"<SPECIAL_{i}>" for i in range(n_special)}
    backend = bpe_from_ranks(ranks, pattern, specials, offset=n_special)
    roles = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    return _fast(backend, {role: t if t in names else None for role, t in roles.items()})
