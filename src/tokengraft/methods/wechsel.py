"""`wechsel`: nearest old tokens in bilingually aligned static embeddings, softmax-weighted.

WECHSEL (Minixhofer, Paischer & Rekabsaz, 2022, "WECHSEL: Effective initialization of subword
embeddings for cross-lingual transfer of monolingual language models", arXiv 2112.06598). Static
word embeddings of the source language (the base model's) and of the target language are aligned
by orthogonal Procrustes on the pairs of a bilingual dictionary. Each token of either tokenizer is
embedded in its language's word space. For each new token, its ``neighbors`` (k = 10) most similar
old tokens (cosine) get the weights softmax(sim / ``temperature``) (T = 0.1), and the row is the
weighted sum of their rows in the base model. Both slots use the same neighbours and weights, each
with its own matrix.

Token vectors follow the paper's variant for word embeddings without subword information (its
``use_subword_info=False``). A token's vector is the frequency-weighted mean of the vectors of the
words whose tokenisation, with or without a leading space, contains it.

Where this differs from the paper and its code:

* Word embeddings are PPMI + truncated SVD (:mod:`tokengraft.embeddings.static`) trained on the given
  corpora (``source_corpus`` in the base model's language, ``corpus`` in the target language).
  The paper uses pretrained fastText vectors (cc.*.300, trained on Common Crawl). Both spaces
  have ``dim`` dimensions, and word vectors are L2-normalised before alignment and composition.
* fastText composes a token's vector from character n-grams, so every token gets one. Here a token
  that occurs in no corpus word seen ``min_count`` times has none, and it gets the subword mean of
  its old-tokenizer pieces (:mod:`tokengraft.methods.subword_mean`). So do special tokens and
  tokens without bytes, and a token the old tokenizer cannot spell gets the mean row. The paper
  gives tokens without a vector random rows from N(mean, std) of the base rows.
* The dictionary is a ``source<TAB>target`` list such as :func:`tokengraft.data.dictionaries.
  fetch_dictionary` makes from FreeDict. The paper uses its own Wiktionary-derived lists. As in
  its code, each pair is tried as given, lower-cased and title-cased on both sides, and every
  variant found in both word vocabularies is a Procrustes pair.
* Shared tokens are copied by the pipeline; WECHSEL computes every row, shared ones included.
* When ``extras.cache_dir`` is given, the word embeddings are cached under ``wechsel/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.embeddings.static import (
    WordSequences,
    procrustes,
    static_key,
    train_static,
    unit_rows,
    word_sequences,
)
from tokengraft.errors import TokengraftError
from tokengraft.io.tensors import cached_tensors
from tokengraft.methods.common import neighbour_params, neighbour_rows, subword_mean
from tokengraft.methods.registry import MethodInput, MethodSpec, Need, Param, register

log = logging.getLogger(__name__)


def wechsel_rows(inp: MethodInput) -> torch.Tensor:
    """(N, D) WECHSEL rows for ``inp.to_compute``; subword mean where a token has no vector."""
    out = subword_mean(inp.old, inp.pieces).double()  # (N, D): the fallback, overwritten below
    if len(inp.to_compute) == 0:
        return out.to(inp.old.dtype)
    source_words, source_vecs = word_space(inp, "source_corpus")
    target_words, target_vecs = word_space(inp, "corpus")
    pairs = dictionary_pairs(inp.extras.dictionary, source_words.words, target_words.words)
    if not pairs:
        raise TokengraftError(
            "wechsel: no dictionary pair has both words in the corpora (wrong language pair?)"
        )
    src_idx, tgt_idx = (torch.tensor(ids, dtype=torch.long) for ids in zip(*pairs, strict=True))
    rotation = procrustes(source_vecs[src_idx].double(), target_vecs[tgt_idx].double())  # (d, d)
    old_vecs = token_vectors(inp.old_tokenizer, source_words, source_vecs, inp.old.shape[0])
    old_vecs = unit_rows(old_vecs.double() @ rotation).float()  # into the target space
    new_vecs = token_vectors(inp.new_tokenizer, target_words, target_vecs, inp.n_new)
    queries = unit_rows(new_vecs[inp.to_compute])  # (N, d)
    known_old, known_new = old_vecs.norm(dim=1) > 0, queries.norm(dim=1) > 0
    k = int(inp.params["neighbors"])
    rows, ok = neighbour_rows(inp, old_vecs, queries, known_old, known_new, k=k)
    out[ok] = rows[ok]
    log.info(
        "wechsel %s: %d dictionary pairs, %d rows from neighbours, %d subword-mean fallbacks",
        inp.slot,
        len(pairs),
        int(ok.sum()),
        int((~ok).sum()),
    )
    return out.to(inp.old.dtype)


def word_space(inp: MethodInput, corpus_key: str) -> tuple[WordSequences, torch.Tensor]:
    """The words of a corpus and their unit-norm static vectors, through the cache.

    Args:
        inp: the method's input (corpora, ``dim``, ``window``, ``min_count``, seed, cache).
        corpus_key: which corpus of ``inp.extras``: ``"corpus"`` or ``"source_corpus"``.

    Returns:
        The word sequences (words seen ``min_count`` times) and their (W, dim) vectors; the
        vectors are cached as ``wechsel/words-<key>.safetensors``.
    """
    texts = getattr(inp.extras, corpus_key)  # "corpus" or "source_corpus"
    params = inp.params
    dim, window, min_count = int(params["dim"]), int(params["window"]), int(params["min_count"])
    seed = int(inp.generator.initial_seed())
    words = word_sequences(texts, min_count=min_count)
    cache = inp.extras.cache_dir
    path = None
    if cache is not None:
        key = static_key(None, texts, "words", dim, window, min_count, seed)
        path = Path(cache) / "wechsel" / f"words-{key}.safetensors"

    def train() -> dict[str, torch.Tensor]:
        emb = train_static(
            words.sequences, len(words.words), dim=dim, window=window, min_count=1, seed=seed
        )
        return emb.to_tensors()

    vectors = unit_rows(cached_tensors(path, train)["vectors"])
    return words, vectors


def dictionary_pairs(
    dictionary: Sequence[tuple[str, str]], source_words: Sequence[str], target_words: Sequence[str]
) -> list[tuple[int, int]]:
    """(source word id, target word id) pairs of dictionary entries whose words both have vectors.

    Each side is tried as given, lower-cased and title-cased, as in the WECHSEL code.

    Args:
        dictionary: (source word, target word) entries.
        source_words: the source corpus's words, indexed by id.
        target_words: the target corpus's words, indexed by id.

    Returns:
        Distinct id pairs, in dictionary order.
    """
    src_index = {w: i for i, w in enumerate(source_words)}
    tgt_index = {w: i for i, w in enumerate(target_words)}
    pairs: dict[tuple[int, int], None] = {}
    for source, target in dictionary:
        for s in dict.fromkeys((source, source.lower(), source.title())):
            for t in dict.fromkeys((target, target.lower(), target.title())):
                if s in src_index and t in tgt_index:
                    pairs[(src_index[s], tgt_index[t])] = None
    return list(pairs)


def token_vectors(
    tokenizer: PreTrainedTokenizerBase | None,
    words: WordSequences,
    word_vecs: torch.Tensor,
    n_tokens: int,
) -> torch.Tensor:
    """(n_tokens, d): each token's frequency-weighted mean of the vectors of words containing it.

    A word contains a token when the token is in the word's tokenisation with or without a leading
    space (arXiv 2112.06598, the variant without fastText subword information). Tokens in no word
    get a zero row.

    Args:
        tokenizer: the tokenizer whose tokens to embed.
        words: the corpus's words and their counts.
        word_vecs: (W, d) the words' vectors.
        n_tokens: rows of the result; ids at or past it are ignored.

    Returns:
        (n_tokens, d) float32.
    """
    if tokenizer is None:
        raise TokengraftError("wechsel needs both tokenizers")
    backend = tokenizer.backend_tokenizer  # type: ignore[attr-defined]
    plain = backend.encode_batch(words.words, add_special_tokens=False)
    spaced = backend.encode_batch([" " + w for w in words.words], add_special_tokens=False)
    tokens, owners = [], []
    for i, (a, b) in enumerate(zip(plain, spaced, strict=True)):
        ids = sorted({t for t in (*a.ids, *b.ids) if t < n_tokens})
        tokens += ids
        owners += [i] * len(ids)
    tok = torch.tensor(tokens, dtype=torch.long)
    own = torch.tensor(owners, dtype=torch.long)
    freq = torch.from_numpy(words.counts.astype(np.float64))[own]  # (M,)
    total = torch.zeros(n_tokens, dtype=torch.float64).index_add_(0, tok, freq)
    out = torch.zeros(n_tokens, word_vecs.shape[1], dtype=torch.float64)
    out.index_add_(0, tok, freq[:, None] * word_vecs[own].double())
    return (out / total.clamp_min(1e-12)[:, None]).float()


SPEC = register(
    MethodSpec(
        name="wechsel",
        fn=wechsel_rows,
        summary="softmax-weighted nearest old tokens in dictionary-aligned static embeddings",
        paper="https://arxiv.org/abs/2112.06598",
        needs=frozenset({Need.CORPUS, Need.SOURCE_CORPUS, Need.DICTIONARY}),
        params={
            **neighbour_params(
                k="neighbors",
                default_k=10,
                k_help="nearest old tokens per new token",
                temperature=0.1,
            ),
            "dim": Param(default=300, type=int, min=1, max=4096, help="static vector size"),
            "window": Param(default=5, type=int, min=1, max=100, help="co-occurrence window"),
            "min_count": Param(
                default=5, type=int, min=1, help="occurrences a word needs for a vector"
            ),
        },
    )
)
