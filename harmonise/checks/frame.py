"""The pandera schema of harmonised rows, built from ``mappings/schema.yaml`` and the value rules of
:mod:`harmonise.checks.values` (never written twice).

Every check is element-wise: on a value (code list, range, whole number,
pattern) or on a value and its missing reason (exactly one is set). So
pandera validates each *distinct* (value, reason) pair a chunk holds — the
pairs, counts and first source rows are computed by DuckDB — instead of a
pandas copy of every harmonised row: the same verdicts and failure cases,
with a row count and an example source row per failing value.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from harmonise.checks.values import ValueRule, value_rules
from harmonise.kept import keep
from harmonise.spec.codetables import TableSet
from harmonise.spec.schema import UNMAPPED, TargetSchema, Variable

MAX_CASES = 200


def _check(rule: ValueRule) -> pa.Check | None:
    """The vectorised pandera check of one value rule (None where the column's dtype already holds it)."""
    if rule.kind == "codes":
        return pa.Check.isin(list(rule.codes), name=rule.name)
    if rule.kind == "range":
        return pa.Check.in_range(rule.bounds[0], rule.bounds[1], name=rule.name)
    if rule.kind == "whole":
        return pa.Check(lambda s: s.astype("float64") % 1 == 0, name=rule.name)
    if rule.kind == "pattern":
        pat = re.compile(rule.pattern)
        return pa.Check(lambda s: pd.Series(np.fromiter((pat.match(v) is not None for v in s.astype(str).tolist()),
                                                        bool, len(s)), index=s.index),
                        name=rule.name)  # a third of Series.map's time: every id is distinct
    if rule.type == "bool":  # the profile's boolean column holds numpy or Python booleans
        return pa.Check(lambda s: s.map(lambda v: v is True or v is False or v in (0, 1)).astype(bool), name=rule.name)
    return None


def _column(var: Variable, tables: TableSet) -> pa.Column:
    checks = [c for c in map(_check, value_rules(var, tables)) if c is not None]
    return pa.Column(checks=checks, nullable=not var.required, required=True, coerce=False)


XOR = ": exactly one of value and missing reason"  # the frame check of a variable, named "<variable>" + XOR


def _xor(value: str, missing: str) -> pa.Check:
    # ignore_na=False: the check is about nulls, and pandera would otherwise test the whole frame for nulls
    return pa.Check(lambda df: df[value].isna() != df[missing].isna(), ignore_na=False, name=f"{value}{XOR}")


def _foreign(column: str, check: str, owner: str | None) -> bool:
    """A failure pandera reports for a frame check on a column the check is not about: it lists a failing
    row's every column, so a variable's "exactly one" failure came back on all the others too."""
    return check.endswith(XOR) and check[:-len(XOR)] != owner


_CACHE: dict[tuple[int, int, tuple[str, ...] | None], pa.DataFrameSchema] = {}
SMALL = 2048  # variables with at most this many distinct pairs share one padded frame, the rest another


def _build(schema: TargetSchema, tables: TableSet, names: tuple[str, ...] | None = None) -> pa.DataFrameSchema:
    cols: dict[str, pa.Column] = {}
    frame_checks: list[pa.Check] = []
    reasons = [*schema.reasons, UNMAPPED]
    for var in schema.variables:
        if names is not None and var.name not in names:
            continue
        cols[var.name] = _column(var, tables)
        if var.has_missing_column:
            cols[var.missing_column] = pa.Column(checks=[pa.Check.isin(reasons, name="missing reason")],
                                                 nullable=True, coerce=False)
            frame_checks.append(_xor(var.name, var.missing_column))
    return pa.DataFrameSchema(cols, checks=frame_checks, strict=False, name="harmonised respondents")


def pandera_schema(schema: TargetSchema, tables: TableSet, names: Iterable[str] | None = None) -> pa.DataFrameSchema:
    """The pandera DataFrameSchema for harmonised rows, or for the variables ``names`` only (cached)."""
    sel = tuple(sorted(names)) if names is not None else None
    key = (id(schema), id(tables), sel)
    if key not in _CACHE:
        if any(k[:2] != key[:2] for k in _CACHE):
            _CACHE.clear()
        _CACHE[key] = _build(schema, tables, sel)
    return _CACHE[key]


def validate_frame(df: pd.DataFrame, schema: TargetSchema, tables: TableSet) -> pd.DataFrame:
    """Lazy validation of harmonised rows; returns the failure cases (empty frame when valid)."""
    fc = _validate(df, pandera_schema(schema, tables))
    owner = {c: v.name for v in schema.variables for c in (v.name, v.missing_column)}
    fc = fc.loc[np.array([not _foreign(str(c), str(k), owner.get(str(c))) for c, k in zip(fc["column"], fc["check"])],
                         dtype=bool)]
    return fc.head(10_000).astype({"failure_case": "string"}).reset_index(drop=True)


FAILURE_COLUMNS = ["column", "check", "failure_case", "source_row", "n"]


def _nullable(column: pd.Series) -> np.ndarray:
    """A profile column as objects, None where it is null (as a harmonised frame holds them)."""
    return column.astype(object).where(column.notna(), None).to_numpy()


# Each variable's verdict (its failing pairs, by position among its pairs), by a digest of the declarations and
# of the variable's distinct (value, reason) pairs: waves, chunks and edits that give a variable the same pairs
# (most variables of a wave an edit did not touch; "not asked" everywhere) are not validated again.
_COLUMNS: dict[str, list[tuple[str, str, object, int]]] = {}
_COLUMNS_MAX = 20_000
_CONTEXT: list[tuple[TargetSchema, TableSet, str]] = []  # the last declarations' digest (held: ids stay theirs)


def _context(schema: TargetSchema, tables: TableSet) -> str:
    if not _CONTEXT or _CONTEXT[0][0] is not schema or _CONTEXT[0][1] is not tables:
        _CONTEXT[:] = [(schema, tables, hashlib.sha256(pickle.dumps((schema, tables), protocol=5)).hexdigest())]
    return _CONTEXT[0][2]


def _column_key(context: str, name: str, values: np.ndarray, reasons: np.ndarray | None) -> str:
    h = hashlib.sha256(f"{context}\0{name}\0".encode())
    h.update(values.tobytes() if values.dtype.kind == "f" else pickle.dumps(values.tolist(), protocol=5))
    h.update(b"\0" + pickle.dumps(None if reasons is None else reasons.tolist(), protocol=5))
    return h.hexdigest()


def _kind(var: Variable) -> str:
    """The profile column holding a variable's values: ``v_num``, ``v_bool`` or ``v_text``."""
    return "num" if var.type in ("integer", "number") else "bool" if var.type == "boolean" else "text"


def validate_profile(profile: pd.DataFrame, schema: TargetSchema, tables: TableSet) -> pd.DataFrame:
    """Validate the distinct (value, missing reason) pairs of harmonised rows with pandera.

    ``profile`` has one row per variable and distinct pair: ``target``, the value in ``v_text``,
    ``v_num`` or ``v_bool`` (by the variable's type), ``reason``, ``n`` (rows) and ``first_row``
    (an example source row). Returns one row per failing pair: column, check, failure_case,
    source_row, n. A variable whose pairs were judged before (the same declarations) is not
    validated again: its kept verdict is used (decision 35).
    """
    # each value column converted once (not per variable): a variable's pairs are positions into them
    by_type = {"num": profile["v_num"].astype("float64").to_numpy(), "bool": _nullable(profile["v_bool"]),
               "text": _nullable(profile["v_text"])}
    reasons = _nullable(profile["reason"])
    first_rows, counts = profile["first_row"].to_numpy(), profile["n"].to_numpy()
    parts: dict[str, np.ndarray] = {str(k): np.asarray(v) for k, v in profile.groupby("target", sort=False).indices.items()}
    context = _context(schema, tables)
    rows: list[tuple[str, str, object, int | None, int | None]] = []
    todo: list[str] = []
    keys: dict[str, str] = {}
    for name in schema.names:
        if name not in parts:
            continue
        var, part = schema.variable(name), parts[name]
        keys[name] = key = _column_key(context, name, by_type[_kind(var)][part],
                                       reasons[part] if var.has_missing_column else None)
        kept = _COLUMNS.get(key)
        if kept is None:
            todo.append(name)
            continue
        rows.extend((c, check, case, int(first_rows[part[pos]]), int(counts[part[pos]])) for c, check, case, pos in kept)
    small = [n for n in todo if len(parts[n]) <= SMALL]
    large = [n for n in todo if len(parts[n]) > SMALL]
    for names in (g for g in (small, large) if g):  # two frames: padding short columns to a long one costs little
        height = max(len(parts[n]) for n in names)
        frame: dict[str, object] = {}
        for name in names:
            var, part = schema.variable(name), parts[name]
            take = part[np.minimum(np.arange(height), len(part) - 1)]  # pad: repeat the last pair
            frame[name] = by_type[_kind(var)][take]
            if var.has_missing_column:
                frame[var.missing_column] = reasons[take]
        fc = _validate(pd.DataFrame(frame), pandera_schema(schema, tables, names))
        owner = {c: n for n in names for c in (n, schema.variable(n).missing_column)}
        found: dict[str, dict[tuple[str, str, int], object]] = {n: {} for n in names}
        whole = True  # every failure belongs to one variable's pairs (else nothing of this frame is kept)
        for r in fc.itertuples(index=False):
            target = owner.get(str(r.column))
            if _foreign(str(r.column), str(r.check), target):
                continue
            idx = r.index if isinstance(r.index, (int, np.integer)) else None
            if target is None or idx is None:
                rows.append((str(r.column), str(r.check), r.failure_case, None, None))
                whole = False
                continue
            pos = min(int(idx), len(parts[target]) - 1)
            found[target].setdefault((str(r.column), str(r.check), pos), r.failure_case)
        for name in names:
            verdict = [(c, check, case, pos) for (c, check, pos), case in found[name].items()]
            if whole:
                keep(_COLUMNS, keys[name], verdict, _COLUMNS_MAX)
            part = parts[name]
            rows.extend((c, check, case, int(first_rows[part[pos]]), int(counts[part[pos]]))
                        for c, check, case, pos in verdict)
    if not rows:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    return (pd.DataFrame(rows, columns=FAILURE_COLUMNS).drop_duplicates(["column", "check", "source_row"])
            .reset_index(drop=True).astype({"failure_case": "string"}))


def _validate(df: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        return fc[[c for c in ("column", "check", "failure_case", "index") if c in fc.columns]]
    return pd.DataFrame(columns=["column", "check", "failure_case", "index"])
