"""bench.tune_curve: reading curves, the BENCHMARKS.md section and the chart (no model runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import tune_curve
from tokengraft.errors import TokengraftError


def _entry(start: str, bpbs: list[float], step_minutes: float = 2.5, slots=("input",)) -> dict:
    points = [
        {"step": 10 * i, "seconds": 60 * step_minutes * i, "minutes": step_minutes * i,
         "bits_per_byte": b}
        for i, b in enumerate(bpbs)
    ]  # fmt: skip
    scored = {"files": [{"bits_per_byte": bpbs[0]}, {"bits_per_byte": 2.0}]}
    return {
        "start": start,
        "graft": {"seconds": 42.0, "skipped": False, "error": None},
        "tune": {
            "step": 10 * (len(bpbs) - 1),
            "fit_seconds": 60 * step_minutes * (len(bpbs) - 1),
            "points": points,
            "slots": list(slots),
            "error": None,
        },
        "graft_eval": scored,
        "tuned_eval": {"files": [{"bits_per_byte": bpbs[-1]}, {"bits_per_byte": 1.5}]},
        "load_before": [0.5, 0.4, 0.3],
        "load_after": [2.25, 1.0, 0.5],
    }


def _results(load_start: list[float] | None = None) -> dict:
    failed = {
        "start": "distill",
        "graft": {"error": "tokengraft graft exited with status 2: error: no | corpus"},
    }
    return {
        "settings": {"minutes": 12.0, "eval_every": 10, "max_bytes": 30_000, "seed": 0},
        "original": {"files": [{"bits_per_byte": 1.6}, {"bits_per_byte": 1.0}]},
        "starts": {
            "subword_mean": _entry("subword_mean", [3.0, 2.4, 2.0, 1.9, 1.8, 1.75]),
            "hypernet": _entry(
                "hypernet", [2.2, 1.9, 1.74, 1.7], step_minutes=4.0, slots=("input", "output")
            ),
            "distill": failed,
        },
        "machine": {"nproc": 2, "cpu": "AMD EPYC"},
        "load_start": load_start or [0.1, 0.2, 0.3],
        "load_end": [2.0, 1.5, 1.0],
        "nice": 10,
        "date": "2026-12-01T23:00:00+00:00",
    }


def test_curve_reads_the_last_score_by_a_minute_and_the_first_below_a_level() -> None:
    points = tune_curve.curve(_results()["starts"]["subword_mean"])
    assert points[0] == (0.0, 3.0)
    assert tune_curve.bpb_at(points, 5.0) == 2.0  # scored at 0, 2.5, 5.0
    assert tune_curve.bpb_at(points, 4.9) == 2.4
    assert tune_curve.bpb_at([(1.0, 2.0)], 0.5) is None
    assert tune_curve.first_below(points, 1.9) == 7.5
    assert tune_curve.first_below(points, 1.0) is None
    assert tune_curve.first_below(points, None) is None


def test_section_has_a_row_per_start_the_target_and_the_failure() -> None:
    md = tune_curve.section(_results(), chart="bench/results/tune_curve/tune_curve.png")
    assert md.startswith(tune_curve.BEGIN) and md.endswith(tune_curve.END)
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3  # header and one row per start
    assert rows[0].count("|") == rows[2].count("|") == rows[3].count("|")
    assert "by 5 min" in rows[0] and "by 10 min" in rows[0] and "by 20 min" not in rows[0]
    hypernet = rows[2]
    assert "| 2.2000 |" in hypernet and "| 1.7000 |" in hypernet  # first and last score
    assert "| 1.06 |" in hypernet  # 1.7 / 1.6
    assert "| 8.0 min |" in hypernet  # first score <= 1.10 x 1.6 = 1.76
    assert "| 1.5000 |" in hypernet  # English of the tuned checkpoint
    assert "| 24.0 | 0.5 / 2.2 |" in hypernet  # 4 minutes per 10 steps; loads before / after
    assert "| input+output |" in hypernet and "| input |" in rows[1]  # untied: both slots
    assert "did not run: tokengraft graft exited" in rows[3] and "no / corpus" in rows[3]
    assert "1.7600" in md  # the target level
    assert "busy" not in md
    assert "![tune curve](bench/results/tune_curve/tune_curve.png)" in md


def test_a_busy_machine_says_so() -> None:
    results = _results(load_start=[1.8, 1.2, 0.9])
    assert tune_curve.busy(results)
    assert "**a busy machine**" in tune_curve.section(results)
    assert not tune_curve.busy(_results())


def test_splice_replaces_only_the_marked_section_and_is_idempotent() -> None:
    block = tune_curve.section(_results())
    text = "# Benchmarks\n\n## de-fresh\n\ntable\n"
    once = tune_curve.splice(text, block)
    assert once.startswith(text) and once.endswith(tune_curve.END + "\n")
    assert tune_curve.splice(once, block) == once
    other = tune_curve.section(_results(load_start=[3.0, 3.0, 3.0]))
    changed = tune_curve.splice(once + "\n## after\n", other)
    assert changed.count(tune_curve.BEGIN) == 1 and "**a busy machine**" in changed
    assert changed.startswith(text) and changed.endswith("\n## after\n")


def test_outputs_write_the_chart_and_the_section(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results_path = tmp_path / "results" / "tune_curve.json"
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n", encoding="utf-8")
    tune_curve.write_outputs(_results(), results_path, md)
    png = results_path.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = md.read_text(encoding="utf-8")
    assert "![tune curve](results/tune_curve.png)" in first
    tune_curve.write_outputs(_results(), results_path, md)
    assert md.read_text(encoding="utf-8") == first
    assert not tune_curve.draw({**_results(), "starts": {}}, tmp_path / "empty.png")


def test_tune_eval_max_bytes_is_validated_and_may_change_on_resume() -> None:
    from tokengraft.tune.config import RUN_FIELDS, TuneConfig

    assert TuneConfig().eval_max_bytes is None  # whole files, as before
    assert TuneConfig(eval_max_bytes=30_000).to_dict()["eval_max_bytes"] == 30_000
    with pytest.raises(TokengraftError, match="--eval-max-bytes"):
        TuneConfig(eval_max_bytes=0)
    assert "eval_max_bytes" in RUN_FIELDS
