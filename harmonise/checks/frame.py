"""The pandera schema of harmonised rows, built from ``mappings/schema.yaml`` (never written twice)."""

from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa

from harmonise.spec.schema import UNMAPPED, TargetSchema, Variable
from harmonise.spec.tables import TableSet

MAX_CASES = 200


def _column(var: Variable, tables: TableSet) -> pa.Column:
    checks: list[pa.Check] = []
    t = var.type
    if t == "category":
        checks.append(pa.Check.isin(list(var.codes or {}), name=f"{var.name} code"))
    elif t == "boolean":
        checks.append(pa.Check(lambda s: s.map(lambda v: v is True or v is False or v in (0, 1)).astype(bool),
                               name="true/false"))
    elif t in ("integer", "number"):
        if var.range:
            checks.append(pa.Check.in_range(var.range[0], var.range[1], name=f"range [{var.range[0]:g}, {var.range[1]:g}]"))
        if t == "integer":
            checks.append(pa.Check(lambda s: s.astype("float64") % 1 == 0, name="whole number"))
    elif t == "country" and tables.country_codes:
        checks.append(pa.Check.isin(sorted(tables.country_codes), name="country code"))
    elif t == "language" and tables.language_codes:
        checks.append(pa.Check.isin(sorted(tables.language_codes), name="language code"))
    elif t == "city" and tables.city_codes:
        checks.append(pa.Check.isin(sorted(tables.city_codes), name="city code"))
    elif t == "string" and var.pattern:
        pat = re.compile(var.pattern)
        checks.append(pa.Check(lambda s: s.astype(str).map(lambda v: bool(pat.match(v))).astype(bool),
                               name=f"pattern {var.pattern}"))
    return pa.Column(checks=checks, nullable=not var.required, required=True, coerce=False)


def _xor(value: str, missing: str) -> pa.Check:
    return pa.Check(lambda df: df[value].isna() != df[missing].isna(),
                    name=f"{value}: exactly one of value and missing reason")


_CACHE: dict[tuple[int, int], pa.DataFrameSchema] = {}


def _build(schema: TargetSchema, tables: TableSet) -> pa.DataFrameSchema:
    cols: dict[str, pa.Column] = {}
    frame_checks: list[pa.Check] = []
    reasons = [*schema.reasons, UNMAPPED]
    for var in schema.variables:
        cols[var.name] = _column(var, tables)
        if var.has_missing_column:
            cols[var.missing_column] = pa.Column(checks=[pa.Check.isin(reasons, name="missing reason")],
                                                 nullable=True, coerce=False)
            frame_checks.append(_xor(var.name, var.missing_column))
    return pa.DataFrameSchema(cols, checks=frame_checks, strict=False, name="harmonised respondents")


def pandera_schema(schema: TargetSchema, tables: TableSet) -> pa.DataFrameSchema:
    """The pandera DataFrameSchema for harmonised rows (cached per schema object)."""
    key = (id(schema), id(tables))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _build(schema, tables)
    return _CACHE[key]


def validate_frame(df: pd.DataFrame, schema: TargetSchema, tables: TableSet) -> pd.DataFrame:
    """Lazy validation; returns the failure cases (empty frame when valid)."""
    try:
        pandera_schema(schema, tables).validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases.copy()
        keep = [c for c in ("column", "check", "failure_case", "index") if c in fc.columns]
        return fc[keep].head(10_000).astype({"failure_case": "string"}).reset_index(drop=True)
    return pd.DataFrame(columns=["column", "check", "failure_case", "index"])
