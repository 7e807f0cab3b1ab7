"""llama.cpp's pre-tokenizers: which ``tokenizer.ggml.pre`` name splits text as a tokenizer does.

llama.cpp does not read a tokenizer's split rules from the file. It knows a closed list of names
(``tokenizer.ggml.pre``), each bound to a fixed sequence of regular expressions in its
``llama-vocab.cpp``, and refuses a name it does not know. A GGUF file must therefore name one whose
splitting gives the same tokens as the tokenizer it carries.

:func:`choose_pre_tokenizer` checks that empirically: it tokenises probe texts (English, German,
code, digits, contractions, CJK, emoji, runs of spaces and newlines) with the Hugging Face
tokenizer, and again the way llama.cpp would under each candidate name (split with that name's
expressions, each piece byte-level encoded and run through the tokenizer's own BPE model), and
takes the first name whose ids agree on every probe. The expressions below are the ones llama.cpp
documents for each name (its own code rewrites some of them for ``std::regex``); the ``llama_cpp``
tests check the result in llama.cpp itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import regex
from transformers import PreTrainedTokenizerBase
from transformers.convert_slow_tokenizer import bytes_to_unicode

from tokengraft.errors import TokengraftError

_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_TAIL = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_LLAMA3 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}" + _TAIL
_QWEN2 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}" + _TAIL
_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_GPT4O = (
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTIONS}?"
    rf"|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_CONTRACTIONS}?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_DEEPSEEK3 = (
    r"\p{N}{1,3}",
    r"[一-龥぀-ゟ゠-ヿ]+",
    r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
    r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
)


@dataclass(frozen=True)
class PreTokenizer:
    """One of llama.cpp's pre-tokenizer names and how it splits text.

    Attributes:
        name: the ``tokenizer.ggml.pre`` value.
        regexes: applied in order; each splits every piece so far into its matches and the gaps
            between them (llama.cpp's ``unicode_regex_split``).
        ignore_merges: a piece that is itself a token is taken whole (llama.cpp sets this for
            Llama-3's name, as the Hugging Face tokenizer does).
    """

    name: str
    regexes: tuple[str, ...]
    ignore_merges: bool = False


# In the order they are tried: GPT-2's split first, the one `train-tokenizer` uses.
PRE_TOKENIZERS: dict[str, PreTokenizer] = {
    p.name: p
    for p in (
        PreTokenizer("gpt-2", (_GPT2,)),
        PreTokenizer("smollm", (r"\p{N}", _GPT2)),
        PreTokenizer("llama-bpe", (_LLAMA3,), ignore_merges=True),
        PreTokenizer("qwen2", (_QWEN2,)),
        PreTokenizer("gpt-4o", (_GPT4O,)),
        PreTokenizer("deepseek-v3", _DEEPSEEK3),
    )
}

PROBE_TEXTS = (
    "Hello World! I'm sure they'll say DON'T, it's 'quoted' and we've won.\n",
    "Größere Straßen über Äpfel: Übermäßig schöne Grüße aus Köln – 12,5 % mehr.\n",
    "def f(x, y=2):\n\treturn x**2 + y  # comment\n\n\n    if a != b: pass\r\n",
    "1 22 333 4444 55555 1234567 3.14159 2024-05-01 0x1F $100 #7\n",
    "日本語の文章と中文。한국어 텍스트, Ελληνικά, русский текст; émoji 🙂👍🏽.\n",
    "a  b   c    d\n\n  \n \t x...y?! (paren) [bracket] {brace} <tag/> a/b\\c ~^|\n",
)


def split_text(regexes: Sequence[str], text: str) -> list[str]:
    r"""Split ``text`` the way llama.cpp applies a sequence of pre-tokenizer expressions.

    Args:
        regexes: expressions applied in order, each to every piece the previous ones left.
        text: the text.

    Returns:
        The pieces, which concatenate to ``text``.

    Example:
        >>> split_text([r"\p{N}"], "a12")
        ['a', '1', '2']
    """
    pieces = [text]
    for expression in regexes:
        pattern = regex.compile(expression)  # the regex module caches compiled patterns
        pieces = [part for piece in pieces for part in _split_one(pattern, piece)]
    return pieces


def _split_one(pattern: regex.Pattern[str], piece: str) -> list[str]:
    """The matches of ``pattern`` in ``piece`` and the gaps between them, in order."""
    parts: list[str] = []
    end = 0
    for match in pattern.finditer(piece):
        if match.start() > end:
            parts.append(piece[end : match.start()])
        if match.end() > match.start():
            parts.append(match.group())
        end = max(end, match.end())
    if end < len(piece):
        parts.append(piece[end:])
    return parts


def emulate_ids(
    tok: PreTrainedTokenizerBase, pre: PreTokenizer, text: str, vocab: dict[str, int] | None = None
) -> list[int]:
    """Token ids of ``text`` as llama.cpp would produce them for a byte-level BPE under ``pre``.

    Args:
        tok: a byte-level BPE tokenizer (its BPE model does the merging).
        pre: the pre-tokenizer llama.cpp would use.
        text: the text, without special tokens.
        vocab: ``tok.get_vocab()``, when the caller has it already.

    Returns:
        The ids llama.cpp would give.
    """
    model = tok.backend_tokenizer.model
    vocab = tok.get_vocab() if vocab is None else vocab
    to_char = bytes_to_unicode()
    ids: list[int] = []
    for piece in split_text(pre.regexes, text):
        mapped = "".join(to_char[b] for b in piece.encode("utf-8"))
        if pre.ignore_merges and mapped in vocab:
            ids.append(vocab[mapped])
        else:
            ids.extend(t.id for t in model.tokenize(mapped))
    return ids


def matches(tok: PreTrainedTokenizerBase, pre: PreTokenizer, texts: Sequence[str]) -> bool:
    """Whether llama.cpp under ``pre`` gives the Hugging Face tokenizer's ids on every text."""
    vocab = tok.get_vocab()
    return all(
        emulate_ids(tok, pre, text, vocab) == tok(text, add_special_tokens=False).input_ids
        for text in texts
    )


def splits_like(tok: PreTrainedTokenizerBase, pre: PreTokenizer, texts: Sequence[str]) -> bool:
    """Whether ``pre`` cuts every text into exactly the pieces the tokenizer's pre-tokenizer does."""
    backend = tok.backend_tokenizer
    if backend.pre_tokenizer is None:
        return False
    to_char = bytes_to_unicode()
    for text in texts:
        normal = backend.normalizer.normalize_str(text) if backend.normalizer else text
        theirs = [piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(normal)]
        ours = split_text(pre.regexes, text)
        if theirs != ["".join(to_char[b] for b in p.encode("utf-8")) for p in ours]:
            return False
    return True


def choose_pre_tokenizer(
    tok: PreTrainedTokenizerBase, *, hint: str | None = None, what: str = "tokenizer"
) -> str:
    """The llama.cpp pre-tokenizer name that splits text as this byte-level BPE does.

    Every name under which llama.cpp gives the tokenizer's ids on all probe texts is correct for
    llama.cpp; among them ``hint`` wins, then a name that also cuts the text into the very pieces
    the tokenizer's own pre-tokenizer does (the name of the splitting it uses: Qwen's ``qwen2``
    rather than Llama-3's split, which gives the same ids on a vocabulary without numbers).

    Args:
        tok: a byte-level BPE tokenizer.
        hint: a name to prefer (the one the model's own GGUF file carried).
        what: how the tokenizer is named in the error message.

    Returns:
        The chosen name, in :data:`PRE_TOKENIZERS` order among equals.

    Raises:
        TokengraftError: no supported name gives the tokenizer's ids; the message lists them.
    """
    same_ids = [n for n, p in PRE_TOKENIZERS.items() if matches(tok, p, PROBE_TEXTS)]
    if not same_ids:
        raise TokengraftError(
            f"{what}: llama.cpp cannot split text as this tokenizer does; none of the supported "
            f"pre-tokenizers ({', '.join(PRE_TOKENIZERS)}) gives its tokens on the probe texts"
        )
    if hint in same_ids:
        return hint
    same_split = [n for n in same_ids if splits_like(tok, PRE_TOKENIZERS[n], PROBE_TEXTS)]
    return (same_split or same_ids)[0]
