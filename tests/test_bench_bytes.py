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


def _sweep_row(language: str, prune: float, cap: int, bpb: float, cost: float) -> dict[str, object]:
    return {
        "language": language,
        "bytes": 300,
        "prune": prune,
        "max_hypotheses": cap,
        "bpb": bpb,
        "pruned_bits_per_byte": 0.0,
        "forwarded_tokens_per_byte": cost,
        "seconds": 1.0,
        "token_level_bpb": 1.3,
    }


def test_pruning_rule_picks_the_cheapest_config_close_to_unpruned_on_every_language():
    from bench import bytes_pruning

    rows = []
    for language, exact in (("en", 1.30), ("de", 2.00)):
        rows += [
            _sweep_row(language, 0.0, 0, exact, 40.0),
            _sweep_row(language, 1e-2, 8, exact * 1.03, 1.0),  # cheapest, too far off
            _sweep_row(language, 1e-5, 64, exact * 1.0005, 1.2),
            _sweep_row(language, 1e-6, 64, exact, 1.5),
        ]
    assert bytes_pruning.choose(rows) == {"prune": 1e-5, "max_hypotheses": 64}
    rows[6]["bpb"] = 2.0 * 1.01  # 1e-5 now misses on German: the next cheapest is chosen
    assert bytes_pruning.choose(rows) == {"prune": 1e-6, "max_hypotheses": 64}
    text = "\n".join(bytes_pruning.lines(rows))
    assert "| en | 300 | 0 (unpruned) | none | 1.3000 |" in text
    assert "Chosen: prune 1e-06, at most 64 hypotheses." in text


def test_exactness_table_splits_off_the_last_token():
    row = {
        "model": "smollm2-135m",
        "language": "en",
        "bytes": 2000,
        "token_level": {"bpb": 0.7629, "tokens_per_byte": 0.189, "tokens_per_second": 250.0},
        "byte_level": {"bpb": 0.7545, "forwarded_tokens_per_byte": 0.977, "bytes_per_second": 11.5},
        "gap_percent": -1.11,
        "last_token": {"text": " ", "token_bits": 16.87, "byte_bits": 0.13},
        "gap_without_last_token_percent": -0.006,
    }
    text = bench_bytes.section({"exactness": [row]})
    assert "| -1.11 | -0.006 | `' '`: 16.87 / 0.13 | 0.189 | 0.977 | 250 | 11.5 |" in text
    old = {k: v for k, v in row.items() if "last" not in k}  # results of earlier runs
    assert "| -1.11 |  |  | 0.189 |" in bench_bytes.section({"exactness": [old]})
