"""The training text as one token stream, and the windows cut from it.

Every document becomes ``[start] + ids`` (the start token is BOS, else EOS: the prefix
``tokengraft.eval.lm`` conditions on), the documents are concatenated, and a window is the start
token followed by ``seq_len - 1`` consecutive stream tokens from a random offset. With a teacher,
each token also carries the byte where it ends (:mod:`tokengraft.tune.align`), and windows start
only where both tokenisations have a boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError


def start_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token that opens a document and every training window: BOS, else EOS, else none.

    The same prefix ``tokengraft.eval.lm`` conditions on, so the rows are fitted in the
    situation they are scored in.
    """
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """The ids of ``text`` alone: no special tokens added, any length."""
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def token_stream(
    docs: Sequence[str], tokenizer: PreTrainedTokenizerBase | None, length: int
) -> torch.Tensor:
    """(T,) long: every document as ``[start] + ids`` (see :func:`start_id`), concatenated.

    Args:
        docs: the corpus.
        tokenizer: the tokenizer of the model being trained.
        length: the window length; the stream must hold at least one window and its target.

    Returns:
        The stream.

    Raises:
        TokengraftError: no tokenizer, or the corpus gives fewer than ``length + 1`` tokens.
    """
    if tokenizer is None:
        raise TokengraftError("tune needs the new tokenizer")
    start = start_id(tokenizer)
    ids: list[int] = []
    for doc in docs:
        if start is not None:
            ids.append(start)
        ids.extend(encode(tokenizer, doc))
    check_length(len(ids), length)
    return torch.tensor(ids, dtype=torch.long)


def check_length(tokens: int, length: int) -> None:
    """Refuse a stream shorter than one window and its target.

    Raises:
        TokengraftError: ``tokens < length + 1``, naming the fix.
    """
    if tokens < length + 1:
        raise TokengraftError(
            f"tune: the texts give {tokens} tokens, fewer than one window of {length + 1}; "
            "pass more text or a smaller --seq-len (-p seq_len=)"
        )


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


@dataclass(frozen=True, kw_only=True)
class Stream:
    """A corpus in one tokenizer.

    Attributes:
        ids: (T,) long, the documents as ``[start] + ids``, concatenated.
        start: the start token id (None: documents and windows have no prefix).
        ends: (T,) long, the byte where each token ends, counting one virtual separator byte
            per document (where the start token sits); None when not needed.
    """

    ids: torch.Tensor
    start: int | None
    ends: torch.Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class TrainData:
    """What the windows are cut from.

    Attributes:
        student: the corpus in the trained model's tokenizer.
        length: L, tokens per window, the start token included.
        teacher: the same corpus in the teacher's tokenizer (None: no distillation).
        allowed: (S,) long, the offsets a window may start at (None: every offset from 0 to
            ``T - L``); with a teacher, the ones where both tokenisations have a boundary.
    """

    student: Stream
    length: int
    teacher: Stream | None = None
    allowed: torch.Tensor | None = None


def lm_data(docs: Sequence[str], tokenizer: PreTrainedTokenizerBase, length: int) -> TrainData:
    """Windows for next-token training only: the stream of :func:`token_stream`.

    Raises:
        TokengraftError: the corpus gives fewer tokens than one window.
    """
    stream = token_stream(docs, tokenizer, length)
    return TrainData(student=Stream(ids=stream, start=start_id(tokenizer)), length=length)


def sample_starts(data: TrainData, count: int, generator: torch.Generator) -> list[int]:
    """``count`` window offsets drawn uniformly from the allowed ones, with ``generator``.

    Without a restriction this is ``torch.randint(0, T - L + 1)``, so a run draws the same
    offsets whether it asks for all of them at once or step by step.
    """
    if data.allowed is None:
        total = len(data.student.ids) - data.length + 1
        return torch.randint(0, total, (count,), generator=generator).tolist()
    picks = torch.randint(0, len(data.allowed), (count,), generator=generator)
    return data.allowed[picks].tolist()
