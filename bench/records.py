"""Results files of the benchmark: their shape, ratios to the original, and what is left to run.

``bench/results/<scenario>.json`` holds one object::

    {"scenario", "summary", "max_bytes", "new_tokenizer", "heldout": {"target": {...},
     "english": {...}}, "machine", "command", "rows": {key: row, ...}}

Row keys are ``<kind>:<name>`` (kind ``baseline``, ``ours`` or ``peer``), so our ``wechsel``
method and the ``wechsel`` peer are two rows. Everything here is pure except :func:`load`,
:func:`save` and :func:`write_text` (the atomic write every bench output goes through).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ORIGINAL = "baseline:original"
KINDS = ("baseline", "ours", "peer")
ROW_FIELDS = (
    "key",
    "name",
    "kind",
    "target_bpb",
    "english_bpb",
    "target_ratio",
    "english_ratio",
    "target_tokens",
    "english_tokens",
    "target_bytes",
    "english_bytes",
    "graft_seconds",
    "graft_cpu_seconds",
    "method_seconds",
    "report_seconds",
    "peak_rss_mb",
    "eval_seconds",
    "error",
    "command",
    "eval_command",
    "versions",
    "date",
)


def row_key(kind: str, name: str) -> str:
    """``<kind>:<name>``, the key of a row."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return f"{kind}:{name}"


def method_seconds(steps: Mapping[str, float]) -> float | None:
    """Our method's own time from a report's step timings: the rows plus its refine pass (tune)."""
    if "method" not in steps:
        return None
    return float(steps["method"]) + float(steps.get("refine", 0.0))


def empty_row(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    """A row with every field present (None where unknown), ``fields`` filled in."""
    unknown = set(fields) - set(ROW_FIELDS)
    if unknown:
        raise ValueError(f"unknown row fields: {sorted(unknown)}")
    row: dict[str, Any] = dict.fromkeys(ROW_FIELDS)
    row.update(key=row_key(kind, name), name=name, kind=kind, date=now())
    row.update(fields)
    return row


def ratio(bpb: float | None, original_bpb: float | None) -> float | None:
    """``bpb / original_bpb`` (1.0 = as good as the original), None when either is missing."""
    if bpb is None or original_bpb is None or original_bpb <= 0:
        return None
    return bpb / original_bpb


def with_ratios(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Copies of ``rows`` whose ``target_ratio`` / ``english_ratio`` are relative to the original."""
    original = rows.get(ORIGINAL, {})
    out = {}
    for key, row in rows.items():
        new = dict(row)
        new["target_ratio"] = ratio(row.get("target_bpb"), original.get("target_bpb"))
        new["english_ratio"] = ratio(row.get("english_bpb"), original.get("english_bpb"))
        out[key] = new
    return out


def pending(
    keys: Iterable[str],
    rows: Mapping[str, Mapping[str, Any]],
    *,
    force: bool = False,
    retry_errors: bool = False,
) -> list[str]:
    """The keys still to run, in order: missing ones, all with ``force``, failed ones on request.

    The original is always run first when anything else is to run and it has no numbers yet,
    since every ratio needs it.
    """
    todo = []
    for key in dict.fromkeys(keys):
        row = rows.get(key)
        if force or row is None or (retry_errors and row.get("error")):
            todo.append(key)
    if todo and ORIGINAL not in todo and rows.get(ORIGINAL, {}).get("target_bpb") is None:
        todo.insert(0, ORIGINAL)
    if ORIGINAL in todo:
        todo.remove(ORIGINAL)
        todo.insert(0, ORIGINAL)
    return todo


def check_compatible(results: Mapping[str, Any], *, max_bytes: int, new_tokenizer: str) -> None:
    """Refuse to mix rows scored on different held-out budgets or tokenizers in one file.

    Raises:
        SystemExit: naming the stored value and how to start over.
    """
    if results.get("max_bytes") != max_bytes:
        raise SystemExit(
            f"the stored results were scored on the first {results.get('max_bytes')} bytes; pass "
            f"--max-bytes {results.get('max_bytes')} or --fresh to start a new results file"
        )
    if results.get("new_tokenizer") != new_tokenizer:
        raise SystemExit(
            f"the stored results use the tokenizer {results.get('new_tokenizer')}; pass --fresh "
            "to start a new results file"
        )


def now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, memory and OS of this machine, and the thread cap given to the children."""
    cpu = platform.processor() or "unknown"
    mem_gb = None
    cpuinfo, meminfo = Path("/proc/cpuinfo"), Path("/proc/meminfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    if meminfo.is_file():
        first = meminfo.read_text().splitlines()[0].split()  # MemTotal: N kB
        mem_gb = round(int(first[1]) / 1024**2, 1)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),  # None: torch's default (all cores)
    }


def load(path: Path) -> dict[str, Any] | None:
    """The results stored at ``path``, or None when there are none yet."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rows"), dict):
        raise SystemExit(f"{path} is not a results file (no 'rows' object)")
    return data


def save(path: Path, results: Mapping[str, Any]) -> None:
    """Write ``results`` (ratios recomputed) atomically."""
    text = json.dumps(
        {**results, "rows": with_ratios(results["rows"])}, indent=2, ensure_ascii=False
    )
    write_text(path, text + "\n")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
