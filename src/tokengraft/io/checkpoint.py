"""Safetensors checkpoints: headers, single tensors, streaming rewrites."""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from safetensors import safe_open
from tqdm import tqdm
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
)

from tokengraft.config import Slot
from tokengraft.errors import TokengraftError
from tokengraft.io.atomic import write_json
from tokengraft.io.errors import reraise, writing

INDEX_FILE = "model.safetensors.index.json"

logger = logging.getLogger(__name__)

_CHUNK = 64 * 2**20  # bytes copied per read when streaming a tensor between files
_MAX_HEADER = 100 * 2**20  # the limit safetensors itself enforces on header size
_DTYPES: dict[str, torch.dtype] = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "U16": torch.uint16,
    "I32": torch.int32,
    "U32": torch.uint32,
    "I64": torch.int64,
    "U64": torch.uint64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
_DTYPE_NAMES = {dtype: name for name, dtype in _DTYPES.items()}
# -------------------------------------------------------------------------------- safetensors


@dataclass(frozen=True, kw_only=True)
class TensorInfo:
    """Where one tensor lives: its file, dtype (safetensors name), shape and absolute byte range."""

    file: Path
    dtype: str  # "F32", "BF16", ...
    shape: tuple[int, ...]
    offsets: tuple[int, int]  # [begin, end) in bytes from the start of the file


@dataclass(frozen=True, kw_only=True)
class EmbeddingNames:
    """Checkpoint names of the input embedding and the output head (None when tied).

    ``head`` is the architecture's name for the output head's weight, tied or not (where an
    untied head would be written).
    """

    input: str
    output: str | None
    head: str | None = None


def safetensors_index(model_dir: Path) -> dict[str, TensorInfo]:
    """Parse the safetensors headers of a checkpoint (single file or sharded with an index).

    Raises:
        TokengraftError: no weights, a missing shard, a corrupt header or truncated data.
    """
    files, weight_map = _checkpoint_files(Path(model_dir))
    index: dict[str, TensorInfo] = {}
    for file in files:
        index.update(_read_header(file)[0])
    for name, file_name in weight_map.items():
        if name not in index or index[name].file.name != Path(file_name).name:
            raise TokengraftError(
                f"{model_dir}: index lists {name} in {file_name}, but it is not there"
            )
    return index


def _checkpoint_files(model_dir: Path) -> tuple[list[Path], dict[str, str]]:
    index_path = model_dir / INDEX_FILE
    if index_path.is_file():
        with reraise("checkpoint index", index_path):
            weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
            files = [model_dir / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise TokengraftError(f"{model_dir}: shard(s) missing: {', '.join(missing)}")
        return files, weight_map
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise TokengraftError(f"{model_dir} has no safetensors weights")
    return files, {}


def _read_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Tensors and ``__metadata__`` of one safetensors file, validated against the file size."""
    with reraise("safetensors file", path), path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < n <= min(size - 8, _MAX_HEADER):
            raise TokengraftError(f"{path}: corrupt or truncated safetensors header")
        header = json.loads(f.read(n))
    if not isinstance(header, dict):
        raise TokengraftError(f"{path}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    infos = {
        name: _tensor_info(path, name, entry, 8 + n, size - 8 - n) for name, entry in header.items()
    }
    return infos, metadata


def _tensor_info(path: Path, name: str, entry: Any, start: int, data_len: int) -> TensorInfo:
    try:
        dtype, shape = str(entry["dtype"]), tuple(int(d) for d in entry["shape"])
        begin, end = (int(x) for x in entry["data_offsets"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TokengraftError(f"{path}: corrupt safetensors header entry {name!r}") from exc
    if not 0 <= begin <= end or min(shape, default=0) < 0:
        raise TokengraftError(f"{path}: corrupt safetensors header entry {name!r}")
    if end > data_len:
        raise TokengraftError(
            f"{path} is truncated: {name} ends at byte {start + end}, "
            f"the file has {start + data_len}"
        )
    if dtype in _DTYPES and (end - begin) != _numel(shape) * _DTYPES[dtype].itemsize:
        raise TokengraftError(f"{path}: size of {name} does not match its shape {list(shape)}")
    return TensorInfo(file=path, dtype=dtype, shape=shape, offsets=(start + begin, start + end))


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def read_tensors(model_dir: Path, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Load only the named tensors of a safetensors checkpoint.

    Raises:
        TokengraftError: a name is not in the checkpoint or a file is unreadable.
    """
    index = safetensors_index(model_dir)
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if name not in index:
            raise TokengraftError(f"tensor {name} is not in the checkpoint {model_dir}")
        file = index[name].file
        with reraise("safetensors file", file), safe_open(file, framework="pt") as f:
            out[name] = f.get_tensor(name)
    return out


def embedding_names(model_dir: Path) -> EmbeddingNames:
    """Find the checkpoint names of the input embedding and the (untied) output head.

    The architecture is built from ``config.json`` on the meta device (no weights loaded).
    """
    index = safetensors_index(model_dir)
    with reraise("model config", Path(model_dir) / "config.json"):
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    modules = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    input_name = _find_in_index(f"{modules[id(model.get_input_embeddings())]}.weight", index)
    if input_name is None:
        raise TokengraftError(f"{model_dir}: input embedding not found in the checkpoint")
    head = model.get_output_embeddings()
    tied = bool(getattr(config.get_text_config(), "tie_word_embeddings", False))
    output_name = None
    head_name = f"{modules[id(head)]}.weight" if head is not None else None
    if head_name is not None and not tied:
        output_name = _find_in_index(head_name, index)
    return EmbeddingNames(input=input_name, output=output_name, head=head_name)


def read_embeddings(
    model_dir: Path, names: EmbeddingNames | None = None
) -> dict[Slot, torch.Tensor]:
    """The input embedding and (untied) output head of a checkpoint, read alone.

    Args:
        model_dir: a Hugging Face directory with safetensors weights.
        names: the checkpoint names (default: found by :func:`embedding_names`).

    Returns:
        slot -> (V, D) matrix; the output slot only when the head is not tied.
    """
    names = names or embedding_names(model_dir)
    wanted = [n for n in (names.input, names.output) if n is not None]
    tensors = read_tensors(model_dir, wanted)
    weights = {Slot.INPUT: tensors[names.input]}
    if names.output is not None:
        weights[Slot.OUTPUT] = tensors[names.output]
    return weights


def _find_in_index(name: str, index: Mapping[str, TensorInfo]) -> str | None:
    """``name`` itself, else the one checkpoint name equal to it up to a module prefix."""
    if name in index:
        return name
    hits = [k for k in index if k.endswith("." + name) or name.endswith("." + k)]
    return hits[0] if len(hits) == 1 else None


@dataclass(frozen=True, kw_only=True)
class _Entry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    source: TensorInfo | torch.Tensor


def rewrite_checkpoint(
    src_dir: Path,
    dst_dir: Path,
    replacements: Mapping[str, torch.Tensor],
    *,
    shard_bytes: int = 2**31,
    progress: bool = False,
) -> None:
    """Copy a safetensors checkpoint into ``dst_dir``, replacing (or adding) the given tensors.

    A replacement may change a tensor's shape; it is cast to the dtype the tensor had on disk.

    Untouched tensors are streamed as raw byte ranges in 64 MiB chunks, so memory stays flat
    whatever the checkpoint size. Shards of at most ``shard_bytes`` (a bigger tensor gets its own)
    are written, with ``model.safetensors.index.json`` when there is more than one.

    Raises:
        TokengraftError: unreadable source, ``dst_dir`` equal to ``src_dir``, unsupported dtype.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if src_dir.resolve() == dst_dir.resolve():
        raise TokengraftError(f"refusing to rewrite {src_dir} in place")
    index = safetensors_index(src_dir)
    logger.info("rewriting %s -> %s (%d tensors replaced)", src_dir, dst_dir, len(replacements))
    metadata = _read_header(next(iter(index.values())).file)[1] if index else {}
    entries = _entries(index, replacements)
    shards = _plan_shards(entries, shard_bytes)
    names = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    )
    dst_dir.mkdir(parents=True, exist_ok=True)
    buf = memoryview(bytearray(min(_CHUNK, max((e.nbytes for e in entries), default=1))))
    total = sum(e.nbytes for e in entries)
    with tqdm(total=total, unit="B", unit_scale=True, disable=not progress) as bar:
        for file_name, shard in zip(names, shards, strict=True):
            _write_shard(dst_dir / file_name, shard, metadata or {"format": "pt"}, buf, bar)
    if len(shards) > 1:
        weight_map = {e.name: f for f, shard in zip(names, shards, strict=True) for e in shard}
        write_json(
            dst_dir / INDEX_FILE,
            {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
        )


def _entries(
    index: Mapping[str, TensorInfo], replacements: Mapping[str, torch.Tensor]
) -> list[_Entry]:
    """Tensors in on-disk order (sequential reads), replaced ones in place, new ones at the end."""
    ordered = sorted(index.items(), key=lambda kv: (str(kv[1].file), kv[1].offsets[0]))
    entries = []
    for name in [n for n, _ in ordered] + [n for n in replacements if n not in index]:
        if name in replacements:
            t = replacements[name]
            if name in index and index[name].dtype in _DTYPES:  # keep the checkpoint's dtype
                t = t.to(_DTYPES[index[name].dtype])
            if t.dtype not in _DTYPE_NAMES:
                raise TokengraftError(f"cannot write {name}: unsupported dtype {t.dtype}")
            nbytes = t.numel() * t.element_size()
            entries.append(
                _Entry(
                    name=name,
                    dtype=_DTYPE_NAMES[t.dtype],
                    shape=tuple(t.shape),
                    nbytes=nbytes,
                    source=t,
                )
            )
        else:
            info = index[name]
            nbytes = info.offsets[1] - info.offsets[0]
            entries.append(
                _Entry(name=name, dtype=info.dtype, shape=info.shape, nbytes=nbytes, source=info)
            )
    return entries


def _plan_shards(entries: list[_Entry], shard_bytes: int) -> list[list[_Entry]]:
    shards: list[list[_Entry]] = [[]]
    size = 0
    for entry in entries:
        if shards[-1] and size + entry.nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += entry.nbytes
    return shards


def _write_shard(
    path: Path, entries: list[_Entry], metadata: dict[str, str], buf: memoryview, bar: tqdm
) -> None:
    # Widest dtypes first: with the header padded to 8 bytes every tensor is then aligned to its
    # item size, as safetensors itself lays files out.
    entries = sorted(entries, key=lambda e: (-_itemsize(e.dtype), e.name))
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for e in entries:
        header[e.name] = {
            "dtype": e.dtype,
            "shape": list(e.shape),
            "data_offsets": [offset, offset + e.nbytes],
        }
        offset += e.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with writing("checkpoint shard", path), path.open("wb") as out:
        out.write(struct.pack("<Q", len(blob)) + blob)
        for e in entries:
            if isinstance(e.source, torch.Tensor):
                out.write(_tensor_bytes(e.source))
            else:
                _copy_range(e.source, out, buf)
            bar.update(e.nbytes)


def _itemsize(dtype: str) -> int:
    return _DTYPES[dtype].itemsize if dtype in _DTYPES else 1


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data


def _copy_range(info: TensorInfo, out: IO[bytes], buf: memoryview) -> None:
    begin, end = info.offsets
    with info.file.open("rb") as f:
        f.seek(begin)
        remaining = end - begin
        while remaining:
            n = f.readinto(buf[: min(len(buf), remaining)])
            if not n:
                raise TokengraftError(f"{info.file} is truncated (shrank while being copied)")
            out.write(buf[:n])
            remaining -= n
