"""Canonical bytes for every tokenizer family, and byte-exact alignment."""

from __future__ import annotations

import pytest
import tiny
from conftest import FAMILIES
from hypothesis import HealthCheck, given, settings
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


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=60
)


@pytest.mark.parametrize("family", FAMILIES)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=TEXT)
def test_canonical_bytes_concatenate_to_text(tokenizers_by_family, family, text):
    """For every family: where the tokenizer round-trips, canonical bytes spell the input."""
    tok = tokenizers_by_family[family]
    ids = tok(text, add_special_tokens=False).input_ids
    if tok.decode(ids, clean_up_tokenization_spaces=False) != text:
        return  # the property is stated for texts the tokenizer itself round-trips
    assert decode_canonical(canonical_vocab(tok), ids) == text.encode("utf-8")


@pytest.mark.parametrize("family", ["byte_level", "sentencepiece"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet="abcdefghij öäü.,", min_size=1, max_size=40))
def test_round_tripping_families_cover_plain_text(tokenizers_by_family, family, text):
    """The byte-level and byte-fallback tokenizers round-trip such text, so the property bites."""
    tok = tokenizers_by_family[family]
    ids = tok(text, add_special_tokens=False).input_ids
    if family == "sentencepiece" and text.startswith(" "):
        return  # the SentencePiece decoder strips one leading space, as sentencepiece does
    assert decode_canonical(canonical_vocab(tok), ids) == text.encode("utf-8")


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
