"""Benchmark of exact byte-level probabilities (``tokengraft.bytes``, docs/bytes.md).

Five measurements, a-d on held-out text (``~/.cache/tokengraft/corpora/{en,de}/heldout.txt``,
``tokengraft corpus fetch``), p on validation bytes from the end of the training text:

a. exactness: bits per byte through ``ByteLM`` beside the token-level bits per byte of
   ``score_texts`` (what ``tokengraft eval model`` runs) on the same bytes, SmolLM2;
b. cost: tokens forwarded per byte and bytes per second, beside token-level tokens per second;
c. token healing: prompts cut at a random byte inside a word; the share whose greedy
   continuation completes the word exactly, byte by byte versus naive token-level prompting;
d. ensemble: SmolLM2 + Gemma-3-270M, mixture and product, versus each member;
p. the pruning defaults, chosen on validation bytes (``bench.bytes_pruning``).

Results go to ``bench/results/bytes/bytes.json``; ``python -m bench.table`` renders them.

Example:
    OMP_NUM_THREADS=1 .venv/bin/python -m bench.bytes --healing-prompts 200
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from bench import records

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "bytes" / "bytes.json"
WORD = re.compile(rb"[A-Za-z]{4,}")


def heldout(language: str, n_bytes: int) -> bytes:
    """The first ``n_bytes`` of a held-out file, cut back to a whole character."""
    from tokengraft import cache_dir

    raw = (cache_dir() / "corpora" / language / "heldout.txt").read_bytes()[:n_bytes]
    return raw.decode("utf-8", errors="ignore").encode("utf-8")


def load(name: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a packaged model name."""
    from tokengraft import load_model, load_tokenizer

    return load_model(name, progress=False), load_tokenizer(name)


def token_level(model: Any, tok: Any, data: bytes) -> dict[str, Any]:
    """Token-level bits per byte of ``score_texts``, the whole text in one window."""
    from tokengraft import EvalConfig, score_texts

    window = 4096
    result = score_texts(
        model, tok, [("t", data.decode())], EvalConfig(window=window, stride=window - 1)
    )
    o = result.overall
    return {
        "bpb": o.bits_per_byte,
        "tokens": o.n_tokens,
        "tokens_per_byte": o.n_tokens / o.n_bytes,
        "tokens_per_second": o.n_tokens / result.seconds,
        "seconds": result.seconds,
    }


def exactness(model: Any, tok: Any, name: str, n_bytes: int) -> list[dict[str, Any]]:
    """(a) and (b): one row per language, with the gap split into the last token and the rest.

    Byte level scores P(the text *starts with* these bytes), token level P(exactly these
    tokens): the two differ by construction on the last token, which byte level lets run past
    the end of the sample. So each row also gives the gap without the last token.
    """
    import math

    from tokengraft import ByteLM

    rows = []
    for language in ("en", "de"):
        data = heldout(language, n_bytes)
        tokens = token_level(model, tok, data)
        lm = ByteLM(model, tok)
        ids = lm.canonical_ids(lm.vocab.lead + data)
        by_token, seconds, forwarded = _byte_level_by_token(lm, data, ids)
        token_lp = _token_logprobs(model, lm.prefix_token, ids)
        bits = -sum(by_token) / math.log(2)
        rest = sum(by_token[:-1]) / sum(token_lp[:-1])
        rows.append(
            {
                "model": name,
                "language": language,
                "bytes": len(data),
                "token_level": tokens,
                "byte_level": {
                    "bpb": bits / len(data),
                    "forwarded_tokens_per_byte": forwarded / len(data),
                    "bytes_per_second": len(data) / seconds,
                    "seconds": seconds,
                },
                "gap_percent": 100 * (bits / len(data) / tokens["bpb"] - 1),
                "last_token": {
                    "text": lm.vocab.surfaces[ids[-1]].decode(errors="replace"),
                    "token_bits": -token_lp[-1] / math.log(2),
                    "byte_bits": -by_token[-1] / math.log(2),
                },
                "gap_without_last_token_percent": 100 * (rest - 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _byte_level_by_token(lm: Any, data: bytes, ids: list[int]) -> tuple[list[float], float, int]:
    """Natural log-probability of each canonical token's bytes, pushed one byte at a time
    through ``lm``; the seconds taken and the tokens forwarded."""
    started = time.perf_counter()
    state = lm.start(b"", upcoming=data)
    pos, out = 0, []
    for k, token in enumerate(ids):
        n = len(lm.vocab.surfaces[token]) - (len(lm.vocab.lead) if k == 0 else 0)
        out.append(sum(state.push(b) for b in data[pos : pos + n]))
        pos += n
    if pos != len(data):
        raise ValueError(f"the canonical tokens spell {pos} of {len(data)} bytes")
    return out, time.perf_counter() - started, state.runner.forwarded_tokens


def _token_logprobs(model: Any, prefix_token: int, ids: list[int]) -> list[float]:
    """Natural log-probability of each token after the ones before it (full softmax)."""
    import torch

    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([[prefix_token, *ids]])).logits[0, :-1]
    logp = logits.double().log_softmax(-1)
    return [float(logp[i, t]) for i, t in enumerate(ids)]


def healing_prompts(text: bytes, n: int, seed: int, context: int) -> list[tuple[bytes, bytes]]:
    """``n`` (prompt, rest of the cut word): words of 4+ ASCII letters cut strictly inside."""
    rng = random.Random(seed)
    words = [m for m in WORD.finditer(text) if m.start() > context // 2]
    out = []
    for m in rng.sample(words, min(n, len(words))):
        cut = rng.randrange(m.start() + 1, m.end())
        start = text.rfind(b" ", 0, max(0, cut - context)) + 1
        out.append((text[start:cut], text[cut : m.end()]))
    return out


def completes(generated: bytes, rest: bytes) -> bool:
    """The continuation spells the rest of the word and then leaves it."""
    return generated.startswith(rest) and not generated[len(rest) : len(rest) + 1].isalpha()


def healing(model: Any, tok: Any, n: int, seed: int, context: int) -> dict[str, Any]:
    """(c): share of cut words completed exactly, byte-level versus naive."""
    from tokengraft import ByteLM, generate_bytes, generate_tokens

    prompts = healing_prompts(heldout("en", 200_000), n, seed, context)
    lm = ByteLM(model, tok)
    hits = {"byte_level": 0, "naive": 0}
    seconds = {"byte_level": 0.0, "naive": 0.0}
    examples: list[dict[str, str]] = []
    for prompt, rest in prompts:
        budget = len(rest) + 1
        ours = generate_bytes(lm, prompt, max_bytes=budget)
        naive = generate_tokens(model, tok, prompt, max_bytes=budget, vocab=lm.vocab)
        hits["byte_level"] += completes(ours.text, rest)
        hits["naive"] += completes(naive.text, rest)
        seconds["byte_level"] += ours.seconds
        seconds["naive"] += naive.seconds
        if len(examples) < 5 and completes(ours.text, rest) != completes(naive.text, rest):
            examples.append(
                {
                    "prompt_end": prompt[-30:].decode(errors="replace"),
                    "rest": rest.decode(),
                    "byte_level": ours.text.decode(errors="replace"),
                    "naive": naive.text.decode(errors="replace"),
                }
            )
    return {
        "prompts": len(prompts),
        "seed": seed,
        "context_bytes": context,
        "share": {k: v / len(prompts) for k, v in hits.items()},
        "seconds_per_prompt": {k: v / len(prompts) for k, v in seconds.items()},
        "examples": examples,
    }


def validation(language: str, n_bytes: int) -> bytes:
    """``n_bytes`` from the end of a training file (never scored), cut back to whole characters."""
    from tokengraft import cache_dir

    raw = (cache_dir() / "corpora" / language / "train.txt").read_bytes()[-n_bytes:]
    return raw.decode("utf-8", errors="ignore").encode("utf-8")


def ensemble(models: dict[str, tuple[Any, Any]], n_bytes: int) -> list[dict[str, Any]]:
    """(d): each member, mixture and product, equal weights and weights fitted on validation."""
    from tokengraft import ByteLM, ensemble_bits, fit_weights, member_logprobs

    lms = [ByteLM(model, tok) for model, tok in models.values()]
    rows = []
    for language in ("en", "de"):
        data, val = heldout(language, n_bytes), validation(language, n_bytes)
        started = time.perf_counter()
        table = member_logprobs(lms, data)
        seconds = time.perf_counter() - started
        val_table = member_logprobs(lms, val)
        row: dict[str, Any] = {"language": language, "bytes": len(data), "seconds": seconds}
        for i, name in enumerate(models):
            one_hot = [float(i == j) for j in range(len(lms))]
            row[f"{name}_bpb"] = ensemble_bits(table, data, one_hot, "mixture")
        for mode in ("mixture", "product"):
            row[f"{mode}_bpb"] = ensemble_bits(table, data, [1.0] * len(lms), mode)
            weights = fit_weights(val_table, val, mode)
            row[f"{mode}_weights"] = dict(zip(models, weights, strict=True))
            row[f"{mode}_fitted_bpb"] = ensemble_bits(table, data, weights, mode)
        row["validation_bytes"] = len(val)
        row["token_level_bpb"] = {k: token_level(m, t, data)["bpb"] for k, (m, t) in models.items()}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def section(results: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of the results."""
    lines = [
        "## bytes: exact byte-level probabilities",
        "",
        f"Run {results.get('date', '?')} on {results.get('machine', '?')}, one thread, "
        + _config_words(results.get("byte_config"))
        + ". Reproduce: "
        + ", ".join(f"`{c}`" for c in (results.get("commands") or {}).values())
        + ". What is computed: [docs/bytes.md](docs/bytes.md).",
    ]
    if results.get("exactness"):
        lines += [
            "",
            "Exactness and cost (held-out, first bytes; token level: `score_texts`, one window):",
            "",
            "| model | held-out | bytes | token bits/byte | byte bits/byte | gap % | "
            "gap % without the last token | last token: token / byte bits | "
            "tokens/byte | forwarded tokens/byte | token tokens/s | byte bytes/s |",
            "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
        ]
        for r in results["exactness"]:
            t, b = r["token_level"], r["byte_level"]
            last = r.get("last_token")
            without = r.get("gap_without_last_token_percent")
            lines.append(
                f"| {r['model']} | {r['language']} | {r['bytes']:,} | {t['bpb']:.4f} | "
                f"{b['bpb']:.4f} | {r['gap_percent']:+.2f} | "
                + ("" if without is None else f"{without:+.3f}")
                + " | "
                + (
                    ""
                    if last is None
                    else f"`{last['text']!r}`: {last['token_bits']:.2f} / {last['byte_bits']:.2f}"
                )
                + f" | {t['tokens_per_byte']:.3f} | "
                f"{b['forwarded_tokens_per_byte']:.3f} | {t['tokens_per_second']:.0f} | "
                f"{b['bytes_per_second']:.1f} |"
            )
        lines += [
            "",
            "The gap: byte level scores the probability that the text *starts with* the sample "
            "(its last token may run past the cut), token level the probability of exactly the "
            "sample's tokens, so they differ on the last token by construction; canonical byte "
            "level also counts sequences that pass the pairwise test without being canonical, "
            "and renormalises without special tokens. Token level runs batched 4096-token "
            "windows; byte level runs one batched pass over the canonical tokens plus one "
            "batched pass per byte over the new hypotheses off them.",
        ]
    if results.get("pruning"):
        from bench.bytes_pruning import lines as pruning_lines

        lines += pruning_lines(results["pruning"])
    heal = results.get("healing")
    if heal:
        lines += [
            "",
            f"Token healing (SmolLM2, {heal['prompts']} English held-out prompts of about "
            f"{heal['context_bytes']} bytes cut inside a word, seed {heal['seed']}, greedy): "
            f"word completed exactly byte-level **{100 * heal['share']['byte_level']:.1f} %**, "
            f"naive token-level {100 * heal['share']['naive']:.1f} % "
            f"({heal['seconds_per_prompt']['byte_level']:.2f} s versus "
            f"{heal['seconds_per_prompt']['naive']:.2f} s per prompt).",
        ]
    if results.get("ensemble"):
        lines += _ensemble_lines(results["members"], results["ensemble"])
        token = "; ".join(
            f"{r['language']}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in r.get("token_level_bpb", {}).items())
            for r in results["ensemble"]
        )
        lines += ["", f"Token-level bits per byte of the members on the same bytes: {token}."]
    return "\n".join(lines) + "\n"


def _config_words(config: dict[str, Any] | None) -> str:
    """How the byte models were configured (results written before this was recorded: the
    defaults of the time, prune 1e-2 and at most 8 hypotheses)."""
    config = config or {"prune": 1e-2, "max_hypotheses": 8, "canonical": True}
    kind = "canonical" if config["canonical"] else "all tokenizations"
    return (
        f"`ByteConfig` {kind}, prune {config['prune']:g}, at most "
        f"{config['max_hypotheses']} hypotheses"
    )


def _ensemble_lines(names: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """The ensemble table: members, equal weights, and weights fitted on validation bytes."""
    fitted = any("mixture_fitted_bpb" in r for r in rows)
    kinds = ["mixture", "product"] + (["mixture_fitted", "product_fitted"] if fitted else [])
    heads = ["mixture (equal)", "product (equal)"]
    heads += ["mixture (fitted)", "product (fitted)"] if fitted else []
    lines = [
        "",
        "Ensemble bits per byte (fitted: weights chosen on as many bytes from the end of the "
        "language's training text, never scored):"
        if fitted
        else "Ensemble (equal weights), bits per byte:",
        "",
        "| held-out | bytes | " + " | ".join([*names, *heads]) + " |",
        "|---|---:|" + "---:|" * (len(names) + len(heads)),
    ]
    for r in rows:
        cells = [f"{r[f'{n}_bpb']:.4f}" for n in [*names, *kinds]]
        lines.append(f"| {r['language']} | {r['bytes']:,} | " + " | ".join(cells) + " |")
    for r in rows if fitted else []:
        weights = "; ".join(
            f"{mode} " + ", ".join(f"{k} {v:.3f}" for k, v in r[f"{mode}_weights"].items())
            for mode in ("mixture", "product")
        )
        lines.append(f"\nFitted weights, {r['language']}: {weights}.")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bytes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--exact-bytes", type=int, default=2000)
    parser.add_argument("--healing-prompts", type=int, default=200)
    parser.add_argument("--healing-context", type=int, default=100)
    parser.add_argument("--ensemble-bytes", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--parts",
        default="a,c,d",
        help="a (exactness + cost), c (healing), d (ensemble), p (pruning sweep, validation)",
    )
    parser.add_argument("--pruning-bytes", type=int, default=300)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    parts = set(args.parts.split(","))
    command = "OMP_NUM_THREADS=1 .venv/bin/python -m bench.bytes " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    stamp = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "commands": {args.parts: command},
    }
    smol = load("smollm2-135m")
    if parts & {"a", "c", "d"}:
        from tokengraft import ByteConfig

        default = ByteConfig()
        stamp["byte_config"] = {
            "prune": default.prune,
            "max_hypotheses": default.max_hypotheses,
            "canonical": default.canonical,
        }
    if "p" in parts:
        from bench.bytes_pruning import sweep

        save(stamp | {"pruning": sweep(*smol, args.pruning_bytes)})
    if "a" in parts:
        save(stamp | {"exactness": exactness(*smol, "smollm2-135m", args.exact_bytes)})
    if "c" in parts:
        heal = healing(*smol, args.healing_prompts, args.seed, args.healing_context)
        save(stamp | {"healing": heal})
    if "d" in parts:
        models = {"smollm2-135m": smol, "gemma3-270m": load("gemma3-270m")}
        save(stamp | {"members": list(models), "ensemble": ensemble(models, args.ensemble_bytes)})
    print(section(save({})))
    return 0


def save(update: dict[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into the results file (re-read first: parts may run at the same time)
    and write it atomically; return the merged results."""
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
    commands = results.get("commands", {}) | update.get("commands", {})
    results |= update | {"commands": commands}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    records.write_text(RESULTS, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results


if __name__ == "__main__":
    sys.exit(main())
