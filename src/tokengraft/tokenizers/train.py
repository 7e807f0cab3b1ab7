"""Train new tokenizers (byte-level BPE with GPT-2-style pre-tokenisation) with HF `tokenizers`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from tokengraft.errors import TokengraftError

_TRAINER_BYTES_PER_TOKEN = 80  # what tokenizers' BpeTrainer reserves per requested token


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How a tokenizer is trained.

    Attributes:
        vocab_size: size of the vocabulary including special tokens.
        min_frequency: a pair must occur this often to be merged.
        special_tokens: added first, in order (ids 0..n-1), as special tokens.
        bos_token / eos_token / pad_token / unk_token: roles among ``special_tokens``.
    """

    vocab_size: int = 32_000
    min_frequency: int = 2
    special_tokens: tuple[str, ...] = ("<|endoftext|>",)
    bos_token: str | None = None
    eos_token: str | None = None
    pad_token: str | None = None
    unk_token: str | None = None


def config_from_model_tokenizer(tok: PreTrainedTokenizerBase, vocab_size: int) -> TrainConfig:
    """A :class:`TrainConfig` carrying the special tokens (and their roles) of a model's tokenizer."""
    specials = [t.content for _, t in sorted(tok.added_tokens_decoder.items()) if t.special]
    return TrainConfig(
        vocab_size=vocab_size,
        special_tokens=tuple(specials),
        bos_token=tok.bos_token,
        eos_token=tok.eos_token,
        pad_token=tok.pad_token,
        unk_token=tok.unk_token,
    )


def train_byte_level_bpe(
    texts: Iterable[str], config: TrainConfig, *, progress: bool = False
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE tokenizer.

    Args:
        texts: training documents.
        config: vocabulary size, special tokens and their roles.
        progress: show the trainer's progress bar.

    Returns:
        A fast tokenizer; every byte is in the vocabulary, so every text round-trips.
    """
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    texts = _nonempty(texts)
    check_vocab_size(texts, config)
    tok = Tokenizer(models.BPE())
    # use_regex=True is GPT-2's split pattern (contractions, letters, digits, other, spaces).
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=list(config.special_tokens),
        initial_alphabet=alphabet,
        show_progress=progress,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=config.bos_token,
        eos_token=config.eos_token,
        pad_token=config.pad_token,
        unk_token=config.unk_token,
        clean_up_tokenization_spaces=False,
    )


def check_vocab_size(texts: Sequence[str], config: TrainConfig) -> None:
    """Refuse a vocabulary size that the corpus cannot fill or that would not fit in memory.

    BPE adds at most one token per merge and a merge shortens the corpus by at least one
    symbol, so a corpus of n bytes gives at most n tokens beyond the 256 bytes and the special
    tokens. The trainer also allocates about ``_TRAINER_BYTES_PER_TOKEN`` per requested token
    up front (999,999,999 tokens asked for 70 GB and aborted the process).

    Raises:
        TokengraftError: naming ``--vocab-size``, the limit and why.
    """
    floor = len(pre_tokenizers.ByteLevel.alphabet()) + len(config.special_tokens)
    if config.vocab_size < floor:
        raise TokengraftError(
            f"--vocab-size {config.vocab_size} is below the {floor - len(config.special_tokens)} "
            f"byte tokens plus {len(config.special_tokens)} special tokens"
        )
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if config.vocab_size > floor + n_bytes:
        raise TokengraftError(
            f"--vocab-size {config.vocab_size:,} is more than the corpus can give: its "
            f"{n_bytes:,} bytes allow at most {floor + n_bytes:,} tokens"
        )
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if config.vocab_size * _TRAINER_BYTES_PER_TOKEN > memory // 2:
        raise TokengraftError(
            f"--vocab-size {config.vocab_size:,} needs about "
            f"{config.vocab_size * _TRAINER_BYTES_PER_TOKEN / 2**30:.0f} GiB to train; this "
            f"machine has {memory / 2**30:.0f} GiB"
        )


def _nonempty(texts: Iterable[str]) -> Sequence[str]:
    docs = [t for t in texts if t.strip()]
    if not docs:
        raise TokengraftError("the training corpus is empty")
    return docs
