"""Bilingual dictionaries for WECHSEL, from Debian's FreeDict packages.

``dict-freedict-eng-deu`` and its siblings ship a dictd database: ``<name>.index`` (headword, offset
and length in base64, one entry per line) and ``<name>.dict.dz`` (dictzip, which is
gzip-compatible). :func:`fetch_dictionary` downloads the package (``apt-get download`` +
``dpkg-deb -x``, as the corpus builder does) and reduces the database to ``source<TAB>target``
lines, the format :func:`tokengraft.io.read_dictionary` reads. Only single-word headwords and
single-word translations are kept, with all markup removed.
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tokengraft.data.sources import COMMAND_TIMEOUT_S, Apt, run_command
from tokengraft.errors import TokengraftError
from tokengraft.io import write_text
from tokengraft.io.cache import cache_dir

logger = logging.getLogger(__name__)

MAX_TRANSLATIONS = 3  # per headword, from its longest entries first
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")  # letters, inner hyphens allowed
_MARKUP = re.compile(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}|\([^)]*\)|/[^/]*/")


def fetch_dictionary(pair: str = "eng-deu", *, root: Path | None = None) -> Path:
    """The ``source<TAB>target`` file for ``pair``, downloaded and converted on first use.

    Args:
        pair: FreeDict language pair, e.g. ``"eng-deu"`` (package ``dict-freedict-eng-deu``).
        root: cache root; defaults to :func:`tokengraft.io.cache.cache_dir`. The file is
            ``<root>/dictionaries/<pair>.tsv``.

    Returns:
        The path of the TSV file (reused if it exists; written atomically otherwise).

    Raises:
        TokengraftError: ``apt-get``/``dpkg-deb`` is missing or fails, or the package has no
            dictd database.
    """
    out = (Path(root) if root is not None else cache_dir()) / "dictionaries" / f"{pair}.tsv"
    if out.is_file():
        return out
    package = f"dict-freedict-{pair}"
    with tempfile.TemporaryDirectory(prefix="tokengraft-dict-") as tmp:
        workdir = Path(tmp)
        deb = Apt().download(package, workdir)
        target = workdir / "unpacked"
        run_command(["dpkg-deb", "-x", str(deb), str(target)], cwd=workdir, package=package,
                    timeout=COMMAND_TIMEOUT_S)  # fmt: skip
        index = target / "usr/share/dictd" / f"freedict-{pair}.index"
        data = index.with_name(f"freedict-{pair}.dict.dz")
        if not index.is_file() or not data.is_file():
            raise TokengraftError(f"{package} has no dictd database freedict-{pair}.index/.dict.dz")
        pairs = dictd_pairs(index.read_text(encoding="utf-8"), gzip.decompress(data.read_bytes()))
        shutil.rmtree(target, ignore_errors=True)
    if not pairs:
        raise TokengraftError(f"{package}: no single-word translations found")
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# {package}: single-word headwords and translations (FreeDict, GPL)\n"
    write_text(out, header + "".join(f"{s}\t{t}\n" for s, t in pairs))
    logger.info("wrote %s: %d pairs", out, len(pairs))
    return out


def dictd_pairs(
    index: str, data: bytes, *, max_translations: int = MAX_TRANSLATIONS
) -> list[tuple[str, str]]:
    """``(headword, translation)`` pairs of a dictd database, single words only.

    A headword's entries are read longest first (its main sense tends to carry the most examples
    and cross-references), and the first ``max_translations`` distinct single-word translations
    are kept.

    Args:
        index: the ``.index`` file's text: ``headword<TAB>offset<TAB>length`` per line.
        data: the uncompressed ``.dict`` bytes.
        max_translations: translations kept per headword.
    """
    entries: dict[str, list[str]] = {}
    for offset, length in _index_entries(index):
        entry = data[offset : offset + length].decode("utf-8", errors="replace")
        headword, body = _split_entry(entry)
        if headword is not None and not headword.startswith("00-database"):
            entries.setdefault(headword, []).append(body)
    pairs: list[tuple[str, str]] = []
    for headword, bodies in entries.items():
        if not _WORD.fullmatch(headword):
            continue
        kept: list[str] = []
        for body in sorted(bodies, key=len, reverse=True):
            for word in _translations(body):
                if word not in kept and len(kept) < max_translations:
                    kept.append(word)
        pairs += [(headword, word) for word in kept]
    return pairs


def _index_entries(index: str) -> Iterator[tuple[int, int]]:
    seen: set[tuple[int, int]] = set()
    for line in index.splitlines():
        fields = line.split("\t")
        if len(fields) != 3:
            continue
        where = (_b64(fields[1]), _b64(fields[2]))
        if where not in seen:  # several index keys may point to one entry
            seen.add(where)
            yield where


def _b64(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + _B64.index(char)
    return value


def _split_entry(entry: str) -> tuple[str | None, str]:
    """The headword (first line, before its pronunciation or part of speech) and the rest."""
    first, _, body = entry.strip("\n").partition("\n")
    headword = re.split(r"\s+[/<]", first.strip(), maxsplit=1)[0].strip()
    return (headword or None), body


def _translations(body: str) -> Iterator[str]:
    """Single-word translations on the first line of an entry's body (markup removed)."""
    first = body.split("\n", 1)[0]
    if first.startswith((" ", "\t")):  # an example, a note or a cross-reference, not a sense
        return
    for item in _MARKUP.sub(" ", first).split(","):
        word = " ".join(item.split())
        if _WORD.fullmatch(word):
            yield word
