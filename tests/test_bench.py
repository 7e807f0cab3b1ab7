"""The pure parts of the benchmark runner: ratios, resumability, flags, tables, measurement."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bench import records, table
from bench.measure import run_measured
from bench.run import NEED_VALUES, RunConfig, method_flags
from bench.scenarios import SCENARIOS, Inputs, Unavailable
from tokengraft import NEED_FLAGS, Need

BENCH = Path(__file__).resolve().parents[1] / "bench"

ORIG = records.ORIGINAL


def _row(kind: str, name: str, target: float | None, english: float | None, **kw):
    return records.empty_row(kind, name, target_bpb=target, english_bpb=english, **kw)


def _results() -> dict:
    rows = [
        _row("ours", "mean", 3.2, 1.6, graft_seconds=20.0, peak_rss_mb=1500.0),
        _row("baseline", "original", 1.6, 0.8, target_tokens=9000),
        _row("peer", "wechsel", None, None, error="dictionary eng-deu is not available | yet"),
        _row("ours", "subword_mean", 2.4, 1.2, method_seconds=1.5),
        _row("peer", "tokenizer_adapter", 2.5, 1.0),
    ]
    return {
        "scenario": "de-fresh",
        "summary": "SmolLM2 -> German",
        "tokenizer": "32k BPE",
        "new_tokenizer": "/x/de-bpe-32000",
        "max_bytes": 30_000,
        "heldout": {
            "target": {"language": "de", "path": "/x/de.txt", "bytes": 30_000},
            "english": {"language": "en", "path": "/x/en.txt", "bytes": 30_000},
        },
        "machine": {"nproc": 2, "cpu": "AMD EPYC", "mem_gb": 23.0},
        "command": "python -m bench.run --scenario de-fresh --max-bytes 30000",
        "rows": {r["key"]: r for r in rows},
    }


# ------------------------------------------------------------------------------- ratios


def test_ratio_is_bpb_over_original_and_none_when_missing() -> None:
    assert records.ratio(2.4, 1.6) == pytest.approx(1.5)
    assert records.ratio(None, 1.6) is None
    assert records.ratio(2.4, None) is None
    assert records.ratio(2.4, 0.0) is None


def test_with_ratios_relative_to_the_original_row() -> None:
    rows = records.with_ratios(_results()["rows"])
    assert rows[ORIG]["target_ratio"] == pytest.approx(1.0)
    assert rows["ours:subword_mean"]["target_ratio"] == pytest.approx(1.5)
    assert rows["ours:subword_mean"]["english_ratio"] == pytest.approx(1.5)
    assert rows["peer:tokenizer_adapter"]["english_ratio"] == pytest.approx(1.25)
    assert rows["peer:wechsel"]["target_ratio"] is None


def test_with_ratios_without_an_original_gives_none() -> None:
    rows = dict(_results()["rows"])
    del rows[ORIG]
    assert all(r["target_ratio"] is None for r in records.with_ratios(rows).values())


def test_rows_have_every_field_and_reject_unknown_ones() -> None:
    row = records.empty_row("ours", "mean", target_bpb=1.0)
    assert set(row) == set(records.ROW_FIELDS)
    assert row["key"] == "ours:mean"
    with pytest.raises(ValueError):
        records.empty_row("ours", "mean", bpb=1.0)
    with pytest.raises(ValueError):
        records.row_key("theirs", "x")


# ------------------------------------------------------------------------------- resumability


def test_pending_runs_everything_on_an_empty_file_original_first() -> None:
    keys = ["ours:mean", ORIG, "peer:deepfocus"]
    assert records.pending(keys, {}) == [ORIG, "ours:mean", "peer:deepfocus"]


def test_pending_skips_stored_rows_including_failed_ones() -> None:
    rows = _results()["rows"]
    keys = [ORIG, "ours:mean", "peer:wechsel", "ours:randn"]
    assert records.pending(keys, rows) == ["ours:randn"]


def test_pending_force_and_retry_errors() -> None:
    rows = _results()["rows"]
    keys = [ORIG, "ours:mean", "peer:wechsel"]
    assert records.pending(keys, rows, force=True) == keys
    assert records.pending(keys, rows, retry_errors=True) == ["peer:wechsel"]


def test_pending_adds_the_original_when_it_has_no_numbers() -> None:
    rows = {ORIG: _row("baseline", "original", None, None, error="eval failed")}
    assert records.pending(["ours:mean"], rows) == [ORIG, "ours:mean"]
    assert records.pending(["ours:mean"], {}) == [ORIG, "ours:mean"]
    assert records.pending([], {}) == []


def test_results_from_another_budget_or_tokenizer_are_refused() -> None:
    results = _results()
    records.check_compatible(results, max_bytes=30_000, new_tokenizer="/x/de-bpe-32000")
    with pytest.raises(SystemExit, match="--max-bytes 30000"):
        records.check_compatible(results, max_bytes=10_000, new_tokenizer="/x/de-bpe-32000")
    with pytest.raises(SystemExit, match="--fresh"):
        records.check_compatible(results, max_bytes=30_000, new_tokenizer="/y")


def test_save_then_load_round_trips_with_ratios(tmp_path: Path) -> None:
    path = tmp_path / "results" / "de-fresh.json"
    records.save(path, _results())
    loaded = records.load(path)
    assert loaded is not None
    assert loaded["rows"]["ours:mean"]["target_ratio"] == pytest.approx(2.0)
    assert records.load(tmp_path / "none.json") is None


# ------------------------------------------------------------------------------- flags


def _inputs(scenario: str) -> Inputs:
    p = Path("/data")
    return Inputs(
        scenario=SCENARIOS[scenario],
        new_tokenizer=p / "tok",
        target_train=p / "de-train.txt",
        source_train=p / "en-train.txt",
        target_heldout=p / "de-heldout.txt",
        english_heldout=p / "en-heldout.txt",
    )


def test_method_needs_become_graft_flags() -> None:
    inputs = _inputs("code-fresh")
    cfg = RunConfig(scenario=inputs.scenario, methods=(), peers=(), max_bytes=1)
    assert method_flags([], inputs, cfg) == []
    assert method_flags(["model"], inputs, cfg) == []
    flags = method_flags(["corpus", "source_corpus"], inputs, cfg)
    assert flags == ["--corpus", "/data/de-train.txt", "--source-corpus", "/data/en-train.txt"]
    capped = RunConfig(scenario=inputs.scenario, methods=(), peers=(), max_bytes=1,
                       max_corpus_bytes=1000)  # fmt: skip
    assert method_flags(["corpus"], inputs, capped)[-2:] == ["--max-corpus-bytes", "1000"]


def test_needs_a_scenario_cannot_supply_raise_unavailable() -> None:
    inputs = _inputs("code-fresh")  # donor-free, no dictionary
    cfg = RunConfig(scenario=inputs.scenario, methods=(), peers=(), max_bytes=1)
    with pytest.raises(Unavailable, match="no bilingual dictionary"):
        method_flags(["dictionary"], inputs, cfg)
    with pytest.raises(Unavailable, match="donor-free"):
        method_flags(["donor"], inputs, cfg)
    with pytest.raises(Unavailable, match="telepathy"):
        method_flags(["telepathy"], inputs, cfg)


# ------------------------------------------------------------------------------- tables


def test_table_orders_rows_and_explains_failures() -> None:
    md = table.render([_results()], {"de-fresh": "bench/results/de-fresh.png"})
    assert "## de-fresh" in md and "2-core machine" in md
    assert (
        "Reproduce: `.venv/bin/python -m bench.run --scenario de-fresh --methods mean,subword_mean "
        "--peers wechsel,tokenizer_adapter --max-bytes 30000`" in md
    )
    assert "![de-fresh](bench/results/de-fresh.png)" in md
    lines = [line for line in md.splitlines() if line.startswith("| ") and "bits/byte" not in line]
    names = [line.split("|")[1].strip() for line in lines]
    assert names == ["original", "subword_mean", "tokenizer_adapter", "mean", "wechsel"]
    sub = lines[1].split("|")
    assert sub[3].strip() == "2.4000" and sub[4].strip() == "1.50"
    assert "did not run: dictionary eng-deu is not available / yet" in lines[-1]
    assert lines[-1].count("|") == lines[0].count("|")  # the error's "|" did not add a column


def test_demo_table_has_a_line_per_model_and_language() -> None:
    results = {**_results(), "scenario": "demo"}
    results["rows"] = {
        ORIG: _row(
            "baseline",
            "original",
            1.6,
            0.64,
            target_tokens=10_000,
            target_bytes=30_000,
            english_tokens=7_000,
            english_bytes=29_000,
        ),  # fmt: skip
        "ours:subword_mean": _row(
            "ours",
            "subword_mean",
            2.4,
            0.9,
            target_tokens=8_000,
            target_bytes=30_000,
            report_seconds={"graft": 2.3},
            graft_seconds=25.0,
            peak_rss_mb=1600.0,
        ),  # fmt: skip
    }
    md = table.render([results], {})
    body = [line for line in md.splitlines() if line.startswith("| original") or "subword" in line]
    assert len(body) == 4
    assert "| original | de | 1.6000 | 1.00 | 10,000 | 3.00 |" in body[0]
    assert "| subword_mean | de | 2.4000 | 1.50 | 8,000 | 3.75 | 25.0 | 2.3 | 1,600 |" in body[2]
    assert "python -m bench.run_demo" in md


def test_sections_follow_the_scenario_order() -> None:
    other = {**_results(), "scenario": "code-fresh"}
    md = table.render([other, _results()], {})
    assert md.index("## de-fresh") < md.index("## code-fresh")


def test_chart_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "de-fresh.png"
    assert table.draw_chart(_results(), png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = {**_results(), "rows": {}}
    assert not table.draw_chart(empty, tmp_path / "empty.png")


# ------------------------------------------------------------------------------- measurement


def test_run_measured_reports_peak_rss_of_the_child(tmp_path: Path) -> None:
    code = "b = bytearray(120 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('done')"
    m = run_measured([sys.executable, "-c", code], log=tmp_path / "child.log")
    assert m.ok and m.stdout.strip() == "done"
    assert m.peak_rss_mb >= 120
    assert m.error("child") is None


def test_run_measured_reports_failures_and_timeouts(tmp_path: Path) -> None:
    failed = run_measured(
        [sys.executable, "-c", "import sys; sys.exit('boom')"], log=tmp_path / "f.log"
    )
    assert failed.returncode == 1 and failed.error("child") == "child exited with status 1: boom"
    slow = run_measured(
        [sys.executable, "-c", "import time; time.sleep(30)"], log=tmp_path / "s.log", timeout=0.5
    )
    assert slow.timed_out and slow.seconds < 10
    assert "timed out" in (slow.error("child") or "")


def test_the_omp_subset_section_lists_every_row_and_errors():
    from bench.omp_subset import section

    results = {
        "n_tokens": 64,
        "seed": 3,
        "n_atoms": 46000,
        "date": "2026-11-24",
        "command": "python -m bench.omp_subset --n 64",
        "rows": [
            {"k": 8, "name": "peer", "error": "no venv"},
            {"k": 8, "name": "ours", "cpu_ms_per_token": 2.25, "rel_error": 0.61234},
        ],
    }
    text = section(results)
    assert "| 8 | peer | - | - | no venv |" in text
    assert "| 8 | ours | 2.2 | 0.6123 |  |" in text


def test_method_seconds_adds_the_refine_pass():
    from bench.records import method_seconds

    assert method_seconds({"align": 1.0, "method": 2.0}) == 2.0
    assert method_seconds({"method": 2.0, "refine": 3.5}) == 5.5
    assert method_seconds({"load_model": 1.0}) is None


# ------------------------------------------------------------------------------- public API only


def test_every_need_with_a_flag_has_a_scenario_value():
    """A need added to tokengraft.NEED_FLAGS must be taught to the runner (or fail here)."""
    assert set(NEED_VALUES) == {need for need, flag in NEED_FLAGS.items() if flag is not None}
    inputs = _inputs("de-fresh")
    cfg = RunConfig(scenario=inputs.scenario, methods=(), peers=(), max_bytes=1)
    flags = method_flags([Need.CORPUS.value, Need.MODEL.value], inputs, cfg)
    assert flags == [NEED_FLAGS[Need.CORPUS], str(inputs.target_train)]


def _tokengraft_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every import of tokengraft and every ``tokengraft.<name>`` access."""
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            uses += [(node.lineno, a.name) for a in node.names if a.name.startswith("tokengraft")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tokengraft"):
            uses += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "tokengraft"
        ):
            uses.append((node.lineno, f"tokengraft.{node.attr}"))
    return uses


def test_bench_uses_only_public_tokengraft_names():
    import tokengraft

    public = {f"tokengraft.{name}" for name in tokengraft.__all__} | {"tokengraft"}
    files = sorted(BENCH.rglob("*.py"))
    assert len(files) > 10
    bad = []
    for path in files:
        for line, what in _tokengraft_uses(ast.parse(path.read_text(encoding="utf-8"))):
            if what not in public:
                bad.append(f"{path.relative_to(BENCH.parent)}:{line} {what}")
    assert not bad, "bench reaches into tokengraft internals:\n" + "\n".join(bad)


def test_no_sys_path_tricks_in_bench_or_tests():
    paths = [*sorted(BENCH.rglob("*.py")), *sorted(Path(__file__).parent.glob("*.py"))]
    bad = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path":
                bad.append(f"{path.name}:{node.lineno}")
    assert not bad, f"sys.path edited (run bench with python -m, tests use pythonpath): {bad}"


def test_bench_runner_imports_without_torch():
    """Regenerating tables and planning runs needs no torch: grafts happen in child processes."""
    code = (
        "import sys, bench.run, bench.records, bench.scenarios\n"
        "print(' '.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BENCH.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == ""
