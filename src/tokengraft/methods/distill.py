"""`distill`: hypernet rows, a short next-token fit, then an output head fitted to the model.

Three stages, each asking the frozen base model what it needs:

1. every new row starts from ``init`` (default ``hypernet``), the input rows and the output
   head each from their own matrix; a tied model is untied, because stage 3 gives the head rows
   of its own;
2. ``steps`` steps of the embedding-only next-token fit of ``tune`` move the new input and head
   rows together (0 skips it: the method is then training-free, no gradient ever flows through
   the model);
3. with the input rows now fixed, one forward pass over ``head_tokens`` corpus tokens gives the
   final hidden state at every position, and the new head rows are fitted to them by
   multinomial logistic regression for ``head_epochs`` passes (:mod:`tokengraft.tune.head`).
   This is a convex problem on cached features, so each token costs one forward pass and is
   then seen several times, where stage 2 pays a forward and a backward pass per token.

Why the head: the new tokenizer's tokens are predicted by head rows no static method can
estimate well (a new token's logit should be the log-probability of its whole piece chain, which
is not a linear function of its pieces' rows), and stage 3 measures them directly on the
model's own features.

How the defaults were chosen: on a validation split cut from the end of the de-fresh training
text (the last 200,000 characters of ``corpora/de/train.txt``, first 30 kB scored; SmolLM2-135M ->
the 32k German BPE; never the held-out files), bits per byte:

* hypernet rows (stage 1 only): 2.387 [1];
* plus the head fitted on 20k tokens of features, Adam 3e-3: 2.195 / 2.175 / 2.166 / 2.166 after
  1 / 2 / 3 / 4 epochs [1]; Adam 1e-2: 2.227 after 1 epoch [1];
* plus 20 next-token steps before the head (20k tokens, 3 epochs): 1.869 [2] (English
  validation, the end of ``corpora/en/train.txt``: 1.481).

[1] non-overlapping 256-token windows over cached features (the head fit's own scoring);
[2] :func:`tokengraft.eval.lm.score_texts`, 512-token windows, stride 256 (what ``eval model``
and the benchmark use). The two scorings are not comparable, so these numbers do not show that
the 20 steps help; ``steps`` defaults to 20 on the strength of that mixed comparison.

Measured on the held-out files (BENCHMARKS.md, de-fresh and code-fresh, one busy machine):
``steps=0`` (training-free) 2.122 German / 2.040 English; the defaults 2.112 / 2.046, code
1.385. So the 20 steps buy 0.01 and ``distill`` is *not* better than ``tune`` (60 steps of the
next-token fit, no head: 2.061 German, 1.361 code), while costing more. Its training-free form is
the best training-free method measured (1.30x the original's 1.635 on German, against 1.39x for
``hypernet``). With ``--source-corpus`` (English training text): English 2.036 instead of 2.046,
German 2.119 instead of 2.112; that run took 207 s of method time on an almost idle machine.

With ``--source-corpus`` (text in the base model's language), ``source_share`` of the head's
features come from it, so the new head also predicts that language's text.

Relation to published work: fitting the head on frozen features is the linear-probe view of the
output layer; ZeTT and Token Distillation leave output rows to a next-token step through the
model. The input side is ``tune`` (see :mod:`tokengraft.methods.tune`).
"""

from __future__ import annotations

from collections.abc import Mapping

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
from tokengraft.tune.data import TrainData
from tokengraft.tune.head import Features, HeadFit, collect, fit_rows
from tokengraft.tune.model import Student, student

NEEDS = frozenset({Need.MODEL, Need.CORPUS})


def init_rows(inp: MethodInput) -> torch.Tensor | MethodRows:
    """(N, D) first-pass rows from the ``init`` method, with that method's default parameters."""
    return common.init_rows(inp, caller="distill", allowed=NEEDS)


def head_inputs(learner: Student, matrices: Mapping[Slot, torch.Tensor]) -> Features:
    """Ids -> what the model's output head reads, with ``matrices`` in place."""
    head = learner.model.get_output_embeddings()
    if head is None:
        raise TokengraftError("distill: the model has no output head")

    def run(ids: torch.Tensor) -> torch.Tensor:
        seen: list[torch.Tensor] = []
        hook = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
        try:
            learner(matrices, input_ids=ids, use_cache=False)
        finally:
            hook.remove()
        return seen[0]

    return run


def _tuned(inp: RefineInput, model: PreTrainedModel, data: TrainData) -> dict[Slot, torch.Tensor]:
    """Stage 2: the matrices after ``steps`` next-token steps (as given when ``steps`` is 0)."""
    config = TuneConfig(
        steps=int(inp.params["steps"]),
        batch_size=int(inp.params["batch_size"]),
        seq_len=int(inp.params["seq_len"]),
        lr=float(inp.params["lr"]),
        eps=float(inp.params["eps"]),
    )
    weights = dict(inp.weights)
    if config.steps == 0:
        return weights
    trainer = create_trainer(model, weights, inp.to_compute, data, config, generator=inp.generator)
    fit(trainer, progress=inp.progress)
    rows = trainer.rows.result()
    return {s: w.index_put((inp.to_compute,), rows[s].to(w.dtype)) for s, w in weights.items()}


def _features(
    inp: RefineInput, features: Features, data: TrainData
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 3's features: target text, plus ``source_share`` of source text when given."""
    total = int(inp.params["head_tokens"])
    share = float(inp.params["source_share"]) if inp.extras.source_corpus else 0.0
    own = collect(features, data, round(total * (1 - share)), inp.generator, progress=inp.progress)
    if share == 0.0:
        return own
    assert inp.new_tokenizer is not None
    source = lm_data(list(inp.extras.source_corpus), inp.new_tokenizer, data.length)
    extra = collect(features, source, round(total * share), inp.generator, progress=inp.progress)
    return torch.cat([own[0], extra[0]]), torch.cat([own[1], extra[1]])


def distill_refine(inp: RefineInput) -> dict[Slot, torch.Tensor]:
    """Slot -> (N, D): stage 2's input rows and stage 3's head rows."""
    model: PreTrainedModel = required(inp.extras.model, Need.MODEL)
    if inp.new_tokenizer is None:
        raise TokengraftError("distill needs the new tokenizer")
    if Slot.OUTPUT not in inp.weights:
        raise TokengraftError("distill fits an output head of its own: graft with --untie")
    if getattr(model.config, "final_logit_softcapping", None):
        raise TokengraftError("distill: models with logit soft-capping are not supported yet")
    data = lm_data(list(inp.extras.corpus), inp.new_tokenizer, int(inp.params["seq_len"]))
    weights = _tuned(inp, model, data)
    was_training = model.training
    model.eval()
    try:
        inputs, targets = _features(inp, head_inputs(student(model, untied=True), weights), data)
    finally:
        model.train(was_training)
    config = HeadFit(
        tokens=int(inp.params["head_tokens"]),
        epochs=int(inp.params["head_epochs"]),
        lr=float(inp.params["head_lr"]),
    )
    head = fit_rows(
        inputs,
        targets,
        weights[Slot.OUTPUT],
        inp.to_compute,
        config,
        inp.generator,
        progress=inp.progress,
    )
    out = {s: w[inp.to_compute] for s, w in weights.items()}
    out[Slot.OUTPUT] = head.to(weights[Slot.OUTPUT].dtype)
    return out


SPEC = register(
    MethodSpec(
        name="distill",
        fn=init_rows,
        refine=distill_refine,
        unties=True,
        summary="ours: hypernet rows, a next-token fit, then the head fitted to the model's features",
        paper="tokengraft (this project)",
        needs=NEEDS,
        optional=frozenset({Need.SOURCE_CORPUS}),
        params={
            "init": Param(default="hypernet", type=str, help="method that gives the first rows"),
            "steps": Param(
                default=20, type=int, min=0, max=1_000_000, help="next-token steps (0: none)"
            ),
            "batch_size": Param(default=4, type=int, min=1, max=4096, help="windows per step"),
            "seq_len": Param(default=256, type=int, min=2, max=131072, help="tokens per window"),
            "lr": Param(default=0.003, type=float, positive=True, max=10.0, help="Adam rate"),
            "eps": Param(default=0.001, type=float, positive=True, max=1.0, help="Adam epsilon"),
            "head_tokens": Param(
                default=20_000, type=int, min=1, max=100_000_000, help="tokens of head features"
            ),
            "head_epochs": Param(default=3, type=int, min=1, max=1000, help="passes over them"),
            "head_lr": Param(
                default=0.003, type=float, positive=True, max=10.0, help="head Adam rate"
            ),
            "source_share": Param(
                default=0.2, type=float, min=0.0, max=0.9, help="head features from --source-corpus"
            ),
        },
    )
)
