"""report.json of a vocabulary operation (trim, extend): sizes, parameters, counts, timings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tokengraft.report.record import versions


@dataclass(frozen=True, kw_only=True)
class VocabReport:
    """The record of one trim or extend (written as report.json).

    Attributes:
        operation: ``trim`` or ``extend``.
        model: what the user gave as the model.
        old_vocab_size / new_vocab_size: tokens of the tokenizer before and after.
        old_rows / new_rows: rows of the input embedding before and after.
        old_parameters / new_parameters: parameters of the checkpoint before and after.
        counts: rows per source (copied, computed, ...); they add up to ``new_rows``.
        details: what the operation measured (corpus tokens, tokens used, merges, method, ...).
        seconds: wall time per step.
        warnings: problems worth a look.
    """

    operation: str
    model: str
    old_vocab_size: int
    new_vocab_size: int
    old_rows: int
    new_rows: int
    old_parameters: int
    new_parameters: int
    counts: dict[str, int]
    details: dict[str, Any]
    seconds: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    peak_rss_mb: float | None = None
    versions: dict[str, str] = field(default_factory=versions)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict, as written to ``report.json``."""
        return asdict(self)

    def summary(self) -> str:
        """One line for the command line."""
        return (
            f"{self.operation}: {self.old_vocab_size:,} -> {self.new_vocab_size:,} tokens, "
            f"{self.old_parameters:,} -> {self.new_parameters:,} parameters"
        )
