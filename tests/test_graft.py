"""Graft invariants on tiny models, and every registered method end to end."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest
import tiny
import torch

from tokengraft.config import NEED_FLAGS, GraftConfig, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting import embedding_weights, graft, graft_embeddings, is_tied
from tokengraft.methods import Extras, MethodInput, Need, get_method, load_all, register, registry

DONOR_FREE = [name for name, spec in load_all().items() if not spec.needs]


@pytest.mark.parametrize("method", DONOR_FREE)
def test_every_method_end_to_end(old_tok, new_tok, tied, method):
    model = tiny.llama(len(old_tok), tied=tied)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = graft(model, old_tok, new_tok, GraftConfig(method=method, seed=1))
    new_model = result.model
    # The input model is untouched.
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    # Tied stays tied, untied stays untied, and both matrices have the new vocabulary's size.
    assert is_tied(new_model) == tied == result.tied
    assert new_model.get_input_embeddings().weight.shape[0] == len(new_tok)
    assert new_model.get_output_embeddings().weight.shape[0] == len(new_tok)
    ids = result.tokenizer("Der Fuchs springt.", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = new_model(ids).logits
    assert logits.shape[-1] == len(new_tok)
    assert torch.isfinite(logits).all()
    counts = result.embeddings.counts()
    assert sum(counts.values()) == len(new_tok)


@pytest.mark.parametrize("method", DONOR_FREE)
def test_shared_rows_bit_identical(old_tok, new_tok, tied, method):
    model = tiny.llama(len(old_tok), tied=tied)
    result = graft(model, old_tok, new_tok, GraftConfig(method=method))
    alignment = result.embeddings.alignment
    pairs = [
        (new_id, int(alignment.old_ids[new_id]))
        for new_id, s in enumerate(result.embeddings.sources)
        if s in (RowSource.COPIED, RowSource.ROLE)
    ]
    assert len(pairs) > 100
    new_ids, old_ids = map(list, zip(*pairs, strict=True))
    for get in ("get_input_embeddings", "get_output_embeddings"):
        old_w = getattr(model, get)().weight
        new_w = getattr(result.model, get)().weight
        assert torch.equal(new_w[new_ids], old_w[old_ids]), get


@pytest.mark.parametrize("method", DONOR_FREE)
def test_identical_tokenizer_copies_every_row(old_tok, method):
    model = tiny.llama(len(old_tok), tied=False)
    result = graft(model, old_tok, old_tok, GraftConfig(method=method))
    assert result.embeddings.counts()[RowSource.COPIED.value] == len(old_tok)
    for get in ("get_input_embeddings", "get_output_embeddings"):
        assert torch.equal(getattr(result.model, get)().weight, getattr(model, get)().weight)


def test_subword_mean_closed_form(old_tok):
    """Row of a token spelled [a, b] is (E[a] + E[b]) / 2, for the head too."""
    spec = get_method("subword_mean")
    old = torch.randn(len(old_tok), 8, dtype=torch.float64)
    a, b = 17, 42
    inp = MethodInput(
        old=old,
        slot=Slot.OUTPUT,
        to_compute=torch.tensor([0, 1]),
        pieces=[[a, b], None],
        n_new=2,
        generator=torch.Generator().manual_seed(0),
    )
    rows = spec.fn(inp)
    assert torch.allclose(rows[0], (old[a] + old[b]) / 2)
    assert torch.allclose(rows[1], old.mean(dim=0))  # unspellable: mean row


@pytest.mark.parametrize("method", ["omp", "tokenadapt"])
def test_fallback_label_follows_what_the_method_did(new_tok, aux_model, method):
    """A token the old tokenizer cannot spell is `fallback` only where the method made no row of
    its own (the mean row, or omp's zero row for a special token), not wherever it is unspelled."""
    old_tok = tiny.wordpiece()  # spells few of the byte-level tokens
    weights = embedding_weights(tiny.llama(len(old_tok), tied=True))
    default = graft_embeddings(weights, old_tok, new_tok, GraftConfig(method="subword_mean"))
    unspelled = [i for i, s in enumerate(default.sources) if s is RowSource.FALLBACK]
    assert len(unspelled) > 100
    extras = Extras(donor=tiny.donor(len(new_tok), tied=True), aux_model=aux_model)
    params = {"k": 4} if method == "omp" else {}
    config = GraftConfig(method=method, params=params)
    result = graft_embeddings(weights, old_tok, new_tok, config, extras=extras)
    mean = weights[Slot.INPUT].double().mean(dim=0)
    for i in unspelled:
        row = result.weights[Slot.INPUT][i].double()
        made_none = torch.allclose(row, mean, atol=1e-6) or not row.any()
        assert (result.sources[i] is RowSource.FALLBACK) == made_none, i
    assert result.counts()["computed"] > default.counts()["computed"] + 100
    assert result.pieces == default.pieces


def test_mean_and_randn_statistics(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=True, hidden=16)
    old = embedding_weights(model)[Slot.INPUT]
    mean = graft_embeddings({Slot.INPUT: old}, old_tok, new_tok, GraftConfig(method="mean"))
    computed = [i for i, s in enumerate(mean.sources) if s is RowSource.COMPUTED]
    assert torch.allclose(
        mean.weights[Slot.INPUT][computed], old.mean(0).expand(len(computed), -1), atol=1e-6
    )
    big = torch.randn(4000, 16, generator=torch.Generator().manual_seed(0)) * 3 + 1
    inp = MethodInput(
        old=big,
        slot=Slot.INPUT,
        to_compute=torch.arange(20000),
        pieces=[None] * 20000,
        n_new=20000,
        generator=torch.Generator().manual_seed(0),
        params={"scale": 1.0},
    )
    rows = get_method("randn").fn(inp)
    assert torch.allclose(rows.mean(0), big.mean(0), atol=0.1)
    assert torch.allclose(rows.std(0), big.std(0), rtol=0.05)


def test_seed_reproducible(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=True)
    runs = [graft(model, old_tok, new_tok, GraftConfig(method="randn", seed=s)) for s in (3, 3, 4)]
    w = [r.model.get_input_embeddings().weight for r in runs]
    assert torch.equal(w[0], w[1])
    assert not torch.equal(w[0], w[2])


def test_config_special_ids_point_at_new_vocab(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=True)
    model.config.bos_token_id = old_tok.convert_tokens_to_ids("<|im_start|>")
    model.config.eos_token_id = old_tok.convert_tokens_to_ids("<|im_end|>")
    result = graft(model, old_tok, new_tok, GraftConfig())
    assert result.model.config.bos_token_id == new_tok.convert_tokens_to_ids("<|im_start|>")
    assert result.model.config.eos_token_id == new_tok.convert_tokens_to_ids("<|im_end|>")
    assert result.model.config.vocab_size == len(new_tok)


def test_chat_template_carried_and_gaps_warned(old_tok, tokenizers_by_family):
    model = tiny.llama(len(old_tok), tied=True)
    result = graft(model, old_tok, tokenizers_by_family["unigram"], GraftConfig())
    assert result.tokenizer.chat_template == old_tok.chat_template
    assert any("<|im_start|>" in w for w in result.warnings)


def test_unknown_method_lists_valid_ones(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=True)
    with pytest.raises(TokengraftError, match="valid methods: .*subword_mean"):
        graft(model, old_tok, new_tok, GraftConfig(method="nope"))


def test_unknown_param_is_an_error(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=True)
    with pytest.raises(TokengraftError, match="no parameter k"):
        graft(model, old_tok, new_tok, GraftConfig(method="mean", params={"k": 3}))


def test_vocabulary_mismatch(old_tok, new_tok):
    model = tiny.llama(100, tied=True)  # smaller than the tokenizer: not its tokenizer
    with pytest.raises(TokengraftError, match="vocabulary mismatch"):
        graft(model, old_tok, new_tok, GraftConfig())


# ------------------------------------------------------------------------------ registry


def test_registered_methods_are_well_formed():
    """What `tokengraft methods --json` and the README table show, and what -p key=value sets."""
    methods = load_all()
    assert {"mean", "randn", "subword_mean", "omp"} <= set(methods)
    for name, spec in methods.items():
        assert spec.fn.__module__ == f"tokengraft.methods.{name}", "one module per method"
        assert spec.summary.strip() and "\n" not in spec.summary, name
        assert all(isinstance(n, Need) and n in NEED_FLAGS for n in spec.needs), name
        for key, param in spec.params.items():
            assert key.isidentifier() and key == key.lower(), (name, key)
            assert isinstance(param.default, param.type), (name, key, param.default)
            assert param.check(param.default, key) == param.default, (name, key)
            assert param.help.strip() and "\n" not in param.help, (name, key)
        assert spec.resolve_params({}) == spec.defaults()
        assert json.loads(json.dumps(spec.to_dict())) == spec.to_dict()
        assert spec.refine is None or callable(spec.refine)


def test_methods_are_discovered_once(monkeypatch):
    """The package is scanned by the first lookup only; later lookups read the registry."""
    names = list(load_all())

    def rescan(*args, **kwargs):
        raise AssertionError("the method package was scanned again")

    monkeypatch.setattr(registry, "pkgutil", SimpleNamespace(iter_modules=rescan))
    assert list(load_all()) == names
    assert [get_method(name).name for name in names] == names
    with pytest.raises(TokengraftError, match="valid methods"):
        get_method("nope")


def test_a_name_is_registered_once():
    spec = get_method("mean")
    with pytest.raises(ValueError, match="registered twice"):
        register(dataclasses.replace(spec, fn=lambda inp: inp.old))
    assert get_method("mean") is spec
    assert register(spec) is spec  # the same method again (a module imported twice) is harmless


# ------------------------------------------------------------------------------ needs


def test_missing_needs_name_their_flags():
    extras = Extras(corpus=["Der Hund."])
    assert extras.missing({Need.CORPUS}) == []
    missing = " ".join(extras.missing({Need.CORPUS, Need.DONOR, Need.DICTIONARY}))
    assert NEED_FLAGS[Need.DONOR] in missing and NEED_FLAGS[Need.DICTIONARY] in missing
    assert NEED_FLAGS[Need.CORPUS] not in missing


@pytest.mark.parametrize("method", ["omp", "wechsel", "tokenadapt"])
def test_a_missing_need_is_an_error_naming_its_flag(old_tok, new_tok, method):
    model = tiny.llama(len(old_tok), tied=True)
    flags = [NEED_FLAGS[need] for need in get_method(method).needs]
    with pytest.raises(TokengraftError) as raised:
        graft(model, old_tok, new_tok, GraftConfig(method=method))
    for flag in filter(None, flags):
        assert flag in str(raised.value)
