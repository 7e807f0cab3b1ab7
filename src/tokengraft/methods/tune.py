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
import math
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch.nn import functional as F
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.config import Slot
from tokengraft.errors import TokengraftError
from tokengraft.methods.registry import (
    MethodInput,
    MethodSpec,
    Need,
    RefineInput,
    get_method,
    register,
    required,
)

log = logging.getLogger(__name__)

NEEDS = frozenset({Need.MODEL, Need.CORPUS})


def init_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D) first-pass rows from the ``init`` method, with that method's default parameters."""
    spec = get_method(str(inp.params["init"]))
    if spec.refine is not None or not spec.needs <= NEEDS:
        raise TokengraftError(
            f"tune: init method {spec.name!r} cannot be used (it needs "
            f"{', '.join(sorted(n.value for n in spec.needs)) or 'nothing'}, or refines itself)"
        )
    return spec.fn(replace(inp, params=spec.resolve_params({})))


def tune_refine(inp: RefineInput) -> dict[Slot, torch.Tensor]:
    """Slot -> (N, D): the ``to_compute`` rows after the embedding-only LM fit."""
    model: PreTrainedModel = required(inp.extras.model, Need.MODEL)
    steps, batch, length = (int(inp.params[k]) for k in ("steps", "batch_size", "seq_len"))
    stream = token_stream(inp.extras.corpus, inp.new_tokenizer, length)
    assert inp.new_tokenizer is not None  # token_stream has checked
    first = start_id(inp.new_tokenizer)
    dtype: torch.dtype = model.get_input_embeddings().weight.dtype  # type: ignore[assignment]
    names = embedding_parameter_names(model, untied=not inp.tied and Slot.OUTPUT in inp.weights)
    fixed = {slot: w.detach().float() for slot, w in inp.weights.items()}
    rows = {
        slot: w[inp.to_compute].clone().requires_grad_(True) for slot, w in fixed.items()
    }  # the only trainable tensors
    optimiser = torch.optim.Adam(
        list(rows.values()),
        lr=float(inp.params["lr"]),
        betas=(0.9, 0.98),
        eps=float(inp.params["eps"]),
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: _schedule(s, max(steps, 1)))
    frozen = _frozen_weights(model)
    starts = _window_starts(len(stream), length, steps * batch, inp.generator)
    bar = tqdm(total=steps, desc="tune", unit="step", disable=not inp.progress)
    losses: list[float] = []
    for step in range(steps):
        ids = windows(stream, starts[step * batch : (step + 1) * batch], length, first)
        matrices = {slot: fixed[slot].index_put((inp.to_compute,), rows[slot]) for slot in fixed}
        overrides = {names[slot]: matrices[slot].to(dtype) for slot in names}  # model's dtype
        loss = _lm_loss(model, {**frozen, **overrides}, ids, tie=Slot.OUTPUT not in names)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    if losses:
        log.info("tune: loss %.3f -> %.3f over %d steps", losses[0], losses[-1], steps)
    return {slot: r.detach().to(inp.weights[slot].dtype) for slot, r in rows.items()}


def _frozen_weights(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """Name -> every parameter but the input embeddings and output head, detached.

    Detached, so that no weight gradient is computed. Every name of a shared parameter is kept
    (``remove_duplicate=False``), as ``functional_call`` needs.
    """
    replaced = {id(model.get_input_embeddings().weight)}
    if (head := model.get_output_embeddings()) is not None:
        replaced.add(id(head.weight))
    return {
        name: p.detach()
        for name, p in model.named_parameters(remove_duplicate=False)
        if id(p) not in replaced
    }


def _lm_loss(
    model: PreTrainedModel, weights: dict[str, torch.Tensor], ids: torch.Tensor, *, tie: bool
) -> torch.Tensor:
    """Mean next-token cross-entropy over ``ids`` (B, L), the model run with ``weights``.

    ``functional_call`` swaps the tensors in for this call only: the model object is unchanged.
    """
    logits = torch.func.functional_call(
        model, weights, args=(), kwargs={"input_ids": ids, "use_cache": False}, tie_weights=tie
    ).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())


def start_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token that opens a document and every training window: BOS, else EOS, else none.

    The same prefix ``tokengraft.eval.lm`` conditions on, so the rows are fitted in the
    situation they are scored in.
    """
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def windows(
    stream: torch.Tensor, starts: Sequence[int], length: int, start: int | None
) -> torch.Tensor:
    """Training windows cut from the token stream, each opened by the start token.

    Args:
        stream: (T,) long, the corpus as from :func:`token_stream`.
        starts: B offsets into ``stream``.
        length: L, ids per window, the start token included.
        start: the id opening every window (:func:`start_id`); None: no prefix.

    Returns:
        (B, L) long: ``[start] + stream[s : s + L - 1]`` per offset s (``stream[s : s + L]``
        without a start token).
    """
    if start is None:
        return torch.stack([stream[s : s + length] for s in starts])
    prefix = torch.full((len(starts), 1), start, dtype=torch.long)
    return torch.cat([prefix, torch.stack([stream[s : s + length - 1] for s in starts])], dim=1)


def token_stream(
    docs: Sequence[str], tokenizer: PreTrainedTokenizerBase | None, length: int
) -> torch.Tensor:
    """(T,) long: every document as ``[start] + ids`` (see :func:`start_id`), concatenated.

    Args:
        docs: the corpus.
        tokenizer: the new tokenizer; documents are encoded without special tokens.
        length: the window length; the stream must hold at least one window and its target.

    Raises:
        TokengraftError: the corpus gives fewer than ``length + 1`` tokens.
    """
    if tokenizer is None:
        raise TokengraftError("tune needs the new tokenizer")
    start = start_id(tokenizer)
    ids: list[int] = []
    for doc in docs:
        if start is not None:
            ids.append(start)
        ids.extend(tokenizer(doc, add_special_tokens=False).input_ids)
    if len(ids) < length + 1:
        raise TokengraftError(
            f"tune: the corpus gives {len(ids)} tokens, fewer than one window of {length + 1}; "
            "pass more text with --corpus or a smaller -p seq_len="
        )
    return torch.tensor(ids, dtype=torch.long)


def embedding_parameter_names(model: PreTrainedModel, *, untied: bool) -> dict[Slot, str]:
    """Slot -> the model's parameter name for its input embeddings and (untied) output head.

    Names come from the modules (``<module>.weight``), so a tied model, whose two names share one
    parameter, still maps each slot to its own name.
    """
    modules = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    out: dict[Slot, str] = {Slot.INPUT: f"{modules[id(model.get_input_embeddings())]}.weight"}
    if untied:
        head = model.get_output_embeddings()
        if head is None:
            raise TokengraftError("tune: the model has no output head to tune")
        out[Slot.OUTPUT] = f"{modules[id(head)]}.weight"
    return out


def _window_starts(total: int, length: int, count: int, generator: torch.Generator) -> list[int]:
    """``count`` window starts drawn uniformly from ``[0, total - length]``."""
    return torch.randint(0, total - length + 1, (count,), generator=generator).tolist()


def _schedule(step: int, steps: int, warmup: int = 5) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to zero.

    Not transformers' ``get_cosine_schedule_with_warmup``: that starts its decay after the
    warm-up, which would change the measured defaults.
    """
    return min(1.0, (step + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * step / steps))


SPEC = register(
    MethodSpec(
        name="tune",
        fn=init_rows,
        refine=tune_refine,
        summary="ours: hypernet rows, then a few minutes of embedding-only LM fitting on target text",
        paper="tokengraft (this project)",
        needs=NEEDS,
        params={
            "init": "hypernet",
            "steps": 60,
            "batch_size": 4,
            "seq_len": 256,
            "lr": 3e-3,
            "eps": 1e-3,
        },
    )
)
