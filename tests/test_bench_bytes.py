"""bench.bytes: the ensemble table with fitted weights (no model runs)."""

from __future__ import annotations

from bench import bytes as bench_bytes


def _row(language: str) -> dict[str, object]:
    return {
        "language": language,
        "bytes": 600,
        "smollm2_bpb": 0.93,
        "gemma_bpb": 0.46,
        "mixture_bpb": 0.58,
        "product_bpb": 0.54,
        "mixture_fitted_bpb": 0.45,
        "product_fitted_bpb": 0.44,
        "mixture_weights": {"smollm2": 0.1, "gemma": 0.9},
        "product_weights": {"smollm2": 0.25, "gemma": 0.75},
    }


def test_ensemble_table_shows_equal_and_fitted_weights():
    lines = bench_bytes._ensemble_lines(["smollm2", "gemma"], [_row("en"), _row("de")])
    text = "\n".join(lines)
    assert "| en | 600 | 0.9300 | 0.4600 | 0.5800 | 0.5400 | 0.4500 | 0.4400 |" in text
    assert "mixture (fitted)" in text and "product (fitted)" in text
    assert "Fitted weights, de: mixture smollm2 0.100, gemma 0.900" in text


def test_old_results_without_fitted_weights_still_render():
    row = {k: v for k, v in _row("en").items() if "fitted" not in k and "weights" not in k}
    text = "\n".join(bench_bytes._ensemble_lines(["smollm2", "gemma"], [row]))
    assert "(equal weights)" in text and "fitted" not in text
    assert "| en | 600 | 0.9300 | 0.4600 | 0.5800 | 0.5400 |" in text
