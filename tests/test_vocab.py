"""Canonical bytes for every tokenizer family, and byte-exact alignment."""

from __future__ import annotations

import pytest
import tiny
from conftest import FAMILIES
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tokengraft.config import RowSource
from tokengraft.vocab import (
    CanonicalToken,
    Family,
    align,
    canonical_vocab,
    decode_canonical,
    describe,
)
from tokengraft.vocab.spell import decompose

EXPECTED_FAMILY = {
    "byte_level": Family.BYTE_LEVEL,
    "sentencepiece": Family.METASPACE,
    "wordpiece": Family.WORDPIECE,
    "unigram": Family.METASPACE,
}


@pytest.mark.parametrize("family", FAMILIES)
def test_family_detected(tokenizers_by_family, family):
    assert describe(tokenizers_by_family[family]).family is EXPECTED_FAMILY[family]


def test_word_start_markers_agree_across_families(tokenizers_by_family):
    bl = canonical_vocab(tokenizers_by_family["byte_level"])
    sp = canonical_vocab(tokenizers_by_family["sentencepiece"])
    wp = canonical_vocab(tokenizers_by_family["wordpiece"])
    bl_the = bl.tokens[tokenizers_by_family["byte_level"].convert_tokens_to_ids("Ġthe")]
    sp_the = sp.tokens[tokenizers_by_family["sentencepiece"].convert_tokens_to_ids("▁the")]
    wp_the = wp.tokens[tokenizers_by_family["wordpiece"].convert_tokens_to_ids("the")]
    assert bl_the == sp_the == wp_the == CanonicalToken(b"the", word_start=True)
    wp_cont = wp.tokens[tokenizers_by_family["wordpiece"].convert_tokens_to_ids("##s")]
    assert wp_cont == CanonicalToken(b"s")


def test_byte_fallback_and_partial_utf8():
    sp = tiny.sentencepiece_bpe()
    vocab = canonical_vocab(sp)
    assert vocab.tokens[sp.convert_tokens_to_ids("<0x0A>")] == CanonicalToken(
        b"\n", byte_fallback=True
    )
    bl = tiny.byte_level_bpe()
    # "Ã" is the byte-level character for 0xC3, the first byte of "ö": not valid UTF-8 alone.
    assert canonical_vocab(bl).tokens[bl.convert_tokens_to_ids("Ã")].text == b"\xc3"


def test_special_tokens_are_marked(tokenizers_by_family):
    tok = tokenizers_by_family["byte_level"]
    token = canonical_vocab(tok).tokens[tok.convert_tokens_to_ids("<|im_start|>")]
    assert token == CanonicalToken(b"<|im_start|>", special=True)


ANY_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=60
)
EXAMPLES = 60


def _texts(family: str, tok) -> st.SearchStrategy[str]:
    """Texts the family's tokenizer can round-trip, so that the property below is exercised.

    Byte-level and byte-fallback tokenizers take any text. WordPiece splits on punctuation and
    decodes with single spaces, Unigram without byte fallback maps unseen characters to <unk>:
    for them, words over the characters the vocabulary spells by itself (WordPiece: as a word
    start and as a ``##`` continuation), joined by single spaces.
    """
    vocab = tok.get_vocab()
    if family == "wordpiece":
        chars = {c for c in vocab if len(c) == 1 and f"##{c}" in vocab}
    elif family == "unigram":
        chars = {c for c in vocab if len(c) == 1 and c != "▁"}
    else:
        return ANY_TEXT
    word = st.text(alphabet=sorted(chars), min_size=1, max_size=8)
    return st.lists(word, max_size=8).map(" ".join)


@pytest.mark.parametrize("family", FAMILIES)
def test_canonical_bytes_concatenate_to_text(tokenizers_by_family, family):
    """For every family: where the tokenizer round-trips, canonical bytes spell the input.

    Texts a tokenizer cannot round-trip are skipped with ``assume`` (e.g. a leading space, which
    SentencePiece's decoder strips); the test then checks that most examples really ran.
    """
    tok = tokenizers_by_family[family]
    vocab = canonical_vocab(tok)
    ran: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(text=_texts(family, tok))
    def spelled(text: str) -> None:
        ids = tok(text, add_special_tokens=False).input_ids
        assume(tok.decode(ids, clean_up_tokenization_spaces=False) == text)
        assert decode_canonical(vocab, ids) == text.encode("utf-8")
        ran.append(text)

    spelled()
    distinct = {t for t in ran if t.strip()}
    assert len(distinct) >= 0.75 * EXAMPLES, f"{family}: the property ran on {len(distinct)} texts"


def test_identical_tokenizers_copy_every_row(old_tok):
    alignment = align(old_tok, old_tok)
    assert all(s is RowSource.COPIED for s in alignment.source)
    assert alignment.old_ids.tolist() == list(range(len(old_tok)))


def test_cross_family_alignment_counts(tokenizers_by_family):
    old, new = tokenizers_by_family["byte_level"], tokenizers_by_family["sentencepiece"]
    alignment = align(old, new)
    counts = {k: alignment.count(k) for k in RowSource}
    assert sum(counts.values()) == len(new)
    # Every <0xNN> piece has a byte-level twin, so at least the 256 bytes are copied.
    assert counts[RowSource.COPIED] >= 256
    # bos/eos/unk of the new tokenizer are matched by role, not computed.
    for name in ("<s>", "</s>", "<unk>"):
        assert alignment.source[new.convert_tokens_to_ids(name)] is RowSource.ROLE


def test_copied_rows_have_equal_bytes(old_tok, new_tok):
    alignment = align(old_tok, new_tok)
    for new_id, source in enumerate(alignment.source):
        if source is RowSource.COPIED:
            old_id = int(alignment.old_ids[new_id])
            assert alignment.new_vocab.tokens[new_id] == alignment.old_vocab.tokens[old_id]


@pytest.mark.parametrize("family", FAMILIES)
def test_decomposition_spells_each_token(tokenizers_by_family, old_tok, family):
    """Old pieces of a new token concatenate to its bytes (byte-level old: everything spellable)."""
    new = tokenizers_by_family[family]
    old_vocab, new_vocab = canonical_vocab(old_tok), canonical_vocab(new)
    tokens = [t for t in new_vocab.tokens if t is not None and not t.special]
    for token, ids in zip(tokens, decompose(old_tok, old_vocab, tokens), strict=True):
        assert ids is not None, token
        assert b"".join(old_vocab.tokens[i].surface for i in ids) == token.surface


def test_unspellable_token_is_none(tokenizers_by_family):
    wp = tokenizers_by_family["wordpiece"]
    vocab = canonical_vocab(wp)
    assert decompose(wp, vocab, [CanonicalToken("€".encode())]) == [None]
