"""The CLI: every bad input is one clear line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny

from tokengraft.cli.app import run


@pytest.fixture
def base(write_checkpoint) -> Path:
    return write_checkpoint(tied=True)  # one model.safetensors


def _fails(capsys, argv: list[str], *needles: str) -> str:
    capsys.readouterr()  # drop what fixtures printed
    code = run(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_graft_ok_and_refuses_existing_output(capsys, base, new_tok_dir, tmp_path):
    out = tmp_path / "out"
    assert run(["graft", str(base), str(new_tok_dir), str(out), "--method", "mean", "-q"]) == 0
    assert "copied" in capsys.readouterr().out
    _fails(capsys, ["graft", str(base), str(new_tok_dir), str(out), "-q"], "--force")
    assert run(["graft", str(base), str(new_tok_dir), str(out), "--force", "-q"]) == 0


def test_missing_path(capsys, new_tok_dir, tmp_path):
    _fails(capsys, ["graft", str(tmp_path / "nope"), str(new_tok_dir), str(tmp_path / "o")], "nope")


def test_directory_is_not_a_model(capsys, new_tok_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    _fails(
        capsys, ["graft", str(tmp_path / "empty"), str(new_tok_dir), str(tmp_path / "o")], "empty"
    )


def test_truncated_safetensors(capsys, base, new_tok_dir, tmp_path):
    weights = base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _fails(capsys, ["graft", str(base), str(new_tok_dir), str(tmp_path / "o")], "model.safetensors")
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_corrupt_gguf(capsys, new_tok_dir, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all" * 10)
    _fails(capsys, ["graft", str(bad), str(new_tok_dir), str(tmp_path / "o")], "bad.gguf")


def test_unreadable_tokenizer(capsys, base, tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{ this is not json")
    _fails(capsys, ["graft", str(base), str(bad), str(tmp_path / "o")], "tokenizer.json")


def test_unknown_method_lists_valid(capsys, base, new_tok_dir, tmp_path):
    _fails(
        capsys,
        ["graft", str(base), str(new_tok_dir), str(tmp_path / "o"), "--method", "magic"],
        "magic",
        "subword_mean",
    )


def test_method_needing_a_resource_says_which_flag(capsys, base, new_tok_dir, tmp_path):
    _fails(
        capsys,
        ["graft", str(base), str(new_tok_dir), str(tmp_path / "o"), "--method", "contextfit"],
        "--corpus",
    )


def test_pickle_weights_refused(capsys, base, new_tok_dir, tmp_path):
    for f in base.glob("*.safetensors"):
        f.rename(f.with_name("pytorch_model.bin"))
    _fails(capsys, ["graft", str(base), str(new_tok_dir), str(tmp_path / "o")], "--allow-pickle")


def test_chat_template_gap_is_a_warning(capsys, base, tmp_path, tokenizers_by_family):
    tok_dir = tmp_path / "uni"
    tokenizers_by_family["unigram"].save_pretrained(tok_dir)
    assert run(["graft", str(base), str(tok_dir), str(tmp_path / "o"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "<|im_start|>" in err


def test_eval_empty_and_non_utf8_corpus(capsys, base, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _fails(capsys, ["eval", "model", str(base), "--texts", str(empty)], "empty.txt")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Grüße aus Köln".encode("latin-1"))
    _fails(capsys, ["eval", "model", str(base), "--texts", str(latin)], "latin1.txt", "offset 2")


def test_eval_model_json(capsys, base, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    assert run(["eval", "model", str(base), "--texts", str(text), "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    overall = data["overall"]
    for key in ("bits_per_byte", "n_bytes", "n_tokens", "bytes_per_token"):
        assert key in overall and key in data["per_file"][0]


def test_eval_model_html(capsys, base, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    page = tmp_path / "eval.html"
    argv = ["eval", "model", str(base), "--texts", str(text), "--json", "-q", "--html", str(page)]
    assert run(argv) == 0
    bpb = json.loads(capsys.readouterr().out)["overall"]["bits_per_byte"]
    html = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "t.txt" in html
    assert f"{bpb:.4f}" in html
    assert "http://" not in html and "https://" not in html


def test_eval_tokenizer_json(capsys, base, new_tok_dir, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("Der schnelle braune Fuchs springt über den faulen Hund.")
    argv = ["eval", "tokenizer", str(base), str(new_tok_dir), "--texts", str(text), "--json"]
    assert run(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "tokenizer_eval" and len(data["rows"]) == 2
    for row in data["rows"]:
        assert row["roundtrip"] is True
        assert row["fertility"] > 0 and row["fertility_unit"] == "word"


def test_train_tokenizer(capsys, base, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("\n\n".join(tiny.TEXT))
    out = tmp_path / "tok"
    argv = [
        "train-tokenizer",
        str(text),
        "--vocab-size",
        "300",
        "--out",
        str(out),
        "--like",
        str(base),
    ]
    assert run(argv) == 0
    assert (out / "tokenizer.json").is_file()
    _fails(capsys, [*argv[:3], "10", *argv[4:], "--force"], "vocab-size")


def test_methods_json(capsys):
    assert run(["methods", "--json"]) == 0
    names = {m["name"] for m in json.loads(capsys.readouterr().out)}
    assert {"mean", "randn", "subword_mean", "contextfit"} <= names


def test_multi_value_options_expand():
    from tokengraft.cli.app import expand_multi_value

    argv = ["eval", "model", "m", "--texts", "a", "b", "--json", "--corpus", "c"]
    assert expand_multi_value(argv) == [
        *["eval", "model", "m", "--texts", "a", "--texts", "b", "--json"],
        *["--corpus", "c"],
    ]


def test_usage_error_is_not_a_traceback(capsys):
    assert run(["graft", "--no-such-flag"]) == 2
    assert "Traceback" not in capsys.readouterr().err
