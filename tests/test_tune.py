"""`tune`: embedding-only LM fitting of the new rows, on tiny real models."""

from __future__ import annotations

import pytest
import tiny
import torch
from torch.nn import functional as F

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting import graft
from tokengraft.methods import Extras
from tokengraft.tune import embedding_parameter_names, token_stream, windows

CORPUS = tiny.TEXT * 4
FAST = {"init": "subword_mean", "batch_size": 4, "seq_len": 32, "lr": 3e-2}


def _nll(model, tok, texts) -> float:
    """Mean next-token loss of ``model`` over ``texts`` (each prefixed with BOS/EOS)."""
    ids = token_stream(texts, tok, 8)[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    return F.cross_entropy(logits[0, :-1], ids[0, 1:]).item()


def _graft(old_tok, new_tok, tied: bool, untie: bool = False, **params):
    base = tiny.llama(len(old_tok), tied=tied)
    config = GraftConfig(method="tune", params={**FAST, **params}, untie=untie)
    return base, graft(base, old_tok, new_tok, config, extras=Extras(model=base, corpus=CORPUS))


@pytest.mark.parametrize("untie", [False, True], ids=["as-is", "untie"])
def test_tuning_lowers_the_corpus_loss_and_keeps_copied_rows(old_tok, new_tok, tied, untie):
    base, start = _graft(old_tok, new_tok, tied, untie=untie, steps=0)
    _, tuned = _graft(old_tok, new_tok, tied, untie=untie, steps=25)
    before, after = _nll(start.model, new_tok, CORPUS), _nll(tuned.model, new_tok, CORPUS)
    assert after < before - 0.05, (before, after)
    copied = torch.tensor(
        [s in (RowSource.COPIED, RowSource.ROLE) for s in tuned.embeddings.sources]
    )
    for slot, matrix in tuned.embeddings.weights.items():
        assert torch.equal(matrix[copied], start.embeddings.weights[slot][copied]), slot
        assert not torch.equal(matrix[~copied], start.embeddings.weights[slot][~copied]), slot
    assert tuned.model.config.tie_word_embeddings == (tied and not untie)


def test_the_base_model_is_left_untouched(old_tok, new_tok):
    base = tiny.llama(len(old_tok), tied=False)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    flags = {k: p.requires_grad for k, p in base.named_parameters()}
    config = GraftConfig(method="tune", params={**FAST, "steps": 3})
    graft(base, old_tok, new_tok, config, extras=Extras(model=base, corpus=CORPUS))
    for key, value in base.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert {k: p.requires_grad for k, p in base.named_parameters()} == flags
    assert all(p.grad is None for p in base.parameters())


def test_same_seed_same_rows_other_seed_other_rows(old_tok, new_tok):
    def rows(seed: int) -> torch.Tensor:
        base = tiny.llama(len(old_tok), tied=True)
        config = GraftConfig(method="tune", seed=seed, params={**FAST, "steps": 3})
        result = graft(base, old_tok, new_tok, config, extras=Extras(model=base, corpus=CORPUS))
        return result.embeddings.weights[Slot.INPUT]

    first = rows(0)
    assert torch.equal(first, rows(0))
    assert not torch.equal(first, rows(1))


def test_parameter_names_for_tied_and_untied_heads():
    tied = tiny.llama(50, tied=True)
    assert embedding_parameter_names(tied, untied=False) == {
        Slot.INPUT: "model.embed_tokens.weight"
    }
    untied = tiny.llama(50, tied=False)
    assert embedding_parameter_names(untied, untied=True) == {
        Slot.INPUT: "model.embed_tokens.weight",
        Slot.OUTPUT: "lm_head.weight",
    }


def test_a_corpus_shorter_than_one_window_is_a_clear_error(old_tok, new_tok):
    base = tiny.llama(len(old_tok), tied=True)
    config = GraftConfig(method="tune", params={**FAST, "seq_len": 100_000})
    with pytest.raises(TokengraftError, match="fewer than one window"):
        graft(base, old_tok, new_tok, config, extras=Extras(model=base, corpus=["kurz"]))


def test_an_init_method_needing_more_than_tune_is_refused(old_tok, new_tok):
    base = tiny.llama(len(old_tok), tied=True)
    config = GraftConfig(method="tune", params={**FAST, "init": "omp"})
    with pytest.raises(TokengraftError, match="init method 'omp' cannot be used"):
        graft(base, old_tok, new_tok, config, extras=Extras(model=base, corpus=CORPUS))


def test_windows_open_with_the_start_token_like_the_evaluation():
    stream = torch.arange(10, 30)
    got = windows(stream, [0, 5], 4, start=1)
    assert got.tolist() == [[1, 10, 11, 12], [1, 15, 16, 17]]
    assert windows(stream, [3], 4, start=None).tolist() == [[13, 14, 15, 16]]
