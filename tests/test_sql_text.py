"""compile.sqltext: whatever a declaration or a data file holds, its SQL literal or quoted identifier reads
back in DuckDB as that value or name, and never changes the statement it is written into."""

from __future__ import annotations

import math

import duckdb
from hypothesis import given
from hypothesis import strategies as st

from harmonise.compile.sqltext import quote_ident, sql_literal

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
