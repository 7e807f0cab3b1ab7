"""BENCHMARKS.md section of the vocabulary-operations benchmark (``bench.vocab_ops``).

Pure rendering of the stored result dicts: nothing here measures or imports the measuring
modules. The names shared by both sides live here too: where the results are stored, the parts in
table order, and how a part's method variants are keyed (``part_key``, ``variants``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "vocab_ops" / "vocab_ops.json"
PARTS = (
    "trim-smollm2",
    "trim-smollm2-words",
    "trim-gemma3",
    "trim-gemma3-words",
    "trim-e5",
    "trim-e5-words",
    "extend-smollm2",
    "extend-code",
    "multiword",
    "multiword-graft",
)
BARE_METHOD = "hypernet"  # the method of the results stored under a bare extend part name
VARIANT = "@"  # result key "extend-smollm2@distill:steps=0": another method's run of the part


def part_key(part: str, method: str, params: Sequence[str] = ()) -> str:
    """The results key of ``part`` run with ``method``: the part itself for BARE_METHOD, so that
    a change of ``tokengraft extend``'s default never overwrites the stored hypernet run.

    Example:
        >>> part_key("extend-smollm2", "distill", ["steps=0"])
        'extend-smollm2@distill:steps=0'
    """
    if method == BARE_METHOD and not params:
        return part
    return f"{part}{VARIANT}{method}" + (f":{','.join(params)}" if params else "")


def variants(stored: Mapping[str, Any], part: str) -> list[str]:
    """Keys of ``part``'s stored results: ``part`` itself first, then its method variants."""
    return sorted(k for k in stored if k == part or k.startswith(part + VARIANT))


Renderer = Callable[[Sequence[dict[str, Any]]], list[str]]


def _cmd(command: str) -> str:
    """A recorded command with the repository and home directories shortened."""
    return command.replace(f"{REPO}/", "").replace(str(Path.home()), "~")


def _pct(after: float, before: float) -> str:
    return f"{(after / before - 1) * 100:+.2f} %"


def _vs(value: float, ref: float | None, digits: int = 4) -> str:
    """``value``, and its change against ``ref`` when there is one."""
    text = f"{value:.{digits}f}"
    return text if ref is None else f"{text} ({_pct(value, ref)})"


def _each(render: Callable[[dict[str, Any]], list[str]]) -> Renderer:
    """A renderer of one result as a renderer of a part's results (one after the other)."""
    return lambda runs: [line for r in runs for line in render(r)]


def section(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of the vocabulary operations (parts not run are left out)."""
    parts = [
        "## vocabulary operations (trim, extend, multi-word)",
        "",
        "Made by `.venv/bin/python -m bench.vocab_ops` (one run per part; timings indicative: "
        "the machine was shared, and the extend parts and the multi-word grafts of 2026-12-02 "
        "ran at the same time with one thread each, so their five minutes of `tune` made fewer "
        "steps than a quiet machine's; each row says how many). Bits per byte are on the first bytes of the "
        "held-out files (de and en; code and en for the code extension; each table says how "
        "many), scored by `tokengraft eval model`; sentences are the first held-out German "
        "sentences of 5-60 words.",
        "",
    ]
    renderers: dict[str, Renderer] = {
        "trim-smollm2": _each(_trim_lines), "trim-smollm2-words": _each(_trim_lines),
        "trim-gemma3": _each(_trim_lines), "trim-gemma3-words": _each(_trim_lines),
        "trim-e5": _each(_e5_lines), "trim-e5-words": _each(_e5_lines),
        "extend-smollm2": _extend_lines, "extend-code": _extend_lines,
        "multiword": _each(_multiword_lines), "multiword-graft": _each(_multiword_graft_lines),
    }  # fmt: skip
    stored = _with_e5_words(results.get("parts", {}))
    for part in PARTS:
        runs = [stored[key] for key in variants(stored, part)]
        if runs:
            parts += renderers[part](runs) + [""]
    return "\n".join(parts).rstrip() + "\n"


def _trim_lines(r: dict[str, Any]) -> list[str]:
    rep, b, a = r["report"], r["before"], r["after"]
    en_before = f"{b['en_bpb']:.4f}" if "en_bpb" in b else "-"
    en_after = f"{a['en_bpb']:.4f} ({_pct(a['en_bpb'], b['en_bpb'])})" if "en_bpb" in a else "-"
    scored = f"the first {b.get('max_bytes', 30_000):,} bytes of each held-out file"
    title = f"### trim {r['model']} to the German train split"
    if r.get("words"):
        title += " + the words of Debian's wngerman list (`--keep-tokens`)"
    return [
        title,
        "",
        "| | vocab | parameters | de bits/byte | en bits/byte | de tokens | identical sentences | "
        "as original, removed tokens split |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| original | {rep['old_vocab_size']:,} | {rep['old_parameters']:,} | {b['de_bpb']:.4f} | "
        f"{en_before} | {b['de_tokens']:,} | | |",
        f"| trimmed | {rep['new_vocab_size']:,} | {rep['new_parameters']:,} | {a['de_bpb']:.4f} "
        f"({_pct(a['de_bpb'], b['de_bpb'])}) | {en_after} "
        f"| {a['de_tokens']:,} | {r['identical']}/{r['sentences']} | "
        f"{r.get('split_consistent', '-')}/{r['sentences']} |",
        "",
        f"Scored: {scored}. Reproduce: `{_cmd(r['trim']['command'])}` "
        f"({r['trim']['cpu_seconds']:.0f} CPU s).",
    ]


def _with_e5_words(stored: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` with the rows of trim-e5-words appended to trim-e5's table (and no table of
    their own) when both scored the same sentences against the same original."""
    e5, words = stored.get("trim-e5"), stored.get("trim-e5-words")
    same = ("model", "sentences", "vocab_size", "parameters")
    if not (e5 and words) or any(e5.get(k) != words.get(k) for k in same):
        return dict(stored)
    rest = {k: v for k, v in stored.items() if k != "trim-e5-words"}
    return rest | {"trim-e5": {**e5, "rows": [*e5["rows"], *words["rows"]]}}


def _e5_lines(r: dict[str, Any]) -> list[str]:
    """The encoder trim table: the original, then one row per trim (sentences and cosines
    against the original's sentence embeddings)."""
    title = "### trim multilingual-e5-small to the German train split"
    if r.get("keep_tokens"):
        title += " + the words of Debian's wngerman list (`--keep-tokens`)"
    else:
        title += ", side by side with vocabtrimmer"
    lines = [
        title,
        "",
        "| row | vocab | parameters | identical sentences | mean cosine | min cosine | CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| original | {r['vocab_size']:,} | {r['parameters']:,} | {r['sentences']}/{r['sentences']} | 1 | 1 | |",
    ]
    lines += [_e5_row(row, r["sentences"]) for row in r["rows"]]
    return lines + _keep_tokens_notes(r["rows"])


def _e5_row(row: dict[str, Any], sentences: int) -> str:
    if row.get("error"):
        return f"| {row['name']} | did not run: {row['error']} | | | | | |"
    return (
        f"| {row['name']} | {row['vocab_size']:,} | {row['parameters']:,} | "
        f"{row['identical']}/{sentences} | {row['cos_mean']:.4f} | {row['cos_min']:.4f} | "
        f"{row['cpu_seconds']:.0f} |"
    )


def _keep_tokens_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What ``--keep-tokens`` kept, and the command, for each row that kept a word list."""
    notes = [
        f"- `{row['name']}` keeps {row['keep_tokens']}. Reproduce: `{_cmd(row['command'])}`"
        for row in rows
        if row.get("keep_tokens") and not row.get("error")
    ]
    return ["", *notes] if notes else []


def _mbs(r: dict[str, Any], key: str) -> str:
    return f"{r[key] / 1e6:.2f}" if key in r else "-"


def _per_byte(scores: dict[str, Any], d: str) -> float:
    return scores[f"{d}_tokens"] / scores[f"{d}_bytes"]


def _method(r: dict[str, Any]) -> str:
    """The run's graft method as ``tokengraft extend`` flags would give it (``distill -p steps=0``)."""
    method = r["report"]["details"]["method"]
    return " ".join(
        [method["method"], *(f"-p {k}={v}" for k, v in method.get("params", {}).items())]
    )


def _extend_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    """One table for every method's run of an extend part: original, extended, tuned rows."""
    first = runs[0]
    b, d, rep = first["before"], first.get("domain", "de"), first["report"]
    tuned = "then `tokengraft tune`" if any("tuned" in r for r in runs) else "no `tokengraft tune`"
    lines = [
        f"### extend {first['model']} with {first['add']:,} {first.get('label', 'German')} tokens "
        f"(continued BPE on the {d} train split, rows by each row's method; {tuned})",
        "",
        f"| | method | vocab | {d} tokens/byte | {d} bits/byte | en bits/byte | "
        "encode MB/s, line by line | encode MB/s, one call |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        f"| original | | {rep['old_vocab_size']:,} | {_per_byte(b, d):.4f} | {b[f'{d}_bpb']:.4f} | "
        f"{b['en_bpb']:.4f} | {first['throughput_before'] / 1e6:.2f} | "
        f"{_mbs(first, 'throughput_one_call_before')} |",
    ]
    for r in runs:
        lines += _extended_rows(r, d)
    lines += [
        f"| `add_tokens` (same new strings) | | {rep['new_vocab_size']:,} | | | | "
        f"{first['throughput_add_tokens'] / 1e6:.2f} | "
        f"{_mbs(first, 'throughput_one_call_add_tokens')} |",
        "",
        f"Scored: the first {b.get('max_bytes', 30_000):,} bytes of each held-out file; "
        "% changes are against the original. Reproduce:",
        "",
        *(_extend_reproduce(r) for r in runs),
    ]
    return lines


def _extended_rows(r: dict[str, Any], d: str) -> list[str]:
    """The extended row of one run and, when it was tuned, the tuned row."""
    b, a, method = r["before"], r["after"], _method(r)
    vocab = f"{r['report']['new_vocab_size']:,}"
    change = (_per_byte(a, d) / _per_byte(b, d) - 1) * 100
    rows = [
        f"| extended | {method} | {vocab} | {_per_byte(a, d):.4f} ({change:+.1f} %) | "
        f"{_vs(a[f'{d}_bpb'], b[f'{d}_bpb'])} | {_vs(a['en_bpb'], b['en_bpb'])} | "
        f"{r['throughput_after'] / 1e6:.2f} | {_mbs(r, 'throughput_one_call_after')} |"
    ]
    if "tuned" in r:
        t, steps = r["tuned"], r.get("tune_report", {}).get("steps", "?")
        rows.append(
            f"| + tune, {r['tune_minutes']:g} min ({steps} steps) | {method} | {vocab} | | "
            f"{_vs(t[f'{d}_bpb'], b[f'{d}_bpb'])} | {_vs(t['en_bpb'], b['en_bpb'])} | | |"
        )
    return rows


def _extend_reproduce(r: dict[str, Any]) -> str:
    """One list item: the run's extend command and its tune command, with their times."""
    made = r["extend"]
    line = f"- {_method(r)}: `{_cmd(made['command'])}` ({made['cpu_seconds']:.0f} CPU s)"
    if "tune" in r:
        tune = r["tune"]
        line += (
            f", then `{_cmd(tune['command'])}` ({tune['seconds']:.0f} s, "
            f"{tune['cpu_seconds']:.0f} CPU s)"
        )
    return line


def _multiword_lines(r: dict[str, Any]) -> list[str]:
    p, m = r["rows"]["plain"], r["rows"]["multiword"]
    return [
        f"### multi-word vs plain byte-level BPE, {r['vocab_size']:,} tokens, trained on the "
        f"German train split (multi-word stage from {r['transition']:,})",
        "",
        "| tokenizer | de bytes/token | en bytes/token |",
        "|---|---:|---:|",
        f"| plain | {p['de_bytes_per_token']:.3f} | {p['en_bytes_per_token']:.3f} |",
        f"| multi-word | {m['de_bytes_per_token']:.3f} "
        f"({_pct(m['de_bytes_per_token'], p['de_bytes_per_token'])}) | "
        f"{m['en_bytes_per_token']:.3f} ({_pct(m['en_bytes_per_token'], p['en_bytes_per_token'])}) |",
    ]


def _multiword_graft_lines(r: dict[str, Any]) -> list[str]:
    """Plain and multi-word tokenizer after grafting: bytes per token, bits per byte, time."""
    b, p, m = r["before"], r["rows"]["plain"], r["rows"]["multiword"]
    commands = ", ".join(f"`{_cmd(row['graft']['command'])}`" for row in (p, m))
    return [
        f"### {r['model']} grafted onto the plain and the multi-word tokenizer "
        f"({r['vocab_size']:,} tokens each, `--method {r['method']}` on the German train split)",
        "",
        "| tokenizer | de bytes/token | en bytes/token | de bits/byte | en bits/byte | graft s | "
        "graft CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| original ({r['model']}) | | | {b['de_bpb']:.4f} | {b['en_bpb']:.4f} | | |",
        _graft_row("plain", p, None),
        _graft_row("multi-word", m, p),
        "",
        f"Scored: the first {b.get('max_bytes', 30_000):,} bytes of each held-out file; the % "
        f"changes of the multi-word row are against the plain row. Reproduce: {commands}.",
    ]


def _graft_row(name: str, row: dict[str, Any], ref: dict[str, Any] | None) -> str:
    """One tokenizer's row; with ``ref`` (another row) every number shows its change against it."""
    cells = [name]
    for key in ("de_bytes_per_token", "en_bytes_per_token"):
        cells.append(_vs(row[key], ref[key] if ref else None, 3))
    for key in ("de_bpb", "en_bpb"):
        cells.append(_vs(row["scores"][key], ref["scores"][key] if ref else None))
    cells += [f"{row['graft']['seconds']:.0f}", f"{row['graft']['cpu_seconds']:.0f}"]
    return "| " + " | ".join(cells) + " |"
