"""Digit and whitespace schemes, detected on tiny tokenizers built to each scheme."""

from __future__ import annotations

import pytest
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from tokengraft.vocab.schemes import (
    DIGIT_PROBES,
    DigitKind,
    compare_schemes,
    detect_digits,
    detect_schemes,
    detect_whitespace,
)

DIGITS = [str(d) for d in range(10)]


def _word_level(
    vocab: list[str], split: pre_tokenizers.PreTokenizer | None
) -> PreTrainedTokenizerFast:
    ids = {w: i for i, w in enumerate(["[UNK]", *dict.fromkeys(vocab)])}
    tok = Tokenizer(models.WordLevel(ids, unk_token="[UNK]"))
    parts = [pre_tokenizers.WhitespaceSplit()] + ([split] if split is not None else [])
    tok.pre_tokenizer = pre_tokenizers.Sequence(parts)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def _up_to_three() -> list[str]:
    return [f"{n:0{k}d}" for k in (1, 2, 3) for n in range(10**k)]


def single() -> PreTrainedTokenizerFast:
    return _word_level(DIGITS, pre_tokenizers.Digits(individual_digits=True))


def groups(pattern: str) -> PreTrainedTokenizerFast:
    return _word_level(_up_to_three(), pre_tokenizers.Split(Regex(pattern), "isolated"))


def whole() -> PreTrainedTokenizerFast:
    return _word_level(list(DIGIT_PROBES), None)


def learned() -> PreTrainedTokenizerFast:
    """BPE with one digit merge, "1 4": 314159 -> 3|14|1|5|9, no fixed grouping."""
    vocab = {d: i for i, d in enumerate(DIGITS)} | {"14": 10}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("1", "4")]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok)


@pytest.mark.parametrize(
    ("build", "kind", "max_group"),
    [
        (single, DigitKind.SINGLE, 1),
        (lambda: groups(r"\d{1,3}"), DigitKind.GROUP_LTR, 3),
        (lambda: groups(r"\d{1,3}(?=(?:\d{3})*(?!\d))"), DigitKind.GROUP_RTL, 3),
        (whole, DigitKind.WHOLE, 10),
        (learned, DigitKind.LEARNED, 2),
    ],
    ids=["single", "ltr", "rtl", "whole", "learned"],
)
def test_digit_scheme_of_a_tokenizer_built_to_it(build, kind, max_group) -> None:
    scheme = detect_digits(build())
    assert (scheme.kind, scheme.max_group) == (kind, max_group)


def test_left_and_right_grouping_differ_on_four_digits() -> None:
    ltr, rtl = groups(r"\d{1,3}"), groups(r"\d{1,3}(?=(?:\d{3})*(?!\d))")
    assert ltr.tokenize("1234") == ["123", "4"] and rtl.tokenize("1234") == ["1", "234"]
    assert "right to left" in str(detect_digits(rtl))


def test_whitespace_of_each_family(tokenizers_by_family) -> None:
    byte_level = detect_whitespace(tokenizers_by_family["byte_level"])
    assert (byte_level.marker, byte_level.prefix_space) == ("Ġ", False)
    assert byte_level.spaces.kept and byte_level.newlines.kept and byte_level.tabs.kept
    spm = detect_whitespace(tokenizers_by_family["sentencepiece"])
    assert (spm.marker, spm.prefix_space) == ("▁", True)
    assert spm.tabs.kept  # a tab is a <0x09> byte-fallback piece
    wordpiece = detect_whitespace(tokenizers_by_family["wordpiece"])
    assert wordpiece.marker == "none"
    assert not wordpiece.spaces.kept and str(wordpiece.spaces) == "lost on decode"


def test_compare_names_each_difference_and_its_risk(tokenizers_by_family) -> None:
    lines = compare_schemes(single(), groups(r"\d{1,3}"))
    digit_lines = [line for line in lines if line.startswith("digits:")]
    assert len(digit_lines) == 1 and "arithmetic" in digit_lines[0] and "GSM8K" in digit_lines[0]
    assert "single digits" in digit_lines[0] and "left to right" in digit_lines[0]
    byte_level, spm = tokenizers_by_family["byte_level"], tokenizers_by_family["sentencepiece"]
    assert compare_schemes(byte_level, byte_level) == []
    assert any(line.startswith("prefix space:") for line in compare_schemes(byte_level, spm))


def test_schemes_to_dict_is_two_lines(tokenizers_by_family) -> None:
    d = detect_schemes(tokenizers_by_family["byte_level"]).to_dict()
    assert set(d) == {"digits", "whitespace"}
    assert all(isinstance(v, str) and "\n" not in v for v in d.values())


def test_graft_and_extend_print_one_warning_line_per_difference(tmp_path, capsys) -> None:
    from tokengraft.cli.schemes import echo_scheme_warnings

    single().save_pretrained(tmp_path / "single")
    groups(r"\d{1,3}").save_pretrained(tmp_path / "ltr")
    echo_scheme_warnings(str(tmp_path / "single"), str(tmp_path / "ltr"))
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("warning: ") for line in err)
    assert sum(line.startswith("warning: digits:") for line in err) == 1
