"""Canonical mode of ``ByteLM`` (tokengraft.bytes.pairs) and batched forwards, on tiny models.

The brute force extends the one of ``test_bytes.py``: it enumerates token sequences, keeps
those whose every adjacent pair passes ``CanonicalPairs.pair_ok`` (the direct, one-encoding
test; ``ByteLM`` uses the merge-window index instead) and sums their cover probabilities.
"""

from __future__ import annotations

import json
import math

import pytest
import tiny
import torch
from test_bytes import FAMILIES, BruteForce

from tokengraft.bytes import EXACT, ByteConfig, ByteLM, ByteState
from tokengraft.bytes.pairs import CanonicalPairs
from tokengraft.bytes.vocab import ByteVocab
from tokengraft.errors import TokengraftError

CANONICAL = ByteConfig(prune=0.0, max_hypotheses=0, canonical=True)


class CanonicalBruteForce(BruteForce):
    """C(y) over token sequences that pass the pairwise test (the first token: alone)."""

    def __init__(self, model, tok, pairs: CanonicalPairs) -> None:
        super().__init__(model, tok)
        self.pairs = pairs
        self.ok: dict[tuple[int | None, int], bool] = {}

    def canonical(self, seq: tuple[int, ...], token: int) -> bool:
        last = seq[-1] if seq else None
        if (last, token) not in self.ok:
            if last is None:
                found = self.pairs.encode(self.surfaces[token]) == [token]
            else:
                found = self.pairs.pair_ok(last, token)
            self.ok[(last, token)] = found
        return self.ok[(last, token)]

    def prefix_mass(self, y: bytes) -> float:
        if not y:
            return 1.0
        total, stack = 0.0, [((), 0, 0.0)]
        while stack:
            seq, pos, logq = stack.pop()
            lp = self.next_logq(seq)
            for t, s in self.surfaces.items():
                if not self.canonical(seq, t):
                    continue
                if pos + len(s) >= len(y) and s[: len(y) - pos] == y[pos:]:
                    total += math.exp(logq + float(lp[t]))
                elif pos + len(s) < len(y) and y[pos : pos + len(s)] == s:
                    stack.append(((*seq, t), pos + len(s), logq + float(lp[t])))
        return total

    def end_mass(self, y: bytes) -> float:
        total, stack = 0.0, [((), 0, 0.0)]
        while stack:
            seq, pos, logq = stack.pop()
            lp = self.next_logq(seq)
            if pos == len(y):
                total += sum(math.exp(logq + float(lp[e])) for e in self.end)
                continue
            for t, s in self.surfaces.items():
                if y[pos : pos + len(s)] == s and self.canonical(seq, t):
                    stack.append(((*seq, t), pos + len(s), logq + float(lp[t])))
        return total

    def next_byte(self, stream: bytes) -> torch.Tensor:
        """(257,) the canonical mass of each next byte and of the end, renormalised."""
        mass = [self.prefix_mass(stream + bytes([b])) for b in range(256)]
        probs = torch.tensor([*mass, self.end_mass(stream)], dtype=torch.float64)
        return probs / probs.sum()


@pytest.fixture(scope="module")
def families():
    """(tokenizer, model) for byte-level BPE and SentencePiece-style BPE with byte fallback."""
    out = {}
    for name, tok in (
        ("byte_level", tiny.byte_level_bpe(300)),
        ("byte_fallback", tiny.sentencepiece_bpe(300)),
    ):
        out[name] = (tok, tiny.llama(len(tok), tied=True, hidden=16))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_merge_windows_agree_with_encoding_every_pair(families, family):
    tok, _ = families[family]
    vocab = ByteVocab(tok)
    pairs = CanonicalPairs(tok, vocab, len(tok))
    ids = torch.tensor(sorted(vocab.surfaces))
    alone = torch.tensor([pairs.encode(vocab.surfaces[b]) == [b] for b in ids.tolist()])
    assert torch.equal(pairs.allowed(tok.bos_token_id, ids), alone)
    refused = 0
    for a in vocab.surfaces:
        want = torch.tensor([pairs.pair_ok(a, b) for b in ids.tolist()])
        assert torch.equal(pairs.allowed(a, ids), want), vocab.surfaces[a]
        refused += int((~want).sum())
    assert refused > 50  # the test has something to refuse


def test_encode_is_the_tokenizer_on_one_word(families):
    for family, words in (("byte_level", ["the", " fox", "jumps"]), ("byte_fallback", ["fox"])):
        tok, _ = families[family]
        pairs = CanonicalPairs(tok, vocab := ByteVocab(tok), len(tok))
        for word in words:
            ids = tok(word, add_special_tokens=False)["input_ids"]
            assert pairs.encode(vocab.lead + word.encode()) == ids


def test_paragraph_break_before_a_word_passes():
    """``"\\n\\n"`` + word: the regex writes two newline tokens, which pure BPE would merge."""
    tok = tiny.byte_level_bpe(320, [*tiny.TEXT, *["end.\n\n"] * 50])  # learns the merge ĊĊ
    ids = tok("x\n\nThe", add_special_tokens=False)["input_ids"]
    vocab = ByteVocab(tok)
    pairs = CanonicalPairs(tok, vocab, len(tok))
    newline = [i for i in ids if vocab.surfaces[i] == b"\n"]
    assert len(newline) == 2 and pairs.encode(b"\n\n") != newline
    assert pairs.pair_ok(*newline)
    for a, b in zip(ids, ids[1:], strict=False):
        assert bool(pairs.allowed(a, torch.tensor([b]))[0])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("prefix", [b"", b"Th", b"e \xc3"])
def test_canonical_next_byte_matches_brute_force(families, family, prefix):
    tok, model = families[family]
    lm = ByteLM(model, tok, CANONICAL)
    got = lm.next_byte_logprobs(prefix).exp()
    want = CanonicalBruteForce(model, tok, lm.pairs).next_byte(lm.vocab.lead + prefix)
    assert float(got.sum()) == pytest.approx(1.0, abs=1e-9)
    assert torch.allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_canonical_mass_is_between_token_level_and_all_tokenizations(families, family):
    """P(the tokenizer's tokens) <= canonical mass <= mass over all tokenizations."""
    tok, model = families[family]
    canonical = ByteLM(model, tok, CANONICAL)
    data = b"the fox"
    brute = CanonicalBruteForce(model, tok, canonical.pairs)
    stream = canonical.vocab.lead + data
    want = math.log2(brute.prefix_mass(stream) / brute.prefix_mass(canonical.vocab.lead))
    assert canonical.logprob(data) == pytest.approx(want, abs=1e-6)  # not renormalised
    mass = canonical.start(data).log_mass  # natural log of C(lead + data), nothing pruned
    assert mass == pytest.approx(math.log(brute.prefix_mass(stream)), abs=1e-6)
    everything = ByteLM(model, tok, EXACT).start(data).log_mass
    assert mass <= everything + 1e-6
    assert mass < everything - 1e-3  # not vacuous: other tokenizations carry mass
    ids = canonical.canonical_ids(stream)  # the tokenizer's own tokenization
    assert b"".join(canonical.vocab.surfaces[i] for i in ids) == stream
    for a, b in zip(ids, ids[1:], strict=False):
        assert canonical.pairs.allowed(a, torch.tensor([b]))[0]
    token_level = sum(float(brute.next_logq(tuple(ids[:i]))[t]) for i, t in enumerate(ids))
    assert mass >= token_level - 1e-6  # float32 forwards differ by ~1e-7


@pytest.mark.parametrize("family", FAMILIES)
def test_push_is_the_unrenormalised_share(families, family):
    tok, model = families[family]
    state = ByteLM(model, tok, CANONICAL).start(b"")
    for byte in b"the f":
        renormalised = float(state.logprobs()[byte])
        assert state.push(byte) <= renormalised + 1e-12


@pytest.mark.parametrize("family", FAMILIES)
def test_heavy_pruning_never_gives_a_text_byte_probability_zero(families, family, monkeypatch):
    """Pruning can drop every canonical cover of the next byte, or every hypothesis that can
    spell it at all; push then goes on without the canonical test, or from the reserve."""
    tok, model = families[family]
    calls: dict[str, int] = {"fallback": 0, "restart": 0}
    unmasked, restart = ByteState._unmasked_mass, ByteState._restart

    def counted(name, method):
        return lambda s: calls.__setitem__(name, calls[name] + 1) or method(s)

    monkeypatch.setattr(ByteState, "_unmasked_mass", counted("fallback", unmasked))
    monkeypatch.setattr(ByteState, "_restart", counted("restart", restart))
    data = "the quick brown fox jumps over footers; Größe 1234 \n\n x".encode()
    for config in (
        ByteConfig(prune=0.9, max_hypotheses=1),
        ByteConfig(prune=0.5, max_hypotheses=1),
        ByteConfig(prune=0.2),
    ):
        lm = ByteLM(model, tok, config)
        state = lm.start(b"")
        steps = [state.push(b) for b in data]
        assert all(math.isfinite(s) and s <= 1e-12 for s in steps)
        assert float(state.logprobs().exp().sum()) == pytest.approx(1.0, abs=1e-9)
    if family == "byte_fallback":  # the SentencePiece model reaches both
        assert calls["fallback"] and calls["restart"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("canonical", [False, True])
def test_the_bytes_to_come_change_only_the_speed(families, family, canonical):
    """Pruning never looks ahead: a stream told the text in advance scores it the same.

    Otherwise a score would be optimistic (a hypothesis kept because the text later needs
    it). In canonical mode pruning must then sometimes keep a boundary node in reserve.
    """
    tok, model = families[family]
    reserves = 0
    data = "the quick brown fox jumps over footers; Größe 1234 \n\n x".encode()
    for config in (
        ByteConfig(prune=0.9, max_hypotheses=1, canonical=canonical),
        ByteConfig(prune=0.3, max_hypotheses=2, canonical=canonical),
    ):
        lm = ByteLM(model, tok, config)
        told, blind = lm.start(b"", upcoming=data), lm.start(b"")
        for byte in data:
            # float32 forwards of a chunk and of one token differ by ~1e-6
            assert torch.allclose(told.logprobs(), blind.logprobs(), atol=1e-4)
            assert told.push(byte) == pytest.approx(blind.push(byte), abs=1e-4)
            reserves += told.reserve is not None
    assert bool(reserves) == canonical


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("canonical", [False, True])
def test_pruned_nats_bound_the_exact_value(families, family, canonical):
    """sum(push) - pruned_nats is the kept mass, at most the exact (unpruned) log-mass."""
    tok, model = families[family]
    data = b"the fox"
    exact = ByteLM(model, tok, ByteConfig(prune=0.0, max_hypotheses=0, canonical=canonical))
    state = exact.start(b"")
    want = sum(state.push(b) for b in data)
    assert state.pruned_nats == pytest.approx(0.0, abs=1e-9)
    state = ByteLM(model, tok, ByteConfig(prune=0.3, max_hypotheses=2, canonical=canonical)).start(
        b""
    )
    lead_mass, lead_pruned = state.log_mass, state.pruned_nats  # after the lead bytes, if any
    got = sum(state.push(b) for b in data)
    pruned = state.pruned_nats - lead_pruned
    assert pruned > 0.01  # something was pruned
    assert got - pruned == pytest.approx(state.log_mass - lead_mass, abs=1e-9)
    exact_lead = exact.start(b"").log_mass  # the lead bytes' own mass (0 without them)
    assert got - pruned + lead_mass <= want + exact_lead + 1e-5  # kept <= all covers


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("canonical", [False, True])
def test_batched_forwards_give_the_same_numbers(families, family, canonical):
    tok, model = families[family]
    data = b"the fox \xff jumps"
    runs = []
    for batch in (1, 32):
        config = ByteConfig(prune=1e-4, max_hypotheses=32, canonical=canonical, batch=batch)
        state = ByteLM(model, tok, config).start(b"")
        runs.append((state, [state.push(b) for b in data]))
    (one, steps_one), (many, steps_many) = runs
    assert steps_many == pytest.approx(steps_one, abs=1e-5)
    assert torch.allclose(one.logprobs(), many.logprobs(), atol=1e-5)
    assert many.runner.forwarded_tokens == one.runner.forwarded_tokens  # counted the same way
    assert many.runner.forward_calls <= one.runner.forward_calls
    if not canonical:  # canonical mode has few hypotheses on this tiny vocabulary
        assert many.runner.forward_calls < one.runner.forward_calls / 2


def test_canonical_needs_a_bpe_and_says_how_to_do_without():
    tok = tiny.unigram()
    model = tiny.llama(len(tok), tied=True, hidden=16)
    with pytest.raises(TokengraftError, match="--all-tokenizations"):
        ByteLM(model, tok)
    assert ByteLM(model, tok, EXACT).pairs is None
    for bad in ({"prune": 1.0}, {"max_hypotheses": -1}, {"batch": 0}):
        with pytest.raises(TokengraftError):
            ByteConfig(**bad)


def test_cli_byte_level_flags(tmp_path, capsys):
    from tokengraft.cli import run

    path = tiny.save_checkpoint(tmp_path / "m", tiny.byte_level_bpe(300), tied=True)
    text = tmp_path / "t.txt"
    text.write_text("the fox jumps", encoding="utf-8")
    evaluate = ["eval", "model", str(path), "--texts", str(text), "--byte-level", "--json", "-q"]
    assert run([*evaluate, "--all-tokenizations", "--prune", "0.001", "--max-hypotheses", "4"]) == 0
    config = json.loads(capsys.readouterr().out)["byte_config"]
    assert config == {"prune": 0.001, "max_hypotheses": 4, "canonical": False, "batch": 32}
    assert run(evaluate) == 0
    assert json.loads(capsys.readouterr().out)["byte_config"]["canonical"] is True
    generate = ["generate", str(path), "--prompt", "The qu", "--max-bytes", "2", "-q"]
    assert run([*generate, "--byte-level", "--canonical", "--prune", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["byte_config"]["prune"] == 0.0
    bad = [(["--prune", "1.5"], "--prune"), (["--prune", "-0.1"], "--prune")]
    bad.append((["--max-hypotheses", "-1"], "--max-hypotheses"))
    for args, flag in bad:
        for command in (evaluate, [*generate, "--byte-level"]):
            assert run([*command, *args]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"error: {flag}") and err.count("\n") == 1
    assert run([*generate, "--all-tokenizations"]) == 2
    assert "needs --byte-level" in capsys.readouterr().err
    assert run(["eval", "model", str(path), "--texts", str(text), "--prune", "0.1"]) == 2
    assert "needs --byte-level" in capsys.readouterr().err


def test_cli_canonical_on_a_unigram_model_names_the_way_out(tmp_path, capsys):
    from tokengraft.cli import run

    path = tiny.save_checkpoint(tmp_path / "u", tiny.unigram(), tied=True)
    text = tmp_path / "t.txt"
    text.write_text("the fox", encoding="utf-8")
    evaluate = ["eval", "model", str(path), "--texts", str(text), "--byte-level", "-q"]
    assert run(evaluate) == 2
    assert "--all-tokenizations" in capsys.readouterr().err
    assert run([*evaluate, "--all-tokenizations"]) == 0


def test_cli_help_states_the_byte_config_defaults():
    import typing

    from tokengraft.cli import generate as cli_generate

    default = ByteConfig()
    prune_help = typing.get_args(cli_generate.Prune)[1].help
    cap_help = typing.get_args(cli_generate.MaxHypotheses)[1].help
    assert f"default {default.prune:g})" in prune_help
    assert f"default {default.max_hypotheses})" in cap_help
