"""Sections of the HTML report for an audit (``tokengraft audit --json``, ``"kind": "audit"``)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from tokengraft.report import plots
from tokengraft.report.html import Section, esc, table

FLOOR = 1e-12  # probabilities are drawn on a log axis


def _probabilities(rows: Sequence[Mapping[str, Any]], floor: float = 0.0) -> list[float]:
    return [
        max(floor, float(r["repeat_probability"]))
        for r in rows
        if r.get("repeat_probability") is not None
    ]


def _summary(audit: Mapping[str, Any]) -> Section:
    controls = _probabilities(audit.get("controls") or [])
    verified = [c for c in audit.get("candidates") or [] if c.get("under_trained") is not None]
    rows: list[list[object]] = [
        ["embedding rows", audit.get("vocab_size")],
        ["tokenizer ids", audit.get("tokenizer_size")],
        ["tied embeddings", audit.get("tied")],
        ["special tokens (not ranked)", audit.get("special")],
        ["partial UTF-8 tokens (not probed)", audit.get("partial")],
        ["unreachable tokens", audit.get("n_unreachable")],
        ["reference set", f"{audit.get('reference_kind')} ({audit.get('reference_size')} tokens)"],
        ["candidates verified", len(verified)],
        ["verified under-trained", audit.get("n_under_trained")],
        [
            "median repeat probability of controls",
            statistics.median(controls) if controls else None,
        ],
    ]
    return Section(title=f"Audit: {audit.get('model')}", body=table(["what", "value"], rows))


def _candidates(audit: Mapping[str, Any]) -> Section:
    headers = ["id", "token", "indicator", "input norm", "repeat p", "under-trained"]

    def rows(items: Sequence[Mapping[str, Any]]) -> list[list[object]]:
        return [
            [c.get("id"), c.get("token"), c.get("score"), c.get("norm")]
            + [c.get("repeat_probability"), c.get("under_trained")]
            for c in items
        ]

    candidates, controls = audit.get("candidates") or [], audit.get("controls") or []
    chart = plots.points(
        {
            "candidates": _probabilities(candidates, FLOOR),
            "controls": _probabilities(controls, FLOOR),
        },
        title="Repeat probability (low: the model cannot say the token)",
        ylabel="probability",
        log=True,
    )
    threshold = (audit.get("config") or {}).get("threshold")
    note = (
        "<p>Candidates ranked by the indicator (cosine similarity to the mean unused row, or "
        f"|z| of the norm without one); under-trained when the repeat probability is below "
        f"{esc(threshold)}. Controls are ordinary tokens drawn at random.</p>"
    )
    body = note + chart + table(headers, rows(candidates))
    if controls:
        body += "<h3>Controls</h3>" + table(headers, rows(controls))
    return Section(title="Under-trained token candidates", body=body)


def _unreachable(audit: Mapping[str, Any], top: int) -> Section:
    items = list(audit.get("unreachable") or [])
    shown = table(["id", "token"], [[u.get("id"), u.get("token")] for u in items[:top]])
    more = f"<p>… and {len(items) - top} more.</p>" if len(items) > top else ""
    count = f"<p>{esc(audit.get('n_unreachable'))} tokens that no probe encodes to.</p>"
    return Section(title="Unreachable tokens", body=count + shown + more)


def _loss(loss: Mapping[str, Any]) -> Section:
    head = table(
        ["bytes", "scored tokens", "bits per byte"],
        [[loss.get("n_bytes"), loss.get("n_tokens"), loss.get("bits_per_byte")]],
    )
    body = head
    by_source = loss.get("by_source") or {}
    if by_source:
        body += "<h3>Per row source</h3>" + table(
            ["source", "tokens", "occurrences", "nats", "mean nats", "share of loss"],
            [
                [s, int(v["tokens"]), int(v["occurrences"]), v["nats"], v["mean_nats"], v["share"]]
                for s, v in by_source.items()
            ],
        )
        body += plots.grouped_bars(
            {"share of loss": {s: v["share"] for s, v in by_source.items()}},
            title="Share of the loss per row source",
            ylabel="share",
        )
    body += "<h3>Costliest tokens</h3>" + table(
        ["id", "token", "source", "count", "nats", "mean nats", "share"],
        [
            [r.get("id"), r.get("token"), r.get("source"), r.get("count")]
            + [r.get("nats"), r.get("mean_nats"), r.get("share")]
            for r in loss.get("top") or []
        ],
    )
    return Section(title="Loss on held-out text", body=body)


def audit_sections(audit: Mapping[str, Any]) -> list[Section]:
    """Sections of an audit: summary, under-trained candidates, unreachable tokens, loss.

    Args:
        audit: ``ModelAudit.to_dict()`` (as ``tokengraft audit --json`` prints it).

    Returns:
        The sections; the loss section only when the audit scored texts.
    """
    top = int((audit.get("config") or {}).get("top") or 20)
    sections = [_summary(audit), _candidates(audit), _unreachable(audit, top)]
    if audit.get("loss"):
        sections.append(_loss(audit["loss"]))
    return sections
