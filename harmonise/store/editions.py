"""What each loaded file says of itself: its edition (``source_editions``) and the labels of its regions.

A survey descriptor may declare which variables of its files name the file's edition
(``citation.file_edition``: ESS files carry ``name`` ESS8e02_1, ``edition`` 2.1, ``proddate``
01.12.2018 in every row). After a build, each loaded file is read once more, one row of those
variables and of the variables that fed ``region_nuts`` (``lineage``), with their value labels:
a codebook of the database cites the edition that was loaded, and the ``nuts_regions`` lookup
names regions as the file labels them. A file without edition variables (or with them blank, as
in synthetic files) gets a row of nulls: its edition is not known.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonise.compile.sqltext import sql_literal
from harmonise.errors import InputError
from harmonise.store.provenance import Table

if TYPE_CHECKING:
    import duckdb

    from harmonise.spec.descriptor import FileEdition
    from harmonise.spec.project import Project

EDITIONS = Table("source_editions", tuple((c, "VARCHAR") for c in ("survey", "wave", "file_name", "dataset_name",
                                                                   "edition", "production_date")))
DDL = ("CREATE TABLE source_editions (survey VARCHAR, wave VARCHAR, file_name VARCHAR, dataset_name VARCHAR, "
       "edition VARCHAR, production_date VARCHAR)")
COMMENTS = {
    "dataset_name": "The data set's own name as the file records it (ESS: variable name, e.g. ESS8e02_1)",
    "edition": "The edition the file records (ESS: variable edition, e.g. 2.1); null when it records none",
    "production_date": "The production date the file records (ESS: variable proddate, e.g. 01.12.2018)",
}


@dataclass
class FileFacts:
    """One loaded file: its key, the edition it records and the value labels of its region variables."""

    survey: str
    wave: str
    file_name: str
    edition: dict[str, str] = field(default_factory=dict)  # name / edition / production_date
    region_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # variable → {code: label}


def read_file_facts(con: duckdb.DuckDBPyConnection, project: Project, encoding: str | None = None,
                    known: dict[tuple[str, str, str], FileFacts] | None = None) -> list[FileFacts]:
    """The facts of every file in ``sources``: from ``known`` (survey, wave, path → facts the build gathered
    as it harmonised the file), else read: one row of its edition and region variables (one pyreadstat call)."""
    regions: dict[tuple[str, str], list[str]] = {}
    for survey, wave, variables in con.execute("SELECT survey, wave, source_variables FROM lineage "
                                               "WHERE target = 'region_nuts'").fetchall():
        regions[(str(survey), str(wave))] = [n.strip() for n in re.split(r"[,;]", variables or "") if n.strip()]
    specs: dict[str, FileEdition | None] = {}
    out = []
    for survey, wave, name, path in con.execute("SELECT survey, wave, file_name, path FROM sources "
                                                "ORDER BY survey, wave, file_name").fetchall():
        if survey not in specs:
            specs[survey] = _file_edition(project, str(survey))
        gathered = (known or {}).get((str(survey), str(wave), str(path)))
        if gathered is not None:
            out.append(replace(gathered, file_name=str(name)))
            continue
        facts = FileFacts(str(survey), str(wave), str(name))
        _read(Path(path), facts, edition_variables(specs[survey]), regions.get((str(survey), str(wave)), []), encoding)
        out.append(facts)
    return out


def edition_variables(spec: FileEdition | None) -> dict[str, str]:
    """``name`` / ``edition`` / ``production_date`` → the variable holding it (those the descriptor names)."""
    return {k: v for k, v in (("name", spec.name), ("edition", spec.edition),
                              ("production_date", spec.production_date)) if v} if spec else {}


def gathered_facts(survey: str, wave: str, file_name: str, first: dict[str, object], wanted: dict[str, str],
                   regions: dict[str, dict[str, str]]) -> FileFacts:
    """The facts of a file from what harmonising it read: ``first`` (its first row of the ``wanted`` edition
    variables) and ``regions`` (its region variables' :func:`region_labels`, read only: files of equal
    metadata may share them) — what :func:`read_file_facts` reads."""
    facts = FileFacts(survey, wave, file_name)
    for key, var in wanted.items():
        text = _text(first.get(var))
        if text:
            facts.edition[key] = text
    facts.region_labels.update(regions)
    return facts


def region_labels(labels: dict[Any, str]) -> dict[str, str]:
    """A region variable's value labels by code text (as ``source_regions`` stores them)."""
    return {text: str(label) for code, label in labels.items() if (text := _text(code))}


def file_edition(project: Project, survey: str) -> FileEdition | None:
    """The edition variables ``survey``'s descriptor names (``citation.file_edition``), if any."""
    return _file_edition(project, survey)


def write_source_editions(con: duckdb.DuckDBPyConnection, facts: list[FileFacts]) -> None:
    """Create ``source_editions`` with one row per loaded file."""
    con.execute(DDL)
    con.execute("COMMENT ON TABLE source_editions IS 'The edition each loaded file names itself "
                "(citation.file_edition of the survey descriptor), read from its first row'")
    for column, text in COMMENTS.items():
        con.execute(f"COMMENT ON COLUMN source_editions.{column} IS {sql_literal(text)}")
    rows = [(f.survey, f.wave, f.file_name, f.edition.get("name"), f.edition.get("edition"),
             f.edition.get("production_date")) for f in facts]
    EDITIONS.insert(con, rows)  # one statement (executemany is one per row: 1.7 s for 290 files)


def _file_edition(project: Project, survey: str) -> FileEdition | None:
    from pydantic import ValidationError

    from harmonise.spec.descriptor import load_descriptor

    path = project.root / "surveys" / survey / "survey.yaml"
    if not path.is_file() or "file_edition" not in path.read_text(encoding="utf-8", errors="replace"):
        return None  # most descriptors name no edition variables: skip parsing and validating them
    try:
        return load_descriptor(path).citation.file_edition
    except (ValidationError, OSError, ValueError):  # a broken descriptor is the codebook's to report
        return None


def _read(path: Path, facts: FileFacts, wanted: dict[str, str], regions: list[str], encoding: str | None) -> None:
    """Fill ``facts`` from the first row of ``path`` and the value labels of its ``regions`` variables.

    Read with pyreadstat in this process (the build already read the file, so the forked reader the
    pipeline uses against crashing files is not needed); ``usecols`` skips names the file lacks.
    """
    import pyreadstat

    from harmonise.readers.files import detect_format

    columns = sorted(set(wanted.values()) | set(regions))
    if not columns:
        return
    try:
        fmt = detect_format(path)
        kw: dict[str, Any] = {"encoding": encoding} if encoding and fmt != "por" else {}
        kw.update(usecols=columns, row_limit=1)
        first, meta = (pyreadstat.read_dta(str(path), **kw) if fmt == "dta" else
                       pyreadstat.read_por(str(path), **kw) if fmt == "por" else pyreadstat.read_sav(str(path), **kw))
    except (InputError, OSError, UnicodeError, pyreadstat.ReadstatError, pyreadstat.PyreadstatError):
        return  # the build read it; a file changed or removed since is not worth failing the build
    for key, var in wanted.items():
        text = _text(first[var].iloc[0]) if var in first.columns and not first.empty else ""
        if text:
            facts.edition[key] = text
    for var in regions:
        labels = meta.variable_value_labels.get(var) or {}
        facts.region_labels[var] = region_labels(labels)


def _text(value: object) -> str:
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
