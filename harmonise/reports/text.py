"""Text made safe for each generated format: XML 1.0 (DDI), Markdown and Markdown code spans.

Labels come from source files and declarations, so they may hold control characters (a stray
``\\x01`` from a data entry program) or markup (``<img src=x onerror=...>``). XML 1.0 forbids
most control characters outright (the document would not parse); Markdown renders markup. Each
writer passes every piece of text through the function for its format; HTML pages use jinja2's
autoescaping.
"""

from __future__ import annotations

import re

# C0 controls (tab, line feed and carriage return are folded into spaces first), DEL and C1 controls:
# invisible in a page and, for C0, not allowed in XML 1.0. Shown as \xNN so a reader sees they are there.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Not XML 1.0 characters beyond the controls: lone surrogates and the two non-characters U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")
# Markdown punctuation that can start markup; each is escaped with a backslash.
_MD_PUNCT = re.compile(r"([\\`*_\[\]|#~])")


def one_line(text: object) -> str:
    """``text`` on one line: every run of whitespace (line breaks included) becomes one space."""
    return " ".join(str(text).split())


def visible(text: str) -> str:
    """``text`` with control characters written as ``\\xNN`` escapes and non-characters as ``\\uXXXX``."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def xml_text(text: object) -> str:
    """Text for an XML 1.0 element or attribute: one line, every character allowed by XML 1.0.

    ElementTree escapes ``<``, ``>``, ``&`` and quotes itself; it does not refuse control characters,
    which make the document unreadable to every XML parser.
    """
    return visible(one_line(text))


def md_text(text: object) -> str:
    """Text for Markdown prose or a table cell: one line, control characters visible, HTML and Markdown
    markup escaped (``<img ...>`` shows as text, ``|`` does not split a table cell)."""
    out = visible(one_line(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCT.sub(r"\\\1", out)


def md_code(text: object) -> str:
    """Text for a Markdown code span (between single backticks): one line, control characters visible,
    backticks replaced by ``'`` (a code span cannot hold its own delimiter; markup inside it is literal)."""
    return visible(one_line(text)).replace("`", "'")
