"""`distill`: hypernet rows, a next-token fit, and an output head fitted to the model's features."""

from __future__ import annotations

import pytest
import tiny
import torch
from torch.nn import functional as F

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting import graft
from tokengraft.methods import Extras
from tokengraft.tune import token_stream
from tokengraft.tune.head import HeadFit, fit_rows

CORPUS = tiny.TEXT * 4
FAST = {
    "init": "subword_mean",
    "seq_len": 32,
    "head_tokens": 600,
    "head_epochs": 20,
    "head_lr": 0.1,
}


def _nll(model, tok, texts) -> float:
    ids = token_stream(texts, tok, 8)[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    return F.cross_entropy(logits[0, :-1], ids[0, 1:]).item()


def test_fit_rows_moves_only_the_given_rows_and_lowers_the_loss():
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(512, 8, generator=gen)
    truth = torch.randn(6, 8, generator=gen)
    targets = (inputs @ truth.T).argmax(dim=1)
    head = truth.clone()
    head[[1, 4]] = 0.0
    rows = torch.tensor([1, 4])
    before = F.cross_entropy(inputs @ head.T, targets).item()
    fitted = fit_rows(inputs, targets, head, rows, HeadFit(epochs=20, batch=64, lr=0.05), gen)
    after_head = head.index_put((rows,), fitted)
    after = F.cross_entropy(inputs @ after_head.T, targets).item()
    assert after < before - 0.1, (before, after)
    assert torch.equal(after_head[[0, 2, 3, 5]], head[[0, 2, 3, 5]])


def _graft(old_tok, new_tok, tied: bool, **params):
    base = tiny.llama(len(old_tok), tied=tied)
    config = GraftConfig(method="distill", params={**FAST, **params})
    return base, graft(base, old_tok, new_tok, config, extras=Extras(model=base, corpus=CORPUS))


def test_training_free_distill_fits_the_head_and_keeps_input_rows(old_tok, new_tok, tied):
    base, result = _graft(old_tok, new_tok, tied, steps=0)
    start = graft(base, old_tok, new_tok, GraftConfig(method="subword_mean", untie=True))
    assert not result.model.config.tie_word_embeddings  # the method unties a tied model
    w, w0 = result.embeddings.weights, start.embeddings.weights
    assert torch.equal(w[Slot.INPUT], w0[Slot.INPUT])  # no step through the model
    copied = torch.tensor([s is RowSource.COPIED for s in result.embeddings.sources])
    assert torch.equal(w[Slot.OUTPUT][copied], w0[Slot.OUTPUT][copied])
    assert not torch.equal(w[Slot.OUTPUT][~copied], w0[Slot.OUTPUT][~copied])
    assert _nll(result.model, new_tok, CORPUS) < _nll(start.model, new_tok, CORPUS) - 0.05


def test_steps_move_the_input_rows(old_tok, new_tok):
    _, free = _graft(old_tok, new_tok, True, steps=0)
    _, tuned = _graft(old_tok, new_tok, True, steps=5, batch_size=2, lr=3e-2)
    assert not torch.equal(
        free.embeddings.weights[Slot.INPUT], tuned.embeddings.weights[Slot.INPUT]
    )


def test_a_refining_init_is_refused(old_tok, new_tok):
    with pytest.raises(TokengraftError, match="init method 'tune' cannot be used"):
        _graft(old_tok, new_tok, True, init="tune")
