"""Every registered method, end to end on tiny models (tied and untied), with tiny extras.

mergekit's tokensurgeon has no tests and a crash on a fallback path that such a sweep catches.
"""

from __future__ import annotations

import pytest
import tiny
import torch

from tokengraft.config import GraftConfig, RowSource
from tokengraft.grafting import graft
from tokengraft.methods import Extras, Need, load_all

ALL_METHODS = sorted(load_all())
# Small settings so that learned methods stay fast on tiny models.
TINY_PARAMS: dict[str, dict] = {
    "hypernet": {"epochs": 1},
    "omp": {"k": 4},
    "contextfit": {"max_tokens": 512, "window": 64},
    "wechsel": {"min_count": 1, "dim": 16},
    "tune": {"init": "subword_mean", "steps": 2, "batch_size": 2, "seq_len": 16},
}


def _extras(needs, base, new_tok, tied: bool, aux_model) -> Extras:
    extras: dict = {}
    if Need.MODEL in needs:
        extras["model"] = base
    if Need.CORPUS in needs:
        extras["corpus"] = tiny.TEXT
    if Need.SOURCE_CORPUS in needs:
        extras["source_corpus"] = tiny.TEXT
    if Need.DICTIONARY in needs:
        extras["dictionary"] = [
            ("dog", "Hund"),
            ("fox", "Fuchs"),
            ("right", "Recht"),
            ("life", "Leben"),
        ]
    if Need.DONOR in needs:
        extras["donor"] = tiny.donor(len(new_tok), tied=tied)
    if Need.AUX_MODEL in needs:
        extras["aux_model"] = aux_model
    return Extras(**extras)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_registered_method(method, old_tok, new_tok, tied, aux_model):
    spec = load_all()[method]
    base = tiny.llama(len(old_tok), tied=tied)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    config = GraftConfig(method=method, seed=0, params=TINY_PARAMS.get(method, {}))
    result = graft(
        base, old_tok, new_tok, config, extras=_extras(spec.needs, base, new_tok, tied, aux_model)
    )
    for key, value in base.state_dict().items():
        assert torch.equal(value, before[key]), key
    counts = result.embeddings.counts()
    assert sum(counts.values()) == len(new_tok)
    assert result.tied == (tied and not spec.unties)  # a method with its own head unties
    new_in = result.model.get_input_embeddings().weight
    new_out = result.model.get_output_embeddings().weight
    assert new_in.shape[0] == new_out.shape[0] == len(new_tok)
    assert torch.isfinite(new_in).all() and torch.isfinite(new_out).all()
    copied = [i for i, s in enumerate(result.embeddings.sources) if s is RowSource.COPIED]
    old_ids = result.embeddings.alignment.old_ids[copied]
    assert torch.equal(new_in[copied], base.get_input_embeddings().weight[old_ids])
    ids = result.tokenizer("Der Fuchs springt.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert result.model(ids).logits.shape[-1] == len(new_tok)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_identical_tokenizers_copy_every_row(method, old_tok, aux_model):
    spec = load_all()[method]
    base = tiny.llama(len(old_tok), tied=False)
    config = GraftConfig(method=method, params=TINY_PARAMS.get(method, {}))
    result = graft(
        base, old_tok, old_tok, config, extras=_extras(spec.needs, base, old_tok, False, aux_model)
    )
    assert result.embeddings.counts()[RowSource.COPIED.value] == len(old_tok)
    assert torch.equal(result.model.lm_head.weight, base.lm_head.weight)
