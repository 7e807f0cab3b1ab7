"""Tokenizers of every format from paths, always returned as fast tokenizers (names: ``resolve``)."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)
from transformers.convert_slow_tokenizer import generate_merges

from tokengraft.errors import TokengraftError
from tokengraft.io.encodings import CL100K_PATTERN
from tokengraft.io.errors import one_line, reraise, writing
from tokengraft.io.gguf import check_gguf_magic
from tokengraft.io.tiktoken import is_tekken, tekken_tokenizer, tiktoken_tokenizer

logger = logging.getLogger(__name__)

GPT4_SPLIT_PATTERN = CL100K_PATTERN  # the default split of unrecognised tiktoken files
_FORMATS = (
    "a tokenizer.json, a SentencePiece .model, a tiktoken file, Mistral's tekken.json, "
    "a .gguf file or a model directory"
)
_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# ----------------------------------------------------------------------------------- tokenizers


def load_tokenizer_path(
    path: Path,
    *,
    pattern: str | None = None,
    special_tokens: Sequence[str] = (),
    encoding: str | None = None,
) -> PreTrainedTokenizerFast:
    """Load a tokenizer from a path of any supported format, as a fast tokenizer.

    Args:
        path: an HF directory, a ``tokenizer.json``, Mistral's ``tekken.json``, a SentencePiece
            ``.model``, a ``.gguf`` file or a tiktoken BPE file (``*.tiktoken[.gz]``).
        pattern: pre-tokenisation regex for tiktoken files (default: the recognised encoding's,
            else GPT-4's cl100k pattern).
        special_tokens: for unrecognised tiktoken files, special tokens appended after the ranks.
        encoding: for tiktoken files, the encoding's name (default: recognised by the ranks).

    Raises:
        TokengraftError: the tokenizer is missing, unreadable or of an unknown format.
    """
    tok: PreTrainedTokenizerBase
    if path.is_dir():
        tok = load_tokenizer_dir(path)
    else:
        kind = {".json": "json", ".gguf": "gguf"}.get(path.suffix) or _sniff_tokenizer_file(path)
        if kind == "tiktoken":
            return tiktoken_tokenizer(
                path, encoding=encoding, pattern=pattern, special_tokens=special_tokens
            )
        tok = _load_tokenizer_file(path, kind)
    if not isinstance(tok, PreTrainedTokenizerFast):
        raise TokengraftError(f"{path} did not give a fast tokenizer; pass its tokenizer.json")
    return tok


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    """Save a tokenizer's files (tokenizer.json, tokenizer_config.json, ...) into dir ``out``."""
    tokenizer.init_kwargs.pop("gguf_file", None)
    with writing("tokenizer to", out):
        tokenizer.save_pretrained(out)


def _load_tokenizer_file(path: Path, kind: str) -> PreTrainedTokenizerBase:
    if kind == "json":
        return _load_tokenizer_json(path)
    if kind == "gguf":
        return load_gguf_tokenizer(path)
    if kind == "sentencepiece":
        return _sentencepiece_tokenizer(path)
    raise TokengraftError(f"{path} is not a tokenizer file tokengraft recognises; pass {_FORMATS}")


def _sniff_tokenizer_file(path: Path) -> str:
    """'json', 'gguf', 'tiktoken', 'sentencepiece' or 'unknown', from the first bytes."""
    with reraise("tokenizer file", path), path.open("rb") as f:
        head = f.read(4096)
        if head[:2] == b"\x1f\x8b":
            f.seek(0)
            head = gzip.GzipFile(fileobj=f).read(4096)
    if head[:4] == b"GGUF":
        return "gguf"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    first = head.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    if len(first) == 2 and set(first[0]) <= _BASE64 and first[0] and first[1].isdigit():
        return "tiktoken"
    # A SentencePiece ModelProto starts with its first piece: field 1, length-delimited.
    return "sentencepiece" if head[:1] == b"\x0a" and len(head) > 2 else "unknown"


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
    with reraise("tokenizer file", path, " (not valid JSON)"):
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    if is_tekken(data):
        return tekken_tokenizer(path, data)
    if not (isinstance(data, dict) and isinstance(data.get("model"), dict)):
        raise TokengraftError(
            f"{path} is JSON but not a tokenizer (no 'model' object as in tokenizer.json, "
            "no 'config' and 'vocab' as in tekken.json)"
        )
    try:
        backend = Tokenizer.from_str(text)
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
