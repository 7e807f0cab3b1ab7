"""Run in the tokenkit venv (PyPI ``tokenkit``): fertility and parity of saved tokenizers.

Usage: python -P tokenkit_driver.py IN.json OUT.json, where IN.json is
``{"tokenizers": {name: hf_dir}, "texts": {lang: text}, "english": lang}``. For each tokenizer,
``TokenMetrics.fertilize`` gives the fertility per language (one row per language: the whole text)
and ``TokenMetrics.paritize`` the parity of each language against English twice: one row per
language (whole texts, as ours) and one row per line pair (their mean, as a per-sentence study
would report it). OUT.json maps each tokenizer to ``{"fertility", "parity_whole",
"parity_line_mean", "seconds"}``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from tokenkit.tokenkit import TokenMetrics


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def measure(tok_dir: str, texts: dict[str, str], english: str) -> dict[str, object]:
    start = time.perf_counter()
    whole = pd.DataFrame(
        {"language": list(texts), "text": list(texts.values()), "translation": texts[english]}
    )
    metrics = TokenMetrics(whole, tokenizer=tok_dir)
    fert = metrics.fertilize("text", "language")
    fertility = dict(zip(fert["language"], map(float, fert["fertility"]), strict=True))
    parity = metrics.paritize("text", "translation")["parity"]
    rows = [
        (lang, line, en)
        for lang, text in texts.items()
        for line, en in zip(_lines(text), _lines(texts[english]), strict=True)
    ]
    lines = pd.DataFrame(rows, columns=["language", "text", "translation"])
    metrics.data = lines
    per_line = metrics.paritize("text", "translation")
    per_line["language"] = lines["language"]
    return {
        "fertility": fertility,
        "parity_whole": dict(zip(texts, map(float, parity), strict=True)),
        "parity_line_mean": {
            k: float(v) for k, v in per_line.groupby("language")["parity"].mean().items()
        },
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = {
        name: measure(tok_dir, spec["texts"], spec["english"])
        for name, tok_dir in spec["tokenizers"].items()
    }
    Path(sys.argv[2]).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
