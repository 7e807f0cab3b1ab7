"""The README's method table is the registry's."""

from __future__ import annotations

from pathlib import Path

from tokengraft.report.method_table import BEGIN, END, method_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_method_table_is_current():
    text = README.read_text(encoding="utf-8")
    current = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert current == method_table(), "run: .venv/bin/python -m tokengraft.report.method_table"
