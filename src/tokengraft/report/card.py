"""README.md model card of a grafted checkpoint, filled in from a template file."""

from __future__ import annotations

from importlib import resources

from tokengraft.config import RowSource
from tokengraft.report.record import GraftReport

_TEMPLATE = "card_template.md"


def model_card(report: GraftReport) -> str:
    """A README.md for the grafted checkpoint (``report/card_template.md`` filled in)."""
    template = resources.files("tokengraft.report").joinpath(_TEMPLATE).read_text("utf-8")
    counts = report.counts
    return template.format(
        model=report.model,
        version=report.versions["tokengraft"],
        new_tokenizer=report.new_tokenizer,
        old_vocab_size=report.old_vocab_size,
        new_vocab_size=report.new_vocab_size,
        method=report.config["method"],
        seed=report.config["seed"],
        params=report.config["params"],
        tying="tied" if report.tied else "untied (input and output head grafted separately)",
        rows="\n".join(f"| {s.value} | {counts.get(s.value, 0)} |" for s in RowSource),
        warnings="".join(f"\n- {w}" for w in report.warnings) or "\n- none",
    )
