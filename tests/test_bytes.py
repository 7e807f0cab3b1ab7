"""Byte-level probabilities (tokengraft.bytes) against brute force over every tokenization.

The reference below shares no code with ``ByteLM``: no trie, no KV cache, no pruning. It sums,
over every token sequence whose bytes cover a byte string, the product of the model's
renormalised next-token probabilities, each computed by a fresh forward pass of the whole
sequence.
"""

from __future__ import annotations

import json
import math

import pytest
import tiny
import torch

from tokengraft.bytes import (
    END,
    EXACT,
    ByteConfig,
    ByteEnsemble,
    ByteLM,
    generate_bytes,
    generate_tokens,
    score_span,
)
from tokengraft.errors import TokengraftError
from tokengraft.vocab.canonical import canonical_vocab, special_roles


class BruteForce:
    """C(y): the probability that the text's bytes start with ``y`` (lead bytes included)."""

    def __init__(self, model, tok) -> None:
        vocab = canonical_vocab(tok)
        self.surfaces = {
            i: t.surface
            for i, t in enumerate(vocab.tokens)
            if t is not None and not t.special and t.surface
        }
        roles = special_roles(tok)  # the end of a text: EOS and an end-of-text marker
        self.end = {roles[r] for r in ("eos", "end_of_text") if r in roles}
        allowed = torch.zeros(model.config.vocab_size, dtype=torch.bool)
        allowed[list(self.surfaces) + list(self.end)] = True
        self.allowed, self.model = allowed, model
        self.root = tok.bos_token_id
        self.memo: dict[tuple[int, ...], torch.Tensor] = {}

    def next_logq(self, seq: tuple[int, ...]) -> torch.Tensor:
        if seq not in self.memo:
            with torch.no_grad():
                logits = self.model(input_ids=torch.tensor([[self.root, *seq]])).logits[0, -1]
            masked = logits.double().masked_fill(~self.allowed, float("-inf"))
            self.memo[seq] = torch.log_softmax(masked, -1)
        return self.memo[seq]

    def prefix_mass(self, y: bytes) -> float:
        """Sum over covers of ``y``; 1 for the empty string."""
        if not y:
            return 1.0
        total = 0.0
        stack = [((), 0, 0.0)]  # (tokens, bytes spelled, log-probability); spelled < len(y)
        while stack:
            seq, pos, logq = stack.pop()
            lp = self.next_logq(seq)
            for t, s in self.surfaces.items():
                if pos + len(s) >= len(y) and s[: len(y) - pos] == y[pos:]:
                    total += math.exp(logq + float(lp[t]))
                elif pos + len(s) < len(y) and y[pos : pos + len(s)] == s:
                    stack.append(((*seq, t), pos + len(s), logq + float(lp[t])))
        return total

    def end_mass(self, y: bytes) -> float:
        """Probability that the text is exactly ``y``."""
        total = 0.0
        stack = [((), 0, 0.0)]
        while stack:
            seq, pos, logq = stack.pop()
            lp = self.next_logq(seq)
            if pos == len(y):
                total += sum(math.exp(logq + float(lp[e])) for e in self.end)
                continue
            for t, s in self.surfaces.items():
                if y[pos : pos + len(s)] == s:
                    stack.append(((*seq, t), pos + len(s), logq + float(lp[t])))
        return total

    def next_byte(self, stream: bytes) -> torch.Tensor:
        """(257,) probabilities: C(stream + b) / C(stream), then the end."""
        base = self.prefix_mass(stream)
        probs = [self.prefix_mass(stream + bytes([b])) / base for b in range(256)]
        return torch.tensor([*probs, self.end_mass(stream) / base], dtype=torch.float64)


@pytest.fixture(scope="module")
def families():
    """(tokenizer, model) for byte-level BPE and SentencePiece-style BPE with byte fallback."""
    out = {}
    for name, tok in (("byte_level", tiny.byte_level_bpe(300)), ("byte_fallback", _sp())):
        model = tiny.llama(len(tok), tied=True, hidden=16)
        out[name] = (tok, model)
    return out


def _sp():
    tok = tiny.sentencepiece_bpe(300)
    return tok


FAMILIES = ["byte_level", "byte_fallback"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("prefix", [b"", b"Th", b"e \xc3"])
def test_next_byte_matches_brute_force(families, family, prefix):
    tok, model = families[family]
    lm = ByteLM(model, tok, EXACT)
    got = lm.next_byte_logprobs(prefix).exp()
    want = BruteForce(model, tok).next_byte(lm.vocab.lead + prefix)
    assert float(got.sum()) == pytest.approx(1.0, abs=1e-9)
    assert float(want.sum()) == pytest.approx(1.0, abs=1e-9)  # the reference normalises too
    assert torch.allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_logprob_is_the_sum_of_byte_conditionals_and_the_brute_force_ratio(families, family):
    tok, model = families[family]
    lm = ByteLM(model, tok, EXACT)
    data = b"he fo"
    total = lm.logprob(data)
    steps = sum(float(lm.next_byte_logprobs(data[:i])[data[i]]) for i in range(len(data)))
    assert total == pytest.approx(steps / math.log(2), abs=1e-6)
    brute = BruteForce(model, tok)
    lead = lm.vocab.lead
    want = math.log2(brute.prefix_mass(lead + data) / brute.prefix_mass(lead))
    assert total == pytest.approx(want, abs=1e-6)
    assert lm.logprob(data[2:], context=data[:2]) == pytest.approx(
        total - lm.logprob(data[:2]), abs=1e-6
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_distribution_is_normalised_and_near_exact_when_pruning_little(families, family):
    tok, model = families[family]
    exact = ByteLM(model, tok, EXACT).next_byte_logprobs(b"the ")
    light = ByteLM(model, tok, ByteConfig(prune=1e-12, max_hypotheses=0, canonical=False))
    assert torch.allclose(light.next_byte_logprobs(b"the ").exp(), exact.exp(), atol=1e-9)
    for canonical in (False, True):
        heavy = ByteLM(model, tok, ByteConfig(prune=0.1, max_hypotheses=2, canonical=canonical))
        lp = heavy.next_byte_logprobs(b"the ")
        assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-9)


def test_empty_prompt_and_invalid_utf8_mid_prompt(families):
    tok, model = families["byte_level"]
    lm = ByteLM(model, tok, EXACT)
    assert lm.logprob(b"") == 0.0
    first = lm.next_byte_logprobs(b"")
    assert float(first.exp().sum()) == pytest.approx(1.0)
    assert generate_bytes(lm, b"", max_bytes=3).text  # something, from the start of a text
    bad_utf8 = lm.next_byte_logprobs(b"a\xff\xfe")  # bytes, not text: allowed
    assert float(bad_utf8.exp().sum()) == pytest.approx(1.0)
    assert math.isfinite(lm.logprob(b"\xc3(x"))


def test_unexpressible_byte_is_named():
    tok = tiny.unigram()  # SentencePiece Unigram without byte fallback
    model = tiny.llama(len(tok), tied=True, hidden=16)
    lm = ByteLM(model, tok, EXACT)
    assert 0x07 in lm.vocab.missing_bytes
    assert float(lm.next_byte_logprobs(b"a")[0x07]) == float("-inf")
    with pytest.raises(TokengraftError, match=r"0x07 \(offset 1\)"):
        lm.logprob(b"a\x07b")
    with pytest.raises(TokengraftError, match="0x07"):
        lm.next_byte_logprobs(b"\x07")


def test_ensemble_normalises_and_reduces_to_its_members(families):
    a = ByteLM(*reversed(families["byte_level"]), EXACT)  # type: ignore[arg-type]
    b = ByteLM(families["byte_fallback"][1], families["byte_fallback"][0], EXACT)
    for mode in ("mixture", "product"):
        lp = ByteEnsemble([a, b], [0.3, 0.7], mode=mode).next_byte_logprobs(b"th")
        assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-9)
        only_a = ByteEnsemble([a, b], [1.0, 0.0], mode=mode).next_byte_logprobs(b"th")
        assert torch.allclose(only_a.exp(), a.next_byte_logprobs(b"th").exp(), atol=1e-9)
    mix = ByteEnsemble([a, b], mode="mixture")
    want = 0.5 * a.next_byte_logprobs(b"t").exp() + 0.5 * b.next_byte_logprobs(b"t").exp()
    assert torch.allclose(mix.next_byte_logprobs(b"t").exp(), want, atol=1e-9)
    steps = sum(float(mix.next_byte_logprobs(b"th"[:i])[b"th"[i]]) for i in range(2))
    assert mix.logprob(b"th") == pytest.approx(steps / math.log(2), abs=1e-6)
    with pytest.raises(TokengraftError, match="mode"):
        ByteEnsemble([a], mode="average")
    with pytest.raises(TokengraftError, match="weights"):
        ByteEnsemble([a, b], [1.0])


def test_generation_greedy_and_seeded(families):
    tok, model = families["byte_level"]
    lm = ByteLM(model, tok)
    greedy = generate_bytes(lm, b"The qu", max_bytes=4)
    logp = lm.next_byte_logprobs(b"The qu")
    assert greedy.ended or greedy.text[0] == int(logp.argmax())
    one = generate_bytes(lm, b"The", max_bytes=5, temperature=1.0, seed=3)
    two = generate_bytes(lm, b"The", max_bytes=5, temperature=1.0, seed=3)
    assert one.text == two.text
    naive = generate_tokens(model, tok, b"The qu", max_bytes=4)
    assert len(naive.text) <= 4
    with pytest.raises(TokengraftError, match="max_bytes"):
        generate_bytes(lm, b"x", max_bytes=0)
    assert END == 256


@pytest.mark.parametrize("family", FAMILIES)
def test_the_trunk_only_saves_time(families, family):
    """Forwarding the canonical tokens in chunks gives the same numbers as one by one."""
    tok, model = families[family]
    lm = ByteLM(model, tok, ByteConfig(prune=1e-4, max_hypotheses=32))  # EXACT is exponential
    data = b"the fox \xff jumps"
    ahead = lm.start(b"", upcoming=data)
    blind = lm.start(b"")
    assert len(ahead.runner.trunk_ids) > 3 and len(blind.runner.trunk_ids) == 1
    for byte in data:
        assert ahead.push(byte) == pytest.approx(blind.push(byte), abs=1e-6)
    assert torch.allclose(ahead.logprobs(), blind.logprobs(), atol=1e-6)
    assert ahead.runner.forward_calls < blind.runner.forward_calls


def test_forwards_cost_one_token_off_the_trunk(families):
    """Hypotheses on many branches: every forward off the trunk feeds exactly one token."""
    tok, model = families["byte_fallback"]
    config = ByteConfig(prune=1e-3, max_hypotheses=16, canonical=False, batch=1)
    state = ByteLM(model, tok, config).start(b"")  # batch=1: tests/test_bytes_canonical.py
    for byte in b"the fox":
        state.push(byte)
    assert state.runner.forwarded_tokens == state.runner.forward_calls
    assert state.runner.forward_calls > 10


def test_the_model_is_left_as_it_was(families):
    tok, model = families["byte_level"]
    model.train()
    try:
        before = ByteLM(model, tok, EXACT).next_byte_logprobs(b"th")
        assert model.training
        model.eval()
        assert torch.equal(ByteLM(model, tok, EXACT).next_byte_logprobs(b"th"), before)
        assert not model.training
    finally:
        model.eval()


def test_score_span_matches_logprob(families):
    tok, model = families["byte_fallback"]
    lm = ByteLM(model, tok)
    score = score_span(lm, "t", b"the fox", start=3)
    assert score.nll_bits == pytest.approx(-lm.logprob(b" fox", context=b"the"), abs=1e-9)
    assert score.forwarded_tokens > 0
    with pytest.raises(TokengraftError, match="offset 7"):
        score_span(lm, "t", b"the fox", start=7)


def test_cli_generate_and_byte_level_eval(tmp_path, capsys):
    from tokengraft.cli import run

    tok = tiny.byte_level_bpe(300)
    path = tiny.save_checkpoint(tmp_path / "m", tok, tied=True)
    assert (
        run(
            [
                "generate",
                str(path),
                "--prompt",
                "The qu",
                "--byte-level",
                "--max-bytes",
                "3",
                "--json",
                "-q",
            ]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert record["byte_level"] and len(bytes.fromhex(record["continuation_hex"])) <= 3
    assert run(["generate", str(path), "--prompt", "", "--max-bytes", "3", "-q"]) == 0
    text = tmp_path / "t.txt"
    text.write_text("the fox jumps", encoding="utf-8")
    capsys.readouterr()
    args = ["eval", "model", str(path), "--texts", str(text), "--byte-level", "--json", "-q"]
    assert run([*args, "--suffix-from", "5"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["overall"]["n_bytes"] == 8 and scores["overall"]["context_bytes"] == 5
    assert run([*args, "--suffix-from", "13"]) == 2
    assert "--suffix-from 13" in capsys.readouterr().err
    assert run(["eval", "model", str(path), "--texts", str(text), "--suffix-from", "2"]) == 2
    assert run(["generate", str(path), "--prompt", "x", "--max-bytes", "0"]) == 2
