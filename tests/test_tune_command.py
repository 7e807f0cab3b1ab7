"""`tokengraft tune`: continued training of a checkpoint on disk, its saves, resume and errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tiny
import torch
from safetensors.torch import load_file

from tokengraft import GraftConfig, graft_pretrained
from tokengraft.cli.app import run

SMALL = ["--seq-len", "16", "--batch-size", "2", "--lr", "0.03", "-q"]


@pytest.fixture
def graft_dir(tmp_path, write_checkpoint, new_tok_dir, tied) -> Path:
    """A tiny graft (subword_mean) with tokens.tsv, as `tokengraft graft` writes it."""
    base = write_checkpoint(tied=tied)
    out = tmp_path / "graft"
    graft_pretrained(str(base), str(new_tok_dir), out, GraftConfig(method="subword_mean"))
    return out


@pytest.fixture
def texts(tmp_path) -> dict[str, Path]:
    files = {
        "train": "\n".join(tiny.TEXT),
        "held": "\n".join(tiny.TEXT[:4]),
        "short": "kurz",
    }
    for name, text in files.items():
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
    return {name: tmp_path / f"{name}.txt" for name in files}


def _digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _embeddings(folder: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(folder / "model.safetensors")
    return {k: v for k, v in tensors.items() if "embed" in k or "lm_head" in k}


def _new_rows(folder: Path) -> torch.Tensor:
    lines = (folder / "tokens.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return torch.tensor([line.split("\t")[2] in ("computed", "fallback") for line in lines])


def _tune(ck: Path, out: Path, *args: str | Path) -> int:
    return run(["tune", str(ck), str(out), *map(str, args)])


def test_tune_writes_a_checkpoint_and_leaves_the_input_alone(graft_dir, texts, tmp_path, tied):
    before = _digest(graft_dir)
    out = tmp_path / "out"
    scored = ["--eval-texts", texts["held"], "--eval-every", 3, "--checkpoint-every", 2]
    assert _tune(graft_dir, out, "--texts", texts["train"], "--steps", 7, *SMALL, *scored) == 0
    assert _digest(graft_dir) == before
    assert (out / "tokens.tsv").read_bytes() == (graft_dir / "tokens.tsv").read_bytes()
    new = _new_rows(graft_dir)
    old_rows, new_rows = _embeddings(graft_dir), _embeddings(out)
    assert set(new_rows) == set(old_rows) and len(old_rows) == (1 if tied else 2)
    for name, matrix in new_rows.items():
        assert torch.equal(matrix[~new], old_rows[name][~new]), name  # copied rows bit-identical
        assert not torch.equal(matrix[new], old_rows[name][new]), name
    report = json.loads((out / "tune.json").read_text())
    assert report["steps"] == 7 and report["finished"] and report["tokens_seen"] == 7 * 2 * 16
    assert len(report["losses"]["loss"]) == 7 and report["losses"]["distill"] == []
    assert [b["step"] for b in report["bpb"]] == [0, 3, 6, 7]
    assert report["rows"] == int(new.sum()) and report["versions"]["torch"]
    assert (out / "train_state" / "state.safetensors").is_file()


def test_tune_distils_from_a_teacher(graft_dir, texts, tmp_path):
    out = tmp_path / "out"
    teacher = tmp_path / "base"  # the model the graft was made from, with its own tokenizer
    distil = ["--teacher", teacher, "--lm-weight", 0.5]
    assert _tune(graft_dir, out, "--texts", texts["train"], "--steps", 3, *distil, *SMALL) == 0
    report = json.loads((out / "tune.json").read_text())
    assert report["teacher"] == str(teacher) and len(report["losses"]["distill"]) == 3
    assert report["config"]["lm_weight"] == 0.5


def test_all_embeddings_trains_every_row(write_checkpoint, texts, tmp_path):
    base = write_checkpoint(tied=True)  # no tokens.tsv
    out = tmp_path / "out"
    assert (
        _tune(base, out, "--texts", texts["train"], "--steps", 3, "--all-embeddings", *SMALL) == 0
    )
    (matrix,), (tuned,) = _embeddings(base).values(), _embeddings(out).values()
    assert json.loads((out / "tune.json").read_text())["rows"] == matrix.shape[0]
    assert not torch.equal(matrix, tuned)


# ------------------------------------------------------------------------------------- resume

_SLOW_CHILD = """
import sys, time
from tokengraft.tune.trainer import Trainer
step = Trainer.step
def slow(self):
    time.sleep(0.25)  # a tiny model trains too fast to be killed in the middle
    return step(self)
Trainer.step = slow
from tokengraft.cli.app import run
sys.exit(run(sys.argv[1:]))
"""


def _saved_step(out: Path) -> int:
    try:
        return json.loads((out / "train_state" / "state.json").read_text())["history"]["step"]
    except (OSError, ValueError):
        return 0


@pytest.mark.parametrize("tied", [False], ids=["untied"])
def test_resume_after_sigkill_equals_an_uninterrupted_run(graft_dir, texts, tmp_path):
    args = ["--texts", texts["train"], "--steps", 24, "--checkpoint-every", 3, *SMALL]
    args += ["--teacher", tmp_path / "base"]
    out = tmp_path / "killed"
    argv = [sys.executable, "-c", _SLOW_CHILD, "tune", graft_dir, out, *args]
    child = subprocess.Popen(list(map(str, argv)), env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while _saved_step(out) < 6 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    killed_at = _saved_step(out)
    assert 6 <= killed_at < 24, killed_at
    assert _tune(graft_dir, out, *args, "--resume") == 0
    assert _tune(graft_dir, tmp_path / "whole", *args) == 0
    resumed, whole = _embeddings(out), _embeddings(tmp_path / "whole")
    for name in whole:
        assert torch.equal(resumed[name], whole[name]), name  # bit-identical on CPU
    states = [load_file(d / "train_state" / "state.safetensors") for d in (out, tmp_path / "whole")]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[1])  # rows, Adam, RNG
    report, reference = (
        json.loads((d / "tune.json").read_text()) for d in (out, tmp_path / "whole")
    )
    assert report["losses"] == reference["losses"] and report["steps"] == 24
    assert not list(tmp_path.glob(".killed.*"))  # the interrupted save's temporary is gone


def test_resume_refuses_other_settings_and_extends_the_budget(capsys, graft_dir, texts, tmp_path):
    out = tmp_path / "out"
    args = ["--texts", texts["train"], *SMALL]
    assert _tune(graft_dir, out, *args, "--steps", 2) == 0
    assert _tune(graft_dir, out, *args, "--steps", 4, "--resume") == 0
    assert json.loads((out / "tune.json").read_text())["steps"] == 4
    before = _digest(out)
    capsys.readouterr()
    assert _tune(graft_dir, out, *args, "--resume", "--lr", "0.5") == 2
    assert "--lr 0.5 differs from the run being resumed (0.03)" in capsys.readouterr().err
    assert _tune(graft_dir, out, "--texts", texts["held"], "--resume", "-q") == 2
    assert "--texts are not the texts the run being resumed used" in capsys.readouterr().err
    assert _digest(out) == before


def test_a_time_budget_stops_the_run(graft_dir, texts, tmp_path):
    out = tmp_path / "out"
    assert _tune(graft_dir, out, "--texts", texts["train"], "--minutes", "0.001", *SMALL) == 0
    report = json.loads((out / "tune.json").read_text())
    assert report["config"]["steps"] is None and report["steps"] >= 1
    assert report["seconds"] >= 0.06


# ---------------------------------------------------------------------------------- bad input


def _partial(graft_dir: Path, tmp_path: Path, how: str) -> Path:
    if how == "temporary":
        target = tmp_path / ".graft.tmp-4242-0123abcd"
        shutil.copytree(graft_dir, target)
    elif how == "truncated":
        target = tmp_path / "truncated"
        shutil.copytree(graft_dir, target)
        weights = target / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        target = tmp_path / "configonly"
        target.mkdir()
        shutil.copy(graft_dir / "config.json", target)
    return target


@pytest.mark.parametrize("tied", [True], ids=["tied"])
@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("no texts", "no training texts"),
        ("short text", "fewer than one window"),
        ("teacher does not round-trip", "does not round-trip"),
        ("temporary", "unfinished write"),
        ("truncated", "model.safetensors"),
        ("config only", "no *.safetensors"),
        ("out exists", "--resume"),
        ("resume without a run", "no run to resume"),
        ("no tokens.tsv", "--all-embeddings"),
        ("force and resume", "pass one of them"),
        ("bad setting", "--batch-size must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_loses_nothing(capsys, graft_dir, texts, tmp_path, case, needle):
    ck, out = graft_dir, tmp_path / "out"
    args: list[str | Path] = ["--texts", texts["train"], "--steps", 2, *SMALL]
    if case == "no texts":
        args = args[2:]
    elif case == "short text":
        args[1] = texts["short"]
    elif case == "teacher does not round-trip":
        args += ["--teacher", tiny.save_checkpoint(tmp_path / "bert", tiny.wordpiece(), tied=True)]
    elif case in ("temporary", "truncated", "config only"):
        ck = _partial(graft_dir, tmp_path, case)
    elif case == "out exists":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case in ("resume without a run", "force and resume"):
        args += ["--resume", "--force"] if case == "force and resume" else ["--resume"]
    elif case == "no tokens.tsv":
        ck = tmp_path / "base"
    elif case == "bad setting":
        args += ["--batch-size", "0"]
    before_ck, before_out = _digest(ck), _digest(out) if out.exists() else None
    capsys.readouterr()
    assert _tune(ck, out, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert _digest(ck) == before_ck
    assert (_digest(out) if out.exists() else None) == before_out


def test_resume_tidies_what_a_save_killed_between_its_renames_left(tmp_path):
    from tokengraft.io.training import recover_output

    out, old = tmp_path / "out", tmp_path / ".out.old-0123abcd"
    old.mkdir()
    (old / "state").write_text("complete")
    recover_output(out)  # killed after OUT was renamed aside: the old copy comes back
    assert (out / "state").read_text() == "complete" and not old.exists()
    old.mkdir()
    recover_output(out)  # killed after the new OUT was in place: the old copy goes
    assert not old.exists() and (out / "state").is_file()
