"""Static (context-free) embeddings of ids, trained on id sequences: PPMI + truncated SVD.

FOCUS (arXiv 2305.14481) trains fastText on text tokenised by the new tokenizer, WECHSEL
(arXiv 2112.06598) uses fastText word vectors, and TokAlign (arXiv 2506.03523) trains GloVe on token
ids. This module is the single stand-in for all three. It counts windowed co-occurrences (weighted
1/distance, as GloVe does), turns them into positive PMI with context-distribution smoothing
(alpha = 0.75), and keeps the top singular vectors of that matrix scaled by sqrt(singular value).
Levy, Goldberg & Dagan (2015, "Improving Distributional Similarity with Lessons Learned from Word
Embeddings", TACL 3) found this SVD competitive with skip-gram on word-similarity tasks. Similarity
is what these methods use the vectors for.

Why not fastText or GloVe themselves: PPMI-SVD has no epochs or learning rate, and it is
deterministic given the seed of its randomised SVD (Halko, Martinsson & Tropp, 2011). On the
4.3 MB German training split and a 32k vocabulary, training took 2.6 s (dim 100) to 4.4 s
(dim 300) on one thread, after tokenisation. It needs nothing beyond torch and numpy.

Subword information: fastText also learns character n-gram vectors, so it can embed a string it
never saw. Here an id seen fewer than ``min_count`` times has no vector: its row is zero and
``known`` is False. The callers fall back for those ids (see each method's docstring).

Ids are ints in ``[0, n_ids)``. A negative id in a sequence is a placeholder: it keeps its position
(distances are unchanged) but pairs with nothing.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from tokengraft.io.tensors import cache_key

log = logging.getLogger(__name__)

_VERSION = "static-ppmi-svd-v1"  # bump when the training changes, to invalidate caches
_DENSE_SVD_MAX = 1024  # matrices up to this size get an exact dense SVD


@dataclass(frozen=True, kw_only=True)
class StaticEmbeddings:
    """One vector per id.

    Attributes:
        vectors: (V, d) float32; zero rows where ``known`` is False.
        counts: (V,) int64 occurrences of each id in the training sequences.
        known: (V,) bool; the id occurred at least ``min_count`` times and has a vector.
    """

    vectors: torch.Tensor
    counts: torch.Tensor
    known: torch.Tensor

    def unit(self) -> torch.Tensor:
        """(V, d) rows scaled to unit L2 norm (zero rows stay zero)."""
        return unit_rows(self.vectors)

    def resized(self, n: int) -> StaticEmbeddings:
        """The first ``n`` ids; ids past the end get zero rows (unknown)."""
        pad = max(n - self.vectors.shape[0], 0)
        return StaticEmbeddings(
            vectors=F.pad(self.vectors[:n], (0, 0, 0, pad)),
            counts=F.pad(self.counts[:n], (0, pad)),
            known=F.pad(self.known[:n], (0, pad)),
        )

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Named tensors, for saving."""
        return {"vectors": self.vectors, "counts": self.counts, "known": self.known}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> StaticEmbeddings:
        """Inverse of :meth:`to_tensors`."""
        return cls(vectors=tensors["vectors"], counts=tensors["counts"], known=tensors["known"])


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """(N, d) ``x`` with each row scaled to unit L2 norm; zero rows stay zero."""
    return F.normalize(x, dim=1)


# ---------------------------------------------------------------------------------------------
# Sequences.


def text_lines(texts: Sequence[str]) -> list[str]:
    """The non-blank lines of ``texts`` (each line is one training sequence)."""
    return [line for text in texts for line in text.splitlines() if line.strip()]


def token_sequences(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[np.ndarray]:
    """Each non-blank line of ``texts`` encoded by ``tokenizer`` (no special tokens), as int64."""
    backend = tokenizer.backend_tokenizer  # type: ignore[attr-defined]
    encodings = backend.encode_batch(text_lines(texts), add_special_tokens=False)
    return [np.asarray(e.ids, dtype=np.int64) for e in encodings]


@dataclass(frozen=True, kw_only=True)
class WordSequences:
    """Text as sequences of word ids.

    Attributes:
        sequences: per non-blank line, int64 word ids (-1: a word rarer than ``min_count``).
        words: the vocabulary, most frequent first (ties alphabetical).
        counts: (W,) int64 occurrences of each word.
    """

    sequences: list[np.ndarray]
    words: list[str]
    counts: np.ndarray


_WORD = re.compile(r"\w+")


def word_sequences(texts: Sequence[str], *, min_count: int) -> WordSequences:
    r"""Each non-blank line as word ids; words are ``\w+`` matches, case kept.

    Args:
        texts: documents; each non-blank line is one sequence.
        min_count: words seen fewer times get id -1 and are left out of the vocabulary.

    Returns:
        :class:`WordSequences`, words numbered by decreasing frequency.
    """
    split = [_WORD.findall(line) for line in text_lines(texts)]
    counts = Counter(w for words in split for w in words)
    vocab = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    index = {w: i for i, w in enumerate(vocab)}
    sequences = [np.array([index.get(w, -1) for w in words], dtype=np.int64) for words in split]
    freq = np.array([counts[w] for w in vocab], dtype=np.int64)
    return WordSequences(sequences=sequences, words=vocab, counts=freq)


def total_length(sequences: Sequence[np.ndarray]) -> int:
    """Number of ids in all sequences."""
    return int(sum(len(s) for s in sequences))


def token_static(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    dim: int,
    window: int,
    min_count: int,
    seed: int,
) -> StaticEmbeddings:
    """Static embeddings of ``tokenizer``'s ids, trained on ``texts`` tokenised by it.

    Args:
        tokenizer: whose ids to embed; each non-blank line is encoded without special tokens.
        texts: the training documents.
        dim: d, the embedding size.
        window: co-occurrences up to this distance count, weighted 1/distance.
        min_count: ids seen fewer times get no vector.
        seed: seed of the randomised SVD.

    Returns:
        :class:`StaticEmbeddings` with (len(tokenizer), dim) vectors.
    """
    sequences = token_sequences(tokenizer, texts)
    log.info("static embeddings: %d tokens in %d lines", total_length(sequences), len(sequences))
    return train_static(
        sequences, len(tokenizer), dim=dim, window=window, min_count=min_count, seed=seed
    )


def static_key(
    tokenizer: PreTrainedTokenizerBase | None, texts: Sequence[str], *settings: object
) -> str:
    """Digest of what static embeddings depend on, for naming their cache file.

    Args:
        tokenizer: the tokenizer whose ids are embedded (its full JSON), or None for words.
        texts: the training documents.
        settings: everything else the training depends on (dimension, window, seed, ...).
    """
    spec = tokenizer.backend_tokenizer.to_str() if tokenizer is not None else ""  # type: ignore[attr-defined]
    return cache_key(_VERSION, spec, [t.encode() for t in texts], repr(settings))


# ---------------------------------------------------------------------------------------------
# Training.


def train_static(
    sequences: Sequence[np.ndarray],
    n_ids: int,
    *,
    dim: int,
    window: int = 5,
    min_count: int = 5,
    seed: int = 0,
    alpha: float = 0.75,
    power: float = 0.5,
) -> StaticEmbeddings:
    """Static embeddings of the ids ``0..n_ids-1`` from their co-occurrences in ``sequences``.

    Args:
        sequences: int arrays of ids; windows never cross from one sequence to the next.
        n_ids: V, the number of ids.
        dim: d, the embedding size (columns past the rank of the PPMI matrix are zero).
        window: co-occurrences up to this distance count, weighted 1/distance.
        min_count: ids seen fewer times get no vector.
        seed: seed of the randomised SVD.
        alpha: context-distribution smoothing exponent of PPMI (Levy et al., 2015).
        power: rows are U * S**power (0.5: "eigenvalue weighting", Levy et al., 2015).

    Returns:
        :class:`StaticEmbeddings` with (V, dim) vectors.

    Example:
        >>> seqs = [np.array([0, 1, 2, 0, 1, 2])] * 20
        >>> train_static(seqs, 3, dim=2, min_count=1).vectors.shape
        torch.Size([3, 2])
    """
    timer = time.perf_counter()
    counts = id_counts(sequences, n_ids)
    known = counts >= max(min_count, 1)
    compact = np.full(n_ids, -1, dtype=np.int64)
    compact[known] = np.arange(int(known.sum()))
    rows, cols, vals = cooccurrence(sequences, compact, int(known.sum()), window=window)
    vectors = torch.zeros(n_ids, dim, dtype=torch.float32)
    n_known = int(known.sum())
    has_pairs = np.zeros(n_ids, dtype=bool)
    if n_known and vals.size:
        rows, cols, vals = ppmi(rows, cols, vals, n_known, alpha=alpha)
        u, s = truncated_svd(rows, cols, vals, n_known, rank=dim, seed=seed)
        emb = u * s.clamp_min(0).pow(power)  # (n_known, r)
        vectors[torch.from_numpy(np.flatnonzero(known)), : emb.shape[1]] = emb.float()
        has_pairs[known] = np.bincount(rows, minlength=n_known) > 0
    log.info(
        "static embeddings: %d ids, %d known, %d co-occurring pairs, dim %d, %.1f s",
        n_ids,
        int(has_pairs.sum()),
        vals.size,
        dim,
        time.perf_counter() - timer,
    )
    return StaticEmbeddings(
        vectors=vectors,
        counts=torch.from_numpy(counts),
        known=torch.from_numpy(has_pairs),
    )


def id_counts(sequences: Sequence[np.ndarray], n_ids: int) -> np.ndarray:
    """(V,) int64 occurrences of each id (negative ids ignored)."""
    if not sequences:
        return np.zeros(n_ids, dtype=np.int64)
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    return np.bincount(flat[flat >= 0], minlength=n_ids)[:n_ids].astype(np.int64)


def cooccurrence(
    sequences: Sequence[np.ndarray], compact: np.ndarray, n: int, *, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric windowed co-occurrence counts, weighted 1/distance, as COO triplets.

    Args:
        sequences: int arrays of ids.
        compact: (V,) id -> row index in ``[0, n)``, or -1 for ids left out.
        n: number of rows (and columns).
        window: maximum distance.

    Returns:
        (rows, cols, values): unique (row, col) pairs, both orders of every pair included.
    """
    gap = np.full(window, -1, dtype=np.int64)  # keeps windows inside one sequence
    parts = [p for s in sequences for p in (compact[np.asarray(s, dtype=np.int64)], gap)]
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    keys, weights = [], []
    for d in range(1, window + 1):
        left, right = flat[:-d], flat[d:]
        ok = (left >= 0) & (right >= 0)
        left, right = left[ok], right[ok]
        keys += [left * n + right, right * n + left]
        weights += [np.full(2 * left.size, 1.0 / d)]
    if not keys:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    values = np.bincount(inverse, weights=np.concatenate(weights))
    return unique // max(n, 1), unique % max(n, 1), values


def ppmi(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, *, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive PMI of co-occurrence triplets, contexts smoothed by ``alpha``; zeros dropped.

    PMI(w, c) = log(#(w,c) * sum_c' #c'^alpha / (#w * #c^alpha)) (Levy et al., 2015, eq. 3).

    Args:
        rows: row index of each co-occurrence count (from :func:`cooccurrence`).
        cols: its column index.
        vals: the count.
        n: rows (and columns) of the matrix.
        alpha: context-distribution smoothing exponent.

    Returns:
        (rows, cols, values) of the entries with positive PMI.
    """
    row_sum = np.bincount(rows, weights=vals, minlength=n)
    col_sum = np.bincount(cols, weights=vals, minlength=n)
    smoothed = col_sum**alpha
    pmi = np.log(vals) + np.log(smoothed.sum()) - np.log(row_sum[rows]) - np.log(smoothed[cols])
    keep = pmi > 0
    return rows[keep], cols[keep], pmi[keep]


def truncated_svd(
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    n: int,
    *,
    rank: int,
    seed: int,
    oversample: int = 10,
    n_iter: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top left singular vectors and values of the sparse (n, n) matrix given as COO triplets.

    A matrix of more than ``_DENSE_SVD_MAX`` rows goes through :func:`torch.svd_lowrank`
    (Halko, Martinsson & Tropp, 2011: a random range of ``rank + oversample`` columns refined by
    ``n_iter`` power iterations); its random draws come from the global generator, seeded with
    ``seed`` inside a fork so that the caller's random state is untouched. A smaller matrix gets
    an exact dense SVD. Signs are fixed so that each vector's largest-magnitude entry is positive.

    Args:
        rows: row index of each nonzero entry.
        cols: column index of each nonzero entry.
        vals: value of each nonzero entry.
        n: rows (and columns) of the matrix.
        rank: singular triplets wanted; r = min(rank, n).
        seed: seed of the randomised range finder.
        oversample: extra random columns beyond ``rank``.
        n_iter: power iterations.

    Returns:
        (n, r) left singular vectors and (r,) singular values, largest first.
    """
    index = torch.from_numpy(np.stack([rows, cols]))
    values = torch.from_numpy(vals).float()
    r = min(rank, n)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR @ dense is what we use
        warnings.simplefilter("ignore", UserWarning)
        m = torch.sparse_coo_tensor(index, values, (n, n)).coalesce().to_sparse_csr()
        if n <= _DENSE_SVD_MAX:  # small: one exact SVD
            u, s, _ = torch.linalg.svd(m.to_dense(), full_matrices=False)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                u, s, _ = torch.svd_lowrank(m, q=min(r + oversample, n), niter=n_iter)
    u = u[:, :r]
    # torch fixes no sign for singular vectors; this convention makes them reproducible.
    peak = u.abs().argmax(dim=0)
    signs = torch.sign(u[peak, torch.arange(r)])
    return u * torch.where(signs == 0, 1.0, signs), s[:r]


# ---------------------------------------------------------------------------------------------
# Aligning two spaces.


def procrustes(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(d, d) orthogonal W minimising ||source @ W - target||_F (Schönemann, 1966).

    Written out because torch has no Procrustes solver (scipy's is not a dependency).

    Args:
        source: (P, d) vectors of P pairs in one space.
        target: (P, d) the paired vectors in the other space.

    Returns:
        (d, d) W = U V^T from the SVD of source^T target.

    Example:
        >>> x = torch.randn(50, 4, dtype=torch.float64)
        >>> q = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64)).Q
        >>> torch.allclose(procrustes(x, x @ q), q)
        True
    """
    u, _, vt = torch.linalg.svd(source.T @ target)
    return u @ vt
