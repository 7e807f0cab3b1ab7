"""Code shape: short functions and modules, measured with ``ast`` over src/tokengraft.

The limits are the house style: no function over 60 lines, no module over 400, and the median
function at most 12 lines. A function's length runs from its ``def`` line to its last line,
docstring included; decorators are not counted. The command line imports no heavy library until
a command runs, so that ``tokengraft --help`` starts fast.
"""

from __future__ import annotations

import ast
import statistics
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tokengraft"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
MAX_MEDIAN_FUNCTION_LINES = 12


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _function_lengths() -> dict[str, int]:
    """``path:line name`` -> length in lines, for every function and method (nested ones too)."""
    lengths = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                where = f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name}"
                lengths[where] = node.end_lineno - node.lineno + 1
    return lengths


def test_sources_found() -> None:
    assert len(_modules()) > 20, f"no sources under {SRC}?"


def test_no_function_is_too_long() -> None:
    offenders = {k: n for k, n in _function_lengths().items() if n > MAX_FUNCTION_LINES}
    report = "\n".join(f"  {n:4d} lines  {k}" for k, n in sorted(offenders.items()))
    print(report)
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines (split them):\n{report}"


def test_no_module_is_too_long() -> None:
    lengths = {
        str(p.relative_to(SRC.parent)): len(p.read_text(encoding="utf-8").splitlines())
        for p in _modules()
    }
    offenders = {k: n for k, n in lengths.items() if n > MAX_MODULE_LINES}
    report = "\n".join(f"  {n:4d} lines  {k}" for k, n in sorted(offenders.items()))
    print(report)
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines (split them):\n{report}"


def test_median_function_is_short() -> None:
    lengths = _function_lengths()
    median = statistics.median(lengths.values())
    longest = sorted(lengths.items(), key=lambda kv: -kv[1])[:10]
    report = "\n".join(f"  {n:4d} lines  {k}" for k, n in longest)
    print(f"median function length {median} over {len(lengths)} functions; longest:\n{report}")
    assert median <= MAX_MEDIAN_FUNCTION_LINES, (
        f"median function length {median} > {MAX_MEDIAN_FUNCTION_LINES}; longest:\n{report}"
    )
