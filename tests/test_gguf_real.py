"""GGUF export of the real SmolLM2, read back by transformers and by llama.cpp itself.

Two models: the untouched SmolLM2 (packaged GGUF in -> Hugging Face checkpoint -> GGUF out), and
SmolLM2 grafted onto a fresh German byte-level BPE trained here on tests/data/de_train.txt. Both
are exported as f32, where every reader must agree with the checkpoint almost exactly.

The llama.cpp checks run the llama-cpp-python venv that scripts/setup_llama_cpp.sh builds (CI
runs it from scripts/test.sh) through a subprocess with tests/llama_cpp_driver.py; outside CI they
are skipped while it is absent.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tokengraft import io
from tokengraft.cli.app import run
from tokengraft.io.gguf import read_gguf_metadata
from tokengraft.io.gguf_writer import write_gguf
from tokengraft.io.packaged import packaged_model_path

pytestmark = pytest.mark.real_model

DATA = Path(__file__).parent / "data"
HELD_OUT = {"de": "de_heldout.txt", "en": "en_heldout.txt", "code": "code_heldout.py"}
DRIVER = Path(__file__).parent / "llama_cpp_driver.py"


def _smollm2() -> Path:
    try:
        return packaged_model_path("smollm2-135m")
    except Exception as exc:  # not installed: the whole module is about this model
        pytest.skip(f"SmolLM2 not installed ({exc})")


def _text(name: str) -> str:
    return (DATA / HELD_OUT[name]).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def packaged():
    _smollm2()
    return io.load_model("smollm2-135m"), io.load_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def round_trip(packaged, tmp_path_factory) -> Path:
    """The packaged SmolLM2 saved as a Hugging Face checkpoint, and that exported as f32 GGUF."""
    model, tok = packaged
    ckpt = tmp_path_factory.mktemp("smollm2") / "hf"
    with io.atomic_output_dir(ckpt) as tmp:
        io.save_pretrained(model, tok, tmp)
    write_gguf(ckpt, ckpt / "model.gguf", "f32")
    return ckpt


@pytest.fixture(scope="module")
def german(tmp_path_factory) -> Path:
    """SmolLM2 grafted onto a 600-token German BPE, with `graft --gguf --gguf-type f32`."""
    _smollm2()
    from tokengraft.tokenizers.train import config_from_model_tokenizer, train_byte_level_bpe

    root = tmp_path_factory.mktemp("german")
    docs = (DATA / "de_train.txt").read_text(encoding="utf-8").split("\n\n")
    cfg = config_from_model_tokenizer(io.load_tokenizer("smollm2-135m"), 600)
    tok = train_byte_level_bpe(docs, replace(cfg, min_frequency=2))
    io.save_tokenizer(tok, root / "tok")
    out = root / "grafted"
    argv = ["graft", "smollm2-135m", str(root / "tok"), str(out), "-q", "--method", "subword_mean"]
    assert run([*argv, "--gguf", "--gguf-type", "f32"]) == 0
    return out


def _gguf_model(path: Path):
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    return model.eval(), AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def test_round_trip_gives_the_packaged_logits(packaged, round_trip):
    model, tok = packaged
    meta = read_gguf_metadata(round_trip / "model.gguf", ["tokenizer.ggml.pre"])
    assert meta["tokenizer.ggml.pre"] == "smollm"  # SmolLM2's own name, kept
    exported, exported_tok = _gguf_model(round_trip / "model.gguf")
    for name in HELD_OUT:
        ids = tok(_text(name), add_special_tokens=False).input_ids
        assert exported_tok(_text(name), add_special_tokens=False).input_ids == ids
        diff = (_logits(exported, ids[:200]) - _logits(model, ids[:200])).abs().max().item()
        assert diff <= 1e-5, f"{name}: max |logit difference| {diff}"


def test_german_graft_reads_back_in_transformers(german):
    meta = read_gguf_metadata(german / "model.gguf", ["tokenizer.ggml.pre", "llama.vocab_size"])
    assert meta == {"tokenizer.ggml.pre": "gpt-2", "llama.vocab_size": 600}
    reference = AutoModelForCausalLM.from_pretrained(german, dtype=torch.float32).eval()
    tok = io.load_tokenizer(str(german))
    exported, exported_tok = _gguf_model(german / "model.gguf")
    for name in HELD_OUT:
        ids = tok(_text(name), add_special_tokens=False).input_ids
        assert exported_tok(_text(name), add_special_tokens=False).input_ids == ids, name
        diff = (_logits(exported, ids) - _logits(reference, ids)).abs().max().item()
        assert diff <= 1e-4, f"{name}: max |logit difference| {diff}"


# ------------------------------------------------------------------------------- llama.cpp


@pytest.fixture(scope="module")
def llama_python() -> Path:
    venv = os.environ.get("TOKENGRAFT_LLAMA_CPP_VENV") or str(io.cache_dir() / "llama-cpp-venv")
    python = Path(venv) / "bin" / "python"
    if not any(Path(venv).glob(".tokengraft-llama-cpp-*")) or not python.is_file():
        message = f"llama.cpp is not built in {venv}: run bash scripts/setup_llama_cpp.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def _llama_cpp(python: Path, request: dict) -> dict:
    done = subprocess.run(
        [str(python), str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _first_difference(tok, expected: list[int], got: list[int]) -> str:
    """Where two tokenisations part, each side's next tokens with their bytes."""
    at = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), None)
    at = min(len(expected), len(got)) if at is None else at

    def show(ids: list[int]) -> str:
        return " ".join(f"{i}:{tok.decode([i]).encode()!r}" for i in ids[at : at + 6])

    return f"first difference at token {at}: HF [{show(expected)}] llama.cpp [{show(got)}]"


def _checkpoints(round_trip: Path, german: Path) -> dict[str, Path]:
    return {"smollm2": round_trip, "german": german}


@pytest.mark.llama_cpp
@pytest.mark.parametrize("which", ["smollm2", "german"])
def test_llama_cpp_tokenises_like_transformers(llama_python, round_trip, german, which):
    ckpt = _checkpoints(round_trip, german)[which]
    tok = io.load_tokenizer(str(ckpt))
    texts = [_text(name) for name in HELD_OUT]
    got = _llama_cpp(llama_python, {"model": str(ckpt / "model.gguf"), "texts": texts})["ids"]
    for name, text, ids in zip(HELD_OUT, texts, got, strict=True):
        expected = tok(text, add_special_tokens=False).input_ids
        assert ids == expected, f"{which}/{name}: {_first_difference(tok, expected, ids)}"


@pytest.mark.llama_cpp
@pytest.mark.parametrize("which", ["smollm2", "german"])
def test_llama_cpp_bits_per_byte_match_eval(capsys, llama_python, round_trip, german, which):
    ckpt = _checkpoints(round_trip, german)[which]
    tok = io.load_tokenizer(str(ckpt))
    files = [str(DATA / f) for f in HELD_OUT.values()]
    capsys.readouterr()
    assert run(["eval", "model", str(ckpt), "--texts", *files, "--json", "-q"]) == 0
    scores = json.loads(capsys.readouterr().out)
    prefix = tok.convert_tokens_to_ids(scores["prefix_token"])
    texts = [_text(name) for name in HELD_OUT]
    request = {"model": str(ckpt / "model.gguf"), "texts": texts, "prefix": prefix, "n_ctx": 512}
    nats = _llama_cpp(llama_python, request)["nll_nats"]
    for score, text, nll in zip(scores["per_file"], texts, nats, strict=True):
        assert score["n_tokens"] < 512, "the text must fit one window for the same computation"
        ours = nll / math.log(2) / len(text.encode("utf-8"))
        relative = abs(ours - score["bits_per_byte"]) / score["bits_per_byte"]
        assert relative < 0.01, (
            f"{which}: llama.cpp {ours:.4f} vs eval {score['bits_per_byte']:.4f}"
        )


@pytest.fixture(scope="module")
def gemma3(tmp_path_factory) -> tuple[Path, Path]:
    """Gemma-3-270M's Hugging Face directory (converted once) and its f32 GGUF export."""
    try:
        source = io.resolve_model("gemma3-270m")
    except Exception as exc:  # the four chunk packages are not installed
        pytest.skip(f"Gemma-3-270M not installed ({exc})")
    out = tmp_path_factory.mktemp("gemma3") / "model.gguf"
    write_gguf(source.path, out, "f32")
    return source.path, out


@pytest.mark.slow
@pytest.mark.llama_cpp
def test_gemma3_in_llama_cpp(capsys, llama_python, gemma3):
    ckpt, gguf_file = gemma3
    tok = io.load_tokenizer(str(ckpt))
    texts = [_text(name) for name in HELD_OUT]
    files = [str(DATA / f) for f in HELD_OUT.values()]
    capsys.readouterr()
    assert run(["eval", "model", str(ckpt), "--texts", *files, "--json", "-q"]) == 0
    scores = json.loads(capsys.readouterr().out)
    prefix = tok.convert_tokens_to_ids(scores["prefix_token"])
    request = {"model": str(gguf_file), "texts": texts, "prefix": prefix, "n_ctx": 512}
    answer = _llama_cpp(llama_python, request)
    for name, text, ids, nll, score in zip(
        HELD_OUT, texts, answer["ids"], answer["nll_nats"], scores["per_file"], strict=True
    ):
        expected = tok(text, add_special_tokens=False).input_ids
        assert ids == expected, f"gemma3/{name}: {_first_difference(tok, expected, ids)}"
        ours = nll / math.log(2) / len(text.encode("utf-8"))
        assert abs(ours / score["bits_per_byte"] - 1) < 0.01, (name, ours, score)
