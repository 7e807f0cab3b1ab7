"""What methods need beyond the base model's embeddings, loaded from paths (see ``Need``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tokengraft import io
from tokengraft.config import Slot
from tokengraft.errors import TokengraftError
from tokengraft.graft import embedding_weights
from tokengraft.methods import Donor, Need


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


def load_extras(
    needs: frozenset[Need],
    resources: Resources,
    new_tok: PreTrainedTokenizerBase,
    base_model: Callable[[], PreTrainedModel],
) -> dict[str, Any]:
    """Load what ``needs`` names; a missing resource is an error naming the flag to pass.

    Args:
        needs: what the method requires.
        resources: the paths given by the user.
        new_tok: the new tokenizer (a donor must use it).
        base_model: loads the base model when it is needed (called at most once).
    """
    extras: dict[str, Any] = {}
    if resources.cache_dir is not None:
        extras["cache_dir"] = resources.cache_dir
    for need in sorted(needs):
        extras[need.value] = _load_one(need, resources, new_tok, base_model)
    return extras


def _load_one(
    need: Need,
    resources: Resources,
    new_tok: PreTrainedTokenizerBase,
    base_model: Callable[[], PreTrainedModel],
) -> Any:
    if need is Need.MODEL:
        return base_model()
    if need is Need.DONOR:
        return load_donor(_required(resources.donor, "--donor"), new_tok)
    if need is Need.CORPUS:
        return _texts(_required(resources.corpus, "--corpus"), resources.max_corpus_bytes)
    if need is Need.SOURCE_CORPUS:
        paths = _required(resources.source_corpus, "--source-corpus")
        return _texts(paths, resources.max_corpus_bytes)
    if need is Need.DICTIONARY:
        return io.read_dictionary(_required(resources.dictionary, "--dictionary"))
    if need is Need.AUX_MODEL:
        spec = _required(resources.aux_model, "--aux-model")
        return io.load_encoder(spec)
    raise AssertionError(need)


def _required(value: Any, flag: str) -> Any:
    if not value:
        raise TokengraftError(f"this method needs {flag}")
    return value


def _texts(paths: tuple[Path, ...], max_bytes: int | None) -> list[str]:
    return [text for _, text in io.read_texts(paths, max_bytes=max_bytes)]


def load_donor(spec: str, new_tok: PreTrainedTokenizerBase) -> Donor:
    """Embeddings of a donor model; its tokenizer must be the new tokenizer."""
    donor_tok = io.load_tokenizer(spec)
    if donor_tok.get_vocab() != new_tok.get_vocab():
        raise TokengraftError(
            f"vocabulary mismatch: the donor {spec} does not use the new tokenizer "
            f"({len(donor_tok)} vs {len(new_tok)} tokens)"
        )
    source = io.resolve_model(spec)
    if source.kind is io.ModelKind.HF_DIR:
        names = io.embedding_names(source.path)
        wanted = [n for n in (names.input, names.output) if n is not None]
        tensors = io.read_tensors(source.path, wanted)
        inp = tensors[names.input]
        out = tensors[names.output] if names.output is not None else inp
    else:
        weights = embedding_weights(io.load_model(source))
        inp = weights[Slot.INPUT]
        out = weights.get(Slot.OUTPUT, inp)
    n = len(new_tok)
    return Donor(weights={Slot.INPUT: inp[:n].float(), Slot.OUTPUT: out[:n].float()})
