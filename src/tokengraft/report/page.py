"""``tokengraft report``: one HTML page from graft directories and JSON results.

Each input is recognised by what it holds: a directory with ``report.json`` is a graft output;
a JSON file with ``"kind": "audit"`` an audit, with ``"kind": "tokenizer_eval"`` a tokenizer
evaluation, and one with ``scenario`` and ``rows`` a benchmark result (``bench/results``).
Several benchmark results also get one chart of bits per byte per method and scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tokengraft.errors import TokengraftError
from tokengraft.report.audit_page import audit_sections
from tokengraft.report.html import Section, write_html
from tokengraft.report.sections import (
    TOKENIZER_KIND,
    bench_overview,
    bench_sections,
    graft_sections,
    tokenizer_sections,
)

BUILDERS: dict[str, Callable[[Mapping[str, Any]], list[Section]]] = {
    "audit": audit_sections,
    TOKENIZER_KIND: tokenizer_sections,
    "graft": graft_sections,
    "bench": bench_sections,
}


def kind_of(data: object, where: Path) -> str:
    """Which builder a parsed JSON document needs.

    Args:
        data: the parsed JSON.
        where: its path, for the error message.

    Returns:
        ``"audit"``, ``"tokenizer_eval"``, ``"graft"`` or ``"bench"``.

    Raises:
        TokengraftError: none of them.
    """
    if isinstance(data, dict):
        kind = data.get("kind")
        if kind in BUILDERS:
            return str(kind)
        if "scenario" in data and isinstance(data.get("rows"), dict):
            return "bench"
        if "new_vocab_size" in data and "counts" in data:
            return "graft"
    raise TokengraftError(
        f"{where} is not something tokengraft report knows: pass a graft output directory "
        "(report.json), a bench/results JSON file, or the JSON of `tokengraft audit --json` or "
        "`tokengraft eval tokenizer --json`"
    )


def load_run(path: Path) -> tuple[str, Any]:
    """Read one input, a graft directory or a JSON file, and recognise its kind.

    Args:
        path: the directory or file.

    Returns:
        ``(kind, parsed JSON)``.

    Raises:
        TokengraftError: missing, unreadable, or of an unknown kind.
    """
    from tokengraft import io

    path = Path(path)
    if path.is_dir():
        if not (path / "report.json").is_file():
            raise TokengraftError(f"{path} is a directory without report.json: not a graft output")
        path = path / "report.json"
    elif not path.is_file():
        raise TokengraftError(f"report input not found: {path}")
    data = io.read_json(path)
    return kind_of(data, path), data


def run_sections(path: Path) -> list[Section]:
    """The sections of one input (see :func:`load_run`).

    Raises:
        TokengraftError: missing, unreadable, or of an unknown kind.
    """
    kind, data = load_run(path)
    return BUILDERS[kind](data)


def write_report(paths: Sequence[Path], out: Path, *, title: str = "tokengraft report") -> None:
    """Read every input, then write one HTML page to ``out`` (nothing is written on an error).

    Args:
        paths: graft output directories and JSON result files.
        out: the HTML file.
        title: the page title.

    Raises:
        TokengraftError: no inputs, an input that cannot be read or recognised, or ``out``
            cannot be written.
    """
    if not paths:
        raise TokengraftError("nothing to report: pass graft directories or JSON result files")
    loaded = [load_run(path) for path in paths]
    benches = [data for kind, data in loaded if kind == "bench"]
    sections = bench_overview(benches) if len(benches) > 1 else []
    sections += [section for kind, data in loaded for section in BUILDERS[kind](data)]
    write_html(out, title, sections)
