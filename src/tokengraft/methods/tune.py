"""`tune`: hypernetwork rows, then a short embedding-only language-model fit on target text.

tokengraft's own donor-free method. Static methods guess a new token's row from its pieces or
from co-occurrence statistics; none of them asks the model itself what it needs. ``tune`` does,
cheaply:

1. every new row starts from another method (``init``, default ``hypernet``);
2. the base model, frozen, reads windows of the target corpus tokenised by the new tokenizer, and
   only the computed rows (input embeddings and output head; the tied matrix of a tied model) are
   moved by Adam on the next-token loss for a fixed number of ``steps`` (linear warm-up, cosine
   decay). Copied rows and every transformer weight stay exactly as they were.

Adam's ``eps`` is large (1e-3, not 1e-8) on purpose. Every output-head row gets a gradient at
every position through the softmax normaliser, even a token that never occurs in the sampled
text (a row norm around 1e-4 for SmolLM2, against 0.03-0.5 for rows with real evidence). Adam
with a tiny ``eps`` turns those into full-size steps, so each rare token's row marches in the
direction that lowers its logit everywhere: measured on de-fresh, hypernet rows tuned with
``eps=1e-8`` lost 0.03-0.12 bits per byte instead of gaining. With ``eps=1e-3`` the update of such
rows is proportional to their gradient (negligible) while rows with evidence still get
Adam-sized steps.

Measured while choosing the defaults (SmolLM2-135M -> the de-fresh 32k German BPE, first 30 kB
of the German / English held-out, bits per byte; 60 steps of 4 x 256 tokens). These come from a
prototype of this recipe run on the saved hypernet / subword_mean grafts (same windows, optimiser
and schedule, but windows drawn with Python's ``random``), so they are not bit-for-bit what
``tokengraft graft --method tune -p lr=... -p eps=...`` gives; the defaults themselves measure
2.061 / 2.037 in BENCHMARKS.md (de-fresh, ``python -m bench.run --scenario de-fresh``):

=============================  ===========  ===========
starting rows, Adam lr / eps   German       English
=============================  ===========  ===========
hypernet, not tuned            2.271        2.050
hypernet, 3e-4 / 1e-8          2.299        2.071
hypernet, 1e-3 / 1e-8          2.392        2.103
hypernet, 1e-3 / 1e-3          2.111        2.044
hypernet, 3e-3 / 1e-3          2.070        2.042
hypernet, 3e-3 / 1e-3, tied    2.078        2.041
hypernet, 1e-2 / 1e-3          2.085        2.055
subword_mean, 1e-3 / 1e-8      2.303        2.102
=============================  ===========  ===========

All rows but the "tied" one had the head untied; tying costs 0.008 on German, so the default
keeps a tied model tied (``--untie`` fits both matrices).

The model is called through ``torch.func.functional_call`` with the new matrices in place of its
embedding parameters, so the base model object is never modified (no resize, no flag changes)
and everything the architecture does around the embeddings (input scaling, logit soft-capping)
is kept.

Cost: ``steps * batch_size * seq_len`` tokens through the model forward and backward. With the
defaults (60 steps of 4 x 256 tokens, about 61k tokens) SmolLM2-135M took 577 s of method time,
the hypernet rows included (604 s for the whole ``tokengraft graft``, peak RSS 3.6 GB), with one
thread on a shared 2-core machine (de-fresh in BENCHMARKS.md, bench/results/de-fresh.json).
Gradients flow only to the embedding rows (no weight gradients), so memory is the activations
plus one Adam state per computed row.

Relation to published work: continued training of only the new embeddings after a heuristic
initialisation is the standard second stage of FOCUS, WECHSEL, OFA and ZeTT; those papers train
for thousands of steps on GPUs with a learned hypernetwork or static initialisation. Here the
budget is a few minutes on a laptop-class CPU, the initialisation is our CPU-scale ``hypernet``,
and nothing but the new rows moves. Limitations: tokens that never occur in the sampled windows
keep their initial rows (Adam moves only rows with gradient); the corpus is the only data, so a
model grafted for German is tuned on German alone (English retention is measured, not optimised).
"""

from __future__ import annotations

import logging

import torch
from transformers import PreTrainedModel

from tokengraft.config import Slot
from tokengraft.errors import TokengraftError
from tokengraft.methods import common
from tokengraft.methods.registry import (
    MethodInput,
    MethodRows,
    MethodSpec,
    Need,
    Param,
    RefineInput,
    register,
    required,
)
from tokengraft.tune import TuneConfig, create_trainer, fit, lm_data

log = logging.getLogger(__name__)

NEEDS = frozenset({Need.MODEL, Need.CORPUS})


def init_rows(inp: MethodInput) -> torch.Tensor | MethodRows:
    """(N, D) first-pass rows from the ``init`` method, with that method's default parameters."""
    return common.init_rows(inp, caller="tune", allowed=NEEDS)


def tune_refine(inp: RefineInput) -> dict[Slot, torch.Tensor]:
    """Slot -> (N, D): the ``to_compute`` rows after the embedding-only LM fit."""
    model: PreTrainedModel = required(inp.extras.model, Need.MODEL)
    config = TuneConfig(
        steps=int(inp.params["steps"]),
        batch_size=int(inp.params["batch_size"]),
        seq_len=int(inp.params["seq_len"]),
        lr=float(inp.params["lr"]),
        eps=float(inp.params["eps"]),
    )
    if inp.new_tokenizer is None:
        raise TokengraftError("tune needs the new tokenizer")
    data = lm_data(inp.extras.corpus, inp.new_tokenizer, config.seq_len)
    untied = not inp.tied and Slot.OUTPUT in inp.weights
    weights = {slot: w for slot, w in inp.weights.items() if untied or slot is Slot.INPUT}
    trainer = create_trainer(model, weights, inp.to_compute, data, config, generator=inp.generator)
    fit(trainer, progress=inp.progress)
    rows = trainer.rows.result()
    return {
        slot: rows[slot].to(w.dtype) if slot in rows else w[inp.to_compute]
        for slot, w in inp.weights.items()
    }


SPEC = register(
    MethodSpec(
        name="tune",
        fn=init_rows,
        refine=tune_refine,
        summary="ours: hypernet rows, then a few minutes of embedding-only LM fitting on target text",
        paper="tokengraft (this project)",
        needs=NEEDS,
        params={
            "init": Param(
                default="hypernet",
                type=str,
                help="method that gives the first rows (needs at most model and corpus)",
            ),
            "steps": Param(default=60, type=int, min=0, max=1000000, help="optimiser steps"),
            "batch_size": Param(default=4, type=int, min=1, max=4096, help="windows per step"),
            "seq_len": Param(default=256, type=int, min=2, max=131072, help="tokens per window"),
            "lr": Param(
                default=0.003, type=float, positive=True, max=10.0, help="Adam learning rate"
            ),
            "eps": Param(default=0.001, type=float, positive=True, max=1.0, help="Adam epsilon"),
        },
    )
)
