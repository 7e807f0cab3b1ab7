"""Disk to disk: graft a tiny HF checkpoint, reload it with plain transformers."""

from __future__ import annotations

import collections
import hashlib
import json
from pathlib import Path

import pytest
import tiny
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tokengraft.config import GraftConfig, Need
from tokengraft.errors import TokengraftError
from tokengraft.grafting import graft, pipeline
from tokengraft.grafting.inputs import Resources, load_extras
from tokengraft.grafting.pipeline import graft_pretrained


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def checkpoint(write_checkpoint, tied) -> Path:
    return write_checkpoint(tied=tied, max_shard_size="40KB")  # several shards


@pytest.mark.parametrize("untie", [False, True])
def test_graft_hf_dir_roundtrip(checkpoint, new_tok_dir, new_tok, tmp_path, tied, untie):
    before = _digest(checkpoint)
    out = tmp_path / "out"
    report = graft_pretrained(
        str(checkpoint), str(new_tok_dir), out, GraftConfig(method="subword_mean", untie=untie)
    )
    assert _digest(checkpoint) == before  # the input is never modified
    assert sum(report.counts.values()) == report.new_vocab_size == len(new_tok)
    assert report.tied == (tied and not untie)
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == len(new_tok)
    assert model.config.tie_word_embeddings == report.tied
    same = model.get_input_embeddings().weight.data_ptr() == model.lm_head.weight.data_ptr()
    assert same == report.tied
    ids = tok("Der Fuchs springt über den Hund.", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape[-1] == len(new_tok)
    generated = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] == ids.shape[1] + 3
    # The records: report.json, model card, one tokens.tsv line per new id.
    saved = json.loads((out / "report.json").read_text())
    assert saved["counts"] == report.counts and saved["config"]["method"] == "subword_mean"
    assert (out / "README.md").read_text().startswith("---")
    lines = (out / "tokens.tsv").read_text().splitlines()
    assert len(lines) == 1 + len(new_tok)
    assert model.config.eos_token_id == new_tok.convert_tokens_to_ids("<|im_end|>")


def test_streamed_rows_match_in_memory_graft(checkpoint, new_tok_dir, new_tok, old_tok, tmp_path):
    out = tmp_path / "out"
    graft_pretrained(str(checkpoint), str(new_tok_dir), out, GraftConfig(method="subword_mean"))
    streamed = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    in_memory = graft(base, old_tok, new_tok, GraftConfig(method="subword_mean")).model
    for a, b in zip(streamed.state_dict().values(), in_memory.state_dict().values(), strict=True):
        assert torch.equal(a, b)


SPECIAL_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


def test_streamed_and_loaded_backends_agree(
    checkpoint, new_tok_dir, new_tok, tmp_path, monkeypatch
):
    """An HF directory is grafted streaming; GGUF and packaged models are loaded whole. Forced
    through both on one checkpoint, they give the same rows and the same config ids."""
    config = GraftConfig(method="subword_mean", untie=True)
    streamed_dir, loaded_dir = tmp_path / "streamed", tmp_path / "loaded"
    used = []

    def recording(make):
        def backend(source, **options):
            used.append(make(source, **options))
            return used[-1]

        return backend

    monkeypatch.setattr(pipeline, "open_backend", recording(pipeline.open_backend))  # streamed
    graft_pretrained(str(checkpoint), str(new_tok_dir), streamed_dir, config)
    monkeypatch.setattr(pipeline, "open_backend", recording(pipeline._Loaded))
    graft_pretrained(str(checkpoint), str(new_tok_dir), loaded_dir, config)
    assert [type(b) for b in used] == [pipeline._Streamed, pipeline._Loaded]
    streamed = AutoModelForCausalLM.from_pretrained(streamed_dir)
    loaded = AutoModelForCausalLM.from_pretrained(loaded_dir)
    for get in ("get_input_embeddings", "get_output_embeddings"):
        assert torch.equal(getattr(streamed, get)().weight, getattr(loaded, get)().weight), get
    assert streamed.state_dict().keys() == loaded.state_dict().keys()
    for key, value in streamed.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    for cfg in ("config", "generation_config"):
        for attr in (*SPECIAL_IDS, "vocab_size", "tie_word_embeddings"):
            a = getattr(getattr(streamed, cfg), attr, None)
            assert a == getattr(getattr(loaded, cfg), attr, None), (cfg, attr)
    assert streamed.config.eos_token_id == new_tok.convert_tokens_to_ids("<|im_end|>")
    assert streamed.config.bos_token_id == new_tok.convert_tokens_to_ids("<|im_start|>")
    assert streamed.config.vocab_size == len(new_tok) and not streamed.config.tie_word_embeddings


def test_graft_result_save_pretrained_writes_a_checkpoint_and_its_records(
    old_tok, new_tok, tied, tmp_path
):
    model = tiny.llama(len(old_tok), tied=tied)
    result = graft(model, old_tok, new_tok, GraftConfig(method="mean"))
    out = tmp_path / "out"
    out.mkdir()
    result.save_pretrained(out)
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.get_vocab() == new_tok.get_vocab()
    assert reloaded.config.tie_word_embeddings == tied
    ids = tok("Der Fuchs springt über den Hund.", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = reloaded(ids).logits
        assert logits.shape[-1] == len(new_tok)
        assert torch.allclose(logits, result.model(ids).logits, atol=1e-5)
    report = json.loads((out / "report.json").read_text())
    counts = {k: v for k, v in result.embeddings.counts().items() if v}
    assert {k: v for k, v in report["counts"].items() if v} == counts
    assert sum(report["counts"].values()) == report["new_vocab_size"] == len(new_tok)
    assert report["old_vocab_size"] == len(old_tok) and report["tied"] == tied
    header, *rows = (out / "tokens.tsv").read_text(encoding="utf-8").splitlines()
    assert header.split("\t")[:3] == ["new_id", "token", "source"]
    assert [int(r.split("\t")[0]) for r in rows] == list(range(len(new_tok)))
    assert collections.Counter(r.split("\t")[2] for r in rows) == counts
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---") and str(len(new_tok)) in card.replace(",", "")


def test_a_missing_resource_is_reported_before_the_base_model_is_loaded(new_tok):
    """Whatever order the needs come in, a missing flag fails fast, without loading the model
    (which takes minutes for a real one and prints a progress bar before the error line)."""

    def base_model():
        raise AssertionError("the base model was loaded before the missing --corpus was noticed")

    for needs in ([Need.MODEL, Need.CORPUS], [Need.CORPUS, Need.MODEL]):
        with pytest.raises(TokengraftError, match="--corpus"):
            load_extras(needs, Resources(), new_tok, base_model)
