"""Bad input, failed writes and signals: one line ``error: ...``, exit 2, nothing left behind.

Every case in :data:`CASES` runs the real CLI in-process on tiny models and asserts: exit status 2,
exactly one stderr line starting ``error: `` and naming what it should, no traceback, no output
directory, and no ``.tmp-*`` file or directory anywhere under the test's directory. A full, a
read-only or a forbidden file system is simulated by making the writer's system calls fail with
the matching ``errno`` (mounting one needs privileges a test cannot count on). docs/errors.md
lists every case with the message it gets (:func:`test_every_case_is_documented`).
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import tiny
import torch
from safetensors import SafetensorError

from tokengraft.cli.app import run

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


@dataclass
class Ctx:
    """Paths of one test: a tiny tied checkpoint, a new tokenizer, a text, the output."""

    tmp: Path
    base: Path
    tok: Path
    text: Path
    out: Path
    monkeypatch: pytest.MonkeyPatch

    def graft(self, *extra: str, out: Path | None = None) -> list[str]:
        return ["graft", str(self.base), str(self.tok), str(out or self.out), "-q", *extra]

    def write(self, name: str, data: str | bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def no_model_load(self) -> None:
        """The case must fail before any model is loaded."""

        def refuse(*args, **kwargs):
            raise AssertionError("a model was loaded before the bad input was noticed")

        for name in ("load_gguf_model", "load_model_dir"):
            self.monkeypatch.setattr(f"tokengraft.io.resolve.{name}", refuse)

    def fail_mkdir(self, under: Path, code: int) -> None:
        """Creating a directory under ``under`` fails with ``code`` (EROFS, EACCES, ENOSPC)."""
        real = pathlib.Path.mkdir

        def mkdir(path, *args, **kwargs):
            if Path(path).is_relative_to(under):
                raise OSError(code, os.strerror(code), str(path))
            return real(path, *args, **kwargs)

        self.monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)

    def pickle_only(self) -> Path:
        """The base checkpoint with its weights as pytorch_model.bin only."""
        model = tiny.llama(len(tiny.byte_level_bpe(400)), tied=True)
        torch.save(model.state_dict(), self.base / "pytorch_model.bin")
        (self.base / "model.safetensors").unlink()
        return self.base


Case = Callable[[Ctx], tuple[list[str], tuple[str, ...]]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def add(fn: Case) -> Case:
        CASES[name] = fn
        return fn

    return add


# ------------------------------------------------------------------- method parameters (-p)


@case("param-not-a-number")
def _(c):
    c.no_model_load()
    return c.graft("--method", "randn", "-p", "scale=abc"), ("scale='abc'", "a number in [0,")


@case("param-not-an-integer")
def _(c):
    c.no_model_load()
    return c.graft("--method", "omp", "-p", "k=lots"), ("k='lots'", "an integer in [1, 4096]")


@case("param-negative-k")
def _(c):
    c.no_model_load()
    return c.graft("--method", "omp", "-p", "k=-5"), ("k=-5", "an integer in [1, 4096]")


@case("param-negative-scale")
def _(c):
    c.no_model_load()
    return c.graft("--method", "randn", "-p", "scale=-1"), ("scale=-1", "[0, 1000000]")


@case("param-nan")
def _(c):
    c.no_model_load()
    return c.graft("--method", "randn", "-p", "scale=NaN"), ("scale=nan", "a number")


@case("param-negative-epochs")
def _(c):
    c.no_model_load()
    return c.graft("--method", "hypernet", "-p", "epochs=-1"), ("epochs=-1", "[0, 1000]")


@case("param-fraction-for-integer")
def _(c):
    c.no_model_load()
    return c.graft("--method", "focus", "-p", "dim=2.5"), ("dim=2.5", "an integer")


@case("param-zero-temperature")
def _(c):
    c.no_model_load()
    return c.graft("--method", "wechsel", "-p", "temperature=0"), ("temperature=0", "(0,")


@case("param-bad-choice")
def _(c):
    c.no_model_load()
    return c.graft("--method", "omp", "-p", "special=maybe"), ("special='maybe'", "zero, omp")


@case("param-heads-not-dividing-hidden")
def _(c):
    c.no_model_load()
    return c.graft("--method", "hypernet", "-p", "hidden=10"), ("heads=4 must divide hidden=10",)


@case("param-unknown-key")
def _(c):
    c.no_model_load()
    return c.graft("--method", "randn", "-p", "k=3"), ("has no parameter k", "valid: scale")


@case("param-without-equals")
def _(c):
    return c.graft("-p", "scale"), ("--param takes key=value",)


@case("param-in-config-file")
def _(c):
    c.no_model_load()
    cfg = c.write("cfg.json", json.dumps({"method": "randn", "params": {"scale": "big"}}))
    return c.graft("--config", str(cfg)), ("scale='big'",)


@case("config-unknown-field")
def _(c):
    return c.graft("--config", str(c.write("cfg.json", '{"speed": 3}'))), ("bad graft config",)


@case("config-not-an-object")
def _(c):
    return c.graft("--config", str(c.write("cfg.json", "[1, 2]"))), ("holds a JSON object",)


@case("unknown-method")
def _(c):
    c.no_model_load()
    return c.graft("--method", "magic"), ("unknown method 'magic'", "subword_mean")


# --------------------------------------------------------------------- resources and limits


@case("missing-corpus-flag")
def _(c):
    c.no_model_load()
    return c.graft("--method", "focus"), ("this method needs --corpus",)


@case("corpus-file-missing")
def _(c):
    c.no_model_load()
    return c.graft("--method", "focus", "--corpus", str(c.tmp / "nope.txt")), ("nope.txt",)


@case("corpus-file-empty")
def _(c):
    c.no_model_load()
    empty = c.write("empty.txt", "")
    return c.graft("--method", "focus", "--corpus", str(empty)), ("corpus is empty", "empty.txt")


@case("corpus-not-utf8")
def _(c):
    c.no_model_load()
    bad = c.write("latin1.txt", "Grüße".encode("latin-1"))
    return c.graft("--method", "focus", "--corpus", str(bad)), ("not UTF-8", "offset 2")


@case("max-corpus-bytes-negative")
def _(c):
    c.no_model_load()
    argv = c.graft("--method", "focus", "--corpus", str(c.text), "--max-corpus-bytes", "-1")
    return argv, ("--max-corpus-bytes must be positive, got -1",)


@case("dictionary-malformed")
def _(c):
    c.no_model_load()
    bad = c.write("dict.tsv", "Haus house\n")
    extra = ["--corpus", str(c.text), "--source-corpus", str(c.text), "--dictionary", str(bad)]
    return c.graft("--method", "wechsel", *extra), ("dict.tsv:1", "source<TAB>target")


@case("donor-other-vocabulary")
def _(c):
    return c.graft("--method", "omp", "--donor", str(c.base)), ("vocabulary mismatch",)


@case("aux-model-not-a-model")
def _(c):
    (c.tmp / "enc").mkdir()
    return c.graft("--method", "tokenadapt", "--aux-model", str(c.tmp / "enc")), ("no config",)


@case("eval-max-bytes-negative")
def _(c):
    c.no_model_load()
    return ["eval", "model", str(c.base), "--texts", str(c.text), "--max-bytes", "-1"], (
        "--max-bytes must be positive, got -1",
    )


@case("eval-tokenizer-max-bytes-zero")
def _(c):
    return ["eval", "tokenizer", str(c.tok), "--texts", str(c.text), "--max-bytes", "0"], (
        "--max-bytes must be positive, got 0",
    )


@case("eval-window-over-context")
def _(c):
    c.no_model_load()
    return ["eval", "model", str(c.base), "--texts", str(c.text), "--window", "100000"], (
        "--window 100000 exceeds the model's context of 256 tokens",
    )


@case("eval-stride-over-window")
def _(c):
    c.no_model_load()
    argv = ["eval", "model", str(c.base), "--texts", str(c.text), "--window", "64"]
    return [*argv, "--stride", "65"], ("stride",)


@case("eval-batch-size-zero")
def _(c):
    c.no_model_load()
    return ["eval", "model", str(c.base), "--texts", str(c.text), "--batch-size", "0"], (
        "--batch-size must be positive, got 0",
    )


@case("train-vocab-size-absurd")
def _(c):
    argv = ["train-tokenizer", str(c.text), "--vocab-size", "999999999", "--out", str(c.out)]
    return [*argv, "--like", str(c.base)], ("--vocab-size 999,999,999", "the corpus can give")


@case("train-vocab-size-below-bytes")
def _(c):
    argv = ["train-tokenizer", str(c.text), "--vocab-size", "10", "--out", str(c.out)]
    return [*argv, "--like", str(c.base)], ("--vocab-size 10 is below the 256 byte tokens",)


# ------------------------------------------------------------------------- model and tokenizer


@case("model-missing")
def _(c):
    return ["graft", str(c.tmp / "nope"), str(c.tok), str(c.out)], ("model not found",)


@case("model-dir-without-config")
def _(c):
    (c.tmp / "empty").mkdir()
    return ["graft", str(c.tmp / "empty"), str(c.tok), str(c.out)], ("has no config.json",)


@case("model-truncated-safetensors")
def _(c):
    weights = c.base / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return c.graft(), ("model.safetensors", "truncated")


@case("model-corrupt-gguf")
def _(c):
    bad = c.write("bad.gguf", b"not a gguf file at all" * 10)
    return ["graft", str(bad), str(c.tok), str(c.out)], ("bad.gguf is not a GGUF file",)


@case("model-pickle-without-flag")
def _(c):
    c.pickle_only()
    return c.graft(), ("--allow-pickle",)


@case("tokenizer-invalid-json")
def _(c):
    bad = c.write("tokenizer.json", "{ this is not json")
    return c.graft(out=c.out)[:2] + [str(bad), str(c.out)], ("tokenizer.json", "not valid JSON")


@case("tokenizer-json-not-a-tokenizer")
def _(c):
    bad = c.write("notatokenizer.json", '{"name": "x", "items": [1, 2]}')
    return ["graft", str(c.base), str(bad), str(c.out)], ("is JSON but not a tokenizer",)


@case("tokenizer-tekken-missing-fields")
def _(c):
    bad = c.write("tekken.json", '{"config": {"pattern": "x"}, "vocab": []}')
    return ["eval", "tokenizer", str(bad), "--texts", str(c.text)], ("tekken", "tekken.json")


@case("tokenizer-unrecognised-file")
def _(c):
    bad = c.write("garbage.tiktoken", b"\x00\x01 garbage, not a tokenizer")
    return ["eval", "tokenizer", str(bad), "--texts", str(c.text)], (
        "garbage.tiktoken is not a tokenizer file tokengraft recognises",
    )


@case("tokenizer-empty-file")
def _(c):
    empty = c.write("empty.model", b"")
    return ["eval", "tokenizer", str(empty), "--texts", str(c.text)], ("empty.model is not a",)


@case("tokenizer-bad-tiktoken-line")
def _(c):
    bad = c.write("bad.tiktoken", b"dGg= 0\nnot base64!! x\n")
    return ["eval", "tokenizer", str(bad), "--texts", str(c.text)], ("bad.tiktoken:2",)


@case("tiktoken-unknown-encoding-name")
def _(c):
    small = c.write("small.tiktoken", b"YQ== 0\nYg== 1\n")
    argv = ["eval", "tokenizer", str(small), "--texts", str(c.text), "--encoding", "o300k"]
    return argv, ("unknown encoding 'o300k'", "o200k_base")


@case("tiktoken-encoding-of-another-size")
def _(c):
    small = c.write("small.tiktoken", b"YQ== 0\nYg== 1\n")
    argv = ["eval", "tokenizer", str(small), "--texts", str(c.text), "--encoding", "o200k_base"]
    return argv, ("has 2 ranked tokens, but o200k_base has 199998",)


# ------------------------------------------------------------------------------ output paths


@case("out-is-the-model")
def _(c):
    return c.graft("--force", out=c.base), ("refusing to write", "it is the input")


@case("out-inside-the-model")
def _(c):
    return c.graft("--force", out=c.base / "sub"), ("lies inside the input",)


@case("out-contains-the-model")
def _(c):
    return c.graft("--force", out=c.tmp), ("contains the input",)


@case("out-is-the-tokenizer")
def _(c):
    return c.graft("--force", out=c.tok), ("it is the input", str(c.tok))


@case("out-is-a-corpus-file")
def _(c):
    return c.graft("--method", "focus", "--corpus", str(c.text), "--force", out=c.text), (
        "it is the input",
        "t.txt",
    )


@case("out-is-the-donor")
def _(c):
    donor = c.tok  # any directory given as --donor is protected
    return c.graft("--method", "omp", "--donor", str(donor), "--force", out=donor), ("the input",)


@case("out-is-a-file")
def _(c):
    return c.graft(out=c.text), ("exists and is not a directory",)


@case("out-not-empty")
def _(c):
    c.out.mkdir()
    (c.out / "keep.txt").write_text("x")
    return c.graft(), ("is not empty; pass --force",)


@case("train-out-is-the-training-file")
def _(c):
    argv = ["train-tokenizer", str(c.text), "--vocab-size", "300", "--out", str(c.text)]
    return [*argv, "--like", str(c.base), "--force"], ("it is the input",)


# ------------------------------------------------------------------------------ failed writes


@case("write-read-only-fs")
def _(c):
    c.fail_mkdir(c.tmp / "ro", errno.EROFS)
    return c.graft(out=c.tmp / "ro" / "out"), ("cannot write", "ro/out", "Read-only file system")


@case("write-permission-denied")
def _(c):
    c.fail_mkdir(c.tmp / "locked", errno.EACCES)
    return c.graft(out=c.tmp / "locked" / "out"), ("locked/out", "Permission denied")


@case("train-write-read-only-fs")
def _(c):
    c.fail_mkdir(c.tmp / "ro", errno.EROFS)
    argv = ["train-tokenizer", str(c.text), "--vocab-size", "300", "--out", str(c.tmp / "ro/o")]
    return [*argv, "--like", str(c.base)], ("ro/o", "Read-only file system")


@case("write-disk-full-streamed")
def _(c):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    c.monkeypatch.setattr("tokengraft.io.checkpoint._copy_range", full)
    return c.graft(), ("cannot write checkpoint shard", "No space left on device")


@case("write-disk-full-loaded")
def _(c):
    """The loaded backend (GGUF, packaged or pickle input) saves through transformers."""

    def full(*args, **kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )

    c.pickle_only()
    c.monkeypatch.setattr("transformers.modeling_utils.safe_save_file", full)
    return c.graft("--allow-pickle"), ("cannot write checkpoint to", str(c.out), "No space left")


@case("write-disk-full-tokenizer")
def _(c):
    def full(*args, **kwargs):  # what the tokenizers library raises
        raise Exception("No space left on device (os error 28)")  # noqa: TRY002

    c.monkeypatch.setattr("transformers.PreTrainedTokenizerBase.save_pretrained", full)
    argv = ["train-tokenizer", str(c.text), "--vocab-size", "300", "--out", str(c.out)]
    return [*argv, "--like", str(c.base)], ("cannot write tokenizer to", "No space left")


@case("write-disk-full-report")
def _(c):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    c.monkeypatch.setattr("tokengraft.io.atomic.os.fsync", full)
    return c.graft(), ("cannot write file", "report.json", "No space left on device")


# ------------------------------------------------------------------------------------ the runner


@pytest.fixture
def ctx(tmp_path, write_checkpoint, new_tok_dir, monkeypatch) -> Ctx:
    monkeypatch.setenv("TOKENGRAFT_CACHE", str(tmp_path / "cache"))
    text = tmp_path / "t.txt"
    text.write_text("\n\n".join(tiny.TEXT), encoding="utf-8")
    base = write_checkpoint(tied=True)
    return Ctx(tmp_path, base, new_tok_dir, text, tmp_path / "out", monkeypatch)


def leaked(root: Path) -> list[Path]:
    """Temporary files or directories of the atomic writer anywhere under ``root``."""
    return [p for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


def test_there_are_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(name, ctx, capsys):
    argv, needles = CASES[name](ctx)
    existed = ctx.out.exists()
    capsys.readouterr()
    code = run(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("WARNING ")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert leaked(ctx.tmp) == []
    assert ctx.out.exists() == existed


def test_every_case_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    missing = [name for name in CASES if f"`{name}`" not in text]
    assert missing == [], f"add to docs/errors.md: {missing}"


# ----------------------------------------------------------- what works now, signals, leftovers


def test_allow_pickle_takes_the_loaded_backend(ctx, capsys):
    ctx.pickle_only()
    assert run(ctx.graft("--allow-pickle")) == 0, capsys.readouterr().err
    assert (ctx.out / "model.safetensors").is_file()
    assert run(["eval", "model", str(ctx.base), "--texts", str(ctx.text), "-q"]) == 2
    assert (
        run(["eval", "model", str(ctx.base), "--texts", str(ctx.text), "-q", "--allow-pickle"]) == 0
    )


def test_outputs_are_0644_whatever_the_path_and_umask(ctx, capsys):
    old = os.umask(0o077)
    try:
        assert run(ctx.graft()) == 0
        ctx.pickle_only()
        assert run(ctx.graft("--allow-pickle", out=ctx.tmp / "loaded")) == 0
    finally:
        os.umask(old)
    for out in (ctx.out, ctx.tmp / "loaded"):
        assert out.stat().st_mode & 0o777 == 0o755
        modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
        assert set(modes.values()) == {0o644}, modes


def test_sigterm_mid_graft_removes_the_temporary_directory(ctx, capsys, monkeypatch):
    from tokengraft.grafting import pipeline

    real = pipeline.graft_embeddings

    def terminated(*args, **kwargs):
        assert len(leaked(ctx.tmp)) == 1  # the temporary output exists now
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "graft_embeddings", terminated)
    assert run(ctx.graft()) == 128 + signal.SIGTERM
    assert "error: stopped by SIGTERM" in capsys.readouterr().err
    assert leaked(ctx.tmp) == [] and not ctx.out.exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_stale_temporary_of_a_killed_run_is_removed(ctx, caplog):
    dead = ctx.tmp / ".out.tmp-999999999-deadbeef"  # pid that cannot run
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"half written")
    older = ctx.tmp / ".out.tmp-0123abcd"  # written by a version without pids
    older.mkdir()
    alive = ctx.tmp / f".out.tmp-{os.getppid()}-00c0ffee"  # a run still going: kept
    alive.mkdir()
    assert run(ctx.graft()) == 0
    assert not dead.exists() and not older.exists() and alive.exists()
    assert caplog.text.count("left behind by an interrupted run") == 2


def test_tiktoken_without_roles_warns_and_config_ids_are_real_or_null(ctx, capsys, caplog):
    import base64

    lines = [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]
    path = ctx.write("bytes.tiktoken", "\n".join(lines) + "\n")
    assert run(["graft", str(ctx.base), str(path), str(ctx.out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "unrecognised tiktoken rank table" in caplog.text and "has no eos token" in err
    config = json.loads((ctx.out / "config.json").read_text())
    assert config["vocab_size"] == 256
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        assert config.get(key) is None or 0 <= config[key] < 256, (key, config.get(key))


def test_chat_template_warning_is_printed_once(ctx, capsys, tokenizers_by_family):
    uni = ctx.tmp / "uni"
    tokenizers_by_family["unigram"].save_pretrained(uni)
    assert run(["graft", str(ctx.base), str(uni), str(ctx.out), "-q"]) == 0
    assert capsys.readouterr().err.count("chat template needs") == 1
