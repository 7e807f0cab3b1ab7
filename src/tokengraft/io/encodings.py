"""The byte-level BPE encodings tokengraft knows by their rank table: split pattern and specials.

A tiktoken file holds only ``base64(token) rank`` lines. How text is split before BPE (the
pattern) and which special tokens sit at which ids belong to the encoding and are not in the
file, so a file is recognised by a fingerprint of its rank table (:func:`fingerprint`), or the
user names its encoding. The patterns and special tokens are those of each model's published
tokenizer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

# cl100k (GPT-4) and Llama-3: contractions, letters, 1-3 digits, other, newlines, spaces.
CL100K_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
# o200k (GPT-4o): case-aware words with marks and a trailing contraction; "/" joins newlines.
_O200K_CONTRACTION = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
        + _O200K_CONTRACTION,
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
        + _O200K_CONTRACTION,
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
# Qwen (Qwen, Qwen2, 2.5, 3): cl100k's pattern with single digits.
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
# Qwen3.5 / 3.6: combining marks join letters.
QWEN35_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"""
    r"""| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


@dataclass(frozen=True, kw_only=True)
class Encoding:
    """A known byte-level BPE encoding.

    Attributes:
        name: what the user passes to name it (``o200k_base``).
        n_ranks: how many ranked (mergeable) tokens it has.
        fingerprint: :func:`fingerprint` of its rank table.
        pattern: the pre-tokenisation regex.
        specials: id -> special token; ids between the ranks and the highest special that name
            no token are filled with ``<|reserved_<id>|>`` so that every id means what it does
            in the reference implementation.
        bos / eos / pad: the special tokens with those roles (None: the encoding has none).
        nfc: text is NFC-normalised before splitting (Qwen's tokenizers do this).
    """

    name: str
    n_ranks: int
    fingerprint: str
    pattern: str
    specials: Mapping[int, str] = field(default_factory=dict)
    bos: str | None = None
    eos: str | None = None
    pad: str | None = None
    nfc: bool = False


def fingerprint(ranks: Mapping[bytes, int]) -> str:
    """16 hex digits identifying a rank table: SHA-256 of its tokens, length-prefixed, by rank."""
    h = hashlib.sha256()
    for token in sorted(ranks, key=ranks.__getitem__):
        h.update(len(token).to_bytes(4, "little") + token)
    return h.hexdigest()[:16]


def _numbered(first: int, names: list[str]) -> dict[int, str]:
    return {first + i: name for i, name in enumerate(names)}


def _llama3_specials() -> dict[int, str]:
    named = {0: "begin_of_text", 1: "end_of_text", 6: "start_header_id", 7: "end_header_id"}
    named[9] = "eot_id"
    reserved = iter(range(256))
    names = [
        named[i] if i in named else f"reserved_special_token_{next(reserved)}" for i in range(256)
    ]
    return _numbered(128000, [f"<|{n}|>" for n in names])


_QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
]  # fmt: skip
_QWEN35_EXTRA = [
    "<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
    "<tts_text_bos_single>", "<|audio_pad|>",
]  # fmt: skip

ENCODINGS: dict[str, Encoding] = {
    e.name: e
    for e in (
        Encoding(
            name="cl100k_base",
            n_ranks=100256,
            fingerprint="be52da118a38232d",
            pattern=CL100K_PATTERN,
            specials={100257: "<|endoftext|>", 100258: "<|fim_prefix|>", 100259: "<|fim_middle|>"}
            | {100260: "<|fim_suffix|>", 100276: "<|endofprompt|>"},
            eos="<|endoftext|>",
        ),
        Encoding(
            name="o200k_base",
            n_ranks=199998,
            fingerprint="5d6cb6182d039b81",
            pattern=O200K_PATTERN,
            specials={199999: "<|endoftext|>", 200018: "<|endofprompt|>"},
            eos="<|endoftext|>",
        ),
        Encoding(
            name="qwen",
            n_ranks=151643,
            fingerprint="33bc5cb3ea15d950",
            pattern=QWEN_PATTERN,
            specials=_numbered(151643, _QWEN_SPECIALS),
            eos="<|endoftext|>",
            pad="<|endoftext|>",
            nfc=True,
        ),
        Encoding(
            name="qwen3.5",
            n_ranks=248044,
            fingerprint="b84820755624b6db",
            pattern=QWEN35_PATTERN,
            specials=_numbered(248044, _QWEN_SPECIALS + _QWEN35_EXTRA),
            eos="<|endoftext|>",
            pad="<|endoftext|>",
            nfc=True,
        ),
        Encoding(
            name="llama3",
            n_ranks=128000,
            fingerprint="5861169db03f237c",
            pattern=CL100K_PATTERN,
            specials=_llama3_specials(),
            bos="<|begin_of_text|>",
            eos="<|end_of_text|>",
        ),
    )
}


def identify(ranks: Mapping[bytes, int]) -> Encoding | None:
    """The known encoding with exactly this rank table, or None."""
    candidates = [e for e in ENCODINGS.values() if e.n_ranks == len(ranks)]
    if not candidates:
        return None
    found = fingerprint(ranks)
    return next((e for e in candidates if e.fingerprint == found), None)
