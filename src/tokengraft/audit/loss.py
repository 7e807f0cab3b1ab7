"""Which tokens cost the most loss on held-out text: summed next-token NLL per target token id.

The same windows as ``eval.lm.score_texts`` (every token scored once, conditioned on the BOS
token, else EOS), but the loss of each position is added to the row of the token it predicts, so
that the rows a graft computed can be ranked by the loss they bring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.eval import metrics
from tokengraft.eval.lm import encode_text


@dataclass(frozen=True, kw_only=True)
class TokenLoss:
    """Loss per target token over some texts.

    Attributes:
        counts: (V,) long, how often each id was a scored target.
        nats: (V,) float64, the summed NLL in nats of the positions predicting each id.
        n_bytes: UTF-8 bytes of the texts.
    """

    counts: torch.Tensor
    nats: torch.Tensor
    n_bytes: int


def weight(module: object) -> torch.Tensor:
    """The ``weight`` of an embedding or linear module, detached (typed for mypy)."""
    return cast(torch.Tensor, module.weight).detach()  # type: ignore[attr-defined]


def prefix_token(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token each text is conditioned on: BOS, else EOS, else none (as in ``eval.lm``)."""
    token = tokenizer.bos_token_id
    if token is None:
        token = tokenizer.eos_token_id
    return None if token is None else int(token)


def _windows(ids: list[int], window: int, stride: int) -> list[tuple[list[int], int]]:
    """(window ids, first scored offset) for every span of one document."""
    return [
        (ids[s.start : s.end], s.score_from - s.start)
        for s in metrics.window_spans(len(ids), window, stride)
    ]


@torch.inference_mode()
def _add_window_losses(
    model: PreTrainedModel, batch: Sequence[tuple[list[int], int]], out: TokenLoss
) -> None:
    """Add the NLL of every scored position of a right-padded batch to ``out``."""
    device = next(model.parameters()).device
    length = max(len(w) for w, _ in batch)
    ids = torch.zeros((len(batch), length), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (window, _) in enumerate(batch):
        ids[row, : len(window)] = torch.tensor(window)
        mask[row, : len(window)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
    for row, (window, offset) in enumerate(batch):
        scored = logits[row, offset - 1 : len(window) - 1].double()  # (n, V)
        targets = torch.tensor(window[offset:], device=scored.device)
        nll = scored.logsumexp(-1) - scored.gather(1, targets[:, None]).squeeze(1)
        out.nats.index_add_(0, targets.cpu(), nll.cpu())
        out.counts.index_add_(0, targets.cpu(), torch.ones_like(targets.cpu()))


def token_losses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[tuple[str, str]],
    *,
    window: int = 512,
    batch_size: int = 4,
) -> TokenLoss:
    """Summed next-token loss per target token id over ``texts``.

    Args:
        model: a causal LM returning (B, L, V) logits; left unchanged.
        tokenizer: its tokenizer.
        texts: ``(name, text)`` pairs, each non-empty.
        window: tokens per forward pass (stride ``window // 2``).
        batch_size: windows per forward pass.

    Returns:
        Per-id counts and summed nats, and the bytes scored.

    Raises:
        TokengraftError: no texts, or an empty one.
    """
    if not texts:
        raise TokengraftError("no texts to score")
    vocab = int(weight(model.get_input_embeddings()).shape[0])
    out = TokenLoss(
        counts=torch.zeros(vocab, dtype=torch.long),
        nats=torch.zeros(vocab, dtype=torch.float64),
        n_bytes=sum(len(text.encode("utf-8")) for _, text in texts),
    )
    prefix = prefix_token(tokenizer)
    jobs = []
    for name, text in texts:
        if not text:
            raise TokengraftError(f"{name}: the text is empty")
        ids = encode_text(tokenizer, text)
        jobs += _windows(ids if prefix is None else [prefix, *ids], window, max(1, window // 2))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(jobs), batch_size):
            _add_window_losses(model, jobs[start : start + batch_size], out)
    finally:
        model.train(was_training)
    return out
