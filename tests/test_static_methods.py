"""Static-embedding methods: FOCUS, WECHSEL, TokAlign, their shared pieces, the dictionary parser."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tiny
import torch

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.data.dictionaries import dictd_pairs, fetch_dictionary
from tokengraft.embeddings.static import procrustes, train_static, unit_rows
from tokengraft.grafting import embedding_weights, graft, graft_embeddings, is_tied
from tokengraft.io import read_dictionary
from tokengraft.methods import Extras
from tokengraft.methods.focus import focus_weights, sparsemax
from tokengraft.methods.tokalign import aligned_spaces

GERMAN = [t for t in tiny.TEXT if "ü" in t or "Recht" in t]
ENGLISH = [t for t in tiny.TEXT if "quick" in t or "Everyone" in t or "tokens" in t]
DICTIONARY = [
    ("dog", "Hund"), ("fox", "Fuchs"), ("the", "der"), ("right", "Recht"), ("life", "Leben"),
    ("and", "und"), ("person", "Person"), ("security", "Sicherheit"), ("liberty", "Freiheit"),
    ("brown", "braune"), ("lazy", "faulen"), ("quick", "schnelle"), ("has", "hat"),
]  # fmt: skip
EXTRAS = Extras(corpus=GERMAN, source_corpus=ENGLISH, dictionary=DICTIONARY)
# Small settings so that the tiny corpora give vectors (the defaults suit megabytes of text).
PARAMS = {
    "focus": {"dim": 8, "min_count": 1},
    "wechsel": {"dim": 8, "min_count": 1},
    "tokalign": {"dim": 8, "min_count": 1, "pivots": 8},
}


# --------------------------------------------------------------------------------- sparsemax


def test_sparsemax_closed_form():
    z = torch.tensor([[1.0, 0.2, -1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[0.9, 0.1, 0.0], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    assert torch.allclose(sparsemax(z), expected)


def test_sparsemax_properties():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(200, 50, generator=gen, dtype=torch.float64) * 3
    p = sparsemax(z)
    assert torch.allclose(p.sum(dim=1), torch.ones(200, dtype=torch.float64))
    assert (p >= 0).all()
    assert ((p == 0).sum(dim=1) > 0).all()  # spread-out scores: some weights are exactly zero
    assert torch.equal(p.argmax(dim=1), z.argmax(dim=1))
    # Order-preserving like softmax: a larger score never gets a smaller weight.
    order = z.argsort(dim=1, descending=True)
    ranked = p.gather(1, order)
    assert (ranked[:, :-1] >= ranked[:, 1:]).all()
    assert torch.allclose(sparsemax(z + 7.0), p)  # invariant to adding a constant
    # Projection onto the simplex: nonzero weights are the scores shifted by one common tau.
    tau = z - p
    for row in range(5):
        support = p[row] > 0
        assert torch.allclose(tau[row][support], tau[row][support][0].expand(int(support.sum())))


def test_sparsemax_single_winner():
    z = torch.tensor([[5.0, 0.0, -2.0]])
    assert torch.equal(sparsemax(z), torch.tensor([[1.0, 0.0, 0.0]]))


# ------------------------------------------------------------------------------ FOCUS weights


@pytest.mark.parametrize("n_anchors", [3, 300, 1200])
def test_focus_weights_sum_to_one(n_anchors):
    """FOCUS weights sum to 1 for every token, and equal sparsemax over all anchors."""
    gen = torch.Generator().manual_seed(n_anchors)
    anchors = unit_rows(torch.randn(n_anchors, 4, generator=gen))
    targets = unit_rows(torch.randn(40, 4, generator=gen))
    # Nearly identical anchors give supports larger than the top-k shortcut sees.
    targets[0] = anchors[0]
    weights = focus_weights(targets, anchors)
    dense = weights.to_dense()
    assert dense.shape == (40, n_anchors)
    assert torch.allclose(dense.sum(dim=1), torch.ones(40, dtype=dense.dtype))
    assert (dense >= 0).all()
    assert torch.allclose(dense, sparsemax((targets @ anchors.T).double()), atol=1e-6)


def test_focus_weights_wide_support():
    """All anchors almost equally similar: the support exceeds the top-k and is recomputed."""
    anchors = unit_rows(torch.ones(600, 3) + 1e-4 * torch.randn(600, 3))
    targets = unit_rows(torch.ones(2, 3))
    dense = focus_weights(targets, anchors).to_dense()
    assert torch.allclose(dense.sum(dim=1), torch.ones(2, dtype=dense.dtype))
    assert ((dense > 0).sum(dim=1) > 256).all()


# ---------------------------------------------------------------------- static and alignment


def test_procrustes_recovers_planted_rotation():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(100, 16, generator=gen, dtype=torch.float64)
    q = torch.linalg.qr(torch.randn(16, 16, generator=gen, dtype=torch.float64)).Q
    noisy = x @ q + 1e-3 * torch.randn(100, 16, generator=gen, dtype=torch.float64)
    w = procrustes(x, noisy)
    assert torch.allclose(w, q, atol=1e-3)
    assert torch.allclose(w.T @ w, torch.eye(16, dtype=torch.float64), atol=1e-10)


def test_static_embeddings_find_planted_clusters():
    """Ids that co-occur only with their own group end up nearest to their own group."""
    rng = np.random.default_rng(0)
    groups = [np.arange(0, 6), np.arange(6, 12)]
    seqs = [rng.choice(groups[i % 2], size=30) for i in range(200)]
    seqs.append(np.array([12]))  # a rare id: no vector
    emb = train_static(seqs, 13, dim=4, window=3, min_count=2, seed=0)
    again = train_static(seqs, 13, dim=4, window=3, min_count=2, seed=0)
    assert torch.equal(emb.vectors, again.vectors)  # deterministic given the seed
    assert not emb.known[12] and emb.known[:12].all()
    assert torch.equal(emb.vectors[12], torch.zeros(4))
    unit = emb.unit()[:12]
    sims = unit @ unit.T - 2 * torch.eye(12)
    nearest = sims.argmax(dim=1)
    assert torch.equal(nearest // 6, torch.arange(12) // 6)


@pytest.mark.parametrize("alignment", ["relative", "procrustes"])
def test_tokalign_matches_planted_tokens(alignment):
    """New token j is old token perm[j] in a rotated space; the alignment recovers perm."""
    gen = torch.Generator().manual_seed(2)
    old = unit_rows(torch.randn(60, 12, generator=gen))
    perm = torch.randperm(60, generator=gen)
    rotation = torch.linalg.qr(torch.randn(12, 12, generator=gen)).Q
    new = unit_rows(old[perm] @ rotation)  # new id j has old id perm[j]
    anchor_new = torch.arange(20)
    new_space, old_space = aligned_spaces(
        new, old, anchor_new, perm[anchor_new], alignment=alignment, pivots=20, generator=gen
    )
    best = (new_space[20:] @ old_space.T).argmax(dim=1)
    assert torch.equal(best, perm[20:])


# ---------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("method", ["focus", "wechsel", "tokalign"])
def test_graft_end_to_end(old_tok, new_tok, tied, method):
    model = tiny.llama(len(old_tok), tied=tied)
    config = GraftConfig(method=method, params=PARAMS[method], seed=3)
    result = graft(model, old_tok, new_tok, config, extras=EXTRAS)
    assert is_tied(result.model) == tied
    for get in ("get_input_embeddings", "get_output_embeddings"):
        weight = getattr(result.model, get)().weight
        assert weight.shape == (len(new_tok), model.config.hidden_size)
        assert torch.isfinite(weight).all()
    # The method did more than the subword-mean fallback for some rows.
    mean = graft_embeddings(
        embedding_weights(model), old_tok, new_tok, GraftConfig(method="subword_mean")
    )
    ours = result.embeddings.weights[Slot.INPUT]
    computed = [i for i, s in enumerate(result.embeddings.sources) if s is RowSource.COMPUTED]
    differs = ~torch.isclose(ours[computed], mean.weights[Slot.INPUT][computed]).all(dim=1)
    assert differs.any()
    # Shared rows are copied bit-identically.
    alignment = result.embeddings.alignment
    shared = [i for i, s in enumerate(result.embeddings.sources) if s is RowSource.COPIED]
    old_w = model.get_input_embeddings().weight
    assert torch.equal(ours[shared], old_w[alignment.old_ids[shared]])


@pytest.mark.parametrize("method", ["focus", "wechsel", "tokalign"])
def test_identical_tokenizer_copies_every_row(old_tok, method):
    model = tiny.llama(len(old_tok), tied=False)
    result = graft(model, old_tok, old_tok, GraftConfig(method=method), extras=EXTRAS)
    assert result.embeddings.counts()[RowSource.COPIED.value] == len(old_tok)
    for get in ("get_input_embeddings", "get_output_embeddings"):
        assert torch.equal(getattr(result.model, get)().weight, getattr(model, get)().weight)


def test_focus_rows_are_convex_combinations_of_anchors(old_tok, new_tok):
    """With one-hot old rows, a FOCUS row shows its weights: nonnegative, summing to 1."""
    eye = torch.eye(len(old_tok), dtype=torch.float64)
    config = GraftConfig(method="focus", params=PARAMS["focus"])
    result = graft_embeddings({Slot.INPUT: eye}, old_tok, new_tok, config, extras=EXTRAS)
    rows = result.weights[Slot.INPUT][result.alignment.to_compute]
    _, anchor_old = result.alignment.anchors()
    on_anchors = rows[:, anchor_old]
    is_focus = torch.isclose(on_anchors.sum(dim=1), rows.sum(dim=1)) & (rows >= 0).all(dim=1)
    assert is_focus.sum() > 10
    assert torch.allclose(
        on_anchors[is_focus].sum(dim=1), torch.ones(int(is_focus.sum()), dtype=torch.float64)
    )


def test_tokalign_top1_copies_an_old_row(old_tok, new_tok):
    old = torch.randn(len(old_tok), 16, dtype=torch.float64)
    config = GraftConfig(method="tokalign", params=PARAMS["tokalign"])
    result = graft_embeddings({Slot.INPUT: old}, old_tok, new_tok, config, extras=EXTRAS)
    rows = result.weights[Slot.INPUT][result.alignment.to_compute]
    copies = (rows[:, None, :] == old[None, :, :]).all(dim=2).any(dim=1)
    assert copies.sum() > 10


def test_static_cache_is_reused(old_tok, new_tok, tmp_path):
    model = tiny.llama(len(old_tok), tied=False)
    config = GraftConfig(method="focus", params=PARAMS["focus"])
    extras = replace(EXTRAS, cache_dir=tmp_path)
    first = graft(model, old_tok, new_tok, config, extras=extras)
    files = sorted((tmp_path / "focus").glob("*.safetensors"))
    assert len(files) == 1
    second = graft(model, old_tok, new_tok, config, extras=extras)
    assert sorted((tmp_path / "focus").glob("*.safetensors")) == files
    for slot, weight in first.embeddings.weights.items():
        assert torch.equal(weight, second.embeddings.weights[slot])


def test_wechsel_needs_dictionary_overlap(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=True)
    extras = replace(EXTRAS, dictionary=[("zzz", "yyy")])
    with pytest.raises(Exception, match="no dictionary pair"):
        graft(
            model,
            old_tok,
            new_tok,
            GraftConfig(method="wechsel", params=PARAMS["wechsel"]),
            extras=extras,
        )


# ----------------------------------------------------------------------------- dictionaries


def _b64(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out = ""
    while True:
        out = alphabet[n % 64] + out
        n //= 64
        if n == 0:
            return out


def _dictd(entries: list[tuple[str, str]]) -> tuple[str, bytes]:
    data, index = b"", []
    for key, text in entries:
        raw = text.encode()
        index.append(f"{key}\t{_b64(len(data))}\t{_b64(len(raw))}")
        data += raw
    return "\n".join(index) + "\n", data


def test_dictd_pairs_parses_freedict_entries():
    index, data = _dictd(
        [
            ("00-database-info", "00-database-info\nabout this database\n"),
            ("dog", "dog /dˈɒɡ/\nBock <masc>, Auflagebock <masc> [techn.]\n"),
            ("dog", 'dog /dˈɒɡ/\nHund <masc> [zool.]\n      "train a dog"  - einen Hund\n'),
            ("water", "water /wˈɔːtə/ <v>\ngießen, begießen, Wasser marsch <v, trans>\n"),
            ("ice cream", "ice cream\nEis <neut>\n"),
        ]
    )
    pairs = dictd_pairs(index, data, max_translations=2)
    assert pairs == [("dog", "Hund"), ("dog", "Bock"), ("water", "gießen"), ("water", "begießen")]


def test_fetch_dictionary_reuses_file_and_reads_back(tmp_path):
    path = tmp_path / "dictionaries" / "eng-deu.tsv"
    path.parent.mkdir()
    path.write_text("# header\ndog\tHund\nwater\tWasser\n", encoding="utf-8")
    assert fetch_dictionary("eng-deu", root=tmp_path) == path  # no download: the file exists
    assert read_dictionary(path) == [("dog", "Hund"), ("water", "Wasser")]


def test_dictd_offsets_count_bytes_in_multi_digit_base64():
    """Entries far into the data (offsets of several base64 digits) after entries full of
    multi-byte UTF-8 are found: offsets count bytes, not characters."""
    filler = [(f"n{i}", f"n{i} /ˈnʊmɐ/\nÄrger <masc>, Größe\n") for i in range(150)]  # not words
    index, data = _dictd([*filler, ("house", "house /hˈaʊs/\nHaus <neut>, Gebäude {n}\n")])
    assert len(data) > 64**2  # the last offset takes three base64 digits
    assert len(data) > len(data.decode()) + 500  # byte and character offsets differ a lot
    assert dictd_pairs(index, data) == [("house", "Haus"), ("house", "Gebäude")]
