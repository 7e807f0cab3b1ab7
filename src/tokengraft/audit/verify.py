"""Verifying candidate under-trained tokens: can the model repeat them?

Land & Bartolo (2024), arXiv 2405.05417, section 3.3: a token the model saw in training is easy
to repeat when a prompt asks for it, so the probability of the token in the answer position is
high; an under-trained token gets a tiny probability. Here every candidate goes into the same
few-shot plain-text prompts (they work for base and chat models alike), built from ids so that
the token is placed whole, and the largest probability over the prompts is kept. All prompts
have the same length for every token, so candidates run in batches without padding, and only the
last position's logits are computed (``logits_to_keep=1``): 50 candidates cost a few forward
passes of ~40 tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.audit.loss import prefix_token

# (before the token, after it): the model should answer with the token right after ``after``.
PROMPTS = (
    (
        "Repeat the string exactly.\nString: «hello»\nRepeat: «hello»\n"
        "String: «2024»\nRepeat: «2024»\nString: «",
        "»\nRepeat: «",
    ),
    ('Copy the text between quotes.\nText: "cat"\nCopy: "cat"\nText: "', '"\nCopy: "'),
)


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _prefix(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    token = prefix_token(tokenizer)
    return [] if token is None else [token]


@torch.inference_mode()
def _answer_probability(
    model: PreTrainedModel, before: list[int], after: list[int], ids: Sequence[int]
) -> torch.Tensor:
    """(N,) probability of each token ``t`` right after ``before + [t] + after``."""
    device = next(model.parameters()).device
    tokens = torch.tensor(list(ids), dtype=torch.long)[:, None]
    batch = torch.cat(
        [
            torch.tensor(before, dtype=torch.long).expand(len(ids), -1),
            tokens,
            torch.tensor(after, dtype=torch.long).expand(len(ids), -1),
        ],
        dim=1,
    )
    logits = model(input_ids=batch.to(device), use_cache=False, logits_to_keep=1).logits
    probs = logits[:, -1].float().softmax(dim=-1)  # (N, V)
    return probs.gather(1, tokens.to(probs.device)).squeeze(1).cpu()


def repeat_probability(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    ids: Sequence[int],
    *,
    batch_size: int = 16,
) -> list[float]:
    """The largest probability, over the repeat prompts, that the model answers with each token.

    Args:
        model: a causal LM (left unchanged; evaluated in eval mode).
        tokenizer: its tokenizer.
        ids: the token ids to verify.
        batch_size: prompts per forward pass.

    Returns:
        One probability per id, in order; low (below about 0.01) marks an under-trained token.

    Example:
        >>> repeat_probability(model, tokenizer, [42, 43])  # doctest: +SKIP
        [0.83, 0.0004]
    """
    best = torch.zeros(len(ids))
    was_training = model.training
    model.eval()
    try:
        for before_text, after_text in PROMPTS:
            before = _prefix(tokenizer) + _ids(tokenizer, before_text)
            after = _ids(tokenizer, after_text)
            for start in range(0, len(ids), batch_size):
                chunk = ids[start : start + batch_size]
                found = _answer_probability(model, before, after, chunk)
                best[start : start + len(chunk)] = torch.maximum(
                    best[start : start + len(chunk)], found
                )
    finally:
        model.train(was_training)
    return [float(p) for p in best]
