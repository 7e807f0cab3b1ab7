"""Sections of the HTML report for tokenizer evaluations, grafts and benchmark results.

Audits have theirs in :mod:`tokengraft.report.audit_page`. Each builder takes the parsed JSON as a dict and returns :class:`~tokengraft.report.html.Section`
objects; missing optional fields leave their part out rather than fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokengraft.report import plots
from tokengraft.report.html import Section, bullet_list, esc, table, token_spans

TOKENIZER_KIND = "tokenizer_eval"
_TOKENIZER_COLUMNS = (
    ("fertility", "fertility"),
    ("fertility unit", "fertility_unit"),
    ("bytes/token", "bytes_per_token"),
    ("chars/token", "chars_per_token"),
    ("Rényi eff.", "renyi_efficiency"),
    ("Shannon eff.", "shannon_efficiency"),
    ("vocab used", "vocab_utilisation"),
    ("split words", "split_word_share"),
    ("unk", "unk_rate"),
    ("byte fallback", "byte_fallback_rate"),
    ("round-trip", "roundtrip"),
)


def _category(row: Mapping[str, Any]) -> str:
    return str(row.get("language") or row.get("file") or "?")


def _by_tokenizer(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    """Map tokenizer -> language (or file) -> ``row[key]``, for rows where it is a number."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.setdefault(str(row.get("tokenizer")), {})[_category(row)] = float(value)
    return out


def _tokenizer_table(rows: list[dict[str, Any]]) -> Section:
    headers = ["tokenizer", "file", "language", "tokens", *(h for h, _ in _TOKENIZER_COLUMNS)]
    body = [
        [r.get("tokenizer"), r.get("file"), r.get("language"), r.get("n_tokens")]
        + [r.get(key) for _, key in _TOKENIZER_COLUMNS]
        for r in rows
    ]
    chart = plots.grouped_bars(
        _by_tokenizer(rows, "fertility"), title="Fertility per language", ylabel="tokens per word"
    )
    return Section(title="Tokenizers per file", body=table(headers, body) + chart)


def _parity(parallel: Mapping[str, Any]) -> Section:
    values = {tok: dict(v.get("parity") or {}) for tok, v in parallel.items()}
    chart = plots.grouped_bars(values, title="Parity (tokens / English tokens)", ylabel="parity")
    gini = table(["tokenizer", "Gini"], [[tok, v.get("gini")] for tok, v in parallel.items()])
    note = "<p>Parity 1 = as many tokens as the English text; Gini 0 = every language costs the same.</p>"
    return Section(title="Parity across languages", body=note + chart + gini)


def _examples(examples: Mapping[str, list[str]]) -> Section:
    parts = [
        f"<h3>{esc(tok)} <span class=meta>({len(tokens)} tokens)</span></h3>{token_spans(tokens)}"
        for tok, tokens in examples.items()
    ]
    return Section(title="Example sentence, token boundaries", body="".join(parts))


def _lengths(lengths: Mapping[str, Mapping[Any, float]]) -> Section:
    counts = {tok: {int(k): float(v) for k, v in series.items()} for tok, series in lengths.items()}
    chart = plots.histogram(
        counts, title="Token length distribution", xlabel="characters", ylabel="tokens"
    )
    return Section(title="Token lengths", body=chart)


def tokenizer_sections(data: Mapping[str, Any]) -> list[Section]:
    """Sections of an ``eval tokenizer --json`` result (``"kind": "tokenizer_eval"``).

    Args:
        data: ``{"rows": [...], "parallel": ..., "schemes": ..., "warnings": [...],
            "examples": {tokenizer: [token strings]}}``; ``token_lengths`` (tokenizer ->
            length -> count) is drawn when present.

    Returns:
        A table with the fertility chart, then parity, schemes, token lengths, the example
        sentence and warnings where the data has them.
    """
    rows = list(data.get("rows") or [])
    sections = [_tokenizer_table(rows)]
    if data.get("parallel"):
        sections.append(_parity(data["parallel"]))
    if data.get("schemes"):
        body = table(
            ["tokenizer", "digits", "whitespace"],
            [[tok, s.get("digits"), s.get("whitespace")] for tok, s in data["schemes"].items()],
        )
        sections.append(Section(title="Digit and whitespace schemes", body=body))
    if data.get("token_lengths"):
        sections.append(_lengths(data["token_lengths"]))
    if data.get("examples"):
        sections.append(_examples(data["examples"]))
    if data.get("warnings"):
        sections.append(Section(title="Warnings", body=bullet_list(data["warnings"], "warn")))
    return sections


def graft_sections(report: Mapping[str, Any]) -> list[Section]:
    """Sections of a graft's ``report.json`` (:class:`~tokengraft.report.record.GraftReport`).

    Args:
        report: the parsed report.json.

    Returns:
        The graft's summary with a chart of rows per source, its timings and warnings.
    """
    config = report.get("config") or {}
    summary = table(
        ["model", "new tokenizer", "method", "seed", "params", "old vocab", "new vocab", "tied"],
        [
            [
                report.get("model"),
                report.get("new_tokenizer"),
                config.get("method"),
                config.get("seed"),
                ", ".join(f"{k}={v}" for k, v in (config.get("params") or {}).items()) or "–",
                report.get("old_vocab_size"),
                report.get("new_vocab_size"),
                report.get("tied"),
            ]
        ],
    )
    counts = dict(report.get("counts") or {})
    chart = plots.grouped_bars(
        {"rows": {k: float(v) for k, v in counts.items()}}, title="Rows per source", ylabel="rows"
    )
    seconds = table(["step", "seconds"], list((report.get("seconds") or {}).items()))
    body = summary + chart + "<h3>Timings</h3>" + seconds
    if report.get("warnings"):
        body += "<h3>Warnings</h3>" + bullet_list(report["warnings"], "warn")
    title = f"Graft: {report.get('model')} with {config.get('method')}"
    return [Section(title=title, body=body)]


def _bpb_order(row: Mapping[str, Any]) -> tuple[bool, float]:
    value = row.get("target_bpb")
    return (not isinstance(value, int | float), float(value or 0.0))


def bench_sections(results: Mapping[str, Any]) -> list[Section]:
    """Sections of a benchmark result file (``bench/results/<scenario>.json``).

    Args:
        results: the parsed file: ``scenario``, ``summary`` and ``rows`` (key -> row with
            ``name``, ``kind``, ``target_bpb``, ``english_bpb``, ``graft_seconds``, ``error``).

    Returns:
        One section: bits per byte per method (chart and table).
    """
    rows = list((results.get("rows") or {}).values())
    values: dict[str, dict[str, float]] = {}
    for key, label in (("target_bpb", "target language"), ("english_bpb", "English")):
        values[label] = {
            str(r.get("name")): float(r[key]) for r in rows if isinstance(r.get(key), int | float)
        }
    scenario = str(results.get("scenario") or "benchmark")
    chart = plots.grouped_bars(values, title=f"{scenario}: bits per byte", ylabel="bits per byte")
    body = table(
        ["method", "kind", "target bpb", "English bpb", "graft s", "error"],
        [
            [r.get("name"), r.get("kind"), r.get("target_bpb"), r.get("english_bpb")]
            + [r.get("graft_seconds"), r.get("error") or ""]
            for r in sorted(rows, key=_bpb_order)
        ],
    )
    summary = f"<p>{esc(results.get('summary') or '')}</p>"
    return [Section(title=f"Benchmark: {scenario}", body=summary + chart + body)]


def bench_overview(results: list[Mapping[str, Any]]) -> list[Section]:
    """One chart of target-language bits per byte per method, grouped by scenario.

    Args:
        results: several parsed benchmark result files.

    Returns:
        One section (a chart and a method x scenario table).
    """
    values: dict[str, dict[str, float]] = {}
    for result in results:
        scenario = str(result.get("scenario") or "?")
        for row in (result.get("rows") or {}).values():
            if isinstance(row.get("target_bpb"), int | float):
                values.setdefault(str(row.get("name")), {})[scenario] = float(row["target_bpb"])
    scenarios = list(dict.fromkeys(str(r.get("scenario") or "?") for r in results))
    chart = plots.grouped_bars(
        values,
        title="Target-language bits per byte per method and scenario",
        ylabel="bits per byte",
    )
    body = table(
        ["method", *scenarios],
        [[name, *(series.get(s) for s in scenarios)] for name, series in values.items()],
    )
    return [Section(title="Benchmarks: bits per byte per method and scenario", body=chart + body)]


def model_eval_sections(model: str, result: Mapping[str, Any]) -> list[Section]:
    """``eval model``'s scores (``ModelEval.to_dict()``): a table and bits per byte per file."""
    scores = [*result["per_file"], result["overall"]]
    rows = [
        [
            s["name"],
            f"{s['bits_per_byte']:.4f}",
            s["n_tokens"],
            s["n_bytes"],
            f"{s['bytes_per_token']:.2f}",
        ]
        for s in scores
    ]
    body = table(["text", "bits/byte", "tokens", "bytes", "bytes/token"], rows)
    values = {model: {Path(s["name"]).name: s["bits_per_byte"] for s in result["per_file"]}}
    chart = plots.grouped_bars(values, title="bits per byte per text", ylabel="bits per byte")
    return [Section(title=f"{model}: bits per byte", body=body + chart)]
