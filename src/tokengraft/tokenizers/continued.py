"""Continue BPE training on top of an existing tokenizer's merges (HF ``tokenizers`` trainer).

The corpus is encoded with the existing tokenizer and cut into words (its pre-tokens; for a
SentencePiece-style tokenizer without a pre-tokenizer, before every ``▁``). Each word becomes a
string of stand-in characters, one per token id (``chr(0x10000 + id)``), and the ``tokenizers``
BPE trainer learns merges on those strings, so a new merge only ever joins tokens the existing
tokenizer produces (or earlier new merges made). Special tokens and ``<0xNN>`` byte-fallback pieces
end a word and are never merged.

The same machinery trains the second stage of a multi-word tokenizer
(:mod:`tokengraft.tokenizers.multiword`), where words are longer spans of text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer, models, trainers
from transformers import PreTrainedTokenizerBase

from tokengraft.errors import TokengraftError
from tokengraft.vocab.extend import check_extendable
from tokengraft.vocab.surgery import BpeModel, Pair

_BASE = 0x10000  # stand-in characters start above the BMP: no surrogates, no real text
_SLACK = 1.25  # merges asked for per new token: some merges rebuild a token the vocabulary has


@dataclass(frozen=True, kw_only=True)
class ContinueConfig:
    """How continued training runs.

    Attributes:
        n_new: new tokens wanted.
        min_frequency: a pair must occur this often (weighted by word counts) to be merged.
        split_metaspace: cut a SentencePiece-style tokenizer's encoding before every ``▁`` piece.
    """

    n_new: int
    min_frequency: int = 2
    split_metaspace: bool = True


def token_words(
    tok: PreTrainedTokenizerBase, texts: Sequence[str], *, split_metaspace: bool = True
) -> Counter[tuple[int, ...]]:
    """Words of ``texts`` as tuples of token ids, with their counts.

    A word is the tokens of one pre-token (``Encoding.word_ids``); with ``split_metaspace`` a word
    also ends before a piece starting with ``▁``. Special and byte-fallback tokens are dropped and
    end a word.
    """
    stop = {int(i) for i in tok.added_tokens_decoder} | _byte_ids(tok)
    counts: Counter[tuple[int, ...]] = Counter()
    for enc in tok.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False):
        word: list[int] = []
        last: int | None = None
        for token_id, piece, word_id in zip(enc.ids, enc.tokens, enc.word_ids, strict=True):
            boundary = word_id != last or (split_metaspace and piece.startswith("▁"))
            if boundary or token_id in stop:
                _flush(word, counts)
            if token_id not in stop:
                word.append(token_id)
            last = word_id
        _flush(word, counts)
    return counts


def _flush(word: list[int], counts: Counter[tuple[int, ...]]) -> None:
    if len(word) > 1:
        counts[tuple(word)] += 1
    word.clear()


def _byte_ids(tok: PreTrainedTokenizerBase) -> set[int]:
    vocab = tok.get_vocab()
    return {vocab[p] for p in (f"<0x{b:02X}>" for b in range(256)) if p in vocab}


def learn_merges(
    tok: PreTrainedTokenizerBase,
    words: Counter[tuple[int, ...]],
    n_new: int,
    *,
    min_frequency: int = 2,
    progress: bool = False,
) -> list[Pair]:
    """Merges (pairs of pieces) learnt on ``words`` until ``n_new`` new pieces exist.

    Args:
        tok: the tokenizer whose ids the words hold.
        words: token-id tuples and their counts.
        n_new: how many pieces the merges should add to ``tok``'s vocabulary.
        min_frequency: the trainer's minimum pair count.
        progress: show the trainer's progress bar.

    Returns:
        The merges in rank order; fewer new pieces than asked when the corpus runs out of pairs.
    """
    if not words:
        return []
    pieces = {i: p for p, i in tok.get_vocab().items()}
    alphabet = {i for word in words for i in word}
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + int(n_new * _SLACK) + 16,
        min_frequency=min_frequency,
        show_progress=progress,
        special_tokens=[],
    )
    model = Tokenizer(models.BPE())
    model.train_from_iterator(_stand_in_texts(words), trainer)
    learnt = BpeModel.of(tokenizer_json_of(model)).merges
    return _take(learnt, pieces, set(tok.get_vocab()), n_new)


def _stand_in_texts(words: Counter[tuple[int, ...]]) -> Iterator[str]:
    for word, count in words.items():
        text = "".join(chr(_BASE + i) for i in word)
        for _ in range(count):
            yield text


def tokenizer_json_of(backend: Tokenizer) -> dict[str, object]:
    """The JSON of a bare ``tokenizers.Tokenizer``."""
    import json

    spec: dict[str, object] = json.loads(backend.to_str())
    return spec


def _take(
    learnt: Sequence[Pair], pieces: dict[int, str], vocab: set[str], n_new: int
) -> list[Pair]:
    """Stand-in merges as piece merges, in order, until ``n_new`` pieces are new."""
    out: list[Pair] = []
    made: set[str] = set()
    for left, right in learnt:
        if len(made) >= n_new:
            break
        pair = (_piece(left, pieces), _piece(right, pieces))
        result = pair[0] + pair[1]
        if result not in vocab:
            made.add(result)
        out.append(pair)
    return out


def _piece(stand_in: str, pieces: dict[int, str]) -> str:
    return "".join(pieces[ord(c) - _BASE] for c in stand_in)


def continue_bpe(
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    config: ContinueConfig,
    *,
    progress: bool = False,
) -> list[Pair]:
    """Merges that add ``config.n_new`` tokens learnt on ``texts`` over ``tok``'s merges.

    Args:
        tok: a fast BPE tokenizer (byte-level or SentencePiece-style); left unchanged.
        texts: the domain corpus.
        config: how many tokens, minimum pair frequency, word cutting.
        progress: show the trainer's progress bar.

    Returns:
        The new merges in rank order (fewer when the corpus has too few frequent pairs).

    Raises:
        TokengraftError: ``n_new`` below 1, an empty corpus, or not a BPE tokenizer.
    """
    if config.n_new < 1:
        raise TokengraftError(f"--add must be at least 1, got {config.n_new}")
    docs = [t for t in texts if t.strip()]
    if not docs:
        raise TokengraftError("the corpus to extend on is empty")
    check_extendable(tok)
    words = token_words(tok, docs, split_metaspace=config.split_metaspace)
    return learn_merges(
        tok, words, config.n_new, min_frequency=config.min_frequency, progress=progress
    )
