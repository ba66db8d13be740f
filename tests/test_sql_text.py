"""compile.sqltext: whatever a declaration or a data file holds, its SQL literal or quoted identifier reads
back in DuckDB as that value or name, and never changes the statement it is written into."""

from __future__ import annotations

import dataclasses
import math

import duckdb
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise.compile.sql import plan_and_compile
from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.spec.project import Project, load_project
from tests.conftest import ROOT

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)


@given(value=st.one_of(_TEXT, st.floats(), st.integers(-(2**63), 2**63 - 1), st.booleans()))
def test_any_literal_reads_back_unchanged(value: object) -> None:
    con = duckdb.connect()
    try:
        rows = con.execute(f"SELECT {sql_literal(value)} AS v, 42 AS after").fetchall()
    finally:
        con.close()
    assert len(rows) == 1 and rows[0][1] == 42
    got = rows[0][0]
    if isinstance(value, float) and math.isnan(value):
        assert isinstance(got, float) and math.isnan(got)
    elif isinstance(value, float):  # DuckDB reads 0.5 as a DECIMAL: the same number
        assert float(got) == value and math.copysign(1, float(got)) == math.copysign(1, value)
    else:
        assert got == value and type(got) is type(value)


def test_infinite_bounds_are_literals_not_column_names() -> None:
    """A file's missing range LOWEST THRU 5 may hold -inf: repr() wrote `-inf`, which DuckDB read as the
    column "inf" (a binder error, or another variable's values where the file has one named inf)."""
    assert sql_literal(float("-inf")) == "CAST('-inf' AS DOUBLE)"
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE src AS SELECT 3.0 AS x, 1000.0 AS inf")
        sql = f"SELECT x BETWEEN {sql_literal(float('-inf'))} AND {sql_literal(5.0)} FROM src"
        assert con.execute(sql).fetchall() == [(True,)]
    finally:
        con.close()


@given(name=_TEXT.filter(lambda n: n != ""))
def test_any_identifier_names_its_column(name: str) -> None:
    con = duckdb.connect()
    try:
        cur = con.execute(f"SELECT 1 AS {quote_ident(name)}, 2 AS after")
        assert [d[0] for d in cur.description] == [name, "after"] and cur.fetchall() == [(1, 2)]
    finally:
        con.close()


_NAME = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=64).filter(
    lambda n: n.strip() != "" and n.isprintable())


@settings(deadline=None, max_examples=40)  # each example compiles and runs a whole wave (~0.1 s)
@given(name=_NAME, label=_TEXT, city=_TEXT.filter(lambda c: c.strip() != ""))
def test_any_source_name_label_and_text_value_stays_data(name: str, label: str, city: str) -> None:
    """Whatever a file calls a variable, labels it or holds in a text variable (quotes, ';', '--', SQL, braces,
    64 characters), the compiled wave reads that column and keeps the value: nothing of it becomes SQL."""
    project = _PROJECT.setdefault("ties", load_project(ROOT))
    cw = project.crosswalks["ties"]
    declared = project.declared_meta("ties", cw.waves[0].wave)
    assert declared is not None
    if name.lower() in {n.lower() for n in declared.variables}:
        return
    variables = {(name if n == "sex" else n): dataclasses.replace(vm, name=name, labels={1: label, 2: "Female"})
                 if n == "sex" else vm for n, vm in declared.variables.items()}
    meta = dataclasses.replace(declared, variables=variables)
    rule = cw.targets["sex"].model_copy(update={"source": name})
    cw = cw.model_copy(update={"targets": {**cw.targets, "sex": rule}})
    _, compiled = plan_and_compile(cw, cw.waves[0], project, meta)
    assert not compiled.errors
    frame = pd.DataFrame({"__row": [1, 2, 3]})
    for n, vm in variables.items():
        frame[n] = pd.array([city] * 3, dtype="string") if vm.type == "string" else [1.0, 2.0, 1.0]
    con = duckdb.connect()
    try:
        con.register("src", frame)
        rows = con.execute(f"SELECT sex, {quote_ident('src:' + name)}, city_missing, {quote_ident('src:city')} "
                           f"FROM ({compiled.sql}) ORDER BY source_row").fetchall()
    finally:
        con.close()
    unmapped = None if city in ("VIE", "LIN", "ANT", "BRU", "PAR", "STR", "BER", "FRA", "AMS", "ROT", "MAD", "BAR",
                                "STO", "ZUR", "BAS") else "__unmapped__"
    assert rows == [("male", 1.0, unmapped, city), ("female", 2.0, unmapped, city), ("male", 1.0, unmapped, city)]


_PROJECT: dict[str, Project] = {}


def test_negative_zero_keeps_its_sign() -> None:
    """-0.0 written as ``-0.0`` is read as a DECIMAL, whose zero has no sign (hypothesis found it)."""
    con = duckdb.connect()
    try:
        got = con.execute(f"SELECT {sql_literal(-0.0)}").fetchall()[0][0]
    finally:
        con.close()
    assert (type(got), got, math.copysign(1, got)) == (float, 0.0, -1.0)
