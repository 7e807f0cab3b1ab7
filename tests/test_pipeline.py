"""Disk to disk: graft a tiny HF checkpoint, reload it with plain transformers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import tiny
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tokengraft.config import GraftConfig
from tokengraft.graft.pipeline import graft_pretrained


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def checkpoint(tmp_path, old_tok, tied) -> Path:
    model = tiny.llama(len(old_tok), tied=tied)
    model.config.bos_token_id = old_tok.convert_tokens_to_ids("<|im_start|>")
    model.config.eos_token_id = old_tok.convert_tokens_to_ids("<|im_end|>")
    path = tmp_path / "base"
    model.save_pretrained(path, max_shard_size="40KB")  # several shards
    old_tok.save_pretrained(path)
    return path


@pytest.fixture
def new_tok_dir(tmp_path, new_tok) -> Path:
    path = tmp_path / "newtok"
    new_tok.save_pretrained(path)
    return path


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
    from tokengraft.graft import graft

    out = tmp_path / "out"
    graft_pretrained(str(checkpoint), str(new_tok_dir), out, GraftConfig(method="subword_mean"))
    streamed = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    in_memory = graft(base, old_tok, new_tok, GraftConfig(method="subword_mean")).model
    for a, b in zip(streamed.state_dict().values(), in_memory.state_dict().values(), strict=True):
        assert torch.equal(a, b)
