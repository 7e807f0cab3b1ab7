"""The package's layers: a light top level and CLI, a lazy public API, and bottom layers that
import nothing above them (checked with ``ast`` over the sources)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import tokengraft

SRC = Path(tokengraft.__file__).resolve().parent
HEAVY = ("torch", "transformers", "tokenizers", "numpy", "safetensors", "tokengraft.io")


def _fresh_python(code: str) -> str:
    """stdout of ``code`` in a new interpreter (this one imported torch long ago)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


# ------------------------------------------------------------------------------ import cost


def test_top_level_and_cli_import_no_heavy_library():
    code = (
        "import sys\n"
        f"def heavy(): return [m for m in {HEAVY!r} if m in sys.modules]\n"
        "import tokengraft\n"
        "a = heavy()\n"
        "tokengraft.GraftConfig, tokengraft.NEED_FLAGS, tokengraft.TokengraftError\n"
        "b = heavy()\n"
        "import tokengraft.cli\n"
        "print(a, b, heavy())"
    )
    assert _fresh_python(code) == "[] [] []"


def test_help_runs_without_heavy_libraries():
    code = (
        "import sys\n"
        "from tokengraft.cli import run\n"
        "try:\n"
        "    run(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = _fresh_python(code)
    assert out.endswith("HEAVY []"), out
    for command in ("graft", "methods", "train-tokenizer", "eval", "corpus", "audit", "report"):
        assert command in out


def test_console_script_help():
    script = Path(sys.executable).parent / "tokengraft"
    if not script.is_file():
        pytest.skip("the tokengraft console script is not installed in this environment")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "graft" in done.stdout and "Traceback" not in done.stderr


# ------------------------------------------------------------------------------ public API


def test_public_api_is_what_all_lists():
    assert sorted(dir(tokengraft)) == sorted(tokengraft.__all__)
    assert set(tokengraft.__all__) == set(tokengraft._API) | {"__version__"}
    for name in tokengraft.__all__:
        assert getattr(tokengraft, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tokengraft.nope


def test_public_names_are_the_objects_their_modules_define():
    """Importing every subpackage (what any graft does) shadows no public name."""
    for package in ("grafting", "methods", "io", "vocab", "eval", "report", "data", "cli", "audit"):
        importlib.import_module(f"tokengraft.{package}")

    wrong = [
        name
        for name, module in tokengraft._API.items()
        if getattr(tokengraft, name) is not getattr(importlib.import_module(module), name)
    ]
    assert not wrong, f"public names that are not what their module defines: {wrong}"


def test_type_checking_block_imports_every_public_name():
    """IDEs and mypy see the lazy names through the TYPE_CHECKING imports: keep them in step."""
    tree = ast.parse((SRC / "__init__.py").read_text(encoding="utf-8"))
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    imported = {
        (node.module, alias.name)
        for node in ast.walk(block)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {(module, name) for name, module in tokengraft._API.items()}


# ------------------------------------------------------------------------------ layering


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``tokengraft`` module ``path`` imports, statically or by name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            if node.module == "tokengraft":  # from tokengraft import io -> tokengraft.io
                found += [(node.lineno, f"tokengraft.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module or ""))
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).endswith("import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.lineno, str(node.args[0].value)))
    return [(line, m) for line, m in found if m == "tokengraft" or m.startswith("tokengraft.")]


def _allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("io", ("tokengraft.io", "tokengraft.config", "tokengraft.errors")),
        ("vocab", ("tokengraft.vocab", "tokengraft.config", "tokengraft.errors")),
        (  # byte-level views of a model: in memory, above vocab only (no io, no eval)
            "bytes",
            ("tokengraft.bytes", "tokengraft.vocab", "tokengraft.config", "tokengraft.errors"),
        ),
        (  # the training layer: below methods and grafting, above io, eval and vocab
            "tune",
            ("tokengraft.tune", "tokengraft.io", "tokengraft.eval", "tokengraft.vocab")
            + ("tokengraft.config", "tokengraft.errors", "tokengraft.version"),
        ),
        (  # beside tune: below methods, report and grafting, above io, eval and vocab
            "audit",
            ("tokengraft.audit", "tokengraft.io", "tokengraft.eval", "tokengraft.vocab")
            + ("tokengraft.config", "tokengraft.errors", "tokengraft.version"),
        ),
    ],
)
def test_bottom_layers_import_nothing_above_them(layer, allowed):
    files = sorted((SRC / layer).glob("*.py"))
    assert len(files) >= 3
    bad = [
        f"{path.relative_to(SRC.parent)}:{line} imports {module}"
        for path in files
        for line, module in _imports(path)
        if not _allowed(module, allowed)
    ]
    assert not bad, "\n".join(bad)


def test_the_layer_check_sees_every_kind_of_import(tmp_path):
    """The checker itself: plain, from-, package-relative-by-name and dynamic imports."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import tokengraft.grafting\n"
        "from tokengraft.methods import omp\n"
        "from tokengraft import report\n"
        "import importlib\n"
        "importlib.import_module('tokengraft.eval.lm')\n"
        "import torch\n",
        encoding="utf-8",
    )
    modules = [m for _, m in _imports(sample)]
    assert modules == [
        "tokengraft.grafting",
        "tokengraft.methods",
        "tokengraft.report",
        "tokengraft.eval.lm",
    ]
