"""The citation of a survey-wave's data set: from its descriptor, or from the edition a loaded file names.

Only known facts are written; what is not known is said in words (``not_known``), never as a
placeholder. A database built from real files cites the edition those files record
(``source_editions``), which may differ from the edition the descriptor declares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harmonise.spec.descriptor import SurveyDescriptor
from harmonise.spec.descriptor import Wave as WaveDescriptor

_DMY = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")


@dataclass(frozen=True)
class FileEdition:
    """What one loaded file records about its own edition (a ``source_editions`` row)."""

    file_name: str
    dataset_name: str | None = None
    edition: str | None = None
    production_date: str | None = None

    @property
    def year(self) -> int | None:
        return int(self.production_date[-4:]) if self.production_date and _DMY.match(self.production_date) else None

    @property
    def iso_date(self) -> str | None:
        """The production date as YYYY-MM-DD where it reads as day.month.year (ESS: 01.12.2018)."""
        m = _DMY.match(self.production_date or "")
        return f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}" if m else None

    def describe(self) -> str:
        facts = [f"name {self.dataset_name}" if self.dataset_name else "",
                 f"edition {self.edition}" if self.edition else "",
                 f"produced {self.production_date}" if self.production_date else ""]
        known = ", ".join(f for f in facts if f)
        return f"{self.file_name} ({known})" if known else f"{self.file_name} (records no edition)"


@dataclass(frozen=True)
class Cited:
    """A survey-wave's citation: the text of the known parts, and what is not known."""

    text: str
    doi: str | None
    edition: str | None
    year: int | None
    basis: str
    not_known: list[str] = field(default_factory=list)
    unverified: bool = False

    @property
    def missing_text(self) -> str:
        """The unknown facts as a sentence ('' when everything is known)."""
        if not self.not_known:
            return ""
        items = self.not_known
        listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        return f"Not known for this citation: {listed}."

    @property
    def full(self) -> str:
        """The citation followed by what it lacks and where its edition comes from."""
        return " ".join(t for t in (self.text, self.missing_text, self.basis) if t)


_EDITION_SUFFIX = re.compile(r"e\d+(_\d+)?$", re.IGNORECASE)


def _data_set(name: str) -> str:
    """A data set's name without its extension and edition suffix (``ESS10e03_2.sav`` → ``ESS10``)."""
    stem = name.rsplit(".", 1)[0] if name.lower().endswith((".sav", ".zsav", ".dta", ".por", ".csv")) else name
    return _EDITION_SUFFIX.sub("", stem).upper()


def cite(d: SurveyDescriptor | None, wd: WaveDescriptor | None, title_fallback: str,
         files: list[FileEdition] | None = None) -> Cited:
    """The citation of one survey-wave; ``files`` are the loaded files' own editions (a database build)."""
    wc = wd.citation if wd else None
    author = d.citation.author if d else None
    publisher = d.citation.publisher if d else None
    title = wc.title if wc else title_fallback
    edition, year = (wc.edition, wc.year) if wc else (None, None)
    declared = f"surveys/{d.id}/survey.yaml" if d else "no survey descriptor"
    basis = f"Edition as declared in {declared}." if edition else ""
    named = [f for f in files or [] if f.edition]
    # a data set the loaded files name that extends a declared one's name (a national team's release, ESS10UAe1,
    # beside the integrated ESS10e03_2): cited by its own name, without the declared data set's DOI
    kinds = {_data_set(f.name) for f in (wd.files if wd else [])}
    others = sorted({f.dataset_name for f in files or [] if f.dataset_name and (n := _data_set(f.dataset_name))
                     not in kinds and any(n.startswith(k) for k in kinds)})
    other = bool(kinds and others and all(f.dataset_name in others for f in files or [] if f.dataset_name))
    if other:
        title = f"{' and '.join(others)} (not the declared {title})"
    if named:
        editions = sorted({f.edition for f in named if f.edition})
        years = sorted({y for f in named if (y := f.year) is not None})
        edition = " and ".join(editions)
        year = years[0] if len(years) == 1 else None
        basis = "Edition as recorded in the loaded file(s): " + "; ".join(f.describe() for f in files or []) + "."
    elif files:
        basis = ("The loaded file(s) record no edition (" + ", ".join(f.file_name for f in files) + ")"
                 + (f"; edition as declared in {declared}." if edition else "."))
    doi = None if other else wd.doi if wd and wd.doi else (d.citation.doi if d else None)
    head = f"{author} ({year})." if author and year else (f"{author}." if author else "")
    body = f"{title}, edition {edition} [Data set]." if edition else f"{title} [Data set]."
    tail = f"{publisher}." if publisher else ""
    link = f"https://doi.org/{doi}" if doi else ""
    text = " ".join(p for p in (head, body, tail, link) if p)
    unknown = [what for what, known in (("the author", author), ("the edition", edition),
                                       ("its release year", year), ("a DOI", doi)) if not known]
    return Cited(text, doi, edition, year, basis, unknown, bool(wc and wc.unverified))
