"""`tokdist`: Token Distillation (Dobler, Elliott and de Melo, ICLR 2026, arXiv 2505.20133).

A new token's input row is learnt so that the frozen model, reading the new token, ends up in
the hidden states it reaches when it reads the token's old pieces. For each new token, snippets
of the corpus that contain its old spelling are mined (:mod:`tokengraft.tune.snippets`). The
teacher is the base model reading a snippet in the old tokenization; the student is the same
model reading the same snippet with that one phrase merged into the new token. The loss is the
mean squared error between their last-layer hidden states at aligned positions: every token
outside the phrase, and the phrase's last piece against the new token. Only the new rows move
(AdamW, learning rate 1e-4, no weight decay, constant rate, batches of 16 snippets, one epoch:
the released code's defaults). Rows start from the subword mean (FVT), as in the paper.

Where this differs from the paper and its code:

* Budget. The paper adds at most a few thousand tokens and distils each with 25-100 snippets of
  50 tokens on a GPU. A whole-tokenizer graft has tens of thousands of new tokens and this is a
  CPU: only the ``max_tokens`` new tokens that occur most often in the corpus are distilled
  (default 24: 1,070 s of method time for SmolLM2-135M on a
  busy two-core machine, load average about 4); every other new row keeps its
  FVT start. That is the paper's method at the budget, not its published setting.
* Snippets come from the graft's ``--corpus``: the phrase sits at a random position of a
  window of ``snippet_len`` old tokens that opens with the start token (BOS). The paper mines
  FineWeb-2 or generates snippets with the model.
* Output rows. A tied model stays tied, so the distilled row is also the new token's output row.
  An untied head keeps its FVT rows; the released code's separate next-token step for output rows
  is not done.
* Full precision (float32); the paper trains in bfloat16 autocast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from tokengraft.config import Slot
from tokengraft.errors import TokengraftError
from tokengraft.methods.common import subword_mean
from tokengraft.methods.registry import (
    MethodInput,
    MethodSpec,
    Need,
    Param,
    RefineInput,
    register,
    required,
)
from tokengraft.tune.align import pad_right
from tokengraft.tune.data import start_id, token_stream
from tokengraft.tune.model import Student, student
from tokengraft.tune.snippets import Snippet, mine

log = logging.getLogger(__name__)


def fvt_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D) the subword mean of each token's old pieces (FVT), the paper's starting rows."""
    return subword_mean(inp.old, inp.pieces)


def _hidden(call: Callable[..., Any], ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, L, D) last-layer hidden states; the head only runs on the last position."""
    extra = {} if mask is None else {"attention_mask": mask}
    out = call(input_ids=ids, use_cache=False, output_hidden_states=True, logits_to_keep=1, **extra)
    return out.hidden_states[-1].float()


def _batch_loss(
    model: PreTrainedModel,
    learner: Student,
    old: torch.Tensor,
    rows: torch.Tensor,
    slot_of: dict[int, int],
    batch: list[Snippet],
) -> torch.Tensor:
    """Mean squared hidden-state difference of one batch of snippets at aligned positions."""
    t_ids, t_mask = pad_right([s.teacher_ids for s in batch])
    with torch.no_grad():
        teacher = _hidden(model, t_ids, t_mask)
    merged = [
        torch.where(s.student_ids < 0, len(old) + slot_of[s.token], s.student_ids) for s in batch
    ]
    s_ids, s_mask = pad_right(merged)
    matrix = torch.cat([old, rows])
    hidden = _hidden(lambda **kw: learner({Slot.INPUT: matrix}, **kw), s_ids, s_mask)
    s_flat = torch.cat([r * s_ids.shape[1] + s.student_pos for r, s in enumerate(batch)])
    t_flat = torch.cat([r * t_ids.shape[1] + s.teacher_pos for r, s in enumerate(batch)])
    return F.mse_loss(hidden.flatten(0, 1)[s_flat], teacher.flatten(0, 1)[t_flat])


def _snippets(inp: RefineInput) -> list[Snippet]:
    """The mined snippets of the graft's corpus (see :func:`tokengraft.tune.snippets.mine`)."""
    if inp.old_tokenizer is None:
        raise TokengraftError("tokdist needs the old tokenizer")
    length = int(inp.params["snippet_len"])
    stream = token_stream(list(inp.extras.corpus), inp.old_tokenizer, 2)
    return mine(
        stream,
        inp.pieces,
        max_tokens=int(inp.params["max_tokens"]),
        per_token=int(inp.params["snippets"]),
        length=length,
        start=start_id(inp.old_tokenizer),
        generator=inp.generator,
    )


def tokdist_refine(inp: RefineInput) -> dict[Slot, torch.Tensor]:
    """Slot -> (N, D): input rows of the distilled tokens replaced, everything else as given."""
    model: PreTrainedModel = required(inp.extras.model, Need.MODEL)
    snippets = _snippets(inp)
    tokens = sorted({s.token for s in snippets})
    slot_of = {t: k for k, t in enumerate(tokens)}
    start = inp.weights[Slot.INPUT][inp.to_compute].float()
    rows = start[tokens].clone().requires_grad_(True)
    weight = model.get_input_embeddings().weight
    assert isinstance(weight, torch.Tensor)
    old = weight.detach().float()
    learner = student(model, untied=False)
    optimizer = torch.optim.AdamW([rows], lr=float(inp.params["lr"]), weight_decay=0.0)
    order = torch.randperm(len(snippets), generator=inp.generator).tolist()
    size = int(inp.params["batch_size"])
    batches = [[snippets[i] for i in order[a : a + size]] for a in range(0, len(order), size)]
    bar = tqdm(batches, desc="tokdist", disable=not inp.progress, unit="batch")
    was_training = model.training
    model.eval()
    try:
        for batch in bar:
            loss = _batch_loss(model, learner, old, rows, slot_of, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.set_postfix(mse=f"{loss.item():.4f}")
    finally:
        model.train(was_training)
    log.info("tokdist: %d tokens distilled on %d snippets", len(tokens), len(snippets))
    out = start.index_put((torch.tensor(tokens),), rows.detach())
    result = {Slot.INPUT: out.to(inp.weights[Slot.INPUT].dtype)}
    for slot, w in inp.weights.items():
        if slot is not Slot.INPUT:
            result[slot] = w[inp.to_compute]
    return result


SPEC = register(
    MethodSpec(
        name="tokdist",
        fn=fvt_rows,
        refine=tokdist_refine,
        summary="Token Distillation: hidden-state MSE on snippets per new token (frequent ones)",
        paper="https://arxiv.org/abs/2505.20133",
        needs=frozenset({Need.MODEL, Need.CORPUS}),
        params={
            "max_tokens": Param(
                default=24, type=int, min=1, max=10_000_000, help="new tokens distilled"
            ),
            "snippets": Param(default=25, type=int, min=1, max=100_000, help="snippets per token"),
            "snippet_len": Param(default=50, type=int, min=2, max=131072, help="old tokens each"),
            "batch_size": Param(default=16, type=int, min=1, max=4096, help="snippets per step"),
            "lr": Param(default=1e-4, type=float, positive=True, max=10.0, help="AdamW rate"),
        },
    )
)
