"""What methods need beyond the base model's embeddings, loaded from paths (see ``Need``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft import io
from tokengraft.config import NEED_FLAGS, Need, Slot
from tokengraft.errors import TokengraftError
from tokengraft.grafting.model import embedding_weights
from tokengraft.methods import Donor, Extras


@dataclass(frozen=True, kw_only=True)
class Resources:
    """Paths to the optional inputs of methods (CLI flags ``--donor``, ``--corpus``, ...).

    Attributes:
        donor: a model that already uses the new tokenizer (HF dir, .gguf, packaged name).
        corpus: target-language text files.
        source_corpus: text files in the base model's language.
        dictionary: a ``source<TAB>target`` bilingual dictionary file.
        aux_model: an auxiliary embedding model directory (TokenAdapt).
        cache_dir: where methods may cache what they train.
        max_corpus_bytes: read at most this many bytes per corpus file.
    """

    donor: str | None = None
    corpus: tuple[Path, ...] = ()
    source_corpus: tuple[Path, ...] = ()
    dictionary: Path | None = None
    aux_model: str | None = None
    cache_dir: Path | None = None
    max_corpus_bytes: int | None = None
    allow_pickle: bool = False

    def paths(self) -> list[Path]:
        """The inputs given as paths (an output may not be, hold or lie inside one)."""
        named = [self.donor, self.dictionary, self.aux_model, *self.corpus, *self.source_corpus]
        return [Path(p) for p in named if p is not None]

    def check(self, needs: Iterable[Need]) -> None:
        """Refuse a missing flag or a bad limit before anything slow is loaded.

        Raises:
            TokengraftError: naming the flag to pass, or ``--max-corpus-bytes`` below 1.
        """
        for need in needs:
            if NEED_FLAGS[need] is not None and not getattr(self, need.value):
                raise TokengraftError(f"this method needs {NEED_FLAGS[need]}")
        if self.max_corpus_bytes is not None and self.max_corpus_bytes < 1:
            raise TokengraftError(
                f"--max-corpus-bytes must be positive, got {self.max_corpus_bytes}"
            )


def load_extras(
    needs: frozenset[Need],
    resources: Resources,
    new_tok: PreTrainedTokenizerBase,
    base_model: Callable[[], PreTrainedModel] | None = None,
) -> Extras:
    """Load what ``needs`` names; a missing resource is an error naming the flag to pass.

    Args:
        needs: what the method requires.
        resources: the paths given by the user.
        new_tok: the new tokenizer (a donor must use it).
        base_model: loads the base model when it is needed (called at most once, last); None:
            the caller adds ``model`` itself.
    """
    resources.check(needs)  # every missing flag is reported before anything slow is loaded
    ordered = sorted(needs, key=lambda need: need is Need.MODEL)  # the base model last
    if base_model is None:
        ordered = [need for need in ordered if need is not Need.MODEL]
    loaded = {need.value: _load_one(need, resources, new_tok, base_model) for need in ordered}
    return Extras(cache_dir=resources.cache_dir, **loaded)


def _load_one(
    need: Need,
    resources: Resources,
    new_tok: PreTrainedTokenizerBase,
    base_model: Callable[[], PreTrainedModel] | None,
) -> Any:
    if need is Need.MODEL:
        assert base_model is not None
        return base_model()
    value = getattr(resources, need.value)
    if not value:
        raise TokengraftError(f"this method needs {NEED_FLAGS[need]}")
    if need is Need.DONOR:
        return load_donor(value, new_tok, allow_pickle=resources.allow_pickle)
    if need in (Need.CORPUS, Need.SOURCE_CORPUS):
        return [text for _, text in io.read_texts(value, max_bytes=resources.max_corpus_bytes)]
    if need is Need.DICTIONARY:
        return io.read_dictionary(value)
    if need is Need.AUX_MODEL:
        return io.load_encoder(value, allow_pickle=resources.allow_pickle)
    raise AssertionError(need)


def load_donor(spec: str, new_tok: PreTrainedTokenizerBase, *, allow_pickle: bool = False) -> Donor:
    """Embeddings of a donor model; its tokenizer must be the new tokenizer.

    Args:
        spec: the donor (HF directory, .gguf file or packaged name).
        new_tok: the new tokenizer.
        allow_pickle: allow a donor with pickle (``pytorch_model.bin``) weights only.

    Raises:
        TokengraftError: the donor's vocabulary is not the new tokenizer's.
    """
    donor_tok = io.load_tokenizer(spec)
    if donor_tok.get_vocab() != new_tok.get_vocab():
        raise TokengraftError(
            f"vocabulary mismatch: the donor {spec} does not use the new tokenizer "
            f"({len(donor_tok)} vs {len(new_tok)} tokens)"
        )
    source = io.resolve_model(spec, allow_pickle=allow_pickle)
    if source.kind is io.ModelKind.HF_DIR and io.has_safetensors(source.path):
        weights = io.read_embeddings(source.path)
    else:
        weights = embedding_weights(io.load_model(source, allow_pickle=allow_pickle))
    n = len(new_tok)
    inp = weights[Slot.INPUT]
    out = weights.get(Slot.OUTPUT, inp)
    return Donor(weights={Slot.INPUT: inp[:n].float(), Slot.OUTPUT: out[:n].float()})
