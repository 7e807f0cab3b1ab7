"""bench.vocab_ops and its modules: sentence selection, options and the BENCHMARKS.md section
(pure parts only; no model is loaded)."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from typing import Any

from bench import vocab_ops, vocab_ops_common, vocab_ops_table
from bench.vocab_ops_table import section
from tokengraft.cli.vocab import extend_cmd


def _scores(de: float, en: float | None, tokens: int) -> dict[str, Any]:
    out: dict[str, Any] = {"de_bpb": de, "de_tokens": tokens, "de_bytes": 30_000}
    if en is not None:
        out |= {"en_bpb": en, "en_tokens": 9_000, "en_bytes": 30_000}
    return out


RESULTS: dict[str, Any] = {
    "max_bytes": 30_000,
    "parts": {
        "trim-gemma3": {
            "model": "gemma3-270m",
            "report": {
                "old_vocab_size": 262_144,
                "new_vocab_size": 20_000,
                "old_parameters": 268_000_000,
                "new_parameters": 110_000_000,
            },
            "trim": {"command": "tokengraft trim gemma3-270m OUT", "cpu_seconds": 60.0},
            "sentences": 200,
            "identical": 150,
            "before": _scores(1.5, None, 9_000),
            "after": _scores(1.49, None, 9_000),
        },
        "trim-e5": {
            "model": "multilingual-e5-small",
            "sentences": 200,
            "vocab_size": 250_002,
            "parameters": 117_505_920,
            "rows": [
                {
                    "name": "ours",
                    "vocab_size": 15_000,
                    "parameters": 27_000_000,
                    "identical": 130,
                    "cos_mean": 0.99,
                    "cos_min": 0.9,
                    "cpu_seconds": 20.0,
                },
                {"name": "vocabtrimmer", "error": "venv missing"},
            ],
        },  # fmt: skip
        "extend-smollm2": {
            "model": "smollm2-135m",
            "add": 8_000,
            "report": {
                "old_vocab_size": 49_152,
                "new_vocab_size": 57_152,
                "details": {"method": {"method": "hypernet"}},
            },
            "extend": {"command": "tokengraft extend ...", "cpu_seconds": 100.0},
            "throughput_before": 2e6,
            "throughput_after": 2.1e6,
            "throughput_add_tokens": 1e4,
            "before": _scores(1.6, 0.98, 12_000),
            "after": _scores(1.62, 0.98, 7_000),
        },
        "multiword": {
            "vocab_size": 32_000,
            "transition": 25_600,
            "rows": {
                "plain": {"de_bytes_per_token": 4.0, "en_bytes_per_token": 3.0},
                "multiword": {"de_bytes_per_token": 4.8, "en_bytes_per_token": 3.2},
            },
        },
    },
}


def test_section_renders_every_part() -> None:
    text = section(RESULTS)
    assert "### trim gemma3-270m" in text and "| trimmed | 20,000 |" in text
    assert "-0.67 %" in text  # 1.49 vs 1.5
    assert "did not run: venv missing" in text
    assert "(-41.7 %)" in text  # tokens per byte 7000/30000 vs 12000/30000
    assert "+20.00 %" in text  # multi-word bytes per token


def test_heldout_sentences_are_cut_at_sentence_ends() -> None:
    text = "Eins zwei drei vier fünf. Kurz.\nSechs sieben acht neun zehn elf!\n"
    assert vocab_ops_common.heldout_sentences(text, 5) == [
        "Eins zwei drei vier fünf.",
        "Sechs sieben acht neun zehn elf!",
    ]


def _run(cmd: str, seconds: float = 300.0) -> dict[str, Any]:
    return {"command": cmd, "seconds": seconds, "cpu_seconds": seconds / 2}


def _extend(
    domain: str, method: str, params: dict[str, str], after: float, tuned: float | None
) -> dict[str, Any]:
    """An extend result: original 1.0 bpb and 0.5 tokens/byte on the domain, en 0.9."""
    scores = {
        "before": {f"{domain}_bpb": 1.0, f"{domain}_tokens": 15_000, f"{domain}_bytes": 30_000,
                   "en_bpb": 0.9, "max_bytes": 30_000},
        "after": {f"{domain}_bpb": after, f"{domain}_tokens": 12_000, f"{domain}_bytes": 30_000,
                  "en_bpb": 0.9045},
    }  # fmt: skip
    out: dict[str, Any] = {
        "model": "smollm2-135m",
        "add": 4_000,
        "domain": domain,
        "label": "Python code" if domain == "code" else "German",
        "report": {
            "old_vocab_size": 49_152,
            "new_vocab_size": 53_152,
            "details": {"method": {"method": method, "params": params}},
        },
        "extend": _run(f"tokengraft extend --method {method}"),
        "throughput_before": 1e6,
        "throughput_after": 1.5e6,
        "throughput_add_tokens": 2e5,
        **scores,
    }
    if tuned is not None:
        out |= {
            "tune_minutes": 5.0,
            "tune": _run("tokengraft tune EXT TUNED --minutes 5", 312.0),
            "tune_report": {"steps": 123},
            "tuned": {f"{domain}_bpb": tuned, "en_bpb": 0.8991},
        }
    return out


def _graft_row(bytes_per_token: float, de: float, seconds: float) -> dict[str, Any]:
    return {
        "graft": _run(f"tokengraft graft smollm2-135m TOK-{bytes_per_token} OUT", seconds),
        "de_bytes_per_token": bytes_per_token,
        "en_bytes_per_token": 3.0,
        "scores": {"de_bpb": de, "en_bpb": 2.0},
    }


NEW: dict[str, Any] = {
    "extend-code": _extend("code", "hypernet", {}, 1.005, 0.98),
    "extend-code@distill:steps=0": _extend("code", "distill", {"steps": "0"}, 1.02, None),
    "multiword-graft": {
        "model": "smollm2-135m",
        "method": "tune",
        "vocab_size": 32_000,
        "before": {"de_bpb": 1.6, "en_bpb": 0.98},
        "rows": {"plain": _graft_row(4.0, 2.0, 600.0), "multiword": _graft_row(5.0, 2.1, 700.0)},
    },
}


def _table(text: str, title: str) -> list[str]:
    """The lines of the section of ``text`` whose title starts with ``title``."""
    start = text.index(title)
    end = text.find("\n### ", start + 1)
    return text[start : end if end >= 0 else len(text)].splitlines()


def _row(lines: list[str], first_cells: str) -> str:
    return next(line for line in lines if line.startswith(first_cells))


def test_extend_code_rows_show_changes_against_the_original() -> None:
    lines = _table(section({"parts": NEW}), "### extend smollm2-135m with 4,000 Python")
    assert "| | method | vocab | code tokens/byte | code bits/byte | en bits/byte |" in lines[2]
    assert "then `tokengraft tune`" in lines[0]
    assert _row(lines, "| original |").startswith(
        "| original | | 49,152 | 0.5000 | 1.0000 | 0.9000"
    )
    extended = _row(lines, "| extended | hypernet |")
    assert "| 0.4000 (-20.0 %) | 1.0050 (+0.50 %) | 0.9045 (+0.50 %) | 1.50 |" in extended
    tuned = _row(lines, "| + tune, 5 min (123 steps) | hypernet |")
    assert "| 0.9800 (-2.00 %) | 0.8991 (-0.10 %) |" in tuned
    assert "(312 s, 156 CPU s)" in "\n".join(lines)


def test_extend_methods_share_one_table_without_overwriting() -> None:
    lines = _table(section({"parts": NEW}), "### extend")
    distill = _row(lines, "| extended | distill -p steps=0 |")
    assert "1.0200 (+2.00 %)" in distill
    assert not any(line.startswith("| + tune, 5 min (123 steps) | distill") for line in lines)
    assert sum(line.startswith("| extended |") for line in lines) == 2
    assert "- distill -p steps=0: `tokengraft extend --method distill`" in "\n".join(lines)


def test_multiword_graft_table() -> None:
    lines = _table(section({"parts": NEW}), "### smollm2-135m grafted onto")
    assert "`--method tune`" in lines[0]
    assert _row(lines, "| original (smollm2-135m) |").endswith("| 1.6000 | 0.9800 | | |")
    assert _row(lines, "| plain |") == "| plain | 4.000 | 3.000 | 2.0000 | 2.0000 | 600 | 300 |"
    assert _row(lines, "| multi-word |") == (
        "| multi-word | 5.000 (+25.00 %) | 3.000 (+0.00 %) | 2.1000 (+5.00 %) | 2.0000 (+0.00 %) "
        "| 700 | 350 |"
    )
    assert "`tokengraft graft smollm2-135m TOK-5.0 OUT`" in lines[-1]


def test_missing_parts_are_skipped() -> None:
    assert "###" not in section({})
    only = section({"parts": {"multiword-graft": NEW["multiword-graft"]}})
    assert only.count("\n### ") == 1 and "### extend" not in only and "### trim" not in only


def test_stored_results_still_render() -> None:
    text = section(json.loads(vocab_ops_table.RESULTS.read_text(encoding="utf-8")))
    assert "| extended | hypernet | 57,152 |" in text
    assert "### multi-word vs plain" in text and "### trim smollm2-135m" in text


def test_result_keys_by_method() -> None:
    assert vocab_ops_table.part_key("extend-smollm2", "hypernet") == "extend-smollm2"
    assert vocab_ops_table.part_key("extend-code", "tune") == "extend-code@tune"
    key = vocab_ops_table.part_key("extend-smollm2", "distill", ["steps=0"])
    assert key == "extend-smollm2@distill:steps=0"
    stored = dict.fromkeys(["extend-smollm2-words", key, "extend-smollm2", "extend-smollm2@a"])
    assert vocab_ops_table.variants(stored, "extend-smollm2") == [
        "extend-smollm2",
        "extend-smollm2@a",
        key,
    ]
    assert "trim-smollm2" not in vocab_ops_table.variants({"trim-smollm2-words": 1}, "trim-smollm2")


def test_options_and_commands(tmp_path: Path) -> None:
    parts, cfg = vocab_ops.parse(["--parts", "extend-code", "multiword-graft"])
    assert parts == ["extend-code", "multiword-graft"] and cfg.tune_minutes == 5.0
    extend_default = inspect.signature(extend_cmd).parameters["method"].default
    assert cfg.extend_method == extend_default and cfg.extend_params == ()
    _, cfg = vocab_ops.parse(
        ["--extend-method", "distill", "--extend-param", "steps=0", "--tune-minutes", "2.5"]
    )
    assert vocab_ops.result_key("extend-code", cfg) == "extend-code@distill:steps=0"
    assert vocab_ops.result_key("multiword-graft", cfg) == "multiword-graft"
    domain = vocab_ops.Domain(
        part="extend-code", key="code", label="Python code", train=tmp_path / "train.txt",
        heldout={"code": tmp_path / "heldout.txt"}, add=4_000,
    )  # fmt: skip
    cmd = vocab_ops.extend_command(domain, tmp_path / "out", cfg)
    assert cmd[1:4] == ["extend", "smollm2-135m", str(tmp_path / "out")]
    assert " --add 4000 --method distill -p steps=0 " in " ".join(cmd)
    tune = vocab_ops.tune_command(tmp_path / "out", tmp_path / "t", domain.train, cfg.tune_minutes)
    assert tune[1:6] == [
        "tune",
        str(tmp_path / "out"),
        str(tmp_path / "t"),
        "--texts",
        str(domain.train),
    ]
    assert " --minutes 2.5 " in " ".join(tune) and "--steps" not in tune
    graft = vocab_ops.graft_command(tmp_path / "tok", tmp_path / "g", domain.train)
    assert " --method tune --corpus " in " ".join(graft)


def test_original_scores_are_reused_only_when_they_match() -> None:
    results = {"parts": NEW | {"trim-smollm2": {"before": {"de_bpb": 1.6, "en_bpb": 0.98}}}}
    code = vocab_ops._before(results, 30_000, ["extend-code"], ("code", "en"))
    assert code is not None and code["code_bpb"] == 1.0
    assert vocab_ops._before(results, 10_000, ["extend-code"], ("code", "en")) is None
    de = vocab_ops._before(results, 30_000, ["extend-code", "trim-smollm2"])
    assert de == {"de_bpb": 1.6, "en_bpb": 0.98, "max_bytes": 30_000}


WORDS_ROW: dict[str, Any] = {
    "name": "tokengraft trim --min-count 1 --keep-tokens wngerman",
    "vocab_size": 20_100,
    "parameters": 29_800_000,
    "identical": 181,
    "cos_mean": 0.9961,
    "cos_min": 0.95,
    "cpu_seconds": 30.0,
    "command": f"{vocab_ops_table.REPO}/.venv/bin/tokengraft trim multilingual-e5-small OUT "
    "--texts de/train.txt --min-count 1 --keep-tokens /tmp/ngerman-keep.txt",
    "keep_tokens": "every word of Debian's wngerman list (1,234 words)",
}
E5_WORDS: dict[str, Any] = {
    "model": "multilingual-e5-small",
    "sentences": 200,
    "vocab_size": 250_002,
    "parameters": 117_505_920,
    "keep_tokens": "wngerman",
    "rows": [WORDS_ROW],
}
WORDS_CELLS = "| 20,100 | 29,800,000 | 181/200 | 0.9961 | 0.9500 | 30 |"


def test_e5_words_row_joins_the_e5_table() -> None:
    text = section({"parts": RESULTS["parts"] | {"trim-e5-words": E5_WORDS}})
    assert text.count("### trim multilingual-e5-small") == 1
    lines = _table(text, "### trim multilingual-e5-small to the German train split, side by side")
    names = [line.split(" | ")[0] for line in lines if line.startswith("| ")][1:]  # no header
    assert names == ["| original", "| ours", "| vocabtrimmer", f"| {WORDS_ROW['name']}"]
    assert _row(lines, f"| {WORDS_ROW['name']} |").endswith(WORDS_CELLS)
    assert _row(lines, "| original |").startswith("| original | 250,002 | 117,505,920 | 200/200 |")
    note = _row(lines, f"- `{WORDS_ROW['name']}` keeps every word of Debian's wngerman list")
    assert "`.venv/bin/tokengraft trim multilingual-e5-small OUT " in note  # repository stripped
    assert RESULTS["parts"]["trim-e5"]["rows"][-1]["name"] == "vocabtrimmer"  # input unchanged


def test_e5_words_alone_has_its_own_table() -> None:
    text = section({"parts": {"trim-e5-words": E5_WORDS}})
    lines = _table(text, "### trim multilingual-e5-small to the German train split + the words")
    assert "vocabtrimmer" not in text
    assert _row(lines, "| original |").startswith("| original | 250,002 | 117,505,920 | 200/200 |")
    assert _row(lines, f"| {WORDS_ROW['name']} |").endswith(WORDS_CELLS)


def test_e5_words_on_other_sentences_is_not_merged() -> None:
    words = E5_WORDS | {"sentences": 100}
    text = section({"parts": RESULTS["parts"] | {"trim-e5-words": words}})
    assert text.count("### trim multilingual-e5-small") == 2
    merged = _table(text, "### trim multilingual-e5-small to the German train split, side by side")
    assert not any(line.startswith(f"| {WORDS_ROW['name']}") for line in merged)
    alone = _table(text, "### trim multilingual-e5-small to the German train split + the words")
    assert "| 181/100 |" in _row(alone, f"| {WORDS_ROW['name']} |")


def test_every_part_has_a_job_and_a_table() -> None:
    parts, cfg = vocab_ops.parse(["--parts", "trim-e5-words"])
    assert parts == ["trim-e5-words"]
    assert set(vocab_ops._jobs(cfg, {"parts": {}})) == set(vocab_ops_table.PARTS)
    assert vocab_ops.result_key("trim-e5-words", cfg) == "trim-e5-words"
    assert vocab_ops.RESULTS == vocab_ops_table.RESULTS  # the file main writes, table.py reads


def test_modules_are_split_without_cycles() -> None:
    bench = Path(vocab_ops.__file__).parent
    for path in bench.glob("vocab_ops*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 400, path.name
    tree = ast.parse((bench / "vocab_ops_table.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("bench")}
