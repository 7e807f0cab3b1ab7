"""The static HTML report: builders on tiny dicts, kind detection, `tokengraft report`, `graft
--html`, and a render in headless Chromium checked for a screenshot that is not blank."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tokengraft.cli import run
from tokengraft.report.audit_page import audit_sections
from tokengraft.report.html import Section, render_html, token_spans, write_html
from tokengraft.report.sections import bench_sections, graft_sections, tokenizer_sections

TOKENIZER_EVAL = {
    "kind": "tokenizer_eval",
    "rows": [
        {
            "tokenizer": tok,
            "file": f"{lang}.txt",
            "language": lang,
            "n_bytes": 1000,
            "n_chars": 990,
            "n_words": 180,
            "n_tokens": n,
            "fertility": n / 180,
            "fertility_unit": "word",
            "bytes_per_token": 1000 / n,
            "chars_per_token": 990 / n,
            "renyi_efficiency": 0.41,
            "shannon_efficiency": 0.8,
            "vocab_utilisation": 0.1,
            "split_word_share": 0.3,
            "unk_rate": 0.0,
            "byte_fallback_rate": 0.0,
            "roundtrip": True,
        }
        for tok, counts in (("smollm2-135m", (250, 400)), ("gemma3", (240, 300)))
        for lang, n in zip(("en", "de"), counts, strict=True)
    ],
    "parallel": {
        "smollm2-135m": {"parity": {"en": 1.0, "de": 1.6}, "gini": 0.11},
        "gemma3": {"parity": {"en": 1.0, "de": 1.25}, "gini": 0.05},
    },
    "schemes": {
        "smollm2-135m": {"digits": "single digits", "whitespace": "runs of spaces"},
        "gemma3": {"digits": "single digits", "whitespace": "runs of spaces"},
    },
    "warnings": ["gemma3 and smollm2-135m split <digits> differently"],
    "examples": {
        "smollm2-135m": ["The", " quick", " brown", " <fox>", "."],
        "gemma3": ["The", " quick", " bro", "wn", " <fox>", "."],
    },
    "token_lengths": {"smollm2-135m": {"1": 10, "2": 30, "3": 25}, "gemma3": {"1": 5, "2": 20}},
}
GRAFT_REPORT = {
    "model": "smollm2-135m",
    "new_tokenizer": "de-bpe",
    "config": {"method": "subword_mean", "seed": 0, "params": {"k": 8}},
    "old_vocab_size": 400,
    "new_vocab_size": 500,
    "tied": True,
    "counts": {"copied": 300, "role": 3, "computed": 190, "fallback": 7},
    "seconds": {"align": 0.1, "total": 1.5},
    "warnings": ["chat template copied"],
    "peak_rss_mb": 100.0,
    "versions": {"tokengraft": "0.1.0"},
}
BENCH = {
    "scenario": "de-fresh",
    "summary": "SmolLM2 -> German BPE",
    "rows": {
        "baseline:original": {"name": "original", "kind": "baseline", "target_bpb": 1.6},
        "ours:mean": {"name": "mean", "kind": "ours", "target_bpb": 3.0, "english_bpb": 2.3},
        "peer:x": {"name": "x", "kind": "peer", "target_bpb": None, "error": "failed"},
    },
}
AUDIT = {
    "kind": "audit",
    "model": "tiny",
    "vocab_size": 10,
    "tokenizer_size": 10,
    "tied": True,
    "special": 2,
    "partial": 0,
    "unreachable": [{"id": 6, "token": "a<b>c"}],
    "n_unreachable": 1,
    "reference_kind": "unused",
    "reference_size": 1,
    "candidates": [
        {
            "id": 3,
            "token": "␣fox",
            "score": 0.9,
            "norm": 0.5,
            "repeat_probability": 1e-5,
            "under_trained": True,
        },
        {
            "id": 4,
            "token": "x",
            "score": 0.2,
            "norm": 2.0,
            "repeat_probability": 0.3,
            "under_trained": False,
        },
    ],
    "controls": [
        {
            "id": 5,
            "token": "y",
            "score": -0.1,
            "norm": 2.1,
            "repeat_probability": 0.0,
            "under_trained": True,
        }
    ],
    "n_under_trained": 1,
    "loss": {
        "n_bytes": 100,
        "n_tokens": 30,
        "bits_per_byte": 2.5,
        "by_source": {
            "copied": {
                "tokens": 8.0,
                "occurrences": 20.0,
                "nats": 50.0,
                "mean_nats": 2.5,
                "share": 0.6,
            }
        },
        "top": [
            {
                "id": 3,
                "token": "␣fox",
                "source": "computed",
                "count": 2,
                "nats": 9.0,
                "mean_nats": 4.5,
                "share": 0.1,
            }
        ],
    },
    "config": {"top": 20, "threshold": 0.01},
    "seconds": {"total": 1.0},
}


class _Checker(HTMLParser):
    """Collects tags, checks nesting of the elements that must close, and every URL."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.urls: list[str] = []
        self.images = 0

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for key in ("src", "href"):
            if values.get(key):
                self.urls.append(values[key])
        self.images += tag == "img"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def _check_page(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    assert page.startswith("<!DOCTYPE html>")
    assert all(url.startswith("data:image/png;base64,") for url in checker.urls), checker.urls
    assert not re.search(r"https?://", page), "the page must not reach the network"
    return checker


@pytest.mark.parametrize(
    ("builder", "data", "images", "texts"),
    [
        (tokenizer_sections, TOKENIZER_EVAL, 3, ["Parity", "Gini", "single digits", "&lt;fox&gt;"]),
        (graft_sections, GRAFT_REPORT, 1, ["subword_mean", "k=8", "chat template copied"]),
        (bench_sections, BENCH, 1, ["de-fresh", "failed", "mean"]),
        (audit_sections, AUDIT, 2, ["a&lt;b&gt;c", "Costliest tokens", "Controls"]),
    ],
)
def test_builders_make_valid_self_contained_html(builder, data, images, texts):
    sections = builder(data)
    assert sections and all(isinstance(s, Section) for s in sections)
    page = render_html("report <test>", sections)
    checker = _check_page(page)
    assert checker.images == images
    assert "report &lt;test&gt;" in page
    for text in texts:
        assert text in page, text


def test_builders_tolerate_missing_optional_parts():
    minimal = {"kind": "tokenizer_eval", "rows": TOKENIZER_EVAL["rows"][:1], "parallel": None}
    page = render_html("t", tokenizer_sections(minimal))
    assert _check_page(page).images == 1
    no_loss = {**AUDIT, "loss": None, "controls": [], "candidates": []}
    _check_page(render_html("a", audit_sections(no_loss)))


def test_token_spans_show_boundaries_and_escape():
    spans = token_spans(["<a>", " b"])
    assert spans.count("<span") == 2 and "&lt;a&gt;" in spans and 'class="tok c1"' in spans


def test_write_html_is_atomic_and_complete(tmp_path):
    out = tmp_path / "sub" / "r.html"
    write_html(out, "x", [Section(title="s", body="<p>hi</p>")])
    assert out.read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]


def _inputs(tmp_path: Path) -> list[Path]:
    graft = tmp_path / "graft"
    graft.mkdir()
    (graft / "report.json").write_text(json.dumps(GRAFT_REPORT), encoding="utf-8")
    paths = [graft]
    for name, data in (("bench.json", BENCH), ("audit.json", AUDIT), ("tok.json", TOKENIZER_EVAL)):
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
        paths.append(tmp_path / name)
    return paths


def test_report_command_detects_every_kind(tmp_path, capsys):
    out = tmp_path / "report.html"
    assert run(["report", *map(str, _inputs(tmp_path)), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    checker = _check_page(page)
    assert checker.images == 1 + 1 + 2 + 3
    for title in ("Graft: smollm2-135m", "Benchmark: de-fresh", "Audit: tiny", "Parity"):
        assert title in page


def test_several_benchmarks_get_one_overview_chart(tmp_path, capsys):
    other = {**BENCH, "scenario": "code-fresh"}
    paths = []
    for name, data in (("a.json", BENCH), ("b.json", other)):
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
        paths.append(str(tmp_path / name))
    out = tmp_path / "r.html"
    assert run(["report", *paths, "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert _check_page(page).images == 3
    assert page.index("per method and scenario") < page.index("Benchmark: de-fresh")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"kind": "something"}', "is not something tokengraft report knows"),
        ("[1, 2]", "is not something tokengraft report knows"),
        ("{not json", "JSON"),
        (None, "report input not found"),
        ("DIR", "without report.json"),
    ],
)
def test_report_command_bad_input(tmp_path, capsys, content, message):
    path = tmp_path / "in.json"
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    out = tmp_path / "r.html"
    assert run(["report", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_graft_html(tmp_path, capsys, write_checkpoint, new_tok_dir):
    base = write_checkpoint(tied=True)
    out, html = tmp_path / "out", tmp_path / "graft.html"
    argv = ["graft", str(base), str(new_tok_dir), str(out), "--method", "mean", "--html", str(html)]
    assert run([*argv, "-q"]) == 0
    page = html.read_text(encoding="utf-8")
    assert _check_page(page).images == 1 and "Rows per source" in page


# ------------------------------------------------------------------------- headless Chromium


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "chromium is not installed: run bash scripts/setup_chromium.sh (needs apt-get)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    page = tmp_path / "report.html"
    assert run(["report", *map(str, _inputs(tmp_path)), "--out", str(page)]) == 0
    shot = tmp_path / "shot.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--screenshot={shot}", "--window-size=1280,2000", page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]

    from PIL import Image

    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1280, 2000)
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    # A blank page has one colour; text, tables and embedded plots give thousands.
    assert len(colours) > 200, f"{len(colours)} distinct colours: the page looks blank"
    white = max(count for count, _ in colours)
    assert white < 0.97 * 1280 * 2000, "the screenshot is almost all one colour"
