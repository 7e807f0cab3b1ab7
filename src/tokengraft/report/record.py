"""report.json: the record of one graft (method, config, seed, row counts, timings, versions)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tokengraft.config import GraftConfig
from tokengraft.version import versions


@dataclass(frozen=True, kw_only=True)
class GraftReport:
    """The record of one graft (written as report.json).

    Attributes:
        model: what the user gave as the base model.
        new_tokenizer: what the user gave as the new tokenizer.
        config: the :class:`GraftConfig` used, as a dict (method, seed, params).
        old_vocab_size / new_vocab_size: rows before and after.
        tied: whether input embeddings and output head are one matrix.
        counts: rows per source (copied, role, computed, fallback); they add up to new_vocab_size.
        seconds: wall time per step.
        warnings: problems worth a look.
    """

    model: str
    new_tokenizer: str
    config: dict[str, Any]
    old_vocab_size: int
    new_vocab_size: int
    tied: bool
    counts: dict[str, int]
    seconds: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    peak_rss_mb: float | None = None
    versions: dict[str, str] = field(default_factory=versions)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict, as written to ``report.json``."""
        return asdict(self)


def build_report(
    *,
    model: str,
    new_tokenizer: str,
    config: GraftConfig,
    counts: dict[str, int],
    old_vocab_size: int,
    tied: bool,
    seconds: dict[str, float],
    warnings: tuple[str, ...] | list[str] = (),
    peak_rss_mb: float | None = None,
) -> GraftReport:
    """Collect a :class:`GraftReport` from a finished graft."""
    return GraftReport(
        model=model,
        new_tokenizer=new_tokenizer,
        config=config.to_dict(),
        old_vocab_size=old_vocab_size,
        new_vocab_size=sum(counts.values()),
        tied=tied,
        counts=dict(counts),
        seconds=dict(seconds),
        warnings=list(warnings),
        peak_rss_mb=peak_rss_mb,
    )
