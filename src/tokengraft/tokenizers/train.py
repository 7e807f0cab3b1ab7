"""Train new tokenizers (byte-level BPE with GPT-2-style pre-tokenisation) with HF `tokenizers`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from tokengraft.errors import TokengraftError


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
    if config.vocab_size < len(alphabet) + len(config.special_tokens):
        raise TokengraftError(
            f"--vocab-size {config.vocab_size} is below the {len(alphabet)} byte tokens "
            f"plus {len(config.special_tokens)} special tokens"
        )
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
    tok.train_from_iterator(_nonempty(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=config.bos_token,
        eos_token=config.eos_token,
        pad_token=config.pad_token,
        unk_token=config.unk_token,
        clean_up_tokenization_spaces=False,
    )


def _nonempty(texts: Iterable[str]) -> Sequence[str]:
    docs = [t for t in texts if t.strip()]
    if not docs:
        raise TokengraftError("the training corpus is empty")
    return docs
