from __future__ import annotations

import os

import pytest
import tiny
from transformers import PreTrainedTokenizerFast

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FAMILIES = ["byte_level", "sentencepiece", "wordpiece", "unigram"]


@pytest.fixture(scope="session")
def tokenizers_by_family() -> dict[str, PreTrainedTokenizerFast]:
    return {
        "byte_level": tiny.byte_level_bpe(),
        "sentencepiece": tiny.sentencepiece_bpe(),
        "wordpiece": tiny.wordpiece(),
        "unigram": tiny.unigram(),
    }


@pytest.fixture(scope="session")
def old_tok() -> PreTrainedTokenizerFast:
    """The 'model's own' tokenizer: byte-level BPE, 400 tokens."""
    return tiny.byte_level_bpe(400)


@pytest.fixture(scope="session")
def new_tok() -> PreTrainedTokenizerFast:
    """A different byte-level BPE (more German, 500 tokens) sharing most short tokens."""
    return tiny.byte_level_bpe(500, text=[t for t in tiny.TEXT if "ü" in t or "Recht" in t] * 3)


@pytest.fixture(params=[True, False], ids=["tied", "untied"])
def tied(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)
