"""The results of an audit: frozen records, and ``to_dict`` for JSON and the HTML report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KIND = "audit"  # the "kind" of an audit's JSON, as `tokengraft report` detects it


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """What an audit looks at and how much work it does.

    Attributes:
        top: rows listed per table (unreachable tokens, loss).
        verify: top candidates verified by prompting the model to repeat them (0: none).
        controls: ordinary tokens, drawn at random, verified the same way as a baseline.
        n_components: leading principal components removed before the cosine indicator.
        threshold: repeat probability below which a verified candidate counts as under-trained.
        batch_size: repeat prompts per forward pass.
        window: tokens per forward pass when scoring texts.
        window_batch: windows per forward pass when scoring texts (each holds (window, V)
            logits: 0.5 GB for Gemma-3's 262k vocabulary).
        seed: seed of the one generator that draws the controls.
    """

    top: int = 20
    verify: int = 50
    controls: int = 20
    n_components: int = 1
    threshold: float = 0.01
    batch_size: int = 16
    window: int = 512
    window_batch: int = 1
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One token ranked by the under-training indicator.

    Attributes:
        id: token id.
        token: readable token text (``␣`` marks a leading space).
        score: cosine similarity to the mean unused row, or ``|z|`` of the norm without a
            reference set (high: looks unused).
        norm: L2 norm of its input-embedding row.
        repeat_probability: probability of repeating it when asked (None: not verified).
        under_trained: ``repeat_probability < threshold`` (None: not verified).
    """

    id: int
    token: str
    score: float
    norm: float
    repeat_probability: float | None = None
    under_trained: bool | None = None


@dataclass(frozen=True, kw_only=True)
class LossRow:
    """The loss one token brings on the texts.

    Attributes:
        id: token id.
        token: readable token text.
        source: how its row was made (tokens.tsv), None without tokens.tsv.
        count: how often it was a scored target.
        nats: summed NLL of the positions predicting it.
        mean_nats: ``nats / count``.
        share: its part of the loss over all positions.
    """

    id: int
    token: str
    source: str | None
    count: int
    nats: float
    mean_nats: float
    share: float


@dataclass(frozen=True, kw_only=True)
class LossSummary:
    """Loss on held-out texts, per token and per row source.

    Attributes:
        n_bytes: UTF-8 bytes of the texts.
        n_tokens: scored positions.
        bits_per_byte: total NLL in bits over ``n_bytes``.
        by_source: source -> ``{"tokens", "occurrences", "nats", "mean_nats", "share"}``.
        top: the tokens (new ones when tokens.tsv names them) with the largest summed loss.
    """

    n_bytes: int
    n_tokens: int
    bits_per_byte: float
    by_source: dict[str, dict[str, float]]
    top: list[LossRow]


@dataclass(frozen=True, kw_only=True)
class ModelAudit:
    """Everything an audit finds about one model and its tokenizer.

    Attributes:
        model: what the user gave as the model.
        vocab_size: rows of the embedding matrix.
        tokenizer_size: ids the tokenizer knows.
        tied: input embeddings and output head are one matrix.
        special: special (control) tokens, not ranked.
        partial: tokens whose bytes are not valid UTF-8 alone (not probed for reachability).
        unreachable: unreachable token ids and texts, up to ``config.top``.
        n_unreachable: how many tokens are unreachable.
        reference_kind: ``"unused"`` (named unused tokens and unreachable ones): scores are
            cosine similarities to their mean row; ``"none"`` (no such tokens): scores are
            ``|z|`` of the input-embedding norm.
        reference_size: tokens in the reference set.
        candidates: the top candidates, verified.
        controls: ordinary tokens verified the same way.
        n_under_trained: verified candidates under ``config.threshold``.
        loss: loss on ``--texts`` (None without texts).
        config: the :class:`AuditConfig` as a dict.
        seconds: wall time per step.
    """

    model: str
    vocab_size: int
    tokenizer_size: int
    tied: bool
    special: int
    partial: int
    unreachable: list[dict[str, Any]]
    n_unreachable: int
    reference_kind: str
    reference_size: int
    candidates: list[Candidate]
    controls: list[Candidate]
    n_under_trained: int
    loss: LossSummary | None
    config: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The audit as a JSON-ready dict with ``"kind": "audit"``."""
        return {"kind": KIND, **asdict(self)}
