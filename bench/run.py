"""Run our methods and the peers side by side on one scenario, on the same held-out bytes.

Every graft runs in a child process (``tokengraft graft`` for our methods, a driver in the peer's
own venv for peers) whose wall time and peak RSS are measured; every checkpoint, and the original
model, is then scored by the same code (``tokengraft eval model --json`` in a child process) on the
first ``--max-bytes`` bytes of the target and English held-out files. Rows are saved to
``bench/results/<scenario>.json`` as they finish; a second run skips the rows already there
(``--force`` redoes them, ``--retry-errors`` redoes the failed ones). Finally BENCHMARKS.md and
the charts are regenerated.

Example:
    .venv/bin/python -m bench.run --scenario de-fresh --methods mean,randn,subword_mean \\
        --peers tokenizer_adapter,deepfocus,wechsel --max-bytes 30000
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tokengraft
from bench import records
from bench.measure import run_measured
from bench.peers import PEERS, PeerSpec, load_runner, missing_venv_error, peer_venv, setup_script
from bench.scenarios import (
    RETENTION,
    SCENARIOS,
    Inputs,
    Scenario,
    Unavailable,
    get_scenario,
    resolve,
)
from tokengraft import NEED_FLAGS, Need

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
TOKENGRAFT = Path(sys.executable).parent / "tokengraft"  # the console script of this venv
DEFAULT_TIMEOUT = 4 * 3600.0


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Options of one benchmark run (the CLI flags)."""

    scenario: Scenario
    methods: tuple[str, ...]
    peers: tuple[str, ...]
    max_bytes: int
    force: bool = False
    retry_errors: bool = False
    keep: bool = False
    nice: int = 10
    timeout: float = DEFAULT_TIMEOUT
    max_corpus_bytes: int | None = None
    method_args: dict[str, list[str]] = field(default_factory=dict)
    work_dir: Path = field(default_factory=lambda: tokengraft.cache_dir() / "bench")
    results_dir: Path = RESULTS
    seed: int = 0

    @property
    def results_path(self) -> Path:
        return self.results_dir / f"{self.scenario.name}.json"

    def scratch(self, key: str) -> Path:
        return self.work_dir / self.scenario.name / key.replace(":", "-")


# ------------------------------------------------------------------------------------ grafts


def registered_methods() -> dict[str, dict[str, Any]]:
    """Every registered method and its needs, from ``tokengraft methods --json`` (a child process,
    so methods added while a long run goes on are seen by the next run)."""
    out = subprocess.run([str(TOKENGRAFT), "methods", "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"tokengraft methods --json failed: {out.stderr.strip()[-2000:]}")
    return {spec["name"]: spec for spec in json.loads(out.stdout)}


# need -> the scenario's value for it; the flag that passes it is NEED_FLAGS[need]
NEED_VALUES: dict[Need, Callable[[Inputs], Path]] = {
    Need.DONOR: Inputs.donor,
    Need.CORPUS: lambda inputs: inputs.target_train,
    Need.SOURCE_CORPUS: lambda inputs: inputs.source_train,
    Need.DICTIONARY: Inputs.dictionary,
    Need.AUX_MODEL: Inputs.aux_model,
}
CORPUS_NEEDS = {Need.CORPUS, Need.SOURCE_CORPUS}  # capped by --max-corpus-bytes


def method_flags(needs: list[str], inputs: Inputs, cfg: RunConfig) -> list[str]:
    """The ``tokengraft graft`` flags (``tokengraft.NEED_FLAGS``) that supply what a method needs.

    Raises:
        Unavailable: the scenario cannot supply a need (no donor, no dictionary yet, ...).
    """
    flags: list[str] = []
    known = {need.value: need for need in NEED_FLAGS}
    for name in needs:
        need = known.get(name)
        if need is None or (NEED_FLAGS[need] is not None and need not in NEED_VALUES):
            raise Unavailable(f"the runner does not know how to supply the need {name!r}")
        flag = NEED_FLAGS[need]
        if flag is not None:  # None: the graft loads it itself (the base model)
            flags += [flag, str(NEED_VALUES[need](inputs))]
    if cfg.max_corpus_bytes is not None and {n.value for n in CORPUS_NEEDS} & set(needs):
        flags += ["--max-corpus-bytes", str(cfg.max_corpus_bytes)]
    return flags


VARIANT = "@"  # row "distill@free": method distill with method_args["distill@free"]
SOURCE_TEXT = "{source_corpus}"  # in method args: the scenario's source-language training text


def _placeholder(arg: str, inputs: Inputs) -> str:
    """``arg``, or the source-language training text's path for :data:`SOURCE_TEXT`."""
    return str(NEED_VALUES[Need.SOURCE_CORPUS](inputs)) if arg == SOURCE_TEXT else arg


def graft_ours(
    method: str, spec: dict[str, Any] | None, inputs: Inputs, cfg: RunConfig
) -> dict[str, Any]:
    """Graft with one of our methods in a child process; the row without its bpb yet."""
    key = records.row_key("ours", method)
    if spec is None:
        return records.empty_row(
            "ours", method, error=f"method {method!r} is not registered (tokengraft methods)"
        )
    try:
        flags = method_flags(spec["needs"], inputs, cfg)
    except Unavailable as exc:
        return records.empty_row("ours", method, error=str(exc))
    out = cfg.scratch(key) / "model"
    cmd = [str(TOKENGRAFT), "graft", cfg.scenario.base_model, str(inputs.new_tokenizer), str(out)]
    registered = method.split(VARIANT)[0]  # a variant row runs the method with its own args
    cmd += ["--method", registered, "--seed", str(cfg.seed), "--force", "--quiet", *flags]
    cmd += [_placeholder(arg, inputs) for arg in cfg.method_args.get(method, [])]
    measured = run_measured(
        cmd, log=cfg.scratch(key) / "graft.log", timeout=cfg.timeout, nice=cfg.nice
    )
    row = records.empty_row(
        "ours",
        method,
        graft_seconds=measured.seconds,
        graft_cpu_seconds=measured.cpu_seconds,
        peak_rss_mb=measured.peak_rss_mb,
        error=measured.error("tokengraft graft"),
        command=shlex.join(cmd),
    )
    report = out / "report.json"
    if measured.ok and report.is_file():
        data = json.loads(report.read_text(encoding="utf-8"))
        row["method_seconds"] = records.method_seconds(data.get("seconds", {}))
        row["report_seconds"] = data.get("seconds")
        row["versions"] = data.get("versions")
    return {**row, "out_dir": str(out)}


def graft_peer(name: str, inputs: Inputs, cfg: RunConfig) -> dict[str, Any]:
    """Run one peer through its module's ``run``; the row without its bpb yet."""
    spec = PEERS.get(name)
    if spec is None:
        return records.empty_row("peer", name, error=f"unknown peer (known: {', '.join(PEERS)})")
    try:
        runner = load_runner(spec)
    except ImportError as exc:
        return records.empty_row(
            "peer", name, error=f"no runner bench/peers/{spec.module}.py: {exc}"
        )
    error = missing_venv_error(spec.module)
    if error is not None:
        return records.empty_row("peer", name, error=error)
    try:
        extra = peer_inputs(spec, inputs)
        base_dir = inputs.base_dir()
    except Unavailable as exc:
        return records.empty_row("peer", name, error=str(exc))
    key = records.row_key("peer", name)
    out = cfg.scratch(key) / "model"
    shutil.rmtree(out, ignore_errors=True)
    result = runner.run(
        base_dir,
        inputs.new_tokenizer,
        out,
        log=cfg.scratch(key) / "graft.log",
        work_dir=cfg.scratch(key),
        seed=cfg.seed,
        timeout=cfg.timeout,
        nice=cfg.nice,
        target_language=cfg.scenario.target,
        **extra,
        **spec.options,
    )
    row = records.empty_row(
        "peer",
        name,
        graft_seconds=result.get("seconds"),
        graft_cpu_seconds=result.get("cpu_seconds"),
        peak_rss_mb=result.get("peak_rss_mb"),
        error=result.get("error"),
        command=result.get("command"),
        versions=peer_versions(spec),
    )
    return {**row, "out_dir": result.get("out_dir", str(out))}


def peer_inputs(spec: PeerSpec, inputs: Inputs) -> dict[str, Any]:
    """The scenario inputs a peer needs, as keyword arguments of its ``run``."""
    getters = {
        "target_train": lambda: inputs.target_train,
        "source_train": lambda: inputs.source_train,
        "dictionary": inputs.dictionary,
        "donor": inputs.donor,
    }
    return {need: getters[need]() for need in sorted(spec.needs)}


def peer_versions(spec: PeerSpec) -> dict[str, str] | None:
    """Versions of the packages in the peer's venv (None when it cannot be asked)."""
    python = peer_venv(spec.module) / "bin" / "python"
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    packages = [spec.module.replace("_", "-"), "mergekit", "torch", "transformers", "python"]
    try:
        out = subprocess.run(
            [str(python), "-P", "-c", code, *packages], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    versions = json.loads(out.stdout)
    versions["python"] = sys.version.split()[0]
    return versions


def own_versions() -> dict[str, str]:
    names = ("tokengraft", "torch", "transformers", "tokenizers")
    return {n: importlib.metadata.version(n) for n in names} | {"python": sys.version.split()[0]}


# -------------------------------------------------------------------------------- evaluation


def evaluate(model: str, inputs: Inputs, cfg: RunConfig, log: Path) -> dict[str, Any]:
    """Bits per byte of ``model`` on the target and English held-out (first max_bytes of each).

    Returns:
        Row fields: target_ / english_ bpb, tokens and bytes, eval_seconds, eval_command, and
        error when the evaluation failed.
    """
    cmd = [str(TOKENGRAFT), "eval", "model", model, "--texts", str(inputs.target_heldout)]
    cmd += ["--texts", str(inputs.english_heldout)]
    cmd += ["--max-bytes", str(cfg.max_bytes), "--json", "--quiet"]
    measured = run_measured(cmd, log=log, timeout=cfg.timeout, nice=cfg.nice)
    fields: dict[str, Any] = {"eval_seconds": measured.seconds, "eval_command": shlex.join(cmd)}
    if not measured.ok:
        return {**fields, "error": measured.error("tokengraft eval model")}
    target, english = json.loads(measured.stdout)["per_file"]  # in --texts order
    return {
        **fields,
        "target_bpb": target["bits_per_byte"],
        "english_bpb": english["bits_per_byte"],
        "target_tokens": target["n_tokens"],
        "english_tokens": english["n_tokens"],
        "target_bytes": target["n_bytes"],
        "english_bytes": english["n_bytes"],
    }


def run_row(key: str, inputs: Inputs, cfg: RunConfig, methods: dict[str, Any]) -> dict[str, Any]:
    """Graft (unless it is the original) and score one row."""
    kind, name = key.split(":", 1)
    log = cfg.scratch(key) / "eval.log"
    if kind == "baseline":
        row = records.empty_row(kind, name, versions=own_versions())
        return {**row, **evaluate(cfg.scenario.base_model, inputs, cfg, log)}
    if kind == "ours":
        row = graft_ours(name, methods.get(name.split(VARIANT)[0]), inputs, cfg)
    else:
        row = graft_peer(name, inputs, cfg)
    out = row.pop("out_dir", None)
    if row["error"] is None and out is not None:
        row.update(evaluate(out, inputs, cfg, log))
    if out is not None and not cfg.keep:
        shutil.rmtree(out, ignore_errors=True)
    return row


# ---------------------------------------------------------------------------------------- CLI


def heldout_info(inputs: Inputs, cfg: RunConfig) -> dict[str, Any]:
    def one(language: str, path: Path) -> dict[str, Any]:
        return {"language": language, "path": str(path), "bytes": cfg.max_bytes}

    return {
        "target": one(cfg.scenario.target, inputs.target_heldout),
        "english": one(RETENTION, inputs.english_heldout),
    }


def start_results(inputs: Inputs, cfg: RunConfig, fresh: bool) -> dict[str, Any]:
    """The stored results to extend, or a new results object."""
    stored = None if fresh else records.load(cfg.results_path)
    if stored is not None:
        records.check_compatible(
            stored, max_bytes=cfg.max_bytes, new_tokenizer=str(inputs.new_tokenizer)
        )
        return stored
    return {
        "scenario": cfg.scenario.name,
        "summary": cfg.scenario.summary,
        "tokenizer": cfg.scenario.tokenizer.describe(),
        "base_model": cfg.scenario.base_model,
        "max_bytes": cfg.max_bytes,
        "new_tokenizer": str(inputs.new_tokenizer),
        "heldout": heldout_info(inputs, cfg),
        "rows": {},
    }


def row_keys(cfg: RunConfig) -> list[str]:
    keys = [records.ORIGINAL]
    keys += [records.row_key("ours", m) for m in cfg.methods]
    keys += [records.row_key("peer", p) for p in cfg.peers]
    return keys


def run(cfg: RunConfig, *, fresh: bool = False, command: str = "", say: Any = print) -> Path:
    """Run every pending row of ``cfg``, saving after each; returns the results path."""
    inputs = resolve(cfg.scenario)
    results = start_results(inputs, cfg, fresh)
    methods = registered_methods() if cfg.methods else {}
    todo = records.pending(
        row_keys(cfg), results["rows"], force=cfg.force, retry_errors=cfg.retry_errors
    )
    say(f"{cfg.scenario.name}: {len(todo)} row(s) to run: {', '.join(todo) or '-'}")
    for key in todo:
        say(f"  {key} ...")
        row = run_row(key, inputs, cfg, methods)
        results["rows"][key] = row
        results.update(machine=records.machine_info(), command=command, date=records.now())
        records.save(cfg.results_path, results)
        say(f"  {key}: {_brief(row)}")
    return cfg.results_path


def _brief(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"error: {row['error']}"
    return f"target {row['target_bpb']:.4f} bpb, English {row['english_bpb']:.4f} bpb"


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def _method_args(pairs: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pair in pairs:
        method, sep, args = pair.partition("=")
        if not sep:
            raise SystemExit(f"--method-args takes METHOD='ARGS', got {pair!r}")
        out.setdefault(method, []).extend(shlex.split(args))
    return out


def _merged_args(
    defaults: Mapping[str, tuple[str, ...]], given: dict[str, list[str]]
) -> dict[str, list[str]]:
    """The scenario's per-method flags followed by the command line's."""
    return {m: [*defaults.get(m, ()), *given.get(m, [])] for m in {*defaults, *given}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument(
        "--methods", help="our methods, comma-separated ('all': every registered one; '': none)"
    )
    parser.add_argument("--peers", help="peers, comma-separated (default: the scenario's)")
    parser.add_argument("--max-bytes", type=int, help="held-out bytes scored per file")
    parser.add_argument("--force", action="store_true", help="redo rows already in the results")
    parser.add_argument("--retry-errors", action="store_true", help="redo rows that failed")
    parser.add_argument("--fresh", action="store_true", help="start a new results file")
    parser.add_argument("--keep", action="store_true", help="keep the grafted checkpoints")
    parser.add_argument("--setup-peers", action="store_true", help="create missing peer venvs")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the child processes")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per child")
    parser.add_argument("--max-corpus-bytes", type=int, help="passed to corpus-based methods")
    parser.add_argument(
        "--method-args",
        action="append",
        default=[],
        metavar="METHOD=ARGS",
        help="extra tokengraft graft flags for one method, e.g. contextfit='--untie'",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, help="where checkpoints and logs go")
    parser.add_argument("--no-table", action="store_true", help="do not regenerate BENCHMARKS.md")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    scenario = get_scenario(args.scenario)
    if args.methods == "all":
        methods = tuple(registered_methods())
    else:
        methods = scenario.methods if args.methods is None else _split(args.methods)
    peers = scenario.peers if args.peers is None else _split(args.peers)
    extra = {"work_dir": args.work_dir} if args.work_dir else {}
    return RunConfig(
        scenario=scenario,
        methods=methods,
        peers=peers,
        max_bytes=args.max_bytes or scenario.max_bytes,
        force=args.force,
        retry_errors=args.retry_errors,
        keep=args.keep,
        nice=args.nice,
        timeout=args.timeout,
        max_corpus_bytes=args.max_corpus_bytes,
        method_args=_merged_args(scenario.method_args, _method_args(args.method_args)),
        seed=args.seed,
        **extra,
    )


def setup_peers(peers: tuple[str, ...]) -> None:
    """Run the setup script of every peer whose venv is missing (installs into ~/peers only)."""
    for module in dict.fromkeys(PEERS[p].module for p in peers if p in PEERS):
        script = setup_script(module)
        if missing_venv_error(module) is not None and script.is_file():
            subprocess.run(["bash", str(script), str(peer_venv(module))], check=False)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config_from_args(args)
    if args.setup_peers:
        setup_peers(cfg.peers)
    command = shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    path = run(cfg, fresh=args.fresh, command=command)
    print(f"wrote {path}")
    if not args.no_table:
        from bench import table

        table.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
