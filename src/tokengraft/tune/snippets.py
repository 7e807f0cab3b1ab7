"""Snippets mined per new token, as Token Distillation trains on them (arXiv 2505.20133).

A new token is spelled by a sequence of old ids (its *phrase*). A snippet is a stretch of the
corpus, tokenised by the old tokenizer, in which that phrase occurs; the student reads the same
snippet with the phrase merged into the one new token. Occurrences are found with a rolling hash
over the old token stream (one vectorised pass per phrase length) and checked exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tokengraft.errors import TokengraftError

_MOD = (1 << 31) - 1  # a Mersenne prime: hash * base stays far below 2**64 (exact in uint64)
_BASE = 1_000_003


@dataclass(frozen=True, kw_only=True)
class Snippet:
    """One training example.

    Attributes:
        token: index of the new token (into the caller's phrase list).
        teacher_ids: (L,) long, old ids of the snippet (the start token first, if any).
        student_ids: (L - len(phrase) + 1,) long, the same with the phrase replaced by ``-1``
            (the caller puts the new token's id there).
        student_pos: (K,) long, student positions compared with the teacher.
        teacher_pos: (K,) long, the matching teacher positions: every position outside the
            phrase, and the phrase's last piece matched with the merged token.
    """

    token: int
    teacher_ids: torch.Tensor
    student_ids: torch.Tensor
    student_pos: torch.Tensor
    teacher_pos: torch.Tensor


def _window_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of every length-``n`` window of ``ids`` (mod a prime, exact in uint64)."""
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    for k in range(n):
        h = (h * np.uint64(_BASE) % np.uint64(_MOD) + ids[k : len(ids) - n + 1 + k]) % np.uint64(
            _MOD
        )
    return h


def _phrase_hash(phrase: Sequence[int]) -> int:
    h = 0
    for i in phrase:
        h = (h * _BASE + i) % _MOD
    return h


def occurrences(stream: torch.Tensor, phrases: Sequence[Sequence[int]]) -> list[list[int]]:
    """Per phrase, the stream offsets where it occurs (ascending; overlapping ones included).

    Args:
        stream: (T,) long, the old token stream.
        phrases: old-id sequences of length two or more.

    Returns:
        One list of offsets per phrase.
    """
    ids = stream.numpy().astype(np.uint64)
    found: list[list[int]] = [[] for _ in phrases]
    by_length: dict[int, dict[int, list[int]]] = {}
    for index, phrase in enumerate(phrases):
        by_length.setdefault(len(phrase), {}).setdefault(_phrase_hash(phrase), []).append(index)
    for n, table in sorted(by_length.items()):
        if n > len(ids):
            continue
        hashes = _window_hashes(ids, n)
        keys = np.array(sorted(table), dtype=np.uint64)
        for offset in np.nonzero(np.isin(hashes, keys))[0].tolist():
            for index in table[int(hashes[offset])]:
                if stream[offset : offset + n].tolist() == list(phrases[index]):
                    found[index].append(offset)
    return found


def snippet(
    stream: torch.Tensor, at: int, phrase_len: int, length: int, lead: int, start: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher ids, student ids (phrase as ``-1``) and aligned positions of one snippet.

    The snippet holds ``length`` old tokens starting ``lead`` tokens before the phrase (clipped
    to the stream), preceded by ``start`` when given.
    """
    begin = max(0, at - lead)
    end = min(len(stream), begin + length)
    body = stream[begin:end]
    cut = at - begin
    prefix = [] if start is None else [start]
    teacher = torch.tensor(prefix + body.tolist(), dtype=torch.long)
    merged = body[:cut].tolist() + [-1] + body[cut + phrase_len :].tolist()
    student = torch.tensor(prefix + merged, dtype=torch.long)
    p = len(prefix)
    n_student = len(student)
    student_pos = torch.arange(n_student)
    # student position s maps to teacher s before the phrase, to the phrase's last piece at the
    # merged token, and is shifted by phrase_len - 1 after it
    shift = torch.where(student_pos >= p + cut, phrase_len - 1, 0)
    return teacher, student, student_pos, student_pos + shift


def mine(
    stream: torch.Tensor,
    phrases: Sequence[Sequence[int] | None],
    *,
    max_tokens: int,
    per_token: int,
    length: int,
    start: int | None,
    generator: torch.Generator,
) -> list[Snippet]:
    """Snippets for the ``max_tokens`` most frequent phrases, ``per_token`` each at most.

    Phrases are ranked by how often they occur (ties: lower index first); the occurrences used
    and each phrase's position in its snippet are drawn from ``generator``.

    Raises:
        TokengraftError: no phrase occurs in the stream.
    """
    indices = [i for i, p in enumerate(phrases) if p is not None and len(p) >= 2]
    found = occurrences(stream, [list(phrases[i] or ()) for i in indices])
    ranked = sorted(range(len(indices)), key=lambda k: (-len(found[k]), indices[k]))
    ranked = [k for k in ranked if found[k]][:max_tokens]
    if not ranked:
        raise TokengraftError("tokdist: no new token occurs in the corpus (spelled by old tokens)")
    out: list[Snippet] = []
    for k in ranked:
        phrase_len = len(phrases[indices[k]] or ())
        chosen = torch.randperm(len(found[k]), generator=generator)[:per_token].tolist()
        for c in chosen:
            room = max(0, length - phrase_len)
            lead = int(torch.randint(0, room + 1, (1,), generator=generator))
            t, s, sp, tp = snippet(stream, found[k][c], phrase_len, length, lead, start)
            out.append(
                Snippet(
                    token=indices[k], teacher_ids=t, student_ids=s, student_pos=sp, teacher_pos=tp
                )
            )
    return out
