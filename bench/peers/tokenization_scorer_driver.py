"""Run in the tokenization-scorer venv: Renyi and Shannon efficiency of given token sequences.

Usage: python -P tokenization_scorer_driver.py IN.json OUT.json, where IN.json is a list of
``{"key", "ids": [int...], "vocab_size"}``. tokenization-scorer scores pre-tokenised text (tokens
separated by spaces), so each sequence is written as its ids. OUT.json maps each key to
``{"renyi_2.5_V", "shannon_V", "renyi_default", "seconds"}``: the first two with the tokenizer's
vocabulary size as |V|, the last with the package's defaults (power 3, |V| = distinct tokens seen).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import tokenization_scorer


def main() -> None:
    items = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = {}
    for item in items:
        line = " ".join(str(i) for i in item["ids"])
        start = time.perf_counter()
        renyi = tokenization_scorer.score(
            [line], metric="renyi", power=2.5, vocab=item["vocab_size"]
        )
        seconds = time.perf_counter() - start
        out[item["key"]] = {
            "renyi_2.5_V": float(renyi),
            "shannon_V": float(
                tokenization_scorer.score([line], metric="shannon", vocab=item["vocab_size"])
            ),
            "renyi_default": float(tokenization_scorer.score([line], metric="renyi")),
            "seconds": seconds,
        }
    Path(sys.argv[2]).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
