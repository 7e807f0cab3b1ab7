"""The `omp` method: exact sparse recovery, end-to-end grafts with a tiny donor, determinism."""

from __future__ import annotations

import pytest
import tiny
import torch

from tokengraft.config import GraftConfig, RowSource, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting import embedding_weights, graft, is_tied
from tokengraft.methods import Donor, Extras, MethodInput, get_method
from tokengraft.methods.omp import sparse_codes
from tokengraft.vocab import CanonicalToken


def _planted(
    n_atoms: int, dim: int, k: int, n_targets: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random dictionary (S, d) and targets that are exact k-sparse combinations of it."""
    gen = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n_atoms, dim, generator=gen)
    support = torch.stack([torch.randperm(n_atoms, generator=gen)[:k] for _ in range(n_targets)])
    signs = torch.where(torch.rand(n_targets, k, generator=gen) < 0.5, -1.0, 1.0)
    coefs = signs * (0.5 + torch.rand(n_targets, k, generator=gen, dtype=torch.float64))
    targets = torch.einsum("nk,nkd->nd", coefs, atoms.double()[support]).float()
    return atoms, targets, support, coefs


@pytest.mark.parametrize("extra_atoms", [0, 3], ids=["k_atoms", "k_plus_3"])
def test_recovers_planted_sparse_combination_in_base_space(extra_atoms):
    """Target = sum c_i donor[anchor_i] with k atoms -> row = sum c_i base[anchor_i] (to 1e-4)."""
    n_anchors, k, n_new = 300, 5, 12
    donor_atoms, targets, support, coefs = _planted(n_anchors, 48, k, n_new)
    donor = torch.cat([donor_atoms, targets])  # new ids: anchors first, then the new tokens
    old = torch.randn(n_anchors + 7, 20, generator=torch.Generator().manual_seed(1))
    anchor_old = torch.randperm(n_anchors + 7, generator=torch.Generator().manual_seed(2))
    anchor_old = anchor_old[:n_anchors]
    spec = get_method("omp")
    inp = MethodInput(
        old=old,
        slot=Slot.INPUT,
        to_compute=torch.arange(n_anchors, n_anchors + n_new),
        pieces=[None] * n_new,
        n_new=n_anchors + n_new,
        generator=torch.Generator().manual_seed(0),
        anchor_new=torch.arange(n_anchors),
        anchor_old=anchor_old,
        params=spec.resolve_params({"k": k + extra_atoms, "candidates": 0}),
        extras=Extras(donor=Donor(weights={Slot.INPUT: donor, Slot.OUTPUT: donor})),
    )
    rows = spec.fn(inp).rows
    expected = torch.einsum("nk,nkd->nd", coefs, old.double()[anchor_old[support]])
    assert rows.shape == (n_new, 20)
    assert torch.allclose(rows.double(), expected, atol=1e-4)


@pytest.mark.parametrize(("candidates", "refresh"), [(0, 1), (40, 8), (40, 2)])
def test_sparse_codes_find_the_planted_support(candidates, refresh):
    atoms, targets, support, coefs = _planted(400, 256, 4, 10, seed=3)
    codes = sparse_codes(targets, atoms, k=6, candidates=candidates, refresh=refresh, batch_size=4)
    for n in range(len(targets)):
        found = dict(zip(codes.indices[n].tolist(), codes.coefs[n].tolist(), strict=True))
        for atom, coef in zip(support[n].tolist(), coefs[n].tolist(), strict=True):
            assert found[atom] == pytest.approx(coef, abs=1e-4)
        # Once the target is explained, the two atoms beyond the support are not fitted to noise.
        assert all(c == 0.0 for a, c in found.items() if a not in support[n].tolist())


def test_least_squares_coefficients_are_optimal():
    """Whatever atoms are chosen, their coefficients solve least squares on those atoms."""
    gen = torch.Generator().manual_seed(4)
    atoms, targets = torch.randn(200, 16, generator=gen), torch.randn(9, 16, generator=gen)
    for candidates, refresh in ((0, 1), (50, 8), (20, 2)):
        codes = sparse_codes(targets, atoms, k=5, candidates=candidates, refresh=refresh)
        chosen = atoms.double()[codes.indices]  # (N, k, d)
        best = torch.linalg.lstsq(chosen.transpose(1, 2), targets.double().unsqueeze(-1))
        assert torch.allclose(codes.coefs, best.solution.squeeze(-1), atol=1e-5)
        assert all(len(set(row)) == 5 for row in codes.indices.tolist())  # no atom twice


def test_greedy_choice_is_the_most_correlated_atom():
    atoms = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 0.0]])
    target = torch.tensor([[0.2, 3.0, 0.1]])
    codes = sparse_codes(target, atoms, k=1)
    assert codes.indices.tolist() == [[1]]
    assert codes.coefs.tolist() == [[pytest.approx(3.0)]]


def test_refreshed_candidates_approach_full_omp():
    """Re-selecting candidates from the residual at every step is exact OMP again."""
    gen = torch.Generator().manual_seed(6)
    atoms, targets = torch.randn(300, 24, generator=gen), torch.randn(11, 24, generator=gen)
    full = sparse_codes(targets, atoms, k=8, candidates=0)
    every_step = sparse_codes(targets, atoms, k=8, candidates=10, refresh=1)
    assert torch.equal(full.indices, every_step.indices)
    assert torch.allclose(full.coefs, every_step.coefs, atol=1e-5)


def test_candidates_covering_the_dictionary_equal_full_omp():
    gen = torch.Generator().manual_seed(5)
    atoms, targets = torch.randn(60, 12, generator=gen), torch.randn(7, 12, generator=gen)
    full = sparse_codes(targets, atoms, k=6, candidates=0)
    covering = sparse_codes(targets, atoms, k=6, candidates=60)
    assert torch.equal(full.indices, covering.indices)
    assert torch.equal(full.coefs, covering.coefs)


def _residuals(targets: torch.Tensor, atoms: torch.Tensor, codes) -> torch.Tensor:
    """(N,) norms of ``targets - A c``: what the chosen atoms leave unexplained."""
    approx = torch.einsum("nk,nkd->nd", codes.coefs, atoms.double()[codes.indices])
    return (targets.double() - approx).norm(dim=1)


@pytest.mark.parametrize(("candidates", "refresh"), [(0, 1), (40, 8), (20, 3)])
def test_more_atoms_never_explain_less(candidates, refresh):
    """OMP is greedy: a run with more atoms starts with the same atoms (as long as the candidate
    pool is the same), so its residual is no larger; with as many atoms as dimensions every
    generic target is reproduced."""
    gen = torch.Generator().manual_seed(6)
    atoms, targets = torch.randn(300, 24, generator=gen), torch.randn(11, 24, generator=gen)
    previous = None
    for k in (1, 2, 3, 5, 8, 13, 20):
        codes = sparse_codes(targets, atoms, k=k, candidates=candidates, refresh=refresh)
        residual = _residuals(targets, atoms, codes)
        if previous is not None:
            prev_codes, prev_residual = previous
            assert torch.equal(codes.indices[:, : prev_codes.indices.shape[1]], prev_codes.indices)
            assert (residual <= prev_residual + 1e-6).all(), k
        previous = codes, residual
    full_rank = sparse_codes(targets, atoms, k=24, candidates=candidates, refresh=refresh)
    norms = targets.double().norm(dim=1)
    assert (_residuals(targets, atoms, full_rank) <= 2e-3 * norms).all()
    one_atom = _residuals(targets, atoms, sparse_codes(targets, atoms, k=1, candidates=candidates))
    assert (one_atom > 0.5 * norms).all()  # one atom of 300 in 24 dimensions explains little


def test_graft_end_to_end(old_tok, new_tok, tied):
    model = tiny.llama(len(old_tok), tied=tied)
    donor = tiny.donor(len(new_tok), tied=False)
    config = GraftConfig(method="omp", seed=1, params={"k": 4, "candidates": 32})
    result = graft(model, old_tok, new_tok, config, extras=Extras(donor=donor))
    assert is_tied(result.model) == tied == result.tied
    new_in = result.model.get_input_embeddings().weight.detach()
    new_out = result.model.get_output_embeddings().weight.detach()
    assert new_in.shape == (len(new_tok), 32) and new_out.shape == (len(new_tok), 32)
    ids = result.tokenizer("Der Fuchs springt über den Hund.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.isfinite(result.model(ids).logits).all()
    embeddings = result.embeddings
    assert sum(embeddings.counts().values()) == len(new_tok)
    alignment = embeddings.alignment
    copied = [i for i, s in enumerate(embeddings.sources) if s is RowSource.COPIED]
    old_ids = alignment.old_ids[copied]
    assert torch.equal(new_in[copied], model.get_input_embeddings().weight[old_ids])
    # Each computed row is the donor-space code of its token applied to the base anchor rows,
    # for the head with the donor's head (untied) and for the input with the donor's input.
    computed = torch.tensor(alignment.to_compute)
    assert len(computed) > 0
    anchor_new, anchor_old = alignment.anchors()
    slots = {Slot.INPUT: new_in} if tied else {Slot.INPUT: new_in, Slot.OUTPUT: new_out}
    old_weights = embedding_weights(model)
    for slot, new in slots.items():
        dictionary = donor.weights[slot]
        codes = sparse_codes(dictionary[computed], dictionary[anchor_new], k=4, candidates=32)
        base = old_weights[slot].double()[anchor_old]
        expected = torch.einsum("nk,nkd->nd", codes.coefs, base[codes.indices])
        assert torch.allclose(new[computed].double(), expected, atol=1e-5), slot
    if not tied:
        assert not torch.equal(new_in[computed], new_out[computed])


def test_graft_is_deterministic(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=False)
    donor = tiny.donor(len(new_tok), tied=True)
    config = GraftConfig(method="omp", params={"k": 6})
    first = graft(model, old_tok, new_tok, config, extras=Extras(donor=donor)).embeddings.weights
    second = graft(model, old_tok, new_tok, config, extras=Extras(donor=donor)).embeddings.weights
    assert first.keys() == second.keys() == {Slot.INPUT, Slot.OUTPUT}
    for slot in first:
        assert torch.equal(first[slot], second[slot])


def test_absent_donor_row_gets_the_mean_row(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=True)
    donor = tiny.donor(len(new_tok), tied=True)
    probe = graft(model, old_tok, new_tok, GraftConfig(method="mean"))
    blank = probe.embeddings.alignment.to_compute[:3]
    matrix = donor.weights[Slot.INPUT].clone()
    matrix[blank] = 0.0
    matrix[blank[2]] = float("nan")
    donor = Donor(weights={Slot.INPUT: matrix, Slot.OUTPUT: matrix})
    result = graft(
        model,
        old_tok,
        new_tok,
        GraftConfig(method="omp", params={"k": 3}),
        extras=Extras(donor=donor),
    )
    new_in = result.model.get_input_embeddings().weight.detach()
    mean = model.get_input_embeddings().weight.double().mean(dim=0).float()
    for new_id in blank:
        assert torch.allclose(new_in[new_id], mean, atol=1e-6)
    assert torch.isfinite(new_in).all()


def test_needs_a_donor(old_tok, new_tok):
    model = tiny.llama(len(old_tok), tied=True)
    with pytest.raises(TokengraftError, match="donor"):
        graft(model, old_tok, new_tok, GraftConfig(method="omp"))


@pytest.mark.parametrize("special", ["zero", "omp"])
def test_special_tokens_without_a_role_get_zero_rows(special):
    atoms, targets, support, coefs = _planted(50, 16, 2, 2, seed=8)
    donor = torch.cat([atoms, targets])
    old = torch.randn(50, 6, generator=torch.Generator().manual_seed(9))
    spec = get_method("omp")
    inp = MethodInput(
        old=old,
        slot=Slot.INPUT,
        to_compute=torch.tensor([50, 51]),
        pieces=[None, None],
        n_new=52,
        generator=torch.Generator().manual_seed(0),
        tokens=[CanonicalToken(b"<unused0>", special=True), CanonicalToken(b"xy")],
        anchor_new=torch.arange(50),
        anchor_old=torch.arange(50),
        params=spec.resolve_params({"k": 2, "candidates": 0, "special": special}),
        extras=Extras(donor=Donor(weights={Slot.INPUT: donor, Slot.OUTPUT: donor})),
    )
    result = spec.fn(inp)
    rows = result.rows.double()
    expected = torch.einsum("nk,nkd->nd", coefs, old.double()[support])
    assert torch.allclose(rows[1], expected[1], atol=1e-4)
    assert result.fallback.tolist() == [special == "zero", False]  # unspelled, yet computed
    if special == "zero":
        assert torch.equal(rows[0], torch.zeros(6, dtype=torch.float64))
    else:
        assert torch.allclose(rows[0], expected[0], atol=1e-4)
