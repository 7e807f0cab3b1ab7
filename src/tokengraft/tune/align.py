"""Byte positions of two tokenisations of one text, and the positions where they align.

Token Distillation (Dobler et al. 2025, arXiv 2505.20133) compares the student's and the
teacher's last-layer hidden states where both have read exactly the same bytes. Every token here
carries the byte where it ends (its canonical bytes, :mod:`tokengraft.vocab.canonical`, summed),
so two positions align when their tokens end at the same byte. That needs tokens that spell the
text exactly, which :func:`byte_stream` checks for every document.

Byte coordinates run over the whole corpus, with one virtual separator byte per document where
its start token sits, so both streams place document boundaries at the same byte even when only
one of the tokenizers has a start token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.tune.data import Stream, TrainData, check_length, encode, start_id
from tokengraft.vocab import CanonicalVocab, canonical_vocab, decode_canonical


def byte_stream(
    docs: Sequence[tuple[str, str]], tokenizer: PreTrainedTokenizerBase, *, who: str
) -> Stream:
    """The corpus as one stream (as :func:`~tokengraft.tune.data.token_stream`), with byte ends.

    Args:
        docs: ``(name, text)`` pairs.
        tokenizer: a fast tokenizer whose tokens spell every text byte for byte.
        who: how the tokenizer is named in an error (``"the teacher's tokenizer"``).

    Returns:
        The stream, its start token and the byte end of every token.

    Raises:
        TokengraftError: the tokens of a text do not spell it exactly (a normalising or lossy
            tokenizer), naming the text and the first byte that differs.
    """
    vocab = canonical_vocab(tokenizer)
    start = start_id(tokenizer)
    ids: list[int] = []
    ends: list[int] = []
    offset = 0
    for name, text in docs:
        doc_ids = encode(tokenizer, text)
        _check_round_trip(vocab, doc_ids, text.encode("utf-8"), name, who)
        offset += 1  # the virtual separator byte, where the start token sits
        if start is not None:
            ids.append(start)
            ends.append(offset)
        for length in _token_lengths(vocab, doc_ids):
            offset += length
            ends.append(offset)
        ids.extend(doc_ids)
    return Stream(
        ids=torch.tensor(ids, dtype=torch.long),
        start=start,
        ends=torch.tensor(ends, dtype=torch.long),
    )


def _token_lengths(vocab: CanonicalVocab, ids: Sequence[int]) -> list[int]:
    """Bytes each token adds to the text (the dummy-prefix space of the first one dropped)."""
    surfaces = [b"" if (t := vocab.tokens[i]) is None else t.surface for i in ids]
    lengths = [len(s) for s in surfaces]
    if vocab.info.prepends_space and b"".join(surfaces)[:1] == b" ":
        first = next(k for k, n in enumerate(lengths) if n > 0)
        lengths[first] -= 1  # decode_canonical drops the same space
    return lengths


def _check_round_trip(
    vocab: CanonicalVocab, ids: Sequence[int], data: bytes, name: str, who: str
) -> None:
    spelled = decode_canonical(vocab, ids)
    if spelled == data:
        return
    at = next(
        (k for k, (x, y) in enumerate(zip(spelled, data, strict=False)) if x != y),
        min(len(spelled), len(data)),
    )
    raise TokengraftError(
        f"{who} does not round-trip {name}: its tokens spell different bytes from byte {at} "
        "on, so positions cannot be aligned; use a byte-exact tokenizer (byte-level BPE or "
        "byte fallback)"
    )


def distill_data(
    docs: Sequence[tuple[str, str]],
    student: PreTrainedTokenizerBase,
    teacher: PreTrainedTokenizerBase,
    length: int,
) -> TrainData:
    """Windows for distillation: both streams, and the offsets where windows may start.

    A window may start only where the teacher also has a token boundary, so that both models
    read the window's text from the same byte.

    Raises:
        TokengraftError: a tokenizer does not round-trip a text, or the texts give fewer student
            tokens than one window.
    """
    ours = byte_stream(docs, student, who="the checkpoint's tokenizer")
    check_length(len(ours.ids), length)
    theirs = byte_stream(docs, teacher, who="the teacher's tokenizer")
    assert ours.ends is not None and theirs.ends is not None
    n = len(ours.ids) - length + 1  # offsets 0 .. T - L, as without a teacher
    begins = torch.cat([torch.zeros(1, dtype=torch.long), ours.ends[: n - 1]])
    boundaries = torch.cat([torch.zeros(1, dtype=torch.long), theirs.ends])
    allowed = torch.isin(begins, boundaries).nonzero().squeeze(1)
    if len(allowed) == 0:
        raise TokengraftError("the two tokenizers share no token boundary to start a window at")
    return TrainData(student=ours, length=length, teacher=theirs, allowed=allowed)


@dataclass(frozen=True, kw_only=True)
class Aligned:
    """One window read by the teacher, and where it aligns with the student's.

    Attributes:
        teacher_ids: (L_t,) long, the teacher's window (its start token, then its tokens of the
            student window's bytes that end inside it).
        student_pos: (K,) long, aligned positions in the student window.
        teacher_pos: (K,) long, the matching positions in the teacher window.
    """

    teacher_ids: torch.Tensor
    student_pos: torch.Tensor
    teacher_pos: torch.Tensor


def align_window(data: TrainData, offset: int) -> Aligned:
    """The teacher's view of the student window that starts at stream offset ``offset``."""
    student, teacher = data.student, data.teacher
    assert teacher is not None and student.ends is not None and teacher.ends is not None
    n = data.length - (student.start is not None)
    begin = int(student.ends[offset - 1]) if offset > 0 else 0
    s_ends = student.ends[offset : offset + n]
    first, last = torch.searchsorted(
        teacher.ends, torch.tensor([begin, int(s_ends[-1])]), right=True
    ).tolist()
    t_ids, t_ends = teacher.ids[first:last], teacher.ends[first:last]
    s_ends = _with_prefix(s_ends, begin, student.start is not None)
    if teacher.start is not None:
        t_ids = torch.cat([torch.tensor([teacher.start]), t_ids])
    t_ends = _with_prefix(t_ends, begin, teacher.start is not None)
    common = torch.unique(s_ends[torch.isin(s_ends, t_ends)])
    # the last token ending at a byte is the one that has read everything up to it
    return Aligned(
        teacher_ids=t_ids,
        student_pos=torch.searchsorted(s_ends, common, right=True) - 1,
        teacher_pos=torch.searchsorted(t_ends, common, right=True) - 1,
    )


def _with_prefix(ends: torch.Tensor, begin: int, prefix: bool) -> torch.Tensor:
    """Window byte ends, with the start token as a zero-width token at ``begin``."""
    return torch.cat([torch.tensor([begin]), ends]) if prefix else ends


@dataclass(frozen=True, kw_only=True)
class TeacherBatch:
    """The teacher's windows of one batch, and the aligned positions of both batches.

    Attributes:
        ids: (B, L_t) long, the teacher windows, right-padded with id 0.
        mask: (B, L_t) long attention mask, or None when no window is padded (so that the
            teacher runs exactly as an unpadded model does).
        student_index: (K,) long, aligned positions as flat indices into the student's (B, L).
        teacher_index: (K,) long, the matching flat indices into the teacher's (B, L_t).
    """

    ids: torch.Tensor
    mask: torch.Tensor | None
    student_index: torch.Tensor
    teacher_index: torch.Tensor


def pad_right(seqs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, L) ids right-padded with 0, and the attention mask (None when nothing is padded).

    Right padding leaves every real position as it is: with causal attention no real token
    attends to the padding.
    """
    width = max(1, max(len(s) for s in seqs))
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, None if bool(mask.all()) else mask


def teacher_batch(windows: Sequence[Aligned], student_length: int) -> TeacherBatch:
    """Pad the teacher windows into one batch (:func:`pad_right`), flatten the aligned positions."""
    ids, mask = pad_right([w.teacher_ids for w in windows])
    width = ids.shape[1]
    rows = [torch.full_like(w.student_pos, r) for r, w in enumerate(windows)]
    return TeacherBatch(
        ids=ids,
        mask=mask,
        student_index=torch.cat(
            [r * student_length + w.student_pos for r, w in zip(rows, windows, strict=True)]
        ),
        teacher_index=torch.cat(
            [r * width + w.teacher_pos for r, w in zip(rows, windows, strict=True)]
        ),
    )
