"""``eval tokenizer``: closed forms, both encoding paths, parallel texts, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from tokengraft.cli.app import run
from tokengraft.errors import TokengraftError
from tokengraft.eval import metrics
from tokengraft.eval.compare import TokenizerEvalConfig, evaluate_tokenizers
from tokengraft.eval.encoding import _encode_chunks, encode_texts, pre_token_path, vocab_size
from tokengraft.eval.parallel import english_text, language_of
from tokengraft.eval.tokenizer import evaluate_tokenizer

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def bytes_only() -> PreTrainedTokenizerFast:
    """Byte-level BPE without merges: one token per UTF-8 byte, so counts are by hand."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(sorted(alphabet))}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def words_only(words: list[str]) -> PreTrainedTokenizerFast:
    """One token per known whitespace word, ``[UNK]`` for the rest."""
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def llama3_style(pattern: str = LLAMA3_SPLIT) -> PreTrainedTokenizerFast:
    """Split expression + byte-level mapping, as Llama-3 / Qwen / tiktoken conversions have."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    from tokenizers import trainers

    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(tiny.TEXT, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


# ------------------------------------------------------------------------------ closed forms


def test_uniform_distribution_has_efficiency_one_and_equal_costs_gini_zero() -> None:
    assert metrics.renyi_efficiency([7] * 16, 16) == pytest.approx(1.0)
    assert metrics.shannon_efficiency([7] * 16, 16) == pytest.approx(1.0)
    assert metrics.gini([123, 123, 123, 123]) == 0.0
    assert metrics.gini([0, 1]) == pytest.approx(0.5)


def test_every_word_used_once_is_uniform_over_the_vocabulary() -> None:
    tok = words_only(["[UNK]", "a", "b", "c"])
    score = evaluate_tokenizer(tok, [("t", "[UNK] a b c")]).overall
    assert score.renyi_efficiency == pytest.approx(1.0)
    assert score.shannon_efficiency == pytest.approx(1.0)
    assert score.vocab_utilisation == 1.0 and score.fertility == 1.0


def test_fertility_and_split_words_by_hand() -> None:
    # "ab cde" is a|b|Ġ|c|d|e: 6 tokens, 2 words, both split; the Ġ token is in no word
    score = evaluate_tokenizer(bytes_only(), [("t", "ab cde")]).overall
    assert (score.n_tokens, score.n_words, score.fertility_unit) == (6, 2, "word")
    assert score.fertility == 3.0 and score.split_word_share == 1.0
    assert score.bytes_per_token == 1.0 and score.chars_per_token == 1.0 and score.roundtrip


def test_script_without_spaces_counts_fertility_per_character() -> None:
    text = "人人生而自由"  # 6 characters of 3 UTF-8 bytes: 18 byte tokens
    score = evaluate_tokenizer(bytes_only(), [("zh.txt", text)]).overall
    assert score.fertility_unit == "char" and score.fertility == 3.0
    assert score.chars_per_token == pytest.approx(6 / 18)


def test_unknown_and_byte_fallback_rates(tokenizers_by_family) -> None:
    unk = evaluate_tokenizer(words_only(["[UNK]", "a"]), [("t", "a zz a q")]).overall
    assert unk.unk_rate == 0.5
    spm = tokenizers_by_family["sentencepiece"]
    ids = spm("😀", add_special_tokens=False).input_ids
    assert len(ids) == 5  # "▁" + four <0xNN> pieces
    assert evaluate_tokenizer(spm, [("t", "😀")]).overall.byte_fallback_rate == pytest.approx(4 / 5)


def test_a_failed_round_trip_is_reported_not_raised(tokenizers_by_family) -> None:
    wordpiece = tokenizers_by_family["wordpiece"]
    result = evaluate_tokenizers([("wp", wordpiece)], [("fr.txt", "Où êtes-vous ?")])
    assert result.rows[0].score.roundtrip is False
    assert any("does not round-trip fr.txt" in w for w in result.warnings)


# ------------------------------------------------------------------------------ both paths


@pytest.mark.parametrize("build", [tiny.byte_level_bpe, llama3_style, bytes_only])
def test_pre_token_path_is_taken_for_byte_level_regex_tokenizers(build) -> None:
    path = pre_token_path(build())
    assert path is not None and path.segmented


@pytest.mark.parametrize("family", ["sentencepiece", "wordpiece", "unigram"])
def test_other_families_take_the_chunk_path(tokenizers_by_family, family) -> None:
    assert pre_token_path(tokenizers_by_family[family]) is None


TEXTS = st.lists(
    st.sampled_from([*"ab Zé1234567890\t\n.,'s-ü人😀\r\u3000\x0c", "  ", "'ll", "\n\n"]),
    min_size=1,
).map("".join)


@settings(max_examples=80, deadline=None)
@given(text=TEXTS)
def test_both_paths_agree_with_a_plain_encode(text: str) -> None:
    for tok in (BYTE_LEVEL, LLAMA3, QWEN):
        fast = encode_texts(tok, [text], threads=2)[0]
        slow = _encode_chunks(tok.backend_tokenizer, text, vocab_size(tok))
        assert fast.n_tokens == len(tok(text, add_special_tokens=False).input_ids)
        assert (fast.counts == slow.counts).all()
        assert fast.n_words == slow.n_words == len(text.split())
        assert fast.n_split_words == slow.n_split_words
        assert fast.roundtrip and slow.roundtrip


BYTE_LEVEL, LLAMA3 = tiny.byte_level_bpe(), llama3_style()
QWEN = llama3_style(LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}"))  # digits one by one


def test_long_text_is_split_across_threads_and_counted_exactly() -> None:
    text = "\n".join(tiny.TEXT) * 200  # > 64 KB: several chunks in two threads
    enc = encode_texts(LLAMA3, [text], threads=2)[0]
    assert enc.n_tokens == len(LLAMA3(text, add_special_tokens=False).input_ids)


# ------------------------------------------------------------------------------ parallel texts


def test_language_from_file_name_or_directory() -> None:
    assert language_of("udhr/eng.txt") == "eng"
    assert language_of("x/deu_1996.html") == "deu_1996"
    assert language_of("corpora/de/heldout.txt") == "de"
    assert language_of("notes.txt") == "notes"


def test_parity_of_english_is_one_and_json_shape() -> None:
    texts = [
        ("en.txt", "one two\nthree"),
        ("de.txt", "eins zwei drei\nvier"),
        ("zh.txt", "一二\n三"),
    ]
    cfg = TokenizerEvalConfig(parallel=True)
    result = evaluate_tokenizers([("b", bytes_only()), ("w", BYTE_LEVEL)], texts, cfg)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["kind"] == "tokenizer_eval" and len(data["rows"]) == 6
    for name in ("b", "w"):
        parity = data["parallel"][name]["parity"]
        assert parity["en"] == 1.0
        tokens = {r["language"]: r["n_tokens"] for r in data["rows"] if r["tokenizer"] == name}
        assert parity["de"] == tokens["de"] / tokens["en"]
        assert data["parallel"][name]["gini"] == pytest.approx(metrics.gini(list(tokens.values())))
    assert data["examples"]["b"] == list("one two")
    byte_tokens = sum(r["n_tokens"] for r in data["rows"] if r["tokenizer"] == "b")
    assert data["token_lengths"]["b"] == {"1": byte_tokens}  # one byte per token
    assert set(data["schemes"]) == {"b", "w"}
    assert set(data["rows"][0]) >= {"tokenizer", "file", "language", "fertility_unit", "roundtrip"}


@pytest.mark.parametrize(
    ("texts", "english", "message"),
    [
        ([("de.txt", "a\nb"), ("fr.txt", "a\nb")], None, "needs an English text"),
        ([("en.txt", "a\nb"), ("de.txt", "a")], None, "de.txt has 1 non-empty lines"),
        ([("en.txt", "a"), ("x/en.txt", "a")], None, "both in language en"),
        ([("en.txt", "a")], "nope.txt", "--english nope.txt is not one of the --texts"),
    ],
)
def test_parallel_texts_are_checked(texts, english, message) -> None:
    langs = {name: language_of(name) for name, _ in texts}
    with pytest.raises(TokengraftError, match=message):
        english_text(texts, langs, english)


# ------------------------------------------------------------------------------ command line


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for lang, text in {
        "en": "The dog runs.\nIt is 42.\n",
        "de": "Der Hund läuft.\nEr ist 42.\n",
    }.items():
        out[lang] = tmp_path / f"{lang}.txt"
        out[lang].write_text(text, encoding="utf-8")
    tok_dir = tmp_path / "tok"
    BYTE_LEVEL.save_pretrained(tok_dir)
    out["tok"] = tok_dir
    return out


def _fails(capsys, argv: list[str], needle: str) -> None:
    capsys.readouterr()
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and needle in err, err


def test_cli_json_and_table(capsys, files) -> None:
    argv = ["eval", "tokenizer", str(files["tok"]), "--texts", str(files["en"]), str(files["de"])]
    assert run([*argv, "--parallel", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (
        data["kind"] == "tokenizer_eval"
        and data["parallel"][str(files["tok"])]["parity"]["en"] == 1
    )
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "fertility" in out and "schemes" in out


def test_cli_bad_input_is_one_line(capsys, files, tmp_path) -> None:
    tok, en, de = str(files["tok"]), str(files["en"]), str(files["de"])
    garbage = tmp_path / "garbage.tiktoken"
    garbage.write_text("not a tokenizer", encoding="utf-8")
    _fails(capsys, ["eval", "tokenizer", str(garbage), "--texts", en], "not a tokenizer file")
    _fails(capsys, ["eval", "tokenizer", tok, "--texts", de, "--parallel"], "English")
    (tmp_path / "fr.txt").write_text("Le chien.\n", encoding="utf-8")
    fr = str(tmp_path / "fr.txt")
    _fails(capsys, ["eval", "tokenizer", tok, "--texts", en, fr, "--parallel"], "non-empty lines")
    _fails(capsys, ["eval", "tokenizer", tok, "--texts", en, "--english", en], "--parallel")
    _fails(capsys, ["eval", "tokenizer", tok, tok, "--texts", en], "given twice")
