"""TokenAdapt (auxiliary encoder) and the piece hypernetwork on tiny models."""

from __future__ import annotations

import tiny
import torch

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.grafting import embedding_weights, graft, graft_embeddings, is_tied
from tokengraft.methods import Extras, MethodInput, get_method
from tokengraft.methods.common import torch_threads
from tokengraft.methods.hypernet import PieceHypernet, Standardiser, train_hypernet
from tokengraft.methods.tokenadapt import embed_texts
from tokengraft.vocab import CanonicalToken, canonical_vocab


def _ta_rows(old_tok, new_tok, aux_model, **params) -> torch.Tensor:
    model = tiny.llama(len(old_tok), tied=True)
    result = graft_embeddings(
        embedding_weights(model),
        old_tok,
        new_tok,
        GraftConfig(method="tokenadapt", params=params),
        extras=Extras(aux_model=aux_model),
    )
    computed = torch.tensor(result.alignment.to_compute)
    return result.weights[Slot.INPUT][computed].double()


# ---------------------------------------------------------------------------------- tokenadapt


def test_tokenadapt_end_to_end(old_tok, new_tok, tied, aux_model, tmp_path):
    model = tiny.llama(len(old_tok), tied=tied)
    extras = Extras(aux_model=aux_model, cache_dir=tmp_path)
    result = graft(model, old_tok, new_tok, GraftConfig(method="tokenadapt"), extras=extras)
    assert is_tied(result.model) == tied
    ids = result.tokenizer("Der Fuchs springt.", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = result.model(ids).logits
    assert logits.shape[-1] == len(new_tok) and torch.isfinite(logits).all()
    sources = result.embeddings.sources
    copied = [i for i, s in enumerate(sources) if s is RowSource.COPIED]
    old_ids = result.embeddings.alignment.old_ids[copied]
    for get in ("get_input_embeddings", "get_output_embeddings"):
        new_w, old_w = getattr(result.model, get)().weight, getattr(model, get)().weight
        assert torch.equal(new_w[copied], old_w[old_ids]), get
    # Old- and new-vocabulary auxiliary embeddings were cached; a second run reads them back.
    assert len(list((tmp_path / "tokenadapt").glob("aux-*.safetensors"))) == 2
    again = graft(model, old_tok, new_tok, GraftConfig(method="tokenadapt"), extras=extras)
    assert torch.equal(
        again.model.get_input_embeddings().weight, result.model.get_input_embeddings().weight
    )


def test_tokenadapt_hybrid_is_the_blend_of_local_and_global(old_tok, new_tok, aux_model):
    local = _ta_rows(old_tok, new_tok, aux_model, global_weight=0.0)
    glob = _ta_rows(old_tok, new_tok, aux_model, global_weight=1.0)
    hybrid = _ta_rows(old_tok, new_tok, aux_model, global_weight=0.3)
    assert not torch.allclose(local, glob)
    assert torch.allclose(hybrid, 0.7 * local + 0.3 * glob, atol=1e-5)
    # No neighbour passes an impossible threshold: the hybrid falls back to the local estimate.
    strict = _ta_rows(old_tok, new_tok, aux_model, global_weight=0.3, threshold=1.5)
    assert torch.allclose(strict, local)


def test_tokenadapt_local_closed_form(old_tok, aux_model):
    """Weights of the pieces of one token: softmax(((cos + len ratio) / 2) / T)."""
    vocab = canonical_vocab(old_tok)
    a = vocab.lookup(CanonicalToken(b"token", word_start=True))
    b = vocab.lookup(CanonicalToken(b"heit"))
    assert a is not None and b is not None
    token = CanonicalToken(b"tokenheit", word_start=True)
    old = torch.randn(len(old_tok), 8, dtype=torch.float64)
    inp = MethodInput(
        old=old,
        slot=Slot.INPUT,
        to_compute=torch.tensor([0]),
        pieces=[[a, b]],
        n_new=1,
        generator=torch.Generator().manual_seed(0),
        tokens=[token],
        old_tokenizer=old_tok,
        params=get_method("tokenadapt").resolve_params({"global_weight": 0.0}),
        extras=Extras(aux_model=aux_model),
    )
    row = get_method("tokenadapt").fn(inp).rows[0]
    emb = embed_texts(*aux_model, [" tokenheit", " token", "heit"])
    cos = emb[1:] @ emb[0]
    ratio = torch.tensor([6 / 10, 4 / 10], dtype=torch.float64)
    w = torch.softmax(((cos.double() + ratio) / 2) / 0.3, dim=0)
    assert torch.allclose(row, w[0] * old[a] + w[1] * old[b], atol=1e-6)


def test_tokenadapt_unspellable_and_empty_tokens(old_tok, aux_model):
    old = torch.randn(len(old_tok), 8, dtype=torch.float64)
    spec = get_method("tokenadapt")

    def run(tokens, pieces, **params):
        inp = MethodInput(
            old=old,
            slot=Slot.OUTPUT,
            to_compute=torch.arange(len(tokens)),
            pieces=pieces,
            n_new=len(tokens),
            generator=torch.Generator().manual_seed(0),
            tokens=tokens,
            old_tokenizer=old_tok,
            params=spec.resolve_params(params),
            extras=Extras(aux_model=aux_model),
        )
        return spec.fn(inp)

    token = CanonicalToken("Straßenbahn".encode(), word_start=True)
    # Unspellable but with text: the global estimate alone (as with global_weight=1).
    result = run([token, None], [None, None])
    rows = result.rows
    # (batched with another token vs alone: equal up to float summation order)
    assert torch.allclose(rows[0], run([token], [[5, 6]], global_weight=1.0).rows[0], atol=1e-6)
    # No bytes at all: the mean row, the one reported as a fallback.
    assert torch.allclose(rows[1], old.mean(dim=0))
    assert result.fallback.tolist() == [False, True]
    # With top_k=1 the global estimate is exactly one old row.
    single = run([token], [None], top_k=1).rows[0]
    assert torch.isclose(old, single).all(dim=1).any()


# ------------------------------------------------------------------------------------ hypernet


def _hn_input(old_tok, old, pieces, *, seed=0, cache_dir=None, **params) -> MethodInput:
    extras = Extras(cache_dir=cache_dir)
    return MethodInput(
        old=old,
        slot=Slot.INPUT,
        to_compute=torch.arange(len(pieces)),
        pieces=pieces,
        n_new=len(pieces),
        generator=torch.Generator().manual_seed(seed),
        old_tokenizer=old_tok,
        params=get_method("hypernet").resolve_params({"hidden": 32, "epochs": 2, **params}),
        extras=extras,
    )


def test_untrained_hypernet_is_subword_mean(old_tok):
    old = torch.randn(len(old_tok), 16)
    pieces = [[300, 301, 302], [17, 42], None]
    rows = get_method("hypernet").fn(_hn_input(old_tok, old, pieces, epochs=0))
    assert torch.allclose(rows[0], old[[300, 301, 302]].mean(dim=0), atol=1e-5)
    assert torch.allclose(rows[1], old[[17, 42]].mean(dim=0), atol=1e-5)
    assert torch.allclose(rows[2], old.mean(dim=0))


def test_hypernet_learns_a_planted_composition(old_tok):
    """Rows that are the SUM of byte rows: subword mean is off by the piece count; training fixes it."""
    vocab = canonical_vocab(old_tok)
    g = torch.Generator().manual_seed(0)
    byte_rows = torch.randn(256, 16, generator=g)
    old = torch.randn(len(vocab), 16, generator=g)
    for i, t in enumerate(vocab.tokens):
        if t is not None and not t.special:
            old[i] = byte_rows[list(t.surface)].sum(dim=0)
    params = get_method("hypernet").resolve_params(
        {"hidden": 32, "epochs": 25, "batch_size": 32, "lr": 3e-3}
    )
    net = PieceHypernet(16, hidden=32, layers=2, heads=4)
    with torch_threads(1):
        stats = train_hypernet(net, old, Standardiser.of(old), old_tok, vocab, params, seed=0)
    assert stats["val_tokens"] >= 5 and stats["train_examples"] > 100
    assert stats["val_mse"] < 0.3 * stats["baseline_mse"], stats


def test_hypernet_deterministic_from_seed(old_tok):
    old = torch.randn(len(old_tok), 16)
    pieces = [[300, 301, 302], [17, 42]]
    fn = get_method("hypernet").fn
    a = fn(_hn_input(old_tok, old, pieces, seed=1))
    b = fn(_hn_input(old_tok, old, pieces, seed=1))
    c = fn(_hn_input(old_tok, old, pieces, seed=2))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_hypernet_end_to_end_with_cache(old_tok, new_tok, tied, tmp_path):
    model = tiny.llama(len(old_tok), tied=tied)
    config = GraftConfig(method="hypernet", seed=3, params={"hidden": 32, "epochs": 2})
    first = graft_embeddings(
        embedding_weights(model), old_tok, new_tok, config, extras=Extras(cache_dir=tmp_path)
    )
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "hypernet").iterdir())
    assert cached == (["input"] if tied else ["input", "output"])
    again = graft_embeddings(
        embedding_weights(model), old_tok, new_tok, config, extras=Extras(cache_dir=tmp_path)
    )
    for slot, weight in first.weights.items():
        assert torch.equal(weight, again.weights[slot])
        assert torch.isfinite(weight).all()
