"""Plain text out of HTML and man pages, and a filter for English left in translations.

Pure functions over strings, used by :mod:`tokengraft.data.sources`. The standard library's
``html.parser`` is enough for the HTML here; the roff stripper is deliberately simple.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# --- HTML -> text -----------------------------------------------------------------------------

_SKIP_TAGS = {"script", "style", "head", "noscript", "nav", "template", "svg", "footer", "aside",
              "button"}  # fmt: skip
_VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
              "wbr"}  # fmt: skip
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5",
               "h6", "tr", "table", "pre", "blockquote", "section", "article", "header", "main",
               "td", "th", "hr", "figure", "figcaption", "caption", "title"}  # fmt: skip


class _TextExtractor(HTMLParser):
    """Collects visible text as paragraphs; block elements end a paragraph."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._parts: list[str] = []
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":  # a missing </head> must not hide the whole page
            self._skip_tag, self._skip_depth = None, 0
        if self._skip_tag is not None:
            self._skip_depth += tag == self._skip_tag
            return
        # LibreOffice help hides every platform/application variant of a phrase, the default
        # one included, and lets JavaScript reveal one: keep the default, drop the others.
        attr = dict(attrs)
        hidden = "hidden" in attr and not (attr.get("id") or "").startswith("default")
        if (tag in _SKIP_TAGS or hidden) and tag not in _VOID_TAGS:
            self._skip_tag, self._skip_depth = tag, 1
        elif tag in _BLOCK_TAGS:
            self._flush()
            self._pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag is not None:
            self._skip_depth -= tag == self._skip_tag
            if self._skip_depth == 0:
                self._skip_tag = None
        elif tag in _BLOCK_TAGS:
            self._flush()
            self._pre -= tag == "pre" and self._pre > 0

    def handle_data(self, data: str) -> None:
        if self._skip_tag is None:
            self._parts.append(data)

    def _flush(self) -> None:
        raw, self._parts = "".join(self._parts), []
        if self._pre:
            lines = (" ".join(line.split()) for line in raw.splitlines())
            text = "\n".join(line for line in lines if line)
        else:
            text = " ".join(raw.split())
        if text:
            self.paragraphs.append(text)


def html_to_text(html: str) -> str:
    r"""Visible text of an HTML page, one paragraph per block element, whitespace collapsed.

    ``script``, ``style``, ``head``, ``nav`` and elements with a ``hidden`` attribute are skipped;
    line breaks inside ``<pre>`` are kept.

    Example:
        >>> html_to_text("<p>Hello <b>world</b></p><script>x()</script><p>Bye</p>")
        'Hello world\n\nBye'
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    parser._flush()
    return "\n\n".join(parser.paragraphs)


# --- roff (man pages) -> text -----------------------------------------------------------------

_ROFF_SPECIAL = {
    "em": "—", "en": "–", "hy": "-", "bu": "•", "lq": "“", "rq": "”", "aq": "'", "dq": '"',
    "oq": "‘", "cq": "’", "co": "©", "rg": "®", "tm": "™", "Fo": "«", "Fc": "»", "ti": "~",
    "ha": "^", "rs": "\\", "mi": "-", "pl": "+", "eq": "=", "mu": "×", "de": "°", "sc": "§",
}  # fmt: skip
_ROFF_ESCAPE = re.compile(
    r"""\\(?:
        \((?P<two>..)                          # \(xx special character
      | \[(?P<long>[^\]]*)\]                   # \[xx] special character
      | [fF](?:\[[^\]]*\]|\(..|.)              # font change
      | s[+-]?(?:\d|\(\d\d|\[\d+\])            # size change
      | \*(?:\[[^\]]*\]|\(..|.)                # string interpolation
      | [nk](?:\[[^\]]*\]|\(..|.)              # number register
      | [hvwlLDoxbXZ]'[^']*'                   # escapes with a quoted argument
      | (?P<sp>[ ~0])                          # unbreakable spaces
      | (?P<lit>[-e\\.'`])                     # literal characters
      | .                                      # anything else (\&, \c, \,, \/, ...): drop
    )""",
    re.VERBOSE,
)
_TEXT_MACROS = {"SH", "SS", "B", "I", "SM", "SB", "Nd", "Sh", "Ss", "Em", "Sy", "Dq", "Sq", "Ql",
                "Pa", "Ar", "Nm", "Xr"}  # fmt: skip
_JOINED_MACROS = {"BR", "RB", "BI", "IB", "IR", "RI"}  # alternate fonts, no spaces
_BREAK_MACROS = {"SH", "SS", "PP", "P", "LP", "TP", "IP", "HP", "sp", "Pp", "Sh", "Ss", "Bl", "El",
                 "Bd", "Ed", "TE"}  # fmt: skip
_HEADING_MACROS = {"SH", "SS", "Sh", "Ss"}


def _roff_escape(match: re.Match[str]) -> str:
    if code := match.group("two") or match.group("long"):
        return _ROFF_SPECIAL.get(code, "")
    if match.group("sp"):
        return " "
    lit = match.group("lit")
    return {"e": "\\"}.get(lit, lit) if lit else ""


def _unescape(text: str) -> str:
    return _ROFF_ESCAPE.sub(_roff_escape, text.split('\\"', 1)[0])  # \" starts a comment


def _macro_text(line: str) -> tuple[str, str]:
    """Split a roff request line into (macro name, its text arguments as plain text)."""
    head, _, args = line[1:].split('\\"', 1)[0].strip().partition(" ")
    words = [_unescape(w.strip('"')) for w in re.findall(r'"[^"]*"|\S+', args)]
    if head in _JOINED_MACROS:
        return head, "".join(words)
    return head, " ".join(words) if head in _TEXT_MACROS else ""


def strip_roff(roff: str) -> str:
    r"""Plain text of a man page: requests dropped (text of ``.SH``, ``.B``... kept), no escapes.

    Tables (``.TS``...``.TE``) are dropped; paragraphs are separated by a blank line.

    Example:
        >>> strip_roff('.TH LS 1\n.SH NAME\nls \\- list \\fBfiles\\fP\n.PP\nMore.')
        'NAME\n\nls - list files\n\nMore.'
    """
    paragraphs: list[list[str]] = [[]]
    in_table = False
    for line in roff.splitlines():
        if line.startswith((".", "'")):
            head, text = _macro_text(line)
            in_table = (in_table or head == "TS") and head != "TE"
            if head in _BREAK_MACROS:
                paragraphs.append([])
            paragraphs[-1].append(text)
            if head in _HEADING_MACROS:
                paragraphs.append([])
        elif not line.strip():
            paragraphs.append([])
        elif not in_table:
            paragraphs[-1].append(_unescape(line))
    cleaned = (" ".join(" ".join(lines).split()) for lines in paragraphs)
    return "\n\n".join(p for p in cleaned if p)


# --- English left untranslated ----------------------------------------------------------------

# Frequent function words, none of which is also a common word of the other languages here.
_FUNCTION_WORDS = {
    "en": "the of and to is are that for with this you be by it from which can will not was",
    "de": "der die das und ist sind zu den mit von für ein eine nicht im in an dem des auf sie",
    "fr": "le la les et est sont de des du un une pour dans que qui pas sur avec ce il vous on",
    "es": "el la los las y es son de del un una para en que por con se no su lo",
}
_WORDS = {lang: frozenset(words.split()) for lang, words in _FUNCTION_WORDS.items()}
_SCRIPT = {"ru": re.compile("[\u0400-\u04ff]"), "zh": re.compile("[\u3400-\u9fff]")}
_LATIN_WORD = re.compile(r"[^\W\d_]+")


def looks_english(paragraph: str, language: str) -> bool:
    """Whether ``paragraph`` reads as English left untranslated in a ``language`` corpus.

    For ``ru`` and ``zh``: no character of the language's script and at least one English
    function word. For ``de``, ``fr``, ``es``: at least two English function words and more than
    twice as many as native ones. Commands, code and numbers rarely hold function words: kept.

    Example:
        >>> looks_english("Returns the sum of the values.", "de")
        True
        >>> looks_english("Gibt die Summe der Werte zurück (the sum).", "de")
        False
    """
    if language == "en" or language not in _WORDS.keys() | _SCRIPT.keys():
        return False
    words = _LATIN_WORD.findall(paragraph.lower())
    english = sum(w in _WORDS["en"] for w in words)
    if language in _SCRIPT:
        return english >= 1 and _SCRIPT[language].search(paragraph) is None
    return english >= 2 and english > 2 * sum(w in _WORDS[language] for w in words)


def strip_english(text: str, language: str) -> str:
    """``text`` without its :func:`looks_english` paragraphs (paragraphs: blank-line separated)."""
    return "\n\n".join(p for p in text.split("\n\n") if not looks_english(p, language))
