"""Evaluate a causal language model in bits per byte (comparable across tokenizers).

In-memory only: texts arrive as ``(name, text)`` pairs, reading files is ``io``'s job.
Definitions are in ``docs/eval.md``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft.config import EvalConfig
from tokengraft.errors import TokengraftError
from tokengraft.eval import metrics

logger = logging.getLogger(__name__)

OVERALL = "overall"  # name of the aggregate row


@dataclass(frozen=True, kw_only=True)
class TextScore:
    """How well a model predicts one text (or all of them, for the overall row).

    Attributes:
        name: the text's name (usually its file path), or ``"overall"``.
        n_bytes: UTF-8 bytes of the text.
        n_tokens: tokens of the text itself (no BOS / separator token).
        nll_bits: summed negative log2-likelihood of those tokens.
        bits_per_byte: ``nll_bits / n_bytes``.
        bytes_per_token: ``n_bytes / n_tokens``.
    """

    name: str
    n_bytes: int
    n_tokens: int
    nll_bits: float
    bits_per_byte: float
    bytes_per_token: float

    @classmethod
    def from_sums(cls, name: str, *, n_bytes: int, n_tokens: int, nll_nats: float) -> TextScore:
        """Build a score from raw sums (nats are converted to bits)."""
        return cls(
            name=name,
            n_bytes=n_bytes,
            n_tokens=n_tokens,
            nll_bits=nll_nats / math.log(2),
            bits_per_byte=metrics.bits_per_byte(nll_nats, n_bytes),
            bytes_per_token=metrics.bytes_per_token(n_bytes, n_tokens),
        )

    def to_dict(self) -> dict[str, Any]:
        """The score as a JSON-ready dict, one key per field."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class ModelEval:
    """Result of :func:`score_texts`.

    Attributes:
        per_file: one score per input text, in input order.
        overall: sums over all texts; its bits per byte is total bits over total bytes.
        seconds: wall time of tokenising and scoring.
        prefix_token: the token each document was conditioned on (None: the first token of each
            document was not scored).
    """

    per_file: list[TextScore]
    overall: TextScore
    seconds: float
    prefix_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (what ``tokengraft eval model --json`` prints)."""
        return {
            "per_file": [s.to_dict() for s in self.per_file],
            "overall": self.overall.to_dict(),
            "seconds": self.seconds,
            "prefix_token": self.prefix_token,
        }


@dataclass(frozen=True)
class _Doc:
    name: str
    n_bytes: int
    n_tokens: int  # tokens of the text only
    ids: list[int]  # what the model sees: optional prefix token + the text's tokens


@dataclass(frozen=True)
class _Job:
    doc: int  # index into the documents
    span: metrics.Span


def score_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[tuple[str, str]],
    config: EvalConfig = EvalConfig(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    progress: bool = False,
    prepend_bos: bool | None = None,
) -> ModelEval:
    """Bits per byte of a causal LM on each text and overall.

    Every token of each text is scored once, in overlapping windows (``config.window`` tokens,
    moving by ``config.stride``), conditioned on a prefix token that is not counted: the BOS token,
    else the EOS token (see ``docs/eval.md``).

    Args:
        model: a causal LM returning ``.logits`` of shape (B, L, V); used in eval mode.
        tokenizer: its tokenizer.
        texts: ``(name, text)`` pairs; each text must be non-empty.
        config: window, stride, batch size and byte limit.
        progress: show a progress bar (in tokens) on stderr.
        prepend_bos: True: prefix the BOS token (error if there is none); False: no prefix,
            the first token of each text is not scored; None: BOS, else EOS, else no prefix.

    Returns:
        Per-text and overall scores.

    Raises:
        TokengraftError: on no texts, an empty text, a window longer than the model's context,
            a bad window/stride, or ``prepend_bos=True`` without a BOS token.

    Example:
        >>> result = score_texts(model, tokenizer, [("a.txt", "Hello world.")])
        >>> result.overall.bits_per_byte  # doctest: +SKIP
    """
    started = time.perf_counter()
    _check_config(model, config)
    prefix = _prefix_token_id(tokenizer, prepend_bos)
    docs = [_tokenize_doc(tokenizer, name, text, config.max_bytes, prefix) for name, text in texts]
    if not docs:
        raise TokengraftError("no texts to score")
    nats = _score_docs(model, docs, config, progress=progress)
    per_file = [
        TextScore.from_sums(d.name, n_bytes=d.n_bytes, n_tokens=d.n_tokens, nll_nats=n)
        for d, n in zip(docs, nats, strict=True)
    ]
    overall = TextScore.from_sums(
        OVERALL,
        n_bytes=sum(d.n_bytes for d in docs),
        n_tokens=sum(d.n_tokens for d in docs),
        nll_nats=sum(nats),
    )
    seconds = time.perf_counter() - started
    logger.info("scored %d tokens in %.1f s", overall.n_tokens, seconds)
    prefix_token = None if prefix is None else str(tokenizer.convert_ids_to_tokens(prefix))
    return ModelEval(per_file=per_file, overall=overall, seconds=seconds, prefix_token=prefix_token)


def _check_config(model: PreTrainedModel, config: EvalConfig) -> None:
    metrics.window_spans(0, config.window, config.stride)  # validates window and stride
    if config.batch_size < 1:
        raise TokengraftError(f"batch size must be at least 1, got {config.batch_size}")
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(context, int) and config.window > context:
        raise TokengraftError(f"window {config.window} exceeds the model's context of {context}")


def _prefix_token_id(tokenizer: PreTrainedTokenizerBase, prepend_bos: bool | None) -> int | None:
    """The token each document is conditioned on; see docs/eval.md, "The first token"."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if prepend_bos is False:
        return None
    if prepend_bos is True and bos is None:
        raise TokengraftError("cannot prepend BOS: the tokenizer has no BOS token")
    # lm-evaluation-harness's rolling log-likelihood uses the same order: BOS, else EOS, which
    # separates packed documents in pretraining (GPT-2, SmolLM2 base, Qwen2 base, Pythia).
    prefix = bos if bos is not None else eos
    if prefix is None:
        logger.warning("tokenizer has no BOS or EOS token: first token of each text is not scored")
    return prefix


def _tokenize_doc(
    tokenizer: PreTrainedTokenizerBase,
    name: str,
    text: str,
    max_bytes: int | None,
    prefix: int | None,
) -> _Doc:
    text = truncate_utf8(text, max_bytes)
    if not text:
        raise TokengraftError(f"{name}: the text is empty")
    ids = encode_text(tokenizer, text)
    full = ids if prefix is None else [prefix, *ids]
    return _Doc(name=name, n_bytes=len(text.encode("utf-8")), n_tokens=len(ids), ids=full)


def truncate_utf8(text: str, max_bytes: int | None) -> str:
    """The longest prefix of ``text`` with at most ``max_bytes`` UTF-8 bytes (whole characters)."""
    if max_bytes is None:
        return text
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def encode_text(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """The token ids of ``text`` alone: no BOS/EOS or other special tokens added, any length."""
    # verbose=False: long documents exceed model_max_length by design, they are windowed.
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _score_docs(
    model: PreTrainedModel, docs: Sequence[_Doc], config: EvalConfig, *, progress: bool
) -> list[float]:
    """Summed NLL in nats of each document's scored tokens, float64 accumulation."""
    jobs = [
        _Job(i, span)
        for i, doc in enumerate(docs)
        for span in metrics.window_spans(len(doc.ids), config.window, config.stride)
    ]
    # Longest windows first so that a batch pads little (only the last window of a doc is short).
    jobs.sort(key=lambda j: j.span.start - j.span.end)
    nats = [0.0] * len(docs)
    total = sum(j.span.end - j.span.score_from for j in jobs)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), tqdm(total=total, unit="tok", disable=not progress) as bar:
            for batch in _batches(jobs, config.batch_size):
                windows = [docs[j.doc].ids[j.span.start : j.span.end] for j in batch]
                offsets = [j.span.score_from - j.span.start for j in batch]
                for job, nll in zip(batch, _window_nll(model, windows, offsets), strict=True):
                    nats[job.doc] += nll
                bar.update(sum(len(w) - k for w, k in zip(windows, offsets, strict=True)))
    finally:
        model.train(was_training)
    return nats


def _batches(jobs: Sequence[_Job], size: int) -> Iterator[Sequence[_Job]]:
    for i in range(0, len(jobs), size):
        yield jobs[i : i + size]


def _window_nll(
    model: PreTrainedModel, windows: Sequence[list[int]], offsets: Sequence[int]
) -> list[float]:
    """Summed NLL (nats) of ``window[offset:]`` for each window, in one right-padded forward pass.

    Right padding keeps positions 0.. of every row unchanged, and causal attention never lets
    a real token see the padding, so padded rows score exactly as unpadded ones.
    """
    device = next(model.parameters()).device
    length = max(len(w) for w in windows)
    ids = torch.zeros((len(windows), length), dtype=torch.long)  # pad id 0: masked, never scored
    mask = torch.zeros_like(ids)
    for row, window in enumerate(windows):
        ids[row, : len(window)] = torch.tensor(window)
        mask[row, : len(window)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
    out = []
    for row, (window, offset) in enumerate(zip(windows, offsets, strict=True)):
        scored = logits[row, offset - 1 : len(window) - 1].double()  # (n_scored, V)
        targets = torch.tensor(window[offset:], device=scored.device)
        picked = scored.gather(1, targets[:, None]).squeeze(1)
        out.append(float((scored.logsumexp(-1) - picked).sum()))
    return out
