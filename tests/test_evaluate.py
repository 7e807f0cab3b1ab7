from __future__ import annotations

import json
import logging
import math

import pytest
import tiny
import torch
from conftest import FAMILIES
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from tokengraft.config import EvalConfig
from tokengraft.errors import TokengraftError
from tokengraft.eval.lm import score_texts
from tokengraft.eval.tokenizer import evaluate_tokenizer

# three documents of different lengths (59, 200 and 248 byte-level tokens)
DOCS = [
    ("short.txt", tiny.TEXT[0] + " " + tiny.TEXT[5]),
    ("mixed.txt", " ".join(tiny.TEXT[1:5])),
    ("long.txt", "\n".join(tiny.TEXT[3:9])),
]
SMALL = EvalConfig(window=64, stride=32)  # the tiny models' context is 256 tokens


@pytest.fixture(scope="module")
def model(old_tok: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    return tiny.llama(len(old_tok), tied=False, seed=1)


@pytest.fixture(scope="module")
def uniform_model(old_tok: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    """All logits are exactly 0: the uniform distribution over the model's V outputs."""
    model = tiny.llama(len(old_tok), tied=False, seed=2)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # Llama's head has no bias
    return model


def _n_text_tokens(tok: PreTrainedTokenizerFast, text: str) -> int:
    return len(tok(text, add_special_tokens=False).input_ids)


@pytest.mark.parametrize(
    "config",
    [
        EvalConfig(window=256, stride=128, batch_size=4),  # every document in one window
        EvalConfig(window=32, stride=16, batch_size=3),
        EvalConfig(window=17, stride=5, batch_size=1),
        EvalConfig(window=2, stride=1, batch_size=8),
    ],
    ids=lambda c: f"w{c.window}-s{c.stride}-b{c.batch_size}",
)
def test_uniform_model_gives_closed_form_bits_per_byte(
    uniform_model: LlamaForCausalLM, old_tok: PreTrainedTokenizerFast, config: EvalConfig
) -> None:
    result = score_texts(uniform_model, old_tok, DOCS, config)
    log2_v = math.log2(uniform_model.get_output_embeddings().weight.shape[0])
    for score in [*result.per_file, result.overall]:
        expected = score.n_tokens * log2_v / score.n_bytes
        assert score.bits_per_byte == pytest.approx(expected, rel=1e-9)
    assert max(s.n_tokens for s in result.per_file) > 200  # longer than the small windows


def test_uniform_model_without_prefix_skips_first_token(
    uniform_model: LlamaForCausalLM, old_tok: PreTrainedTokenizerFast
) -> None:
    result = score_texts(uniform_model, old_tok, DOCS, EvalConfig(window=32, stride=16))
    unprefixed = score_texts(
        uniform_model, old_tok, DOCS, EvalConfig(window=32, stride=16), prepend_bos=False
    )
    log2_v = math.log2(len(old_tok))
    assert unprefixed.prefix_token is None
    assert result.prefix_token == old_tok.bos_token
    for s, u in zip(result.per_file, unprefixed.per_file, strict=True):
        assert u.n_tokens == s.n_tokens  # n_tokens counts the text, scored or not
        assert u.nll_bits == pytest.approx((s.n_tokens - 1) * log2_v, rel=1e-9)


def test_counts_are_of_the_text_and_add_up(
    model: LlamaForCausalLM, old_tok: PreTrainedTokenizerFast
) -> None:
    result = score_texts(model, old_tok, DOCS, EvalConfig(window=64, stride=32))
    for (name, text), score in zip(DOCS, result.per_file, strict=True):
        assert score.name == name
        assert score.n_bytes == len(text.encode("utf-8"))
        assert score.n_tokens == _n_text_tokens(old_tok, text)
        assert score.bytes_per_token == score.n_bytes / score.n_tokens
        assert score.nll_bits == pytest.approx(score.bits_per_byte * score.n_bytes, rel=1e-12)
    overall = result.overall
    assert overall.name == "overall"
    assert overall.n_bytes == sum(s.n_bytes for s in result.per_file)
    assert overall.n_tokens == sum(s.n_tokens for s in result.per_file)
    assert overall.nll_bits == pytest.approx(sum(s.nll_bits for s in result.per_file), rel=1e-12)
    assert overall.bits_per_byte == pytest.approx(overall.nll_bits / overall.n_bytes, rel=1e-12)


def test_one_window_equals_single_pass(
    model: LlamaForCausalLM, old_tok: PreTrainedTokenizerFast
) -> None:
    name, text = DOCS[2]
    ids = [old_tok.bos_token_id, *old_tok(text, add_special_tokens=False).input_ids]
    with torch.inference_mode():
        logp = model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
    nll_bits = -float(logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum()) / math.log(2)
    config = EvalConfig(window=len(ids), stride=1, batch_size=1)
    result = score_texts(model, old_tok, [(name, text)], config)
    assert result.overall.nll_bits == pytest.approx(nll_bits, rel=1e-9)


def test_batching_does_not_change_result(
    model: LlamaForCausalLM, old_tok: PreTrainedTokenizerFast
) -> None:
    one = score_texts(model, old_tok, DOCS, EvalConfig(window=48, stride=20, batch_size=1))
    three = score_texts(model, old_tok, DOCS, EvalConfig(window=48, stride=20, batch_size=3))
    for a, b in zip([*one.per_file, one.overall], [*three.per_file, three.overall], strict=True):
        assert a.bits_per_byte == pytest.approx(b.bits_per_byte, rel=1e-6)


def test_progress_json_and_model_mode(
    model: LlamaForCausalLM, old_tok: PreTrainedTokenizerFast
) -> None:
    model.train()
    result = score_texts(model, old_tok, DOCS[:1], EvalConfig(window=16, stride=8), progress=True)
    assert model.training  # restored after scoring in eval mode
    model.eval()
    data = json.loads(json.dumps(result.to_dict()))
    assert len(data["per_file"]) == 1
    for key in ("bits_per_byte", "n_bytes", "n_tokens", "bytes_per_token"):
        assert key in data["overall"]
        assert key in data["per_file"][0]
    assert data["seconds"] >= 0


def test_max_bytes_truncates_on_character_boundary(
    model: LlamaForCausalLM, old_tok: PreTrainedTokenizerFast
) -> None:
    text = "ab" + "ü" * 10  # 'ü' is two bytes in UTF-8
    result = score_texts(model, old_tok, [("t", text)], EvalConfig(window=8, stride=4, max_bytes=7))
    assert result.overall.n_bytes == 6  # "ab" + 2 × "ü"; half a character is dropped
    assert result.overall.n_tokens == _n_text_tokens(old_tok, "abüü")


def test_prefix_falls_back_to_eos_then_none(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast], caplog: pytest.LogCaptureFixture
) -> None:
    unigram, wordpiece = tokenizers_by_family["unigram"], tokenizers_by_family["wordpiece"]
    model = tiny.llama(len(unigram), tied=True)
    assert score_texts(model, unigram, DOCS[:1], SMALL).prefix_token == unigram.eos_token
    with pytest.raises(TokengraftError, match="no BOS"):
        score_texts(model, unigram, DOCS[:1], SMALL, prepend_bos=True)
    model = tiny.llama(len(wordpiece), tied=True)
    with caplog.at_level(logging.WARNING, logger="tokengraft"):
        assert score_texts(model, wordpiece, DOCS[:1], SMALL).prefix_token is None
    assert "not scored" in caplog.text


@pytest.mark.parametrize(
    ("texts", "config", "message"),
    [
        ([], SMALL, "no texts"),
        ([("empty.txt", "")], SMALL, "empty.txt: the text is empty"),
        (DOCS, EvalConfig(window=512), "exceeds the model's context of 256"),
        (DOCS, EvalConfig(window=16, stride=16), "stride"),
        (DOCS, EvalConfig(window=64, stride=32, batch_size=0), "batch size"),
    ],
)
def test_score_texts_rejects_bad_input(
    model: LlamaForCausalLM,
    old_tok: PreTrainedTokenizerFast,
    texts: list[tuple[str, str]],
    config: EvalConfig,
    message: str,
) -> None:
    with pytest.raises(TokengraftError, match=message):
        score_texts(model, old_tok, texts, config)


@pytest.mark.parametrize("family", FAMILIES)
def test_evaluate_tokenizer_every_family(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast], family: str
) -> None:
    tok = tokenizers_by_family[family]
    result = evaluate_tokenizer(tok, DOCS)
    for (name, text), score in zip(DOCS, result.per_file, strict=True):
        assert score.name == name
        assert score.n_bytes == len(text.encode("utf-8"))
        assert score.n_tokens == _n_text_tokens(tok, text)
        assert score.n_words == len(text.split())
        assert score.fertility == score.n_tokens / score.n_words
        assert score.bytes_per_token == score.n_bytes / score.n_tokens
        assert 0 < score.renyi_efficiency <= 1
    overall = result.overall
    assert overall.n_tokens == sum(s.n_tokens for s in result.per_file)
    assert overall.fertility == overall.n_tokens / overall.n_words
    assert overall.roundtrip == all(s.roundtrip for s in result.per_file)
    assert result.vocab_size == len(tok)
    assert json.loads(json.dumps(result.to_dict()))["overall"]["n_words"] == overall.n_words


def test_wordpiece_does_not_roundtrip_punctuation(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> None:
    tok, text = tokenizers_by_family["wordpiece"], "Où êtes-vous ?"  # decodes as "êtes - vous?"
    assert tok.unk_token_id not in tok(text, add_special_tokens=False).input_ids
    assert evaluate_tokenizer(tok, [("p", text)]).overall.roundtrip is False


def test_evaluate_tokenizer_rejects_text_without_words(old_tok: PreTrainedTokenizerFast) -> None:
    with pytest.raises(TokengraftError, match="blank.txt: the text has no words"):
        evaluate_tokenizer(old_tok, [("blank.txt", " \n\t")])


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1).filter(lambda t: t.split()))
def test_byte_level_bpe_roundtrips_any_text(old_tok: PreTrainedTokenizerFast, text: str) -> None:
    assert evaluate_tokenizer(old_tok, [("t", text)]).overall.roundtrip
