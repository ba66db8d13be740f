"""Exports of the harmonised respondents: Parquet, CSV, SPSS (.sav) and Stata (.dta).

Parquet (partitioned by survey and wave) and CSV are written by DuckDB and keep the database
layout (value and ``<name>_missing`` columns, ``source_row``). Parquet files carry the labels and
the provenance as key-value metadata (``harmonise.columns``, ``harmonise.missing_reasons``,
``harmonise.provenance``: JSON); a CSV gets ``respondents.codebook.csv`` beside it. SPSS and Stata
files carry the schema's variable labels, value labels, display formats and (SPSS) measurement
levels, a file label naming the survey-waves and build, and (SPSS) the provenance as file
documents; Stata files are release 118 (Stata 14 and later; 119 is only for more than 32,767
variables). ``source_row`` is kept; categorical codes become integers 1..k (schema order), booleans 1/0, and
a missing reason becomes a *missing value* of the variable itself: SPSS user-missing codes −1…−8
(declared as the range −8…−1) and Stata extended missing values .a….h, each labelled with the
reason. Text variables (ids, country and language codes) keep their text, blank when missing,
with the reason in a companion numeric variable ``<name>_missing`` coded the same way.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyreadstat

from harmonise.compile.sqltext import sql_literal
from harmonise.errors import InputError, UsageError
from harmonise.outdir import OutputFolder
from harmonise.reports.export_layout import (
    SOURCE_FILE,
    SOURCE_FILE_LABEL,
    SOURCE_ROW,
    SOURCE_ROW_LABEL,
    SPSS_LABEL,
    STATA_LABEL,
    TEXT_TYPES,
    Layout,
    codebook_rows,
    layout,
)
from harmonise.store.connect import EXPORT_CONFIG, code_in_database, connect, require_tables, seal

FORMATS = ("parquet", "csv", "sav", "dta")
LAYOUT_TABLES = ("respondents", "schema_variables", "value_labels", "missing_reasons", "build_info", "sources")
CODEBOOK_CSV = "respondents.codebook.csv"
STATA_RELEASE = 14  # pyreadstat's version 14 writes release 118; its default (15) writes 119
STATA_NAME = 29  # pyreadstat names a value-label set <variable><counter>; Stata allows 32 characters


def companion(name: str, stata: bool) -> str:
    """The reason variable of a text variable: ``<name>_missing`` (``<name>_mr`` where Stata needs it shorter)."""
    full = f"{name}_missing"
    return f"{name}_mr" if stata and len(full) > STATA_NAME else full


@dataclass
class Frame:
    """The respondents as a file-ready frame with what SPSS/Stata need to know of each column."""

    data: pd.DataFrame
    labels: dict[str, str | None] = field(default_factory=dict)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)  # float codes (SPSS), Stata's letters
    formats: dict[str, str] = field(default_factory=dict)
    measures: dict[str, str] = field(default_factory=dict)


def _frame(con: duckdb.DuckDBPyConnection, lay: Layout, stata: bool) -> Frame:
    """The respondents as a file-ready frame, with labels, value labels, display formats and measurement levels."""
    df = con.execute("SELECT * FROM respondents ORDER BY survey, wave, respondent_id").df()
    cols: dict[str, object] = {}
    out = Frame(pd.DataFrame())
    code = lay.dta_code if stata else lay.sav_code
    reason_labels = {code(r): lbl for r, lbl in lay.reason_labels.items()}
    reason_format = f"%{lay.missing_width}.0f" if stata else f"F{lay.missing_width}.0"

    def with_reasons(values: pd.Series, miss: str | None) -> pd.Series:
        if miss is None:
            return values
        reason = df[miss].map(lambda r: code(r) if isinstance(r, str) else np.nan)
        if not stata:
            return values.fillna(reason).astype(float)
        return _numbers_first(values.astype(object).where(values.notna(), reason))

    for v in lay.variables:
        raw = df[v.name]
        out.labels[v.name] = v.label
        out.measures[v.name] = v.measure
        if v.type in TEXT_TYPES:
            cols[v.name] = raw.fillna("").astype(str)
            if v.missing_column:
                c = companion(v.name, stata)
                cols[c] = with_reasons(pd.Series(np.nan, index=df.index), v.missing_column)
                out.labels[c] = f"Missing reason: {v.label}"
                out.value_labels[c] = dict(reason_labels)
                out.formats[c], out.measures[c] = reason_format, "nominal"
            continue
        if v.type in ("category", "boolean"):
            key = raw.map(lambda x: None if pd.isna(x) else str(x).lower() if isinstance(x, (bool, np.bool_)) else x)
            values = key.map(v.codes).astype(float)
            labels: dict[Any, str] = {float(i): (v.code_labels.get(c) or ("Yes" if i else "No"))
                                         for c, i in v.codes.items()}
        else:
            values = pd.to_numeric(raw, errors="coerce").astype(float)
            labels = {}
        cols[v.name] = with_reasons(values, v.missing_column)
        out.formats[v.name] = lay.stata_format(v) if stata else lay.spss_format(v)
        if v.missing_column:
            labels.update(reason_labels)
        if labels:
            out.value_labels[v.name] = labels
    rows = df[SOURCE_ROW].astype(float)
    cols[SOURCE_ROW] = rows
    width = max(len(str(int(rows.max()))) if rows.notna().any() else 1, 1)
    out.labels[SOURCE_ROW], out.measures[SOURCE_ROW] = SOURCE_ROW_LABEL, "scale"
    out.formats[SOURCE_ROW] = f"%{width}.0f" if stata else f"F{width}.0"
    files = df[SOURCE_FILE].fillna("").astype(str)
    cols[SOURCE_FILE] = files
    chars = max(int(files.str.len().max()) if len(files) else 1, 1)
    out.labels[SOURCE_FILE], out.measures[SOURCE_FILE] = SOURCE_FILE_LABEL, "nominal"
    out.formats[SOURCE_FILE] = f"%{chars}s" if stata else f"A{chars}"
    out.data = pd.DataFrame(cols)
    return out


def _numbers_first(mixed: pd.Series) -> pd.Series:
    """A column of numbers and Stata missing letters, as a categorical whose categories list the numbers first.

    pyreadstat's writer takes an object column for text when its first 100 values are all
    letters (narwhals sniffs the type from them) and then fails on the numbers further down
    (pyreadstat issue #313); a categorical's type is sniffed from its categories instead.
    The values written are the same.
    """
    present = mixed.dropna().unique().tolist()
    numbers = sorted(v for v in present if not isinstance(v, str))
    letters = sorted(v for v in present if isinstance(v, str))
    return pd.Series(pd.Categorical(mixed, categories=numbers + letters), index=mixed.index, name=mixed.name)


def export(db: str | Path, out: str | Path, fmt: str, force: bool = False) -> list[Path]:
    """Write the harmonised respondents of ``db`` into folder ``out`` as ``fmt``; returns the paths written.

    ``out`` is an :class:`~harmonise.outdir.OutputFolder`: files are written beside their targets and
    renamed into place (a failed export leaves none behind), an earlier export is replaced, and a file
    harmonise did not write (or a symbolic link) stops the export unless ``force``.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    folder = OutputFolder(Path(out), force=force)
    rels = {"parquet": ["respondents/"], "csv": ["respondents.csv", CODEBOOK_CSV]}.get(fmt, [f"respondents.{fmt}"])
    folder.check(rels)  # refuse before reading the database
    safe = connect(db)  # same checks and messages as every read-only open
    try:
        code = code_in_database(safe, LAYOUT_TABLES)
    finally:
        safe.close()
    if code:  # they would run with the file access COPY needs: read any file into the export, or send it away
        raise InputError(f"{db}: not a database harmonise built: it holds {', '.join(code[:5])}"
                         f"{f' and {len(code) - 5} more' if len(code) > 5 else ''}, which would run with file access "
                         "while exporting; export the database `harmonise build` wrote")
    try:  # COPY needs file access, which harmonise.connect() disables: read-only, without extensions
        con = seal(duckdb.connect(str(db), read_only=True, config=dict(EXPORT_CONFIG)))
    except duckdb.ConnectionException as exc:
        raise UsageError(f"{db}: cannot export while this process holds a harmonise.connect() connection to the "
                         "same file (DuckDB allows one configuration per file and process); close it first") from exc
    try:
        require_tables(con, db, LAYOUT_TABLES)
        lay = layout(con)
        if fmt in ("parquet", "csv"):
            with folder:
                folder.begin(rels)
                written = _copy(con, lay, folder, fmt)
                folder.finish()
            return written
        frame = _frame(con, lay, stata=fmt == "dta")
    finally:
        con.close()
    with folder:
        folder.begin(rels)
        with folder.path(rels[0]) as tmp:
            _write_file(frame, lay, tmp, fmt)
        folder.finish()
    return [folder.root / rels[0]]


def _write_file(frame: Frame, lay: Layout, target: Path, fmt: str) -> None:
    """The SPSS or Stata file of ``frame`` at ``target``."""
    try:
        if fmt == "sav":
            ranges: dict[str, list[Any]] = {c: [{"lo": -float(len(lay.reasons)), "hi": -1.0}]
                                            for c, labels in frame.value_labels.items() if -1.0 in labels}
            pyreadstat.write_sav(frame.data, str(target), file_label=lay.provenance.label(SPSS_LABEL),
                                 column_labels=frame.labels, note=lay.provenance.lines(),
                                 variable_value_labels=frame.value_labels, missing_ranges=ranges,
                                 variable_format=frame.formats, variable_measure=frame.measures)
        else:
            too_long = [c for c in frame.data.columns if len(c) > STATA_NAME + 1]
            if too_long:
                raise UsageError(f"names too long for Stata value labels: {', '.join(too_long)}")
            letters = [lay.dta_code(r) for r in lay.reasons]
            missing = {c: letters for c, labels in frame.value_labels.items() if "a" in labels}
            pyreadstat.write_dta(frame.data, str(target), file_label=lay.provenance.label(STATA_LABEL),
                                 column_labels=frame.labels, version=STATA_RELEASE,
                                 variable_value_labels=frame.value_labels, missing_user_values=missing,
                                 variable_format=frame.formats)
    except pyreadstat.PyreadstatError as exc:
        raise InputError(f"{target}: cannot write ({exc})") from exc


def _copy(con: duckdb.DuckDBPyConnection, lay: Layout, out: OutputFolder, fmt: str) -> list[Path]:
    """Parquet (partitioned, labels and provenance as key-value metadata) or CSV (with a codebook CSV beside it)."""
    select = "SELECT * FROM respondents ORDER BY survey, wave, respondent_id"
    if fmt == "parquet":
        meta = {"harmonise.columns": json.dumps(_columns(lay), ensure_ascii=False),
                "harmonise.missing_reasons": json.dumps(lay.reason_labels, ensure_ascii=False),
                "harmonise.provenance": json.dumps(lay.provenance.to_dict(), ensure_ascii=False)}
        kv = ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in meta.items())
        with out.path("respondents/") as tmp:
            con.execute(f"COPY ({select}) TO {sql_literal(str(tmp))} "
                        f"(FORMAT parquet, PARTITION_BY (survey, wave), KV_METADATA {{{kv}}})")
        return sorted((out.root / "respondents").rglob("*.parquet"))
    with out.path("respondents.csv") as tmp:
        con.execute(f"COPY ({select}) TO {sql_literal(str(tmp))} (FORMAT csv, HEADER)")
    with out.path(CODEBOOK_CSV) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["column", "label", "type", "measure", "value", "value_label"])
        writer.writerows(codebook_rows(lay))
    return [out.root / "respondents.csv", out.root / CODEBOOK_CSV]


def _columns(lay: Layout) -> dict[str, dict[str, object]]:
    """Labels of every column for Parquet metadata: {column: {label, type, measure, values: {code: label}}}."""
    out: dict[str, dict[str, object]] = {}
    for column, label, typ, measure, value, value_label in codebook_rows(lay):
        if not value:
            out[column] = {"label": label, "type": typ, "measure": measure, "values": {}}
        else:
            out[column]["values"][value] = value_label  # type: ignore[index]
    return out


def read_export(path: str | Path, db: str | Path) -> pd.DataFrame:
    """Read an exported .sav/.dta back into the database layout (codes, ``<name>_missing`` reasons, ``source_row``)."""
    path = Path(path)
    con = connect(db)
    try:
        require_tables(con, db, LAYOUT_TABLES)
        lay = layout(con)
    finally:
        con.close()
    stata = path.suffix == ".dta"
    reader = pyreadstat.read_dta if stata else pyreadstat.read_sav
    raw, _ = reader(str(path), user_missing=True)
    back = {(lay.dta_code(r) if stata else lay.sav_code(r)): r for r in lay.reasons}

    def reason_of(x: object) -> object:
        return back.get(x) if isinstance(x, (str, float, int)) and x in back else None  # type: ignore[arg-type]

    out: dict[str, pd.Series] = {}
    for v in lay.variables:
        col = raw[v.name]
        if v.type in TEXT_TYPES:
            out[v.name] = col.where(col != "", None)
            if v.missing_column:
                out[v.missing_column] = raw[companion(v.name, stata)].map(reason_of)
            continue
        reasons = col.map(reason_of)
        values: pd.Series = col.where(reasons.isna() & col.map(lambda x: not isinstance(x, str)), np.nan).astype(float)
        if v.type in ("category", "boolean"):
            inverse = {float(i): c for c, i in v.codes.items()}
            decoded = values.map(inverse)
            values = decoded.map(lambda c: None if pd.isna(c) else c == "true") if v.type == "boolean" else decoded
        out[v.name] = values
        if v.missing_column:
            out[v.missing_column] = reasons
    out[SOURCE_ROW] = raw[SOURCE_ROW].astype("Int64")
    out[SOURCE_FILE] = raw[SOURCE_FILE].where(raw[SOURCE_FILE] != "", None)
    return pd.DataFrame(out)
