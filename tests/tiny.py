"""Tiny tokenizers of every family, tiny Llama-style models, a tiny BERT encoder and a tiny donor,
built in memory (no network); :func:`save_checkpoint` writes a model and its tokenizer to disk."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from tokengraft import Slot
from tokengraft.grafting import embedding_weights
from tokengraft.methods import Donor

TEXT = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps, the fox runs.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Größe, Straße, Äpfel.",
    "Le renard brun rapide saute par-dessus le chien paresseux. Où êtes-vous ?",
    "Все люди рождаются свободными и равными в своём достоинстве и правах.",
    "人人生而自由，在尊严和权利上一律平等。 def main(): return 42",
    "tokenizers split text into tokens; tokens become ids; ids become embeddings.",
    "Everyone has the right to life, liberty and security of person. 1234 5678",
    "Jeder hat das Recht auf Leben, Freiheit und Sicherheit der Person.",
] * 4

CHAT_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _wrap(tok: Tokenizer, **special: str) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, **special)


def byte_level_bpe(vocab_size: int = 400, text: list[str] | None = None) -> PreTrainedTokenizerFast:
    """GPT-2 / SmolLM2 style: byte-level BPE with `Ġ`, chat special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=CHAT_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(text or TEXT, trainer)
    out = _wrap(
        tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    out.chat_template = CHAT_TEMPLATE
    return out


def sentencepiece_bpe(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """Llama-2 / Mistral / Gemma style: `▁` word marker, BPE with `<0xNN>` byte fallback."""
    base = Tokenizer(models.BPE(unk_token="<unk>"))
    base.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    base.train_from_iterator(TEXT, trainer)
    trained = json.loads(base.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    for piece in sorted(trained["vocab"], key=trained["vocab"].get):
        vocab.setdefault(piece, len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    return _wrap(tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def wordpiece(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """BERT style: `##` continuation prefix, whitespace + punctuation pre-tokenisation."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False
    )
    tok.train_from_iterator(TEXT, trainer)
    return _wrap(
        tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def unigram(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """XLM-R / T5 style: SentencePiece Unigram with `▁` and no byte fallback."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(TEXT, trainer)
    return _wrap(tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def llama(vocab_size: int, *, tied: bool, seed: int = 0, hidden: int = 32) -> LlamaForCausalLM:
    """A 2-layer Llama with random weights; tied or untied embeddings."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=tied,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model


def save_checkpoint(
    path: Path,
    tok: PreTrainedTokenizerBase,
    *,
    tied: bool,
    max_shard_size: str | None = None,
) -> Path:
    """A tiny Llama for ``tok`` (bos/eos ids set from it) and ``tok``, saved as an HF directory.

    ``max_shard_size`` (e.g. ``"40KB"``) writes several safetensors shards and an index.
    """
    model = llama(len(tok), tied=tied)
    model.config.bos_token_id = tok.bos_token_id
    model.config.eos_token_id = tok.eos_token_id
    if max_shard_size is None:
        model.save_pretrained(path)
    else:
        model.save_pretrained(path, max_shard_size=max_shard_size)
    tok.save_pretrained(path)
    return path


def bert_encoder() -> tuple[BertModel, PreTrainedTokenizerFast]:
    """A 1-layer random BERT (hidden 16) with the tiny WordPiece tokenizer: an auxiliary model."""
    tok = wordpiece()
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    return BertModel(config).eval(), tok


def donor(vocab_size: int, *, tied: bool, hidden: int = 24) -> Donor:
    """Embeddings of a tiny random Llama (seed 7) that would use the new tokenizer."""
    weights = embedding_weights(llama(vocab_size, tied=tied, seed=7, hidden=hidden))
    head = weights.get(Slot.OUTPUT, weights[Slot.INPUT])
    return Donor(weights={Slot.INPUT: weights[Slot.INPUT], Slot.OUTPUT: head})
