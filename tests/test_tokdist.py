"""`tokdist` (Token Distillation) and its snippet mining, on tiny real models."""

from __future__ import annotations

import tiny
import torch

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.grafting import graft
from tokengraft.methods import Extras
from tokengraft.methods.tokdist import _batch_loss
from tokengraft.tune.model import student
from tokengraft.tune.snippets import Snippet, mine, occurrences, snippet

CORPUS = tiny.TEXT * 4
FAST = {"max_tokens": 6, "snippets": 3, "snippet_len": 12, "batch_size": 4, "lr": 3e-2}


def test_occurrences_are_exact_and_overlapping():
    stream = torch.tensor([5, 1, 2, 1, 2, 1, 2, 3, 1, 2, 1])
    found = occurrences(stream, [[1, 2], [2, 1, 2], [3, 3], [1, 2, 1, 2, 1, 2, 3, 1, 2, 1, 9]])
    assert found == [[1, 3, 5, 8], [2, 4], [], []]


def test_a_snippet_aligns_every_position_outside_the_phrase():
    stream = torch.arange(100, 120)
    teacher, student_ids, s_pos, t_pos = snippet(stream, 10, 3, 8, 2, start=0)
    assert teacher.tolist() == [0, *range(108, 116)]
    # the phrase 110 111 112 becomes -1; the student is two tokens shorter
    assert student_ids.tolist() == [0, 108, 109, -1, 113, 114, 115]
    merged = teacher.clone()
    assert [int(merged[t]) for t in t_pos] == [0, 108, 109, 112, 113, 114, 115]
    assert s_pos.tolist() == list(range(len(student_ids)))


def test_mining_ranks_by_frequency_and_caps_snippets():
    stream = torch.tensor([1, 2, 7, 1, 2, 8, 1, 2, 3, 4, 9, 3, 4] * 3)
    gen = torch.Generator().manual_seed(0)
    out = mine(
        stream,
        [[3, 4], None, [1, 2], [5, 6]],
        max_tokens=1,
        per_token=4,
        length=5,
        start=None,
        generator=gen,
    )
    assert {s.token for s in out} == {2} and len(out) == 4  # [1, 2] occurs 9 times, [3, 4] 6
    for s in out:
        assert (s.student_ids == -1).sum() == 1


def test_identical_spelling_gives_zero_loss(old_tok):
    """With the new token's row equal to its one old piece's row, student equals teacher."""
    model = tiny.llama(len(old_tok), tied=True)
    old = model.get_input_embeddings().weight.detach()
    stream = torch.tensor(old_tok(tiny.TEXT[0], add_special_tokens=False).input_ids)
    piece = int(stream[3])
    t, s, sp, tp = snippet(stream, 3, 1, 10, 3, start=None)
    batch = [Snippet(token=0, teacher_ids=t, student_ids=s, student_pos=sp, teacher_pos=tp)]
    rows = old[piece][None].clone()
    loss = _batch_loss(model, student(model, untied=False), old, rows, {0: 0}, batch)
    assert loss.item() < 1e-10
    loss_off = _batch_loss(model, student(model, untied=False), old, rows + 0.5, {0: 0}, batch)
    assert loss_off.item() > 1e-4


def _graft(old_tok, new_tok, tied: bool, **params):
    base = tiny.llama(len(old_tok), tied=tied)
    config = GraftConfig(method="tokdist", params={**FAST, **params})
    return graft(base, old_tok, new_tok, config, extras=Extras(model=base, corpus=CORPUS)), base


def test_tokdist_moves_only_distilled_rows_and_lowers_the_loss(old_tok, new_tok, tied):
    tuned, base = _graft(old_tok, new_tok, tied)
    fvt = graft(base, old_tok, new_tok, GraftConfig(method="subword_mean"))
    w, w0 = tuned.embeddings.weights[Slot.INPUT], fvt.embeddings.weights[Slot.INPUT]
    moved = (w != w0).any(dim=1)
    assert 1 <= int(moved.sum()) <= FAST["max_tokens"]
    copied = torch.tensor([s is RowSource.COPIED for s in tuned.embeddings.sources])
    assert not moved[copied].any()
    assert torch.equal(w[copied], w0[copied])
    if not tied:
        assert torch.equal(
            tuned.embeddings.weights[Slot.OUTPUT], fvt.embeddings.weights[Slot.OUTPUT]
        )
