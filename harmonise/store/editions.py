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
from typing import TYPE_CHECKING, Any

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
    specs: dict[str, FileEdition | None] = {}
    for survey, wave, name, path in con.execute("SELECT survey, wave, file_name, path FROM sources "
                                                "ORDER BY survey, wave, file_name").fetchall():
        if survey not in specs:
            specs[survey] = _file_edition(project, str(survey))
        spec = specs[survey]
        values = _first_row(Path(path), spec, encoding) if spec is not None else {}
        rows.append((survey, wave, name, values.get("name"), values.get("edition"), values.get("production_date")))
    if rows:
        con.executemany("INSERT INTO source_editions VALUES (?, ?, ?, ?, ?, ?)", rows)


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


def _first_row(path: Path, spec: FileEdition, encoding: str | None) -> dict[str, str]:
    """The edition variables of ``path``'s first row, as text; blanks and absent variables left out.

    Read with pyreadstat in this process (the build already read the file, so the forked reader the
    pipeline uses against crashing files is not needed).
    """
    import pyreadstat

    from harmonise.readers.files import detect_format

    wanted = {k: v for k, v in (("name", spec.name), ("edition", spec.edition),
                                ("production_date", spec.production_date)) if v}
    if not wanted:
        return {}
    try:
        fmt = detect_format(path)
        kw: dict[str, Any] = {"encoding": encoding} if encoding and fmt != "por" else {}
        # usecols skips names the file lacks; one read of one row (the metadata is parsed either way)
        kw.update(usecols=sorted(set(wanted.values())), row_limit=1)
        first, _ = (pyreadstat.read_dta(str(path), **kw) if fmt == "dta" else
                    pyreadstat.read_por(str(path), **kw) if fmt == "por" else pyreadstat.read_sav(str(path), **kw))
    except (InputError, OSError, UnicodeError, pyreadstat.ReadstatError, pyreadstat.PyreadstatError):
        return {}  # the build read it; a file changed or removed since is not worth failing the build
    if first.empty:
        return {}
    out = {}
    for key, var in wanted.items():
        if var not in first.columns:
            continue
        text = _text(first[var].iloc[0])
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
