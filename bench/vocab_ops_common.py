"""What every part of the vocabulary-operations benchmark (``bench.vocab_ops``) measures with.

The run configuration, the held-out sentences and corpora, tokenisation checks, running a
``tokengraft`` command with its time and memory, and ``tokengraft eval model`` scores.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import run_measured

TOKENGRAFT = Path(sys.executable).parent / "tokengraft"
E5 = "multilingual-e5-small"
BASE = "smollm2-135m"


@dataclass(frozen=True, kw_only=True)
class Config:
    scratch: Path
    max_bytes: int = 30_000
    sentences: int = 200
    add: int = 8_000
    add_code: int = 4_000
    vocab_size: int = 32_000
    extend_method: str  # parse(): `tokengraft extend`'s default unless --extend-method
    extend_params: tuple[str, ...] = ()  # key=value, passed as -p to tokengraft extend
    tune_minutes: float = 5.0  # 0: no tokengraft tune after an extend


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


def bpb(
    model: str,
    cfg: Config,
    log: Path,
    langs: Sequence[str] = ("de", "en"),
    files: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Bits per byte and tokens on the first max_bytes of each language's held-out file.

    ``files`` (score prefix -> held-out file, e.g. ``{"code": ..., "en": ...}``) replaces the
    corpora of ``langs``.
    """
    if files is None:
        files = {lang: corpus(lang, "heldout") for lang in langs}
    cmd = [str(TOKENGRAFT), "eval", "model", model, "--max-bytes", str(cfg.max_bytes)]
    for path in files.values():
        cmd += ["--texts", str(path)]
    out = json.loads(run([*cmd, "--json", "--quiet"], log)["stdout"])["per_file"]
    return {
        f"{lang}_{key}": score[field]
        for lang, score in zip(files, out, strict=True)
        for key, field in (("bpb", "bits_per_byte"), ("tokens", "n_tokens"), ("bytes", "n_bytes"))
    } | {"max_bytes": cfg.max_bytes}


def load_tok(path: str) -> Any:
    from tokengraft import load_tokenizer

    return load_tokenizer(path)


def german_sentences(n: int) -> list[str]:
    """The first ``n`` sentences of 5 to 60 words of the German held-out file."""
    return heldout_sentences(corpus("de", "heldout").read_text(encoding="utf-8"), n)
