"""The main job on the embedded default: SmolLM2-135M onto a fresh German tokenizer.

Fetch corpora, train a byte-level BPE on the German training split (cached), graft SmolLM2 with
``tune`` (our best donor-free method measured; ``--method`` picks another), and score original and grafted
models in bits per byte on the German and English held-out files. Methods get the German training
split as ``--corpus`` and the English one as ``--source-corpus``, when they use them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tokengraft import io
from tokengraft.config import BEST_DONOR_FREE, EvalConfig, GraftConfig
from tokengraft.data.corpus import CorpusFiles, fetch_corpora
from tokengraft.eval.lm import score_texts
from tokengraft.grafting.inputs import Resources
from tokengraft.grafting.pipeline import graft_pretrained
from tokengraft.io.cache import cache_dir
from tokengraft.report.record import GraftReport
from tokengraft.tokenizers.train import config_from_model_tokenizer, train_byte_level_bpe

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """The demo scenario.

    Attributes:
        vocab_size: size of the new German tokenizer.
        method: initialisation method.
        max_bytes: held-out bytes scored per language (the start of each held-out file).
        out: where the grafted model goes (default: under the cache directory).
        seed: graft seed.
        target: language the tokenizer is trained on.
        languages: held-out languages scored.
    """

    vocab_size: int = 32_000
    method: str = BEST_DONOR_FREE
    max_bytes: int = 60_000
    out: Path | None = None
    seed: int = 0
    target: str = "de"
    languages: tuple[str, ...] = ("de", "en")


@dataclass(frozen=True, kw_only=True)
class DemoRow:
    """One line of the demo table."""

    model: str
    language: str
    bits_per_byte: float
    n_tokens: int
    n_bytes: int
    bytes_per_token: float
    eval_seconds: float
    graft_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready dict, one key per field."""
        return asdict(self)


def trained_tokenizer(corpus: CorpusFiles, vocab_size: int, *, progress: bool) -> Path:
    """Train (once; cached by corpus checksum-free name and size) the target-language tokenizer."""
    path = cache_dir() / "tokenizers" / f"{corpus.language}-bpe-{vocab_size}"
    if (path / "tokenizer.json").is_file():
        return path
    cfg = config_from_model_tokenizer(io.load_tokenizer(DEFAULT_MODEL), vocab_size)
    texts = [text for _, text in io.read_texts([corpus.train])]
    with io.atomic_output_dir(path, force=True) as tmp:
        io.save_tokenizer(train_byte_level_bpe(texts, cfg, progress=progress), tmp)
    return path


def run_demo(
    config: DemoConfig, *, progress: bool = True, say: Callable[[str], Any] = lambda _: None
) -> list[DemoRow]:
    """Run the demo scenario and return the table rows (original first, then grafted)."""
    corpora = fetch_corpora(
        tuple(dict.fromkeys((config.target, *config.languages))), progress=progress
    )
    say(
        f"training a {config.vocab_size}-token {config.target} tokenizer (cached after the first run)"
    )
    tok_path = trained_tokenizer(corpora[config.target], config.vocab_size, progress=progress)
    out = config.out or cache_dir() / "demo" / f"smollm2-{config.target}-{config.method}"
    say(f"grafting {DEFAULT_MODEL} onto {tok_path} with {config.method} -> {out}")
    report = graft_pretrained(
        DEFAULT_MODEL,
        str(tok_path),
        out,
        GraftConfig(method=config.method, seed=config.seed),
        resources=_resources(corpora, config),
        force=True,
        progress=progress,
    )
    heldout = {lang: corpora[lang].heldout for lang in config.languages}
    rows = _score(DEFAULT_MODEL, "original", heldout, config.max_bytes, progress, say)
    rows += _score(str(out), f"grafted ({config.method})", heldout, config.max_bytes, progress, say)
    return [_with_graft_time(r, report) for r in rows]


def _resources(corpora: dict[str, CorpusFiles], config: DemoConfig) -> Resources:
    """The target training split as the corpus; English training text as the source corpus."""
    source = corpora.get("en") if config.target != "en" else None
    return Resources(
        corpus=(corpora[config.target].train,),
        source_corpus=(source.train,) if source else (),
        cache_dir=cache_dir() / "methods",
    )


def _with_graft_time(row: DemoRow, report: GraftReport) -> DemoRow:
    if row.model == "original":
        return row
    return DemoRow(**{**row.to_dict(), "graft_seconds": report.seconds.get("graft")})


def _score(
    model: str,
    label: str,
    heldout: dict[str, Path],
    max_bytes: int,
    progress: bool,
    say: Callable[[str], Any],
) -> list[DemoRow]:
    say(f"scoring {label} on {', '.join(heldout)} held-out")
    lm, tok = io.load_model(model), io.load_tokenizer(model)
    rows = []
    for lang, path in heldout.items():
        started = time.perf_counter()
        docs = io.read_texts([path], max_bytes=max_bytes)
        result = score_texts(lm, tok, docs, EvalConfig(max_bytes=max_bytes), progress=progress)
        o = result.overall
        rows.append(
            DemoRow(
                model=label,
                language=lang,
                bits_per_byte=o.bits_per_byte,
                n_tokens=o.n_tokens,
                n_bytes=o.n_bytes,
                bytes_per_token=o.bytes_per_token,
                eval_seconds=time.perf_counter() - started,
            )
        )
    return rows


def format_table(rows: list[DemoRow]) -> str:
    """A Markdown table of the rows."""
    lines = [
        "| model | held-out | bits/byte | tokens | bytes/token | eval s | graft s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        graft_s = f"{r.graft_seconds:.1f}" if r.graft_seconds is not None else "-"
        lines.append(
            f"| {r.model} | {r.language} | {r.bits_per_byte:.4f} | {r.n_tokens} | "
            f"{r.bytes_per_token:.2f} | {r.eval_seconds:.1f} | {graft_s} |"
        )
    return "\n".join(lines)
