"""Exports of the harmonised respondents: Parquet, CSV, SPSS (.sav) and Stata (.dta).

Parquet (partitioned by survey and wave) and CSV are written by DuckDB and keep the database
layout (value and ``<name>_missing`` columns). SPSS and Stata files carry the schema's variable
labels and value labels; categorical codes become integers 1..k (schema order), booleans 1/0, and
a missing reason becomes a *missing value* of the variable itself: SPSS user-missing codes −1…−8
(declared as the range −8…−1) and Stata extended missing values .a….h, each labelled with the
reason. Text variables (ids, country and language codes) keep their text, blank when missing,
with the reason in a companion numeric variable ``<name>_missing`` coded the same way.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyreadstat

from harmonise.errors import InputError, UsageError
from harmonise.spec.expr import sql_literal
from harmonise.store.connect import connect, require_tables

FORMATS = ("parquet", "csv", "sav", "dta")
TEXT_TYPES = ("string", "country", "language", "city")
LAYOUT_TABLES = ("respondents", "schema_variables", "value_labels", "missing_reasons")  # what layout() reads
STATA_NAME = 29  # pyreadstat names a value-label set <variable><counter>; Stata allows 32 characters


def companion(name: str, stata: bool) -> str:
    """The reason variable of a text variable: ``<name>_missing`` (``<name>_mr`` where Stata needs it shorter)."""
    full = f"{name}_missing"
    return f"{name}_mr" if stata and len(full) > STATA_NAME else full


@dataclass(frozen=True)
class Coding:
    """How one harmonised variable is written to SPSS/Stata."""

    name: str
    label: str
    type: str
    missing_column: str | None
    codes: dict[str, int]  # category code → integer (booleans: 'true' → 1, 'false' → 0)
    code_labels: dict[str, str]


@dataclass(frozen=True)
class Layout:
    """Codings of every schema variable and the numbering of missing reasons."""

    variables: list[Coding]
    reasons: dict[str, int]  # reason → 1-based position (SPSS code −position, Stata letter)
    reason_labels: dict[str, str]

    def sav_code(self, reason: str) -> float:
        return -float(self.reasons[reason])

    def dta_code(self, reason: str) -> str:
        return string.ascii_lowercase[self.reasons[reason] - 1]


def layout(con: duckdb.DuckDBPyConnection) -> Layout:
    """The export layout, read from the database's own ``schema_variables``/``value_labels`` tables."""
    labels: dict[str, list[tuple[str, str]]] = {}
    for var, code, label in con.execute("SELECT variable, code, label FROM value_labels WHERE NOT is_missing_reason "
                                        "ORDER BY rowid").fetchall():
        labels.setdefault(var, []).append((code, label))
    reasons = con.execute("SELECT reason, label FROM missing_reasons ORDER BY rowid").fetchall()
    if len(reasons) > 26:
        raise UsageError("more than 26 missing reasons cannot be written as Stata extended missing values")
    out = []
    for name, label, typ, miss in con.execute("SELECT name, label, type, missing_column FROM schema_variables "
                                              "ORDER BY position").fetchall():
        pairs = labels.get(name, [])
        codes = {"true": 1, "false": 0} if typ == "boolean" else {c: i for i, (c, _) in enumerate(pairs, 1)}
        out.append(Coding(name, label, typ, miss, codes, dict(pairs)))
    return Layout(out, {r: i for i, (r, _) in enumerate(reasons, 1)}, dict(reasons))


def _frame(con: duckdb.DuckDBPyConnection, lay: Layout, stata: bool) -> tuple[pd.DataFrame, dict[str, str | None],
                                                                             dict[str, dict[Any, str]]]:
    """The respondents as a file-ready frame, its variable labels and value labels."""
    df = con.execute("SELECT * FROM respondents ORDER BY survey, wave, respondent_id").df()
    cols: dict[str, object] = {}
    var_labels: dict[str, str | None] = {}
    value_labels: dict[str, dict[Any, str]] = {}  # float codes (SPSS), and Stata's missing letters
    code = lay.dta_code if stata else lay.sav_code
    reason_labels = {code(r): lbl for r, lbl in lay.reason_labels.items()}

    def with_reasons(values: pd.Series, miss: str | None) -> pd.Series:
        if miss is None:
            return values
        reason = df[miss].map(lambda r: code(r) if isinstance(r, str) else np.nan)
        if not stata:
            return values.fillna(reason).astype(float)
        return _numbers_first(values.astype(object).where(values.notna(), reason))

    for v in lay.variables:
        raw = df[v.name]
        var_labels[v.name] = v.label
        if v.type in TEXT_TYPES:
            cols[v.name] = raw.fillna("").astype(str)
            if v.missing_column:
                c = companion(v.name, stata)
                cols[c] = with_reasons(pd.Series(np.nan, index=df.index), v.missing_column)
                var_labels[c] = f"Missing reason: {v.label}"
                value_labels[c] = dict(reason_labels)
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
        if v.missing_column:
            labels.update(reason_labels)
        if labels:
            value_labels[v.name] = labels
    return pd.DataFrame(cols), var_labels, value_labels


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


def _prepare(out: Path, names: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    clash = [n for n in names if (out / n).exists()]
    if clash:
        raise UsageError(f"{out / clash[0]} already exists; remove it or export into another folder")


def export(db: str | Path, out: str | Path, fmt: str) -> list[Path]:
    """Write the harmonised respondents of ``db`` into folder ``out`` as ``fmt``; returns the paths written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = Path(out)
    connect(db).close()  # same checks and messages as every read-only open
    try:  # COPY needs file access, which harmonise.connect() disables: open with plain read-only settings
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.ConnectionException as exc:
        raise UsageError(f"{db}: cannot export while this process holds a harmonise.connect() connection to the "
                         "same file (DuckDB allows one configuration per file and process); close it first") from exc
    try:
        require_tables(con, db, ("respondents",) if fmt in ("parquet", "csv") else LAYOUT_TABLES)
        if fmt in ("parquet", "csv"):
            target = out / ("respondents" if fmt == "parquet" else "respondents.csv")
            _prepare(out, [target.name])
            opts = "FORMAT parquet, PARTITION_BY (survey, wave)" if fmt == "parquet" else "FORMAT csv, HEADER"
            con.execute(f"COPY (SELECT * FROM respondents ORDER BY survey, wave, respondent_id) "
                        f"TO {sql_literal(str(target))} ({opts})")
            return sorted(target.rglob("*.parquet")) if fmt == "parquet" else [target]
        lay = layout(con)
        frame, var_labels, value_labels = _frame(con, lay, stata=fmt == "dta")
    finally:
        con.close()
    target = out / f"respondents.{fmt}"
    _prepare(out, [target.name])
    try:
        if fmt == "sav":
            ranges: dict[str, list[Any]] = {c: [{"lo": -float(len(lay.reasons)), "hi": -1.0}] for c in value_labels
                      if any(k == -1.0 for k in value_labels[c])}
            pyreadstat.write_sav(frame, str(target), column_labels=var_labels, variable_value_labels=value_labels,
                                 missing_ranges=ranges)
        else:
            too_long = [c for c in frame.columns if len(c) > STATA_NAME + 1]
            if too_long:
                raise UsageError(f"names too long for Stata value labels: {', '.join(too_long)}")
            letters = [lay.dta_code(r) for r in lay.reasons]
            missing = {c: letters for c in value_labels if "a" in value_labels[c]}
            pyreadstat.write_dta(frame, str(target), column_labels=var_labels, variable_value_labels=value_labels,
                                 missing_user_values=missing)
    except (OSError, pyreadstat.PyreadstatError) as exc:
        raise InputError(f"{target}: cannot write ({exc})") from exc
    return [target]


def read_export(path: str | Path, db: str | Path) -> pd.DataFrame:
    """Read an exported .sav/.dta back into the database layout (codes and ``<name>_missing`` reasons)."""
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
    return pd.DataFrame(out)
