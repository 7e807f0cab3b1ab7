"""``audit_pretrained``: the disk wrapper of :func:`~tokengraft.audit.core.audit_model`.

Resolves the model through ``io`` (packaged names, Hugging Face directories, GGUF files), loads
its own tokenizer first (a checkpoint without one fails before the weights are read), reads the
held-out texts and, for a grafted checkpoint, its ``tokens.tsv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokengraft import io
from tokengraft.audit.core import audit_model
from tokengraft.audit.records import AuditConfig, ModelAudit
from tokengraft.io.training import read_row_sources


def audit_pretrained(
    model: str,
    *,
    texts: Sequence[Path] = (),
    max_bytes: int | None = None,
    config: AuditConfig = AuditConfig(),  # noqa: B008 - frozen, so a shared default is safe
    allow_pickle: bool = False,
    progress: bool = True,
) -> ModelAudit:
    """Audit a model given by name or path (see :func:`audit_model`).

    Args:
        model: a packaged name (``smollm2-135m``, ``gemma3-270m``), an HF directory or a GGUF file.
        texts: held-out UTF-8 text files for the loss table.
        max_bytes: read at most this many bytes of each text.
        config: sizes and thresholds.
        allow_pickle: allow pickle (.bin) weights.
        progress: show the progress bars of model loading.

    Returns:
        The audit.

    Raises:
        TokengraftError: an unknown model, a checkpoint without a tokenizer, unreadable texts or
            ``tokens.tsv``, or a tokenizer that does not fit the model.
    """
    source = io.resolve_model(model, allow_pickle=allow_pickle)
    tokenizer = io.load_tokenizer(model)
    docs = io.read_texts(texts, max_bytes=max_bytes) if texts else []
    sources = read_row_sources(source.path) if source.kind is io.ModelKind.HF_DIR else None
    lm = io.load_model(source, allow_pickle=allow_pickle, progress=progress)
    return audit_model(lm, tokenizer, name=model, texts=docs, sources=sources, config=config)
