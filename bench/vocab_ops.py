"""Benchmark of the vocabulary operations: trim, extend and multi-word tokenizers.

Every model is made by the ``tokengraft`` command in a child process (vocabtrimmer by its own
venv's python) and scored by ``tokengraft eval model`` on the same held-out bytes; tokenisation and
sentence-embedding measures run here on the public API. Results go to
``bench/results/vocab_ops/vocab_ops.json`` (one entry per part, kept across runs) and into
BENCHMARKS.md through ``python -m bench.table``.

An extend part (``extend-smollm2``: German, ``extend-code``: Python code) extends SmolLM2 with
``--extend-method`` rows (default: ``tokengraft extend``'s), then tunes the new rows for
``--tune-minutes`` with ``tokengraft tune``. A hypernet run is stored under the part's name, any
other under ``<part>@<method>[:<params>]``, so that methods sit side by side.
``multiword-graft`` grafts SmolLM2 onto the two tokenizers of ``multiword``. The trim parts live
in ``bench.vocab_ops_trim``, the helpers every part measures with in ``bench.vocab_ops_common``,
and the BENCHMARKS.md section in ``bench.vocab_ops_table``.

Example:
    .venv/bin/python -m bench.vocab_ops --parts trim-smollm2 trim-e5 trim-e5-words
    .venv/bin/python -m bench.vocab_ops --parts extend-smollm2 --extend-method distill \\
        --extend-param steps=0 --tune-minutes 5
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import records
from bench.vocab_ops_common import BASE, TOKENGRAFT, Config, bpb, corpus, load_tok, run
from bench.vocab_ops_table import PARTS, RESULTS, part_key, section, variants
from bench.vocab_ops_trim import trim_decoder, trim_e5, trim_e5_words

EXTEND_PARTS = ("extend-smollm2", "extend-code")  # stored per graft method (part_key)
GRAFT_METHOD = "tune"  # best donor-free method on de-fresh (BENCHMARKS.md), for multiword-graft
MULTIWORD_FLAGS: dict[str, tuple[str, ...]] = {"plain": (), "multiword": ("--multiword",)}


def _slug(key: str) -> str:
    """A results key as a file name (``extend-smollm2@distill:steps=0`` -> ``...-distill-steps-0``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", key)


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


@dataclass(frozen=True, kw_only=True)
class Domain:
    """What an extend part learns its new tokens from, and the held-out files it scores.

    Attributes:
        part: the part's name (``extend-smollm2``, ``extend-code``).
        key: score prefix of the domain's held-out file (``de``, ``code``).
        label: the domain in words, for the table title.
        train: the text the new tokens are learnt from and tuned on.
        heldout: score prefix -> held-out file: the domain's first, then English.
        add: how many tokens to add.
    """

    part: str
    key: str
    label: str
    train: Path
    heldout: Mapping[str, Path]
    add: int


def german(cfg: Config) -> Domain:
    """The German corpus (``tokengraft.fetch_corpora``), cfg.add tokens."""
    heldout = {"de": corpus("de", "heldout"), "en": corpus("en", "heldout")}
    return Domain(
        part="extend-smollm2", key="de", label="German", train=corpus("de", "train"),
        heldout=heldout, add=cfg.add,
    )  # fmt: skip


def python_code(cfg: Config) -> Domain:
    """The code-fresh scenario's corpus (its train split, its held-out and English's), cfg.add_code
    tokens."""
    from bench.scenarios import SCENARIOS, resolve

    inputs = resolve(SCENARIOS["code-fresh"])  # also trains that scenario's tokenizer once
    heldout = {"code": inputs.target_heldout, "en": inputs.english_heldout}
    return Domain(
        part="extend-code", key="code", label="Python code", train=inputs.target_train,
        heldout=heldout, add=cfg.add_code,
    )  # fmt: skip


def extend_command(domain: Domain, out: Path, cfg: Config) -> list[str]:
    """``tokengraft extend`` of SmolLM2 with ``domain.add`` tokens and cfg's method into ``out``."""
    cmd = [str(TOKENGRAFT), "extend", BASE, str(out), "--texts", str(domain.train)]
    cmd += ["--add", str(domain.add), "--method", cfg.extend_method]
    for param in cfg.extend_params:
        cmd += ["-p", param]
    return [*cmd, "--force", "--quiet", "--json"]


def tune_command(checkpoint: Path, out: Path, train: Path, minutes: float) -> list[str]:
    """``tokengraft tune`` of the checkpoint's new rows (its default) on ``train`` for ``minutes``."""
    cmd = [str(TOKENGRAFT), "tune", str(checkpoint), str(out), "--texts", str(train)]
    cmd += ["--minutes", f"{minutes:g}", "--checkpoint-every", "0"]  # one save, at the end
    return [*cmd, "--force", "--quiet", "--json"]


def extend(cfg: Config, domain: Domain, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """SmolLM2 + ``domain.add`` tokens (continued BPE, cfg's method), scored before and after the
    extend and after ``tokengraft tune``; encoding speed against ``add_tokens``."""
    slug = _slug(part_key(domain.part, cfg.extend_method, cfg.extend_params))
    out = cfg.scratch / slug
    made = run(extend_command(domain, out, cfg), cfg.scratch / f"{slug}.log")
    report = json.loads(made.pop("stdout"))
    old, new = load_tok(BASE), load_tok(str(out))
    text = domain.heldout[domain.key].read_text(encoding="utf-8")
    lines = [x for x in text.splitlines() if x.strip()]
    return {
        "model": BASE, "add": domain.add, "domain": domain.key, "label": domain.label,
        "method": cfg.extend_method, "params": list(cfg.extend_params), "extend": made,
        "report": {k: report[k] for k in ("old_vocab_size", "new_vocab_size", "details", "seconds")},
        **throughputs(old, new, lines[:2000]),
        "before": before or bpb(BASE, cfg, cfg.scratch / f"eval-{domain.part}-before.log",
                                files=domain.heldout),
        "after": bpb(str(out), cfg, cfg.scratch / f"eval-{slug}-after.log", files=domain.heldout),
        **tune_step(out, domain, cfg),
    }  # fmt: skip


def tune_step(extended: Path, domain: Domain, cfg: Config) -> dict[str, Any]:
    """The extended checkpoint's new rows tuned on the domain's train split for cfg.tune_minutes,
    and the scores of the result (nothing when tune_minutes is 0)."""
    if cfg.tune_minutes <= 0:
        return {}
    out = extended.with_name(f"{extended.name}-tuned")
    cmd = tune_command(extended, out, domain.train, cfg.tune_minutes)
    made = run(cmd, cfg.scratch / f"{out.name}.log")
    report = json.loads(made.pop("stdout"))
    keep = ("rows", "slots", "steps", "tokens_seen", "seconds", "final_loss", "config")
    return {
        "tune_minutes": cfg.tune_minutes,
        "tune": made,
        "tune_report": {k: report.get(k) for k in keep},
        "tuned": bpb(str(out), cfg, cfg.scratch / f"eval-{out.name}.log", files=domain.heldout),
    }


# -------------------------------------------------------------------------------- multiword


def train_tokenizer(name: str, cfg: Config) -> dict[str, Any]:
    """Train ``scratch/tok-<name>`` (a key of MULTIWORD_FLAGS) on the German train split."""
    out = cfg.scratch / f"tok-{name}"
    cmd = [str(TOKENGRAFT), "train-tokenizer", str(corpus("de", "train"))]
    cmd += ["--vocab-size", str(cfg.vocab_size), "--out", str(out), "--force", "-q"]
    made = run([*cmd, *MULTIWORD_FLAGS[name]], cfg.scratch / f"tok-{name}.log")
    made.pop("stdout")
    return made


def multiword(cfg: Config) -> dict[str, Any]:
    """Plain vs multi-word byte-level BPE at the same size: bytes per token on held-out."""
    rows = {}
    for name in MULTIWORD_FLAGS:
        made = train_tokenizer(name, cfg)
        rows[name] = {"train": made, **_bytes_per_tokens(cfg.scratch / f"tok-{name}", cfg)}
    return {"vocab_size": cfg.vocab_size, "transition": cfg.vocab_size * 4 // 5, "rows": rows}


def _bytes_per_tokens(tok_dir: Path, cfg: Config) -> dict[str, float]:
    tok = load_tok(str(tok_dir))
    return {
        f"{lang}_bytes_per_token": _bytes_per_token(tok, corpus(lang, "heldout"), cfg.max_bytes)
        for lang in ("de", "en")
    }


def _bytes_per_token(tok: Any, path: Path, max_bytes: int) -> float:
    text = path.read_bytes()[:max_bytes].decode("utf-8", errors="ignore")
    return len(text.encode()) / len(tok(text, add_special_tokens=False)["input_ids"])


def graft_command(tok_dir: Path, out: Path, train: Path) -> list[str]:
    """``tokengraft graft`` of SmolLM2 onto ``tok_dir`` with GRAFT_METHOD (needs the corpus)."""
    cmd = [str(TOKENGRAFT), "graft", BASE, str(tok_dir), str(out), "--method", GRAFT_METHOD]
    return [*cmd, "--corpus", str(train), "--seed", "0", "--force", "--quiet"]


def multiword_graft(cfg: Config, before: dict[str, Any] | None = None) -> dict[str, Any]:
    """SmolLM2 grafted onto the plain and the multi-word tokenizer of ``multiword`` (reused from
    scratch when there, else trained); bits per byte of both."""
    rows = {}
    for name in MULTIWORD_FLAGS:
        tok_dir = cfg.scratch / f"tok-{name}"
        trained = None if (tok_dir / "tokenizer.json").is_file() else train_tokenizer(name, cfg)
        out = cfg.scratch / f"graft-{name}"
        made = run(
            graft_command(tok_dir, out, corpus("de", "train")), cfg.scratch / f"{out.name}.log"
        )
        made.pop("stdout")
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        rows[name] = {
            "train": trained, "graft": made, "report_seconds": report.get("seconds"),
            **_bytes_per_tokens(tok_dir, cfg),
            "scores": bpb(str(out), cfg, cfg.scratch / f"eval-{out.name}.log"),
        }  # fmt: skip
    return {
        "model": BASE, "method": GRAFT_METHOD, "vocab_size": cfg.vocab_size, "rows": rows,
        "before": before or bpb(BASE, cfg, cfg.scratch / f"eval-{BASE}.log"),
    }  # fmt: skip


# --------------------------------------------------------------------------------------- CLI


def _before(
    results: dict[str, Any],
    max_bytes: int,
    parts: Sequence[str],
    langs: Sequence[str] = ("de", "en"),
) -> dict[str, Any] | None:
    """The original model's scores on the same bytes of every language in ``langs``, from the
    first of ``parts`` (or their method variants) that measured them."""
    stored = results.get("parts", {})
    for part in parts:
        for key in variants(stored, part):
            done = stored[key].get("before", {})
            if done.get("max_bytes", 30_000) == max_bytes and all(
                f"{lang}_bpb" in done for lang in langs
            ):
                return {**done, "max_bytes": max_bytes}
    return None


def parse(argv: list[str] | None = None) -> tuple[list[str], Config]:
    """The parts to run, in order, and their configuration, from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.vocab_ops", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/tokengraft-bench/vocab_ops"))
    parser.add_argument("--max-bytes", type=int, default=30_000)
    parser.add_argument(
        "--extend-method",
        default=cli_extend_method(),
        help="graft method of the extend parts' rows (default: tokengraft extend's)",
    )
    parser.add_argument(
        "--extend-param", action="append", default=[], metavar="KEY=VALUE",
        help="a parameter of --extend-method (repeatable; passed as -p)",
    )  # fmt: skip
    parser.add_argument(
        "--tune-minutes", type=float, default=5.0,
        help="minutes of `tokengraft tune` after each extend (0: no tuning)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    cfg = Config(
        scratch=args.scratch, max_bytes=args.max_bytes, extend_method=args.extend_method,
        extend_params=tuple(args.extend_param), tune_minutes=args.tune_minutes,
    )  # fmt: skip
    return args.parts, cfg


def cli_extend_method() -> str:
    """The default of ``tokengraft extend --method`` (the best donor-free method measured)."""
    from tokengraft import BEST_DONOR_FREE

    return BEST_DONOR_FREE


def _jobs(cfg: Config, results: dict[str, Any]) -> dict[str, Callable[[], dict[str, Any]]]:
    """Each part's run, the original model's scores reused from earlier parts where they match."""
    smollm2 = ("trim-smollm2", "extend-smollm2", "multiword-graft")
    return {
        "trim-smollm2": lambda: trim_decoder(BASE, cfg),
        "trim-smollm2-words": lambda: trim_decoder(
            BASE, cfg, ("de",), words=True,
            before=_before(results, cfg.max_bytes, ["trim-smollm2"], ("de",)),
        ),
        "trim-gemma3": lambda: trim_decoder("gemma3-270m", cfg, ("de",)),
        "trim-gemma3-words": lambda: trim_decoder(
            "gemma3-270m", cfg, ("de",), words=True,
            before=_before(results, cfg.max_bytes, ["trim-gemma3"], ("de",)),
        ),
        "trim-e5": lambda: trim_e5(cfg),
        "trim-e5-words": lambda: trim_e5_words(cfg, results["parts"].get("trim-e5")),
        "extend-smollm2": lambda: extend(cfg, german(cfg), _before(results, cfg.max_bytes, smollm2)),
        "extend-code": lambda: extend(
            cfg, python_code(cfg), _before(results, cfg.max_bytes, ["extend-code"], ("code", "en"))
        ),
        "multiword": lambda: multiword(cfg),
        "multiword-graft": lambda: multiword_graft(cfg, _before(results, cfg.max_bytes, smollm2)),
    }  # fmt: skip


def result_key(part: str, cfg: Config) -> str:
    """Where ``part``'s result is stored: extend parts by method (part_key), others by name."""
    if part in EXTEND_PARTS:
        return part_key(part, cfg.extend_method, cfg.extend_params)
    return part


def _stored() -> dict[str, Any]:
    """The results file as it is now (an empty one when there is none)."""
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    results.setdefault("parts", {})
    return results


def main(argv: list[str] | None = None) -> int:
    parts, cfg = parse(argv)
    cfg.scratch.mkdir(parents=True, exist_ok=True)
    results = _stored()
    jobs = _jobs(cfg, results)
    for part in parts:
        key = result_key(part, cfg)
        print(f"running {key}", flush=True)
        done = {**jobs[part](), "date": records.now()}
        results = _stored()  # read again: another run may have written a part meanwhile
        results["parts"][key] = done
        results["max_bytes"] = cfg.max_bytes
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        records.write_text(RESULTS, json.dumps(results, indent=2) + "\n")
    print(section(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
