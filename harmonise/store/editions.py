"""The edition each loaded file names itself: the ``source_editions`` table.

A survey descriptor may declare which variables of its files name the file's edition
(``citation.file_edition``: ESS files carry ``name`` ESS8e02_1, ``edition`` 2.1, ``proddate``
01.12.2018 in every row). After a build, the first row of each loaded file is read for them, so a
codebook of the database cites the edition that was loaded, not the one the declarations assume.
A file without them (or with them blank, as in synthetic files) gets a row of nulls: its edition
is not known.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harmonise.errors import InputError
from harmonise.spec.expr import sql_literal

if TYPE_CHECKING:
    import duckdb

    from harmonise.spec.descriptor import FileEdition
    from harmonise.spec.project import Project

DDL = ("CREATE TABLE source_editions (survey VARCHAR, wave VARCHAR, file_name VARCHAR, dataset_name VARCHAR, "
       "edition VARCHAR, production_date VARCHAR)")
COMMENTS = {
    "dataset_name": "The data set's own name as the file records it (ESS: variable name, e.g. ESS8e02_1)",
    "edition": "The edition the file records (ESS: variable edition, e.g. 2.1); null when it records none",
    "production_date": "The production date the file records (ESS: variable proddate, e.g. 01.12.2018)",
}


def write_source_editions(con: duckdb.DuckDBPyConnection, project: Project, encoding: str | None = None) -> None:
    """Create ``source_editions`` with one row per loaded file (``sources``)."""
    con.execute(DDL)
    con.execute("COMMENT ON TABLE source_editions IS 'The edition each loaded file names itself "
                "(citation.file_edition of the survey descriptor), read from its first row'")
    for column, text in COMMENTS.items():
        con.execute(f"COMMENT ON COLUMN source_editions.{column} IS {sql_literal(text)}")
    rows = []
    for survey, wave, name, path in con.execute("SELECT survey, wave, file_name, path FROM sources "
                                                "ORDER BY survey, wave, file_name").fetchall():
        spec = _file_edition(project, str(survey))
        values = _first_row(Path(path), spec, encoding) if spec is not None else {}
        rows.append((survey, wave, name, values.get("name"), values.get("edition"), values.get("production_date")))
    if rows:
        con.executemany("INSERT INTO source_editions VALUES (?, ?, ?, ?, ?, ?)", rows)


def _file_edition(project: Project, survey: str) -> FileEdition | None:
    from pydantic import ValidationError

    from harmonise.spec.descriptor import load_descriptor

    path = project.root / "surveys" / survey / "survey.yaml"
    if not path.is_file():
        return None
    try:
        return load_descriptor(path).citation.file_edition
    except (ValidationError, OSError, ValueError):  # a broken descriptor is the codebook's to report
        return None


def _first_row(path: Path, spec: FileEdition, encoding: str | None) -> dict[str, str]:
    """The edition variables of ``path``'s first row, as text; blanks and absent variables left out."""
    from harmonise.readers.files import open_source

    wanted = {k: v for k, v in (("name", spec.name), ("edition", spec.edition),
                                ("production_date", spec.production_date)) if v}
    try:
        src = open_source(path, encoding)
        present = {k: v for k, v in wanted.items() if v in src.meta.variables}
        if not present:
            return {}
        first = next(src.chunks(sorted(set(present.values())), chunksize=1), None)
    except InputError:  # the build read it; a file changed or removed since is not worth failing the build
        return {}
    if first is None or first.empty:
        return {}
    out = {}
    for key, var in present.items():
        value = first[var].iloc[0]
        text = _text(value)
        if text:
            out[key] = text
    return out


def _text(value: object) -> str:
    import math

    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
