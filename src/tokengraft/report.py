"""What every graft leaves behind: report.json, a README model card, and tokens.tsv."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from typing import Any

from tokengraft.config import GraftConfig, RowSource
from tokengraft.graft import EmbeddingGraft


def versions() -> dict[str, str]:
    """Versions of tokengraft and the libraries whose behaviour the result depends on."""
    import tokenizers
    import torch
    import transformers

    from tokengraft import __version__

    return {
        "tokengraft": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
    }


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
        return asdict(self)


def build_report(
    *,
    model: str,
    new_tokenizer: str,
    config: GraftConfig,
    embeddings: EmbeddingGraft,
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
        new_vocab_size=len(embeddings.sources),
        tied=tied,
        counts=embeddings.counts(),
        seconds={**embeddings.seconds, **seconds},
        warnings=list(warnings),
        peak_rss_mb=peak_rss_mb,
    )


def tokens_tsv(embeddings: EmbeddingGraft) -> str:
    """One line per new id: id, token, how its row was made, old id copied from, old pieces."""
    lines = ["new_id\ttoken\tsource\told_id\told_pieces"]
    vocab = embeddings.alignment.new_vocab
    for new_id, source in enumerate(embeddings.sources):
        token = vocab.tokens[new_id]
        shown = token.display() if token is not None else ""
        old_id = int(embeddings.alignment.old_ids[new_id])
        pieces = embeddings.pieces[new_id]
        lines.append(
            f"{new_id}\t{shown}\t{source.value}\t{old_id if old_id >= 0 else ''}\t"
            + (" ".join(map(str, pieces)) if pieces else "")
        )
    return "\n".join(lines) + "\n"


def model_card(report: GraftReport) -> str:
    """A README.md for the grafted checkpoint."""
    c = report.counts
    rows = "\n".join(f"| {k} | {c.get(k, 0)} |" for k in (s.value for s in RowSource))
    warn = "".join(f"\n- {w}" for w in report.warnings) or "\n- none"
    return f"""---
library_name: transformers
tags: [tokengraft]
---
# {report.model} with a new tokenizer

Made by tokengraft {report.versions["tokengraft"]}: the tokenizer of `{report.model}` was replaced by
`{report.new_tokenizer}` ({report.old_vocab_size} → {report.new_vocab_size} tokens) with method
`{report.config["method"]}` (seed {report.config["seed"]}, params {report.config["params"]}).
Embeddings are {"tied" if report.tied else "untied (input and output head grafted separately)"}.

| rows | count |
|---|---|
{rows}

`copied` rows are bit-identical to the base model's rows of the token with the same bytes;
`role` rows come from the special token with the same role; `computed` rows were made by the
method; `fallback` rows belong to tokens the old tokenizer cannot spell (method's fallback).
Per-token provenance is in `tokens.tsv`, the full record in `report.json`.

Warnings:{warn}

Evaluate with `tokengraft eval model . --texts FILE` (bits per byte, comparable across tokenizers).
"""
