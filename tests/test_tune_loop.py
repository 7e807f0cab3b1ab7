"""The training layer `tokengraft.tune` in memory: windows, alignment, losses, steps, resume
state and data parallelism, on tiny models."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import tiny
import torch
import torch.multiprocessing as mp
from torch.nn import functional as F
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting import embedding_weights, graft
from tokengraft.tune import TuneConfig, create_trainer, distill_data, fit, lm_data
from tokengraft.tune.align import align_window, byte_stream
from tokengraft.tune.data import sample_starts, token_stream, windows
from tokengraft.tune.distributed import Ranks, env_ranks, start, stop
from tokengraft.tune.model import embedding_parameter_names, frozen_weights
from tokengraft.tune.optim import lr_factor
from tokengraft.tune.state import restore, state_meta, state_tensors
from tokengraft.tune.step import losses, make_batch
from tokengraft.vocab import canonical_vocab, decode_canonical

DOCS = [(f"doc{i}", text) for i, text in enumerate(tiny.TEXT[:8])]
CPU = torch.device("cpu")


def _grafted(old_tok, new_tok, *, tied: bool):
    """(base model, grafted result): a tiny model grafted onto ``new_tok`` with subword_mean."""
    base = tiny.llama(len(old_tok), tied=tied)
    return base, graft(base, old_tok, new_tok, GraftConfig(method="subword_mean"))


def _new_ids(result) -> torch.Tensor:
    sources = result.embeddings.sources
    return torch.tensor([i for i, s in enumerate(sources) if s is RowSource.COMPUTED])


def _eval_losses(trainer, starts) -> dict[str, float]:
    """The losses of a fixed batch of windows with the trainer's rows now."""
    batch = make_batch(trainer.data, starts, Ranks(), CPU)
    with torch.no_grad():
        parts = losses(
            trainer.student, trainer.rows.matrices(), batch, trainer.config, trainer.teacher
        )
    return {k: v.item() for k, v in parts.items()}


# ------------------------------------------------------------------------ the move from methods/


def _reference_rows(model, weights, ids, stream, start, cfg: TuneConfig, generator, untied):
    """methods/tune.py's loop as it was before it moved into tokengraft.tune (the reference)."""
    names = embedding_parameter_names(model, untied=untied)
    fixed = {s: w.detach().float() for s, w in weights.items()}
    rows = {s: w[ids].clone().requires_grad_(True) for s, w in fixed.items()}
    opt = torch.optim.Adam(list(rows.values()), lr=cfg.lr, betas=(0.9, 0.98), eps=cfg.eps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / 5) * 0.5 * (1.0 + math.cos(math.pi * k / cfg.steps))
    )
    frozen = frozen_weights(model)
    total, batch, length = len(stream) - cfg.seq_len + 1, cfg.batch_size, cfg.seq_len
    starts = torch.randint(0, total, (cfg.steps * batch,), generator=generator).tolist()
    for k in range(cfg.steps):
        window = windows(stream, starts[k * batch : (k + 1) * batch], length, start)
        mats = {s: fixed[s].index_put((ids,), rows[s]) for s in fixed}
        weights_now = {**frozen, **{names[s]: mats[s] for s in names}}
        kwargs = {"input_ids": window, "use_cache": False}
        logits = torch.func.functional_call(
            model, weights_now, args=(), kwargs=kwargs, tie_weights=not untied
        ).logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), window[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    return {s: r.detach() for s, r in rows.items()}


def test_the_loop_gives_the_rows_methods_tune_gave_before_it_moved(old_tok, new_tok, tied):
    base, result = _grafted(old_tok, new_tok, tied=tied)
    weights, ids = embedding_weights(result.model), _new_ids(result)
    cfg = TuneConfig(steps=8, batch_size=3, seq_len=24, lr=3e-2)
    stream = token_stream(tiny.TEXT, new_tok, cfg.seq_len)
    seeded = torch.Generator().manual_seed(5)
    start = new_tok.bos_token_id
    expected = _reference_rows(result.model, weights, ids, stream, start, cfg, seeded, not tied)
    data = lm_data(tiny.TEXT, new_tok, cfg.seq_len)
    seeded = torch.Generator().manual_seed(5)
    trainer = create_trainer(result.model, weights, ids, data, cfg, generator=seeded)
    fit(trainer)
    got = trainer.rows.result()
    assert set(got) == set(expected)
    for slot in got:
        assert torch.equal(got[slot], expected[slot]), slot  # bit-identical


# ------------------------------------------------------------------------------- windows, schedule


def test_drawing_offsets_step_by_step_equals_drawing_them_at_once(new_tok):
    data = lm_data(tiny.TEXT, new_tok, 16)
    at_once = torch.randint(
        0, len(data.student.ids) - 15, (40,), generator=torch.Generator().manual_seed(3)
    ).tolist()
    gen = torch.Generator().manual_seed(3)
    assert sum((sample_starts(data, 4, gen) for _ in range(10)), []) == at_once


def test_schedule_warms_up_decays_to_zero_and_stays_flat_without_steps():
    assert lr_factor(0, 100, 5) == pytest.approx(0.2)
    assert lr_factor(4, 100, 5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 100)))
    assert lr_factor(100, 100, 5) == pytest.approx(0.0)
    assert lr_factor(10_000, None, 5) == 1.0


# ------------------------------------------------------------------------------------ alignment


def test_identical_tokenizers_align_every_position(new_tok):
    data = distill_data(DOCS, new_tok, new_tok, 20)
    assert data.allowed is not None and len(data.allowed) == len(data.student.ids) - 19
    for offset in (0, 7, 31):
        aligned = align_window(data, offset)
        window = windows(data.student.ids, [offset], 20, data.student.start)[0]
        assert torch.equal(aligned.teacher_ids, window)
        assert aligned.student_pos.tolist() == list(range(20)) == aligned.teacher_pos.tolist()


def test_aligned_positions_have_read_the_same_bytes(old_tok, new_tok):
    data = distill_data(DOCS, new_tok, old_tok, 24)
    assert data.teacher is not None and data.allowed is not None
    ours, theirs = canonical_vocab(new_tok), canonical_vocab(old_tok)
    for offset in data.allowed[::7].tolist():
        aligned = align_window(data, offset)
        window = windows(data.student.ids, [offset], 24, data.student.start)[0].tolist()
        teacher = aligned.teacher_ids.tolist()
        assert len(aligned.student_pos) > 1
        for k, m in zip(aligned.student_pos.tolist(), aligned.teacher_pos.tolist(), strict=True):
            # the prefix (start token) is position 0 of both; both then read the same bytes
            assert decode_canonical(ours, window[1 : k + 1]) == decode_canonical(
                theirs, teacher[1 : m + 1]
            )


def test_a_tokenizer_that_does_not_round_trip_is_refused(tokenizers_by_family):
    wordpiece = tokenizers_by_family["wordpiece"]  # BERT splits off punctuation with spaces
    with pytest.raises(TokengraftError, match="does not round-trip doc0"):
        byte_stream(DOCS, wordpiece, who="the teacher's tokenizer")


# ------------------------------------------------------------------------------- losses and steps


@pytest.mark.parametrize("teacher", [False, True], ids=["next-token", "distill"])
def test_the_loss_falls(old_tok, new_tok, teacher):
    base, result = _grafted(old_tok, new_tok, tied=False)
    weights = embedding_weights(result.model)
    cfg = TuneConfig(steps=25, batch_size=4, seq_len=24, lr=0.1, lm_weight=0.0 if teacher else 1)
    if teacher:
        data = distill_data(DOCS, new_tok, old_tok, cfg.seq_len)
    else:
        data = lm_data([t for _, t in DOCS], new_tok, cfg.seq_len)
    trainer = create_trainer(
        result.model, weights, _new_ids(result), data, cfg, teacher=base if teacher else None
    )
    fixed = sample_starts(data, 16, torch.Generator().manual_seed(99))
    before = _eval_losses(trainer, fixed)
    fit(trainer)
    after = _eval_losses(trainer, fixed)
    key = "distill" if teacher else "lm"
    assert set(after) == {key}
    # a random tiny model reading other tokens at other positions cannot match its teacher
    # everywhere, so the floor is far from zero; the loss still falls clearly
    assert after[key] < before[key] - (0.05 * before[key] if teacher else 0.05), (before, after)


def test_distillation_recovers_rows_it_was_given_wrong(old_tok):
    teacher = tiny.llama(len(old_tok), tied=False)
    weights = embedding_weights(teacher)
    ids = torch.arange(40, 300)
    noise = {s: 0.05 * torch.randn(len(ids), w.shape[1]) for s, w in weights.items()}
    noisy = {s: w.clone().index_put((ids,), w[ids] + noise[s]) for s, w in weights.items()}
    cfg = TuneConfig(steps=25, batch_size=4, seq_len=20, lr=3e-2, lm_weight=0.0)
    data = distill_data(DOCS, old_tok, old_tok, cfg.seq_len)
    trainer = create_trainer(teacher, noisy, ids, data, cfg, teacher=teacher)
    fixed = sample_starts(data, 16, torch.Generator().manual_seed(99))
    before = _eval_losses(trainer, fixed)["distill"]
    fit(trainer)
    after = _eval_losses(trainer, fixed)["distill"]
    assert after < 0.5 * before, (before, after)


def test_identical_tokenizers_and_rows_make_the_student_the_teacher(old_tok):
    model = tiny.llama(len(old_tok), tied=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TuneConfig(steps=4, batch_size=3, seq_len=20, lr=3e-2, lm_weight=0.0)
    data = distill_data(DOCS, old_tok, old_tok, cfg.seq_len)
    trainer = create_trainer(
        model, embedding_weights(model), torch.arange(50, 300), data, cfg, teacher=model
    )
    fixed = sample_starts(data, 3, torch.Generator().manual_seed(1))
    batch = make_batch(data, fixed, Ranks(), CPU)
    assert batch.teacher is not None and batch.teacher.mask is None
    student_out = trainer.student(trainer.rows.matrices(), input_ids=batch.ids, use_cache=False)
    assert torch.equal(student_out.logits, model(input_ids=batch.ids, use_cache=False).logits)
    assert _eval_losses(trainer, fixed)["distill"] == 0.0
    start_rows = trainer.rows.result()
    fit(trainer)
    assert trainer.history.distill == [0.0] * 4  # no gradient: the rows never move
    assert torch.equal(trainer.rows.result()[Slot.INPUT], start_rows[Slot.INPUT])
    assert all(v.equal(before[k]) for k, v in model.state_dict().items())


def test_copied_rows_and_the_model_stay_bit_identical(old_tok, new_tok, tied):
    base, result = _grafted(old_tok, new_tok, tied=tied)
    weights = embedding_weights(result.model)
    state = {k: v.clone() for k, v in result.model.state_dict().items()}
    ids = _new_ids(result)
    cfg = TuneConfig(steps=6, batch_size=2, seq_len=24, lr=3e-2)
    trainer = create_trainer(
        result.model, weights, ids, distill_data(DOCS, new_tok, old_tok, 24), cfg, teacher=base
    )
    fit(trainer)
    kept = torch.ones(len(new_tok), dtype=torch.bool)
    kept[ids] = False
    for slot, matrix in trainer.matrices().items():
        assert torch.equal(matrix[kept], weights[slot][kept]), slot
        assert not torch.equal(matrix[~kept], weights[slot][~kept]), slot
    assert all(v.equal(state[k]) for k, v in result.model.state_dict().items())
    assert all(p.grad is None for p in result.model.parameters())


def test_a_restored_state_continues_exactly(old_tok, new_tok):
    base, result = _grafted(old_tok, new_tok, tied=False)
    weights, ids = embedding_weights(result.model), _new_ids(result)
    cfg = TuneConfig(steps=12, batch_size=2, seq_len=24, lr=3e-2)
    data = distill_data(DOCS, new_tok, old_tok, cfg.seq_len)
    whole = create_trainer(result.model, weights, ids, data, cfg, teacher=base)
    fit(whole)
    first = create_trainer(result.model, weights, ids, data, cfg, teacher=base)
    for _ in range(5):
        first.step()
    tensors, meta = state_tensors(first), state_meta(first)
    second = create_trainer(result.model, weights, ids, data, cfg, teacher=base)
    restore(second, tensors, meta)
    fit(second)
    assert second.history.step == 12
    for slot, rows in whole.rows.result().items():
        assert torch.equal(second.rows.result()[slot], rows), slot


# ----------------------------------------------------------------------------- two processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train_saved(
    root: Path, cfg: TuneConfig, ranks: Ranks | None = None
) -> dict[Slot, torch.Tensor]:
    """Train the new rows of the checkpoint saved in ``root``, distilling from its base."""
    student = LlamaForCausalLM.from_pretrained(root / "student").eval()
    teacher = LlamaForCausalLM.from_pretrained(root / "teacher").eval()
    new_tok = PreTrainedTokenizerFast.from_pretrained(root / "student")
    old_tok = PreTrainedTokenizerFast.from_pretrained(root / "teacher")
    data = distill_data(DOCS, new_tok, old_tok, cfg.seq_len)
    ids = torch.load(root / "ids.pt")
    trainer = create_trainer(
        student, embedding_weights(student), ids, data, cfg, teacher=teacher, ranks=ranks
    )
    fit(trainer)
    return trainer.rows.result()


@contextmanager
def _torchrun_env(rank: int, world: int, port: int) -> Iterator[Ranks]:
    """The variables torchrun sets, for the duration of the block."""
    names = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")
    saved = {name: os.environ.get(name) for name in names}
    values = ("127.0.0.1", str(port), str(rank), str(world), str(rank))
    os.environ.update(dict(zip(names, values, strict=True)))
    try:
        yield env_ranks()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _rank(rank: int, world: int, port: int, root: Path, cfg: TuneConfig) -> None:
    """One process of a multi-process run; process 0 saves its rows to ``root/rows_2.pt``."""
    with _torchrun_env(rank, world, port) as ranks:
        start(ranks, CPU, timeout=timedelta(seconds=180))
        try:
            rows = _train_saved(root, cfg, ranks)
        finally:
            stop(ranks)
    if ranks.main:
        torch.save({s.value: r for s, r in rows.items()}, root / "rows_2.pt")


def test_two_processes_give_the_rows_of_one(tmp_path, old_tok, new_tok):
    base, result = _grafted(old_tok, new_tok, tied=False)
    base.save_pretrained(tmp_path / "teacher")
    old_tok.save_pretrained(tmp_path / "teacher")
    result.model.save_pretrained(tmp_path / "student")
    new_tok.save_pretrained(tmp_path / "student")
    torch.save(_new_ids(result), tmp_path / "ids.pt")
    cfg = TuneConfig(steps=6, batch_size=5, seq_len=24, lr=3e-2, lm_weight=0.5)
    one = _train_saved(tmp_path, cfg)
    port = _free_port()
    other = mp.get_context("spawn").Process(target=_rank, args=(1, 2, port, tmp_path, cfg))
    other.start()  # process 1; this test's process is process 0
    try:
        _rank(0, 2, port, tmp_path, cfg)
    finally:
        other.join(timeout=180)
    assert other.exitcode == 0
    two = torch.load(tmp_path / "rows_2.pt")
    for slot, rows in one.items():
        moved = (rows - embedding_weights(result.model)[slot][_new_ids(result)]).abs().max()
        difference = (two[slot.value] - rows).abs().max().item()
        print(f"{slot}: rows moved up to {moved:.3g}, two processes differ by {difference:.3g}")
        assert moved > 1e-3
        assert difference <= 1e-5, slot
