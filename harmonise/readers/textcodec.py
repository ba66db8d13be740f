"""Texts of files without a usable encoding record: read byte for byte, then decoded per text.

Stata files before format 118 record no encoding, and SPSS files may lack a usable one. When the
reader cannot decode such a file, it is read again as latin-1 (every byte kept as one character)
and each text is decoded here: as UTF-8 where its bytes are valid UTF-8 (files written by tools
that use UTF-8 without saying so; ESS9GB.dta is one), otherwise with the single-byte code page
the file's texts fit best, Windows-1252 (Western European) or Windows-1250 (Central European).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# letters that only a Windows-1250 reading produces in Central European text (ą ć ę ł ń ś ź ż č ď ě ň ř š ť ů ž ő ű)
_CENTRAL = set("ąćęłńśźżčďěňřšťůžőűĄĆĘŁŃŚŹŻČĎĚŇŘŠŤŮŽŐŰ")
# characters a Windows-1252 reading produces that Western European text uses (accented Latin letters)
_WESTERN = set("àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝ’‘“”–—€")


@dataclass(frozen=True)
class TextCodec:
    """How the texts of a latin-1 read are decoded: ``fallback`` for texts that are not UTF-8."""

    fallback: str  # "cp1252" or "cp1250"
    utf8: bool  # some texts are UTF-8
    guessed: bool = True  # the header has texts that are not ASCII (else nothing of it was guessed)

    def fix(self, text: str) -> str:
        """The text a latin-1 read gave, decoded: UTF-8 where valid, else the fallback code page."""
        if text.isascii():
            return text
        raw = text.encode("latin-1")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode(self.fallback, errors="replace")

    def describe(self) -> str:
        """How texts are decoded (every text is tried as UTF-8 first, in the header and in the data)."""
        page = {"cp1252": "Windows-1252", "cp1250": "Windows-1250"}[self.fallback]
        return f"UTF-8 where valid, else {page}"


def choose(texts: Iterable[str]) -> TextCodec:
    """The codec that fits the non-ASCII texts of a latin-1 read best."""
    western = central = utf8 = other = 0
    for text in texts:
        if text.isascii():
            continue
        other += 1
        raw = text.encode("latin-1")
        try:
            raw.decode("utf-8")
            utf8 += 1
            continue
        except UnicodeDecodeError:
            pass
        western += sum(ch in _WESTERN for ch in raw.decode("cp1252", errors="replace"))
        central += sum(ch in _CENTRAL for ch in raw.decode("cp1250", errors="replace"))
    return TextCodec("cp1250" if central > western else "cp1252", utf8 > 0, other > 0)
