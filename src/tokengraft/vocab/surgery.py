"""Tokenizer surgery on ``tokenizer.json``: read a BPE or Unigram model, re-index, rebuild.

Trim and extend change a fast tokenizer's vocabulary without retraining it. They work on the
backend's JSON (the ``tokenizers`` library's own format): the model's vocabulary and merges, the
added tokens and the post-processor's special-token ids. :func:`rebuild` turns an edited JSON back
into a fast tokenizer with the old one's special-token roles and chat template.

:func:`merge_children` gives the two tokens a BPE token is built from: the tokens that the BPE
algorithm, run on the token's own symbols alone, merges last. A token's merge tree does not depend
on the text around it (every merge inside its span only ever sees symbols of that span), so this
is the tree the token has wherever it occurs.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from tokengraft.errors import TokengraftError

Pair = tuple[str, str]


class ModelType(enum.StrEnum):
    """The tokenization model inside a fast tokenizer."""

    BPE = "BPE"
    UNIGRAM = "Unigram"
    WORDPIECE = "WordPiece"
    WORDLEVEL = "WordLevel"


def tokenizer_json(tok: PreTrainedTokenizerBase) -> dict[str, Any]:
    """The backend tokenizer of ``tok`` as a JSON object (a fresh copy, safe to edit).

    Raises:
        TokengraftError: ``tok`` is not a fast tokenizer.
    """
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise TokengraftError(f"{type(tok).__name__} is not a fast tokenizer")
    spec: dict[str, Any] = json.loads(backend.to_str())
    return spec


def model_type(spec: Mapping[str, Any]) -> ModelType:
    """The model type of a tokenizer JSON (BPE, Unigram, WordPiece, WordLevel)."""
    name = (spec.get("model") or {}).get("type")
    try:
        return ModelType(str(name))
    except ValueError:
        raise TokengraftError(f"unknown tokenizer model type {name!r}") from None


def parse_merges(model: Mapping[str, Any]) -> list[Pair]:
    """A BPE model's merges as pairs, from either JSON form (``"a b"`` or ``["a", "b"]``)."""
    pairs: list[Pair] = []
    for merge in model.get("merges") or []:
        if isinstance(merge, str):
            left, _, right = merge.partition(" ")
            pairs.append((left, right))
        else:
            pairs.append((str(merge[0]), str(merge[1])))
    return pairs


@dataclass(frozen=True)
class BpeModel:
    """The parts of a BPE model the vocabulary operations need.

    Attributes:
        vocab: piece -> id.
        merges: the merges in rank order.
        byte_fallback: unknown characters become ``<0xNN>`` pieces.
    """

    vocab: Mapping[str, int]
    merges: Sequence[Pair]
    byte_fallback: bool

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> BpeModel:
        """The BPE model of a tokenizer JSON.

        Raises:
            TokengraftError: not a BPE model, or one with word prefixes/suffixes.
        """
        model = spec["model"]
        if model_type(spec) is not ModelType.BPE:
            raise TokengraftError(f"not a BPE tokenizer ({model.get('type')})")
        if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
            raise TokengraftError("BPE with subword prefixes or word suffixes is not supported")
        return cls(dict(model["vocab"]), parse_merges(model), bool(model.get("byte_fallback")))

    def ranks(self) -> dict[Pair, int]:
        """Pair -> rank (the first listing of a pair wins, as in ``tokenizers``)."""
        ranks: dict[Pair, int] = {}
        for rank, pair in enumerate(self.merges):
            ranks.setdefault(pair, rank)
        return ranks


def merge_children(token: str, ranks: Mapping[Pair, int]) -> Pair | None:
    """The two tokens BPE merges last to build ``token`` (None: ``token`` is not built by merges).

    Runs BPE on the characters of ``token`` alone: the adjacent pair of lowest rank merges first,
    the leftmost of equal pairs first, as ``tokenizers`` does.
    """
    symbols = list(token)
    last: Pair | None = None
    while len(symbols) > 1:
        best = min(
            (
                (ranks[(a, b)], i)
                for i, (a, b) in enumerate(zip(symbols, symbols[1:], strict=False))
                if (a, b) in ranks
            ),
            default=None,
        )
        if best is None:
            break
        i = best[1]
        last = (symbols[i], symbols[i + 1])
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    return last if symbols == [token] else None


def remap_ids(spec: dict[str, Any], new_id: Mapping[int, int]) -> None:
    """Re-index the added tokens and the post-processor's special ids of ``spec`` in place.

    Added tokens whose old id is not in ``new_id`` are dropped.
    """
    spec["added_tokens"] = [
        {**token, "id": new_id[token["id"]]}
        for token in spec.get("added_tokens") or []
        if token["id"] in new_id
    ]
    if spec.get("post_processor"):
        _remap_processor(spec["post_processor"], new_id)


def _remap_processor(node: dict[str, Any], new_id: Mapping[int, int]) -> None:
    for child in node.get("processors") or []:
        _remap_processor(child, new_id)
    for entry in (node.get("special_tokens") or {}).values():
        entry["ids"] = [new_id.get(i, i) for i in entry.get("ids", [])]
    for key in ("sep", "cls"):
        if isinstance(node.get(key), list) and len(node[key]) == 2:
            node[key] = [node[key][0], new_id.get(node[key][1], node[key][1])]


def rebuild(old: PreTrainedTokenizerBase, spec: Mapping[str, Any]) -> PreTrainedTokenizerFast:
    """A fast tokenizer from the JSON ``spec``, with ``old``'s special-token roles and template.

    Raises:
        TokengraftError: the edited JSON is not a valid tokenizer.
    """
    try:
        backend = Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))
    except Exception as exc:  # tokenizers raises bare Exception on an invalid model
        raise TokengraftError(f"the edited tokenizer is invalid: {exc}") from exc
    roles = {
        key: value
        for key, value in old.special_tokens_map.items()
        if isinstance(value, str) and key != "additional_special_tokens"
    }
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, clean_up_tokenization_spaces=False, **roles
    )
    template = getattr(old, "chat_template", None)
    if isinstance(template, str):
        tok.chat_template = template
    for flag in ("add_bos_token", "add_eos_token"):
        if isinstance(old.init_kwargs.get(flag), bool):
            tok.init_kwargs[flag] = old.init_kwargs[flag]
    tok.model_max_length = old.model_max_length
    return tok
