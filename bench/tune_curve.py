"""The tune curve (issue 14): held-out bits per byte against wall minutes of ``tokengraft tune``.

For each starting graft of the de-fresh scenario (``subword_mean``, ``hypernet``, ``distill`` by
default) this grafts SmolLM2-135M onto the scenario's German tokenizer (``tokengraft graft`` in a
child process; skipped when a finished graft is in the work directory), then runs ``tokengraft
tune START OUT --texts <de train> --eval-texts <de held-out> --eval-max-bytes B --minutes M`` in a
child process and reads the held-out scores it recorded in ``OUT/tune.json``. The seconds of a
score are those of tune's fit loop (held-out scoring included; model loading is not). Each graft
and each tuned checkpoint is also scored by ``tokengraft eval model`` on the first B bytes of the
German and English held-out files: English is the base model's language, its bits per byte say
what the graft and the tuning kept. The original model is scored once the same way.

Results go to ``bench/results/tune_curve/tune_curve.json`` (a directory of its own, like the other
extra benchmarks, so that ``bench.table`` does not read it as a scenario), the chart to
``tune_curve.png`` beside it, and the section between the ``tune_curve`` markers of BENCHMARKS.md
is rewritten (``python -m bench.table`` writes the same section).

Example:
    .venv/bin/python -m bench.tune_curve --minutes 30 --eval-every 50
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tokengraft
from bench import records
from bench.measure import run_measured
from bench.run import TOKENGRAFT, RunConfig, method_flags, own_versions, registered_methods
from bench.scenarios import Inputs, Unavailable, get_scenario, resolve

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "tune_curve" / "tune_curve.json"
BENCHMARKS = REPO / "BENCHMARKS.md"
SCENARIO = "de-fresh"
STARTS = ("subword_mean", "hypernet", "distill")
TARGET = 1.10  # the target: this many times the original's bits per byte
MARKS = (5.0, 10.0, 20.0)  # minutes at which the table reads the curve (those inside the budget)
BUSY_LOAD = 1.0  # a 1-minute load average at least this high before the run: not a quiet machine
BEGIN, END = "<!-- tune_curve:begin -->", "<!-- tune_curve:end -->"
DASH = "-"
BASE = get_scenario(SCENARIO).base_model


@dataclass(frozen=True, kw_only=True)
class CurveConfig:
    """Options of one run (the CLI flags)."""

    minutes: float = 30.0
    eval_every: int = 50
    starts: tuple[str, ...] = STARTS
    max_bytes: int = 30_000
    keep: bool = False
    nice: int = 10
    timeout: float = 4 * 3600.0
    seed: int = 0
    work_dir: Path = field(default_factory=lambda: tokengraft.cache_dir() / "bench" / "tune_curve")
    results: Path = RESULTS

    def settings(self, inputs: Inputs) -> dict[str, Any]:
        """What every curve of one results file must share."""
        return {
            "scenario": SCENARIO,
            "minutes": self.minutes,
            "eval_every": self.eval_every,
            "max_bytes": self.max_bytes,
            "seed": self.seed,
            "new_tokenizer": str(inputs.new_tokenizer),
        }


# ------------------------------------------------------------------------------ child processes


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def score(model: str, files: Sequence[Path], cfg: CurveConfig, log: Path) -> dict[str, Any]:
    """``tokengraft eval model --json`` on the first max_bytes of ``files``: bpb per file."""
    cmd = [str(TOKENGRAFT), "eval", "model", model]
    for path in files:
        cmd += ["--texts", str(path)]
    cmd += ["--max-bytes", str(cfg.max_bytes), "--json", "--quiet"]
    measured = run_measured(cmd, log=log, timeout=cfg.timeout, nice=cfg.nice)
    out: dict[str, Any] = {"command": shlex.join(cmd), "seconds": measured.seconds}
    if not measured.ok:
        return {**out, "error": measured.error("tokengraft eval model")}
    per_file = json.loads(measured.stdout)["per_file"]
    keys = ("bits_per_byte", "n_tokens", "n_bytes")
    return {**out, "files": [{k: f[k] for k in keys} for f in per_file]}


def graft(start: str, inputs: Inputs, cfg: CurveConfig) -> dict[str, Any]:
    """Graft the start in a child process, or reuse the finished graft in the work directory."""
    out = cfg.work_dir / start / "graft"
    done = out.parent / "graft.json"  # how the graft in ``out`` was made
    if (out / "report.json").is_file() and done.is_file():  # written atomically when finished
        return {**load(done), "skipped": True}
    spec = registered_methods().get(start)
    if spec is None:
        return {"dir": str(out), "error": f"method {start!r} is not registered"}
    scenario = get_scenario(SCENARIO)
    run_cfg = RunConfig(scenario=scenario, methods=(start,), peers=(), max_bytes=cfg.max_bytes)
    try:
        flags = method_flags(spec["needs"], inputs, run_cfg)
    except Unavailable as exc:
        return {"dir": str(out), "error": str(exc)}
    cmd = [str(TOKENGRAFT), "graft", scenario.base_model, str(inputs.new_tokenizer), str(out)]
    cmd += ["--method", start, "--seed", str(cfg.seed), "--force", "--quiet", *flags]
    cmd += list(scenario.method_args.get(start, ()))
    measured = run_measured(cmd, log=out.parent / "graft.log", timeout=cfg.timeout, nice=cfg.nice)
    made = {
        "dir": str(out),
        "skipped": False,
        "command": shlex.join(cmd),
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,
        "peak_rss_mb": measured.peak_rss_mb,
        "error": measured.error("tokengraft graft"),
    }
    if measured.ok:
        records.write_text(done, json.dumps(made, indent=2) + "\n")
    return made


def tune(graft_dir: Path, inputs: Inputs, cfg: CurveConfig) -> dict[str, Any]:
    """``tokengraft tune`` from ``graft_dir`` in a child process; its points from tune.json."""
    out = graft_dir.parent / "tuned"
    cmd = [str(TOKENGRAFT), "tune", str(graft_dir), str(out), "--texts", str(inputs.target_train)]
    cmd += ["--eval-texts", str(inputs.target_heldout), "--eval-max-bytes", str(cfg.max_bytes)]
    cmd += ["--minutes", f"{cfg.minutes:g}", "--eval-every", str(cfg.eval_every)]
    cmd += ["--checkpoint-every", "0", "--seed", str(cfg.seed), "--force", "--quiet"]
    measured = run_measured(cmd, log=out.parent / "tune.log", timeout=cfg.timeout, nice=cfg.nice)
    fields = {
        "dir": str(out),
        "command": shlex.join(cmd),
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,
        "peak_rss_mb": measured.peak_rss_mb,
        "error": measured.error("tokengraft tune"),
    }
    report = out / "tune.json"
    if not measured.ok or not report.is_file():
        return fields
    data = load(report)
    shutil.copy2(report, out.parent / "tune.json")  # kept when the checkpoint is not
    points = [{**p, "minutes": p["seconds"] / 60} for p in data["bpb"]]
    return {
        **fields,
        "step": data["steps"],
        "tokens": data["tokens_seen"],
        "fit_seconds": data["seconds"],
        "slots": data.get("slots"),
        "rows": data.get("rows"),
        "config": data.get("config"),
        "points": points,
    }


def run_start(start: str, inputs: Inputs, cfg: CurveConfig) -> dict[str, Any]:
    """Graft, tune and score one start; the checkpoints are deleted unless ``cfg.keep``."""
    entry: dict[str, Any] = {"start": start, "load_before": _load(), "date": records.now()}
    entry["graft"] = graft(start, inputs, cfg)
    held = [inputs.target_heldout, inputs.english_heldout]
    if entry["graft"]["error"] is None:
        graft_dir = Path(entry["graft"]["dir"])
        entry["graft_eval"] = score(str(graft_dir), held, cfg, graft_dir.parent / "eval-graft.log")
        entry["tune"] = tune(graft_dir, inputs, cfg)
        if entry["tune"]["error"] is None:
            tuned = entry["tune"]["dir"]
            entry["tuned_eval"] = score(tuned, held, cfg, graft_dir.parent / "eval-tuned.log")
        if not cfg.keep:
            shutil.rmtree(graft_dir.parent / "tuned", ignore_errors=True)
            shutil.rmtree(graft_dir, ignore_errors=True)
    entry["load_after"] = _load()
    return entry


def start_results(inputs: Inputs, cfg: CurveConfig, *, fresh: bool) -> dict[str, Any]:
    """The stored results to extend (same settings), or a new results object."""
    stored = None if fresh or not cfg.results.is_file() else load(cfg.results)
    settings = cfg.settings(inputs)
    if stored is not None:
        if stored.get("settings") != settings:
            raise SystemExit(
                f"{cfg.results} holds curves of other settings ({stored.get('settings')}); "
                "pass the same options or --fresh to start a new results file"
            )
        return stored
    held = {"path": str(inputs.target_heldout), "bytes": cfg.max_bytes}
    english = {"path": str(inputs.english_heldout), "bytes": cfg.max_bytes}
    return {"settings": settings, "heldout": {"de": held, "en": english}, "starts": {}}


def run(cfg: CurveConfig, *, fresh: bool = False, command: str = "", say: Any = print) -> dict:
    """Every start of ``cfg`` in turn, saving the results after each; returns them."""
    inputs = resolve(get_scenario(SCENARIO))
    results = start_results(inputs, cfg, fresh=fresh)
    results.update(command=command, versions=own_versions(), nice=cfg.nice, load_start=_load())
    if _file_bpb(results.get("original"), 0) is None:  # scored once per results file
        say("original ...")
        held = [inputs.target_heldout, inputs.english_heldout]
        results["original"] = score(BASE, held, cfg, cfg.work_dir / "eval-original.log")
    for start in cfg.starts:
        say(f"{start} ...")
        results["starts"][start] = run_start(start, inputs, cfg)
        results.update(machine=records.machine_info(), load_end=_load(), date=records.now())
        records.write_text(cfg.results, json.dumps(results, indent=2) + "\n")
        say(f"{start}: {brief(results['starts'][start])}")
    return results


def brief(entry: Mapping[str, Any]) -> str:
    """One line: the error, or the first and last held-out score."""
    error = entry["graft"].get("error") or (entry.get("tune") or {}).get("error")
    if error:
        return f"error: {error}"
    points = entry["tune"]["points"]
    if not points:
        return "no held-out score"
    first, last = points[0], points[-1]
    return (
        f"{first['bits_per_byte']:.4f} -> {last['bits_per_byte']:.4f} bits per byte in "
        f"{last['minutes']:.1f} min ({entry['tune']['step']} steps)"
    )


# ----------------------------------------------------------------------------- pure rendering


def original_bpb(results: Mapping[str, Any], index: int = 0) -> float | None:
    """The original model's bits per byte on held-out file ``index`` (0: German, 1: English)."""
    return _file_bpb(results.get("original"), index)


def _file_bpb(scored: Mapping[str, Any] | None, index: int) -> float | None:
    files = (scored or {}).get("files") or []
    return files[index]["bits_per_byte"] if len(files) > index else None


def curve(entry: Mapping[str, Any]) -> list[tuple[float, float]]:
    """(minutes, bits per byte) of every held-out score of one start, in order."""
    points = (entry.get("tune") or {}).get("points") or []
    return [(p["minutes"], p["bits_per_byte"]) for p in points]


def bpb_at(points: Sequence[tuple[float, float]], minutes: float) -> float | None:
    """The last score taken by ``minutes`` (None before the first)."""
    before = [bpb for at, bpb in points if at <= minutes + 1e-9]
    return before[-1] if before else None


def first_below(points: Sequence[tuple[float, float]], level: float | None) -> float | None:
    """Minutes of the first score at or below ``level`` (None: never, or no level)."""
    if level is None:
        return None
    return next((at for at, bpb in points if bpb <= level), None)


def busy(results: Mapping[str, Any]) -> bool:
    """Whether the machine was busy: other work before the run, or more than ours at its end."""
    nproc = (results.get("machine") or {}).get("nproc") or 2
    start, end = results.get("load_start") or [0.0], results.get("load_end") or [0.0]
    return start[0] >= BUSY_LOAD or end[0] >= nproc + BUSY_LOAD


def seconds_per_step(entry: Mapping[str, Any]) -> float | None:
    """Wall seconds of tune's fit loop per step (scoring included): how loaded the machine was."""
    tune = entry.get("tune") or {}
    steps, seconds = tune.get("step"), tune.get("fit_seconds")
    return seconds / steps if steps and seconds else None


def _num(value: float | None, digits: int) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def marks(results: Mapping[str, Any]) -> list[float]:
    """The minutes inside the budget at which the table reads every curve."""
    return [m for m in MARKS if m < results["settings"]["minutes"]]


def table_row(entry: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """One start's Markdown row."""
    error = entry["graft"].get("error") or (entry.get("tune") or {}).get("error")
    points = curve(entry)
    original = original_bpb(results)
    last = points[-1][1] if points else None
    level = None if original is None else TARGET * original
    tuned = entry.get("tuned_eval")
    reached = first_below(points, level)
    cells = [
        entry["start"],
        _num(entry["graft"].get("seconds"), 0),
        str((entry.get("tune") or {}).get("step", DASH)),
        _num(seconds_per_step(entry), 1),
        " / ".join(_num((entry.get(k) or [None])[0], 1) for k in ("load_before", "load_after")),
        "+".join((entry.get("tune") or {}).get("slots") or []) or DASH,
        _num(points[0][1] if points else None, 4),
        *(_num(bpb_at(points, m), 4) for m in marks(results)),
        _num(last, 4),
        _num(records.ratio(last, original), 2),
        DASH if reached is None else f"{reached:.1f} min",
        _num(_file_bpb(entry.get("graft_eval"), 1), 4),
        _num(_file_bpb(tuned, 1), 4),
        "" if not error else "did not run: " + " ".join(str(error).split()).replace("|", "/"),
    ]
    return "| " + " | ".join(cells) + " |"


def _intro(results: Mapping[str, Any]) -> list[str]:
    s, machine = results["settings"], results.get("machine") or {}
    original = original_bpb(results)
    load = (
        f"1/5/15-minute load average {results.get('load_start')} at the start and "
        f"{results.get('load_end')} at the end"
    )
    if busy(results):
        load = f"**a busy machine**: {load}, so these minutes are slower than a quiet machine's"
    return [
        f"`tokengraft tune` from {len(results['starts'])} starting grafts of de-fresh: bits per "
        "byte on the first "
        f"{s['max_bytes']:,} bytes of the German held-out, scored by `tune` itself every "
        f"{s['eval_every']} steps, against the wall minutes of its fit loop (scoring included, "
        f"model loading not), budget {s['minutes']:g} minutes. Original: "
        f"{_num(original, 4)} bits per byte; the target, {TARGET:.2f}x of it, is "
        f"{_num(None if original is None else TARGET * original, 4)}. English (the base model's "
        f"language, original {_num(original_bpb(results, 1), 4)}) is scored by `tokengraft eval "
        'model` on the graft and on the tuned checkpoint. "graft s" is the wall time of the '
        "graft (not on the curve's axis).",
        "",
        f"Run {results.get('date', '?')} on {machine.get('cpu', '?')} "
        f"({machine.get('nproc', '?')} cores), children at niceness {results.get('nice', '?')}; "
        f'{load}. "s/step" (wall seconds of the fit loop per step) and each start\'s '
        "1-minute load average before and after it show how loaded the machine was while that "
        "curve ran: the same step costs the same on a quiet machine.",
    ]


def section(results: Mapping[str, Any], chart: str | None = None) -> str:
    """The BENCHMARKS.md section, between the markers (no trailing newline)."""
    s = results["settings"]
    starts = ",".join(results["starts"])
    head = (
        "| start | graft s | steps | s/step | load before / after | trained | de bits/byte at 0 | "
    )
    head += "".join(f"by {m:g} min | " for m in marks(results))
    head += "end | x orig. | reaches 1.10x | en bits/byte graft | en bits/byte tuned | note |"
    align = "|---|" + "---:|" * (head.count("|") - 3) + "---|"
    lines = [
        BEGIN,
        "## tune curve",
        "",
        "Generated by `python -m bench.tune_curve`; do not edit by hand.",
        "",
        *_intro(results),
        "",
        f"Reproduce: `.venv/bin/python -m bench.tune_curve --minutes {s['minutes']:g} "
        f"--eval-every {s['eval_every']} --starts {starts} --max-bytes {s['max_bytes']}`",
        "",
        head,
        align,
        *(table_row(e, results) for e in results["starts"].values()),
    ]
    if chart:
        lines += ["", f"![tune curve]({chart})"]
    return "\n".join([*lines, END])


def splice(text: str, block: str) -> str:
    """``text`` with the marked section replaced by ``block`` (appended when it has none)."""
    begin, end = text.find(BEGIN), text.find(END)
    if begin != -1 and end > begin:
        return text[:begin] + block + text[end + len(END) :]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def load(path: Path) -> dict[str, Any]:
    """The results stored at ``path``."""
    return json.loads(path.read_text(encoding="utf-8"))


def link(path: Path, markdown: Path) -> str:
    """``path`` as a link from ``markdown``'s directory (absolute when outside it)."""
    base, resolved = markdown.resolve().parent, path.resolve()
    return str(resolved.relative_to(base) if resolved.is_relative_to(base) else resolved)


def draw(results: Mapping[str, Any], path: Path) -> bool:
    """bpb against minutes, one line per start; False when there is no point to draw."""
    lines = {name: curve(entry) for name, entry in results["starts"].items()}
    if not any(lines.values()):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, points in lines.items():
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=name)
    original = original_bpb(results)
    if original is not None:
        ax.axhline(original, color="black", linestyle="--", linewidth=0.8, label="original")
        ax.axhline(TARGET * original, color="grey", linestyle=":", label=f"{TARGET:.2f}x original")
    ax.set_xlabel("wall minutes of tokengraft tune (fit loop, held-out scoring included)")
    ax.set_ylabel(f"de bits per byte (first {results['settings']['max_bytes']:,} bytes)")
    ax.set_title("tune curve, de-fresh" + (" (busy machine)" if busy(results) else ""))
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_outputs(results: Mapping[str, Any], results_path: Path, benchmarks: Path | None) -> None:
    """Draw the chart beside the results; rewrite the section of ``benchmarks`` (if given)."""
    png = results_path.with_suffix(".png")
    drawn = draw(results, png)
    if benchmarks is None:
        return
    text = benchmarks.read_text(encoding="utf-8") if benchmarks.is_file() else ""
    block = section(results, link(png, benchmarks) if drawn else None)
    records.write_text(benchmarks, splice(text, block))


# ---------------------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tune_curve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="tune budget per start")
    parser.add_argument("--eval-every", type=int, default=50, help="held-out score every N steps")
    parser.add_argument("--starts", default=",".join(STARTS), help="methods, comma-separated")
    parser.add_argument("--max-bytes", type=int, default=30_000, help="held-out bytes scored")
    parser.add_argument("--work-dir", type=Path, help="grafts, tuned checkpoints and logs")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoints")
    parser.add_argument("--fresh", action="store_true", help="start a new results file")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the child processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS, help="results JSON to write")
    parser.add_argument("--benchmarks", type=Path, default=BENCHMARKS, help="Markdown to update")
    parser.add_argument("--no-table", action="store_true", help="do not touch the Markdown")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    starts = tuple(s.strip() for s in args.starts.split(",") if s.strip())
    extra = {"work_dir": args.work_dir} if args.work_dir else {}
    cfg = CurveConfig(
        minutes=args.minutes,
        eval_every=args.eval_every,
        starts=starts,
        max_bytes=args.max_bytes,
        keep=args.keep,
        nice=args.nice,
        seed=args.seed,
        results=args.results,
        **extra,
    )
    command = shlex.join(
        ["python", "-m", "bench.tune_curve", *(sys.argv[1:] if argv is None else argv)]
    )
    results = run(cfg, fresh=args.fresh, command=command)
    write_outputs(results, cfg.results, None if args.no_table else args.benchmarks)
    print(f"wrote {cfg.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
