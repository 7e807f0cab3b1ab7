"""Chunked packaged models converted once into a cached Hugging Face directory.

GGUF tokenizer conversion and dequantisation take about a minute each time for Gemma-3-270M, so
the assembled GGUF is converted once into ``<cache>/models/<name>-hf`` and loaded from there.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tokengraft.io.atomic import atomic_output_dir
from tokengraft.io.cache import cache_dir
from tokengraft.io.models import load_gguf_model, save_pretrained
from tokengraft.io.packaged import assemble_gguf, chunked_model
from tokengraft.io.tokenizers import load_gguf_tokenizer

logger = logging.getLogger(__name__)


def converted_model_dir(name: str, cache_root: Path | None = None) -> Path:
    """An HF directory (fp32 safetensors + tokenizer) converted once from a chunked GGUF model.

    Args:
        name: a key of :data:`~tokengraft.io.packaged.CHUNKED_MODELS`, e.g. ``"gemma3-270m"``.
        cache_root: the cache root (default: :func:`~tokengraft.io.cache.cache_dir`); the GGUF
            goes to ``models/<gguf file>`` and the directory to ``models/<name>-hf`` under it.

    Returns:
        The directory, loadable by ``load_model`` / ``load_tokenizer`` and ``transformers``.

    Raises:
        TokengraftError: a chunk package is missing or the assembled file is corrupt.

    Example:
        >>> donor_dir = converted_model_dir("gemma3-270m")  # doctest: +SKIP
    """
    model = chunked_model(name)
    models_dir = Path(cache_root or cache_dir()).expanduser() / "models"
    out = models_dir / f"{name}-hf"
    if _is_converted(out):
        return out
    gguf = assemble_gguf(model, models_dir)
    logger.info("converting %s to a Hugging Face directory %s (once)", gguf, out)
    tokenizer = load_gguf_tokenizer(gguf)
    hf_model = load_gguf_model(gguf)
    with atomic_output_dir(out, force=True) as tmp:
        save_pretrained(hf_model, tokenizer, tmp)
    return out


def _is_converted(out: Path) -> bool:
    return all((out / f).is_file() for f in ("config.json", "tokenizer.json")) and any(
        out.glob("*.safetensors")
    )
