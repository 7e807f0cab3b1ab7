"""GGUF export on tiny models: transformers' GGUF loader reads back what we wrote; bad input refused.

The checks against the real SmolLM2 and against llama.cpp itself are in test_gguf_real.py.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import gguf
import pytest
import tiny
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from tokengraft.cli.app import Stopped, run
from tokengraft.errors import TokengraftError
from tokengraft.io.gguf import read_gguf_metadata, read_gguf_tokenizer
from tokengraft.io.gguf_arch import interleave_rotary_rows
from tokengraft.io.gguf_pre import PRE_TOKENIZERS, PROBE_TEXTS, choose_pre_tokenizer, split_text
from tokengraft.io.gguf_vocab import gguf_vocab
from tokengraft.io.gguf_writer import write_gguf

TEXT = "Der schnelle braune Fuchs springt über den faulen Hund. The dog's 1234 naps!\n\tdef f(): x"


def _load(path: Path):
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return model.eval(), tok


def _logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


@pytest.mark.parametrize("gguf_type,tol", [("f32", 0.0), ("f16", 2e-3), ("q8_0", 2e-2)])
def test_transformers_reads_back_the_checkpoint(write_checkpoint, old_tok, tied, gguf_type, tol):
    base = write_checkpoint(tied=tied)
    out = base.parent / "model.gguf"
    summary = write_gguf(base, out, gguf_type)
    assert (summary.tokenizer_model, summary.pre_tokenizer) == ("gpt2", "gpt-2")
    model, tok = _load(out)
    ref = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    ids = old_tok(TEXT).input_ids
    assert tok(TEXT).input_ids == ids
    assert tok.chat_template == old_tok.chat_template
    assert model.config.tie_word_embeddings == tied
    diff = (_logits(model, ids) - _logits(ref, ids)).abs().max().item()
    assert diff <= tol, diff


def test_weight_formats_and_metadata(write_checkpoint):
    base = write_checkpoint(tied=False)
    out = base.parent / "q.gguf"
    write_gguf(base, out, "q8_0")
    reader = gguf.GGUFReader(out)
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    assert "output.weight" in types
    meta = read_gguf_metadata(
        out, ["general.architecture", "llama.block_count", "general.file_type"]
    )
    assert meta == {"general.architecture": "llama", "llama.block_count": 2, "general.file_type": 7}


def test_rotary_rows_are_interleaved_per_head():
    heads, d = 2, 6
    weight = torch.arange(heads * d, dtype=torch.float32)[:, None].repeat(1, 3)
    out = interleave_rotary_rows(weight, heads)[:, 0].tolist()
    # head 0: rows 0..2 pair with rows 3..5; head 1 likewise, offset by 6
    assert out == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]


def test_pre_tokenizer_hint_must_still_match(old_tok):
    assert choose_pre_tokenizer(old_tok) == "gpt-2"
    # SmolLM2's name splits digits one by one: right for a vocabulary without digit merges only
    no_digits = tiny.byte_level_bpe(300)
    assert choose_pre_tokenizer(no_digits, hint="smollm") == "smollm"
    digits = tiny.byte_level_bpe(400, text=[*tiny.TEXT, "2024 1999 12345 777 " * 10])
    assert choose_pre_tokenizer(digits, hint="smollm") == "gpt-2"


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=40))
def test_splits_concatenate_to_the_text(text):
    for pre in PRE_TOKENIZERS.values():
        assert "".join(split_text(pre.regexes, text)) == text


def test_sentencepiece_tokenizer_is_written_as_llama(tmp_path):
    tok = tiny.sentencepiece_bpe()
    base = tiny.save_checkpoint(tmp_path / "sp", tok, tied=True)
    vocab = gguf_vocab(tok, len(tok))
    assert vocab.model == "llama" and vocab.add_space_prefix
    assert vocab.token_types[tok.convert_tokens_to_ids("<0x41>")] == gguf.TokenType.BYTE
    out = tmp_path / "sp.gguf"
    write_gguf(base, out, "f32")
    _, loaded = _load(out)
    text = PROBE_TEXTS[1]
    assert (
        loaded(text, add_special_tokens=False).input_ids
        == tok(text, add_special_tokens=False).input_ids
    )


# ------------------------------------------------------------------------------- bad input


def _fails(capsys, argv: list[str], *needles: str) -> str:
    capsys.readouterr()
    code = run(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def _no_trace(directory: Path, name: str) -> None:
    assert not [p for p in directory.iterdir() if name in p.name], list(directory.iterdir())


def test_unsupported_architecture(capsys, tmp_path, old_tok):
    config = Qwen2Config(
        vocab_size=len(old_tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    base = tmp_path / "qwen"
    Qwen2ForCausalLM(config).save_pretrained(base)
    old_tok.save_pretrained(base)
    out = tmp_path / "q.gguf"
    _fails(capsys, ["export", "gguf", str(base), str(out)], "qwen2", "llama, mistral")
    _no_trace(tmp_path, "q.gguf")


def test_pre_tokenizer_llama_cpp_cannot_express(capsys, tmp_path):
    tok = tiny.byte_level_bpe()
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex("[aeiou]"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    base = tiny.save_checkpoint(tmp_path / "odd", tok, tied=True)
    out = tmp_path / "odd.gguf"
    _fails(capsys, ["export", "gguf", str(base), str(out)], "gpt-2, smollm, llama-bpe")
    _no_trace(tmp_path, "odd.gguf")


def test_wordpiece_is_refused(tmp_path):
    base = tiny.save_checkpoint(tmp_path / "wp", tiny.wordpiece(), tied=True)
    with pytest.raises(TokengraftError, match="WordPiece"):
        write_gguf(base, tmp_path / "wp.gguf")
    _no_trace(tmp_path, "wp.gguf")


def test_existing_output_and_bad_type(capsys, write_checkpoint, tmp_path):
    base = write_checkpoint(tied=True)
    out = tmp_path / "m.gguf"
    out.write_bytes(b"keep me")
    _fails(capsys, ["export", "gguf", str(base), str(out)], str(out), "--force")
    _fails(
        capsys, ["export", "gguf", str(base), str(tmp_path / "n.gguf"), "--type", "q4_k"], "q8_0"
    )
    assert out.read_bytes() == b"keep me"
    _no_trace(tmp_path, "n.gguf")
    assert run(["export", "gguf", str(base), str(out), "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["type"] == "f16"
    assert out.read_bytes()[:4] == b"GGUF"


def test_graft_writes_model_gguf(capsys, write_checkpoint, new_tok_dir, tmp_path):
    base = write_checkpoint(tied=True)
    out = tmp_path / "grafted"
    argv = ["graft", str(base), str(new_tok_dir), str(out), "-q", "--gguf", "--gguf-type", "f32"]
    assert run(argv) == 0, capsys.readouterr().err
    assert "model.gguf" in capsys.readouterr().out
    model, tok = _load(out / "model.gguf")
    ref = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(out)(TEXT).input_ids
    assert tok(TEXT).input_ids == ids
    assert torch.equal(_logits(model, ids), _logits(ref, ids))


def test_graft_gguf_checks_before_grafting(capsys, write_checkpoint, tmp_path):
    base = write_checkpoint(tied=True)
    wp = tmp_path / "wp"
    tiny.wordpiece().save_pretrained(wp)
    out = tmp_path / "never"
    _fails(capsys, ["graft", str(base), str(wp), str(out), "--gguf"], "WordPiece")
    _fails(capsys, ["graft", str(base), str(wp), str(out), "--gguf", "--gguf-type", "q2"], "f16")
    assert not out.exists()


def test_gemma3_reads_back_in_transformers(tmp_path):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tok = tiny.sentencepiece_bpe()
    config = Gemma3TextConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=256,  # as every Gemma-3: the GGUF loader assumes query_pre_attn_scalar 256
        query_pre_attn_scalar=256,
        sliding_window=64,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).eval()
    with torch.no_grad():  # norms start at zero (scale 1 + w): make them matter
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(-0.5, 0.5)
    base = tmp_path / "gemma"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    out = tmp_path / "gemma.gguf"
    assert write_gguf(base, out, "f32").arch == "gemma3"
    # (transformers reads any gemma3 vocabulary as Gemma's own, without the tiny one's "▁"
    # prefix, so only the weights are compared here; the real Gemma-3 is in test_gguf_real.py)
    loaded, _ = _load(out)
    ids = tok(PROBE_TEXTS[1], add_special_tokens=False).input_ids[:40]
    diff = (_logits(loaded, ids) - _logits(model, ids)).abs().max().item()
    assert diff <= 1e-4, diff


# ------------------------------------------------------ --gguf on trim, extend, tune; atomicity


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(t for t in tiny.TEXT if "ü" in t or "Recht" in t) * 3, "utf-8")
    return path


def _reads_back(out: Path) -> None:
    """out/model.gguf holds out's vocabulary and embeddings, named after out."""
    path = out / "model.gguf"
    meta = read_gguf_metadata(path, ["general.name", "general.file_type"])
    assert meta == {"general.name": out.name, "general.file_type": 0}  # f32
    _, tokens = read_gguf_tokenizer(path)
    tok = AutoTokenizer.from_pretrained(out)
    assert tokens == tok.convert_ids_to_tokens(list(range(len(tok))))
    embd = {t.name: t for t in gguf.GGUFReader(path).tensors}["token_embd.weight"]
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    weight = model.get_input_embeddings().weight.detach()
    assert torch.equal(torch.from_numpy(embd.data.copy()).reshape(weight.shape), weight)


@pytest.mark.parametrize("command", ["trim", "extend"])
def test_vocab_commands_write_model_gguf(capsys, write_checkpoint, tmp_path, command):
    base = write_checkpoint(tied=False)
    out = tmp_path / command
    argv = [command, str(base), str(out), "--texts", str(_corpus(tmp_path)), "-q"]
    if command == "extend":
        argv += ["--add", "5", "--method", "subword_mean"]
    assert run([*argv, "--gguf", "--gguf-type", "f32"]) == 0, capsys.readouterr().err
    assert f"wrote {out / 'model.gguf'} (f32," in capsys.readouterr().out
    _reads_back(out)


def test_tune_writes_model_gguf_of_its_final_output(
    capsys, write_checkpoint, new_tok_dir, tmp_path
):
    graft = tmp_path / "graft"
    argv = ["graft", str(write_checkpoint(tied=True)), str(new_tok_dir), str(graft), "-q"]
    assert run([*argv, "--gguf", "--gguf-type", "f32"]) == 0, capsys.readouterr().err
    texts = ["--texts", str(_corpus(tmp_path)), "--seq-len", "16", "--batch-size", "2", "-q"]
    tuned = tmp_path / "tuned"
    assert run(["tune", str(graft), str(tmp_path / "plain"), "--steps", "1", *texts]) == 0
    assert not (tmp_path / "plain" / "model.gguf").exists()  # the graft's GGUF is not carried
    assert (
        run(
            ["tune", str(graft), str(tuned), "--steps", "2", *texts, "--gguf", "--gguf-type", "f32"]
        )
        == 0
    )
    assert "model.gguf" in capsys.readouterr().out
    _reads_back(tuned)


@pytest.mark.parametrize("command", ["graft", "trim"])
def test_gguf_is_part_of_the_atomic_output(
    capsys, write_checkpoint, new_tok_dir, tmp_path, monkeypatch, command
):
    """A run stopped while it writes model.gguf leaves neither OUT nor a temporary behind."""

    def stopped(checkpoint, out, *args, **kwargs):
        Path(out).write_bytes(b"GGUF, half written")
        raise Stopped(signal.SIGINT)

    monkeypatch.setattr("tokengraft.io.write_gguf", stopped)
    base, out = write_checkpoint(tied=True), tmp_path / "out"
    if command == "graft":
        argv = ["graft", str(base), str(new_tok_dir), str(out)]
    else:
        argv = ["trim", str(base), str(out), "--texts", str(_corpus(tmp_path))]
    assert run([*argv, "-q", "--gguf"]) == 128 + signal.SIGINT
    assert "stopped by SIGINT" in capsys.readouterr().err
    assert not out.exists()
    _no_trace(tmp_path, "out")
