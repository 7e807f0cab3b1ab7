"""bench.vocab_ops: sentence selection and the BENCHMARKS.md section (pure parts only)."""

from __future__ import annotations

from typing import Any

from bench import vocab_ops


def _scores(de: float, en: float | None, tokens: int) -> dict[str, Any]:
    out: dict[str, Any] = {"de_bpb": de, "de_tokens": tokens, "de_bytes": 30_000}
    if en is not None:
        out |= {"en_bpb": en, "en_tokens": 9_000, "en_bytes": 30_000}
    return out


RESULTS: dict[str, Any] = {
    "max_bytes": 30_000,
    "parts": {
        "trim-gemma3": {
            "model": "gemma3-270m",
            "report": {
                "old_vocab_size": 262_144,
                "new_vocab_size": 20_000,
                "old_parameters": 268_000_000,
                "new_parameters": 110_000_000,
            },
            "trim": {"command": "tokengraft trim gemma3-270m OUT", "cpu_seconds": 60.0},
            "sentences": 200,
            "identical": 150,
            "before": _scores(1.5, None, 9_000),
            "after": _scores(1.49, None, 9_000),
        },
        "trim-e5": {
            "model": "multilingual-e5-small",
            "sentences": 200,
            "vocab_size": 250_002,
            "parameters": 117_505_920,
            "rows": [
                {
                    "name": "ours",
                    "vocab_size": 15_000,
                    "parameters": 27_000_000,
                    "identical": 130,
                    "cos_mean": 0.99,
                    "cos_min": 0.9,
                    "cpu_seconds": 20.0,
                },
                {"name": "vocabtrimmer", "error": "venv missing"},
            ],
        },  # fmt: skip
        "extend-smollm2": {
            "model": "smollm2-135m",
            "add": 8_000,
            "report": {
                "old_vocab_size": 49_152,
                "new_vocab_size": 57_152,
                "details": {"method": {"method": "hypernet"}},
            },
            "extend": {"command": "tokengraft extend ...", "cpu_seconds": 100.0},
            "throughput_before": 2e6,
            "throughput_after": 2.1e6,
            "throughput_add_tokens": 1e4,
            "before": _scores(1.6, 0.98, 12_000),
            "after": _scores(1.62, 0.98, 7_000),
        },
        "multiword": {
            "vocab_size": 32_000,
            "transition": 25_600,
            "rows": {
                "plain": {"de_bytes_per_token": 4.0, "en_bytes_per_token": 3.0},
                "multiword": {"de_bytes_per_token": 4.8, "en_bytes_per_token": 3.2},
            },
        },
    },
}


def test_section_renders_every_part() -> None:
    text = vocab_ops.section(RESULTS)
    assert "### trim gemma3-270m" in text and "| trimmed | 20,000 |" in text
    assert "-0.67 %" in text  # 1.49 vs 1.5
    assert "did not run: venv missing" in text
    assert "(-41.7 %)" in text  # tokens per byte 7000/30000 vs 12000/30000
    assert "+20.00 %" in text  # multi-word bytes per token


def test_heldout_sentences_are_cut_at_sentence_ends() -> None:
    text = "Eins zwei drei vier fünf. Kurz.\nSechs sieben acht neun zehn elf!\n"
    assert vocab_ops.heldout_sentences(text, 5) == [
        "Eins zwei drei vier fünf.",
        "Sechs sieben acht neun zehn elf!",
    ]
