"""Tokenizers of every format from paths, always returned as fast tokenizers (names: ``resolve``)."""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.convert_slow_tokenizer import TikTokenConverter, generate_merges

from tokengraft.errors import TokengraftError
from tokengraft.io.errors import one_line, reraise, writing
from tokengraft.io.gguf import check_gguf_magic

logger = logging.getLogger(__name__)

# The cl100k (GPT-4) pre-tokenisation regex, the default split of tiktoken BPE files.
GPT4_SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_TIKTOKEN_LINE = re.compile(rb"[A-Za-z0-9+/=]+ \d+\r?\n")
# ----------------------------------------------------------------------------------- tokenizers


def load_tokenizer_path(
    path: Path, *, pattern: str | None = None, special_tokens: Sequence[str] = ()
) -> PreTrainedTokenizerFast:
    """Load a tokenizer from a path of any supported format, as a fast tokenizer.

    Args:
        path: an HF directory, a ``tokenizer.json``, a SentencePiece ``.model``, a ``.gguf`` file
            or a tiktoken BPE file (``*.tiktoken[.gz]``).
        pattern: pre-tokenisation regex for tiktoken files (default: GPT-4's cl100k pattern).
        special_tokens: for tiktoken files, special tokens appended after the ranked tokens.

    Raises:
        TokengraftError: the tokenizer is missing, unreadable or of an unknown format.
    """
    tok: PreTrainedTokenizerBase
    if path.is_dir():
        tok = load_tokenizer_dir(path)
    else:
        tok = _load_tokenizer_file(path, pattern or GPT4_SPLIT_PATTERN, special_tokens)
    if not isinstance(tok, PreTrainedTokenizerFast):
        raise TokengraftError(f"{path} did not give a fast tokenizer; pass its tokenizer.json")
    return tok


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """Save a tokenizer's files (tokenizer.json, tokenizer_config.json, ...) into dir ``out``."""
    tokenizer.init_kwargs.pop("gguf_file", None)
    with writing("tokenizer to", out):
        tokenizer.save_pretrained(out)


def _load_tokenizer_file(
    path: Path, pattern: str, special_tokens: Sequence[str]
) -> PreTrainedTokenizerBase:
    if path.suffix == ".json":
        return _load_tokenizer_json(path)
    kind = "gguf" if path.suffix == ".gguf" else _sniff_tokenizer_file(path)
    if kind == "gguf":
        return load_gguf_tokenizer(path)
    if kind == "tiktoken":
        return _tiktoken_tokenizer(path, pattern, special_tokens)
    return _sentencepiece_tokenizer(path)


def _sniff_tokenizer_file(path: Path) -> str:
    """'gguf', 'tiktoken' or 'sentencepiece' (the fallback), from the first bytes of the file."""
    with reraise("tokenizer file", path), path.open("rb") as f:
        head = f.read(4096)
        if head[:2] == b"\x1f\x8b":
            f.seek(0)
            head = gzip.GzipFile(fileobj=f).read(4096)
    if head[:4] == b"GGUF":
        return "gguf"
    return "tiktoken" if _TIKTOKEN_LINE.match(head) else "sentencepiece"


def load_tokenizer_dir(path: Path) -> PreTrainedTokenizerBase:
    """A tokenizer from a Hugging Face directory (tokenizer.json used as is when present)."""
    files = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    if not any((path / name).is_file() for name in files):
        raise TokengraftError(f"{path} has no tokenizer (tokenizer.json or tokenizer_config.json)")
    with reraise("tokenizer directory", path):
        if (path / "tokenizer.json").is_file():
            # The generic class uses tokenizer.json as is; model-specific classes may rebuild it.
            return PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)
        return AutoTokenizer.from_pretrained(path, local_files_only=True)


def _load_tokenizer_json(path: Path) -> PreTrainedTokenizerBase:
    if path.name == "tokenizer.json" and (path.parent / "tokenizer_config.json").is_file():
        return load_tokenizer_dir(path.parent)  # keeps special-token roles, chat template
    try:
        backend = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises bare Exception on malformed files
        raise TokengraftError(f"cannot read tokenizer file {path}: {one_line(exc)}") from exc
    return PreTrainedTokenizerFast(tokenizer_object=backend)


def load_gguf_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The tokenizer stored in a GGUF file, converted by ``transformers``."""
    check_gguf_magic(path)
    with reraise("GGUF tokenizer", path, " (corrupt or truncated?)"):
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    tok.init_kwargs.pop("gguf_file", None)  # a saved copy must not point back at the GGUF
    return tok


def _read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Parse a tiktoken BPE file (optionally gzipped): ``base64(token) rank`` per line."""
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
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise TokengraftError(f"{path}: tiktoken ranks are not unique and contiguous from 0")
    return ranks


class _RanksConverter(TikTokenConverter):
    """transformers' tiktoken converter fed with ranks we parsed (it only reads via tiktoken)."""

    def __init__(self, ranks: dict[bytes, int], **kwargs: Any) -> None:
        super().__init__(vocab_file=None, **kwargs)
        self._ranks = ranks

    def load_tiktoken_bpe(self, tiktoken_url: str) -> dict[bytes, int]:  # type: ignore[override]
        return self._ranks


def _tiktoken_tokenizer(
    path: Path, pattern: str, special_tokens: Sequence[str]
) -> PreTrainedTokenizerFast:
    ranks = _read_tiktoken_ranks(path)
    converter = _RanksConverter(ranks, pattern=pattern, extra_special_tokens=list(special_tokens))
    with reraise("tiktoken file", path):
        backend = converter.converted()
    return PreTrainedTokenizerFast(tokenizer_object=backend)


def _sentencepiece_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    """Convert a SentencePiece model (BPE or Unigram) into an equivalent ``tokenizers`` pipeline.

    Plain text encodes to the same ids as ``sentencepiece`` itself; unlike it, control tokens
    written in the text (``<s>``) are matched, and text after one gets its own ``▁`` prefix.
    """
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]
    with reraise("SentencePiece model", path):
        proto.ParseFromString(path.read_bytes())
    if not proto.pieces or proto.trainer_spec.model_type not in (1, 2):
        raise TokengraftError(
            f"{path} is not a SentencePiece BPE/Unigram model nor a tokenizer "
            "file (tokenizer.json, *.tiktoken, *.gguf)"
        )
    backend = Tokenizer(_spm_model(proto))
    norm = proto.normalizer_spec
    backend.normalizer = _spm_normalizer(proto)
    steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if norm.add_dummy_prefix:
        steps.append(decoders.Strip(" ", 1, 0))
    backend.decoder = decoders.Sequence(steps)
    backend.add_special_tokens(
        [AddedToken(p.piece, normalized=False, special=True) for p in proto.pieces if p.type == 3]
    )
    backend.add_tokens(
        [AddedToken(p.piece, normalized=False, special=False) for p in proto.pieces if p.type == 4]
    )
    spec = proto.trainer_spec
    roles = {"unk_token": spec.unk_id, "bos_token": spec.bos_id, "eos_token": spec.eos_id}
    roles["pad_token"] = spec.pad_id
    found = {k: proto.pieces[i].piece for k, i in roles.items() if 0 <= i < len(proto.pieces)}
    return PreTrainedTokenizerFast(tokenizer_object=backend, **found)


def _spm_model(proto: Any) -> models.Model:
    spec = proto.trainer_spec
    scores = [(p.piece, p.score) for p in proto.pieces]
    if spec.model_type == 1:
        return models.Unigram(scores, unk_id=spec.unk_id, byte_fallback=spec.byte_fallback)
    vocab = {piece: i for i, (piece, _) in enumerate(scores)}
    # SentencePiece BPE merges the pair whose result has the best score: rank merges by it.
    skip = [p.piece for p in proto.pieces if p.type in (2, 3, 6)]  # unk, control, <0xNN>
    merges = generate_merges(vocab, dict(scores), skip_tokens=skip)
    unk = proto.pieces[spec.unk_id].piece if 0 <= spec.unk_id < len(scores) else None
    return models.BPE(vocab, merges, unk_token=unk, fuse_unk=True, byte_fallback=spec.byte_fallback)


def _spm_normalizer(proto: Any) -> normalizers.Normalizer:
    spec = proto.normalizer_spec
    steps: list[normalizers.Normalizer] = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        steps.append(normalizers.Replace(Regex(" {2,}"), " "))
        steps.append(normalizers.Replace(Regex(r"\A | \z"), ""))
    if spec.add_dummy_prefix:
        steps.append(normalizers.Prepend("▁"))
    if spec.escape_whitespaces:
        steps.append(normalizers.Replace(" ", "▁"))
    return normalizers.Sequence(steps)
