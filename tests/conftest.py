"""Shared fixtures: tiny tokenizers of every family, checkpoints written to disk, a tiny encoder.

The builders live in ``tiny.py``; a fixture here is anything more than one test file uses.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import tiny
from transformers import BertModel, PreTrainedTokenizerFast

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


@pytest.fixture
def write_checkpoint(tmp_path: Path, old_tok: PreTrainedTokenizerFast) -> Callable[..., Path]:
    """Writes the tiny Llama of ``old_tok`` and ``old_tok`` to ``tmp_path/base``; returns the dir.

    Call it as ``write_checkpoint(tied=..., max_shard_size="40KB")`` (defaults: tied, one file).
    """

    def write(*, tied: bool = True, max_shard_size: str | None = None) -> Path:
        return tiny.save_checkpoint(
            tmp_path / "base", old_tok, tied=tied, max_shard_size=max_shard_size
        )

    return write


@pytest.fixture
def new_tok_dir(tmp_path: Path, new_tok: PreTrainedTokenizerFast) -> Path:
    """``new_tok`` saved as a tokenizer directory."""
    path = tmp_path / "newtok"
    new_tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def aux_model() -> tuple[BertModel, PreTrainedTokenizerFast]:
    """A tiny random BERT encoder and its WordPiece tokenizer (TokenAdapt's auxiliary model)."""
    return tiny.bert_encoder()
