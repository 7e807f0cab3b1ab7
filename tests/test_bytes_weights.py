"""Ensemble weights fitted on validation bytes (tokengraft.bytes.weights)."""

from __future__ import annotations

import math

import pytest
import tiny
import torch

from tokengraft.bytes import ByteEnsemble, ByteLM
from tokengraft.bytes.weights import ensemble_bits, fit_weights, member_logprobs
from tokengraft.errors import TokengraftError

TEXT = b"the fox"


@pytest.fixture(scope="module")
def members() -> list[ByteLM]:
    torch.manual_seed(0)
    out = []
    for tok in (tiny.byte_level_bpe(300), tiny.sentencepiece_bpe(300)):
        out.append(ByteLM(tiny.llama(len(tok), tied=True, hidden=16), tok))
    return out


def _table(chosen: torch.Tensor, targets: list[int]) -> torch.Tensor:
    """(M, T, 257) log-probabilities giving each target byte the probabilities in ``chosen``."""
    m, t = chosen.shape
    rest = (1 - chosen) / 256
    table = rest[:, :, None].expand(m, t, 257).clone()
    table[:, torch.arange(t), torch.tensor(targets)] = chosen
    return table.log()


def test_bits_agree_with_the_ensemble_itself(members):
    table = member_logprobs(members, TEXT)
    assert table.shape == (2, len(TEXT), 257)
    for mode in ("mixture", "product"):
        weights = [0.3, 0.7]
        want = ByteEnsemble(members, weights, mode=mode).logprob(TEXT) / len(TEXT)
        assert ensemble_bits(table, TEXT, weights, mode) == pytest.approx(-want, abs=1e-6)
    member_bits = -ByteEnsemble(members[:1]).logprob(TEXT) / len(TEXT)
    assert ensemble_bits(table, TEXT, [1.0, 0.0], "mixture") == pytest.approx(member_bits, abs=1e-6)


def test_em_finds_the_better_member_and_never_loses_to_equal_weights():
    data = bytes(range(65, 65 + 40))
    chosen = torch.stack([torch.full((40,), 0.9), torch.full((40,), 0.01)]).double()
    table = _table(chosen, list(data))
    weights = fit_weights(table, data, "mixture")
    assert weights[0] > 0.95 and sum(weights) == pytest.approx(1.0)
    assert ensemble_bits(table, data, weights, "mixture") <= ensemble_bits(
        table, data, [0.5, 0.5], "mixture"
    )
    # Members right on different halves: the maximum-likelihood mixture is balanced.
    split = torch.stack(
        [torch.tensor([0.9] * 20 + [0.01] * 20), torch.tensor([0.01] * 20 + [0.9] * 20)]
    )
    weights = fit_weights(_table(split.double(), list(data)), data, "mixture")
    assert weights == pytest.approx([0.5, 0.5], abs=1e-3)


def test_product_weights_fit_the_validation_bytes(members):
    table = member_logprobs(members, TEXT)
    weights = fit_weights(table, TEXT, "product", steps=100)
    assert sum(weights) == pytest.approx(1.0) and all(w >= 0 for w in weights)
    fitted = ensemble_bits(table, TEXT, weights, "product")
    assert fitted <= ensemble_bits(table, TEXT, [0.5, 0.5], "product") + 1e-9


def test_bad_tables_are_refused():
    with pytest.raises(TokengraftError, match="does not fit"):
        fit_weights(torch.zeros(2, 3, 257), b"ab", "mixture")
    with pytest.raises(TokengraftError, match="mode"):
        fit_weights(torch.zeros(2, 2, 257) - math.log(257), b"ab", "average")
    with pytest.raises(TokengraftError, match="at least one byte"):
        member_logprobs([], b"")
