"""Part p of ``bench.bytes``: the pruning defaults of ``ByteConfig``, chosen on validation bytes.

Every configuration scores the same bytes from the end of each language's *training* text
(never the held-out files) with SmolLM2 in canonical mode, beside the unpruned canonical value
(``prune=0, max_hypotheses=0``, exact and slow) and token-level bits per byte. The rule, fixed
before this run (after a first look at a few settings on the English validation bytes, never
at held-out): the cheapest configuration (most forwarded tokens per byte over the languages)
whose bits per byte is within ``TOLERANCE`` (relative) of the unpruned value on every language.
"""

from __future__ import annotations

import json
from typing import Any

from bench.bytes import token_level, validation

CONFIGS = [(1e-2, 8), (1e-3, 16), (1e-4, 64), (1e-5, 16), (1e-5, 32), (1e-5, 64), (1e-6, 64)]
TOLERANCE = 1e-3


def sweep(model: Any, tok: Any, n_bytes: int) -> list[dict[str, Any]]:
    """One row per language and configuration, the unpruned one first."""
    from tokengraft import ByteConfig, ByteLM, score_span

    rows = []
    for language in ("en", "de"):
        data = validation(language, n_bytes)
        token_bpb = token_level(model, tok, data)["bpb"]
        for prune, cap in [(0.0, 0), *CONFIGS]:
            config = ByteConfig(prune=prune, max_hypotheses=cap, canonical=True)
            score = score_span(ByteLM(model, tok, config), language, data)
            rows.append(
                {
                    "language": language,
                    "bytes": len(data),
                    "prune": prune,
                    "max_hypotheses": cap,
                    "bpb": score.bits_per_byte,
                    "pruned_bits_per_byte": score.pruned_bits / score.n_bytes,
                    "forwarded_tokens_per_byte": score.forwarded_tokens / score.n_bytes,
                    "seconds": score.seconds,
                    "token_level_bpb": token_bpb,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def choose(rows: list[dict[str, Any]]) -> dict[str, float] | None:
    """The cheapest configuration within ``TOLERANCE`` of the unpruned value everywhere."""
    exact = {r["language"]: r["bpb"] for r in rows if r["prune"] == 0 and r["max_hypotheses"] == 0}
    best: tuple[float, dict[str, float]] | None = None
    for prune, cap in CONFIGS:
        mine = [r for r in rows if (r["prune"], r["max_hypotheses"]) == (prune, cap)]
        if not mine or any(abs(r["bpb"] / exact[r["language"]] - 1) > TOLERANCE for r in mine):
            continue
        cost = max(r["forwarded_tokens_per_byte"] for r in mine)
        if best is None or cost < best[0]:
            best = (cost, {"prune": prune, "max_hypotheses": cap})
    return None if best is None else best[1]


def lines(rows: list[dict[str, Any]]) -> list[str]:
    """The BENCHMARKS.md table of the sweep and the configuration the rule chooses."""
    chosen = choose(rows)
    out = [
        "",
        "Pruning defaults, chosen on validation bytes (the end of each language's training "
        f"text; SmolLM2, canonical mode; rule: the cheapest within {100 * TOLERANCE:.1f} % of "
        "the unpruned value on both languages):",
        "",
        "| validation | bytes | prune | max hypotheses | bits/byte | token bits/byte | "
        "pruned bits/byte | forwarded tokens/byte | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cap = r["max_hypotheses"] or "none"
        label = "0 (unpruned)" if r["prune"] == 0 and not r["max_hypotheses"] else f"{r['prune']:g}"
        out.append(
            f"| {r['language']} | {r['bytes']:,} | {label} | {cap} | {r['bpb']:.4f} | "
            f"{r['token_level_bpb']:.4f} | {r['pruned_bits_per_byte']:+.4f} | "
            f"{r['forwarded_tokens_per_byte']:.3f} | {r['seconds']:.0f} |"
        )
    if chosen:
        out += [
            "",
            f"Chosen: prune {chosen['prune']:g}, at most {chosen['max_hypotheses']} hypotheses.",
        ]
    else:
        out += ["", "No configuration met the rule."]
    return out
