"""The ``respondents`` table: its DDL from the schema, the insert of harmonised chunks, key checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harmonise.compile.sqltext import quote_ident
from harmonise.spec.schema import TargetSchema
from harmonise.store.provenance import create_provenance

if TYPE_CHECKING:
    import duckdb

SQL_TYPES = {"category": "VARCHAR", "string": "VARCHAR", "country": "VARCHAR", "language": "VARCHAR", "city": "VARCHAR",
             "boolean": "BOOLEAN", "integer": "BIGINT", "number": "DOUBLE"}


def respondents_ddl(schema: TargetSchema) -> str:
    cols = []
    for v in schema.variables:
        cols.append(f"{quote_ident(v.name)} {SQL_TYPES[v.type]}")
        if v.has_missing_column:
            cols.append(f"{quote_ident(v.missing_column)} VARCHAR")
    cols.append("source_row BIGINT")
    return "CREATE TABLE respondents (" + ", ".join(cols) + ")"


def insert_select(schema: TargetSchema, relation: str) -> str:
    """INSERT INTO respondents from a compiled result relation, casting to the stored types."""
    cols, exprs = [], []
    for v in schema.variables:
        cols.append(quote_ident(v.name))
        t = SQL_TYPES[v.type]
        exprs.append(f"TRY_CAST({quote_ident(v.name)} AS {t})" if t == "BIGINT" else quote_ident(v.name))
        if v.has_missing_column:
            cols.append(quote_ident(v.missing_column))
            exprs.append(quote_ident(v.missing_column))
    cols.append("source_row")
    exprs.append("source_row")
    return f"INSERT INTO respondents ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {relation}"


def create_all(con: duckdb.DuckDBPyConnection, schema: TargetSchema) -> None:
    """The empty database of a build: ``respondents`` and every provenance table."""
    con.execute(respondents_ddl(schema))
    create_provenance(con)


def duplicate_ids(con: duckdb.DuckDBPyConnection, survey: str, wave: str, shown: int = 5) -> tuple[int, list[tuple[str, int]]]:
    """How many respondent ids of ``survey`` ``wave`` occur more than once, and the first ``shown`` (id, count)."""
    dups = con.execute("SELECT respondent_id, count(*) FROM respondents WHERE survey = ? AND wave = ? "
                       "GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT ?", [survey, wave, shown + 1]).fetchall()
    if not dups:
        return 0, []
    n = con.execute("SELECT count(*) FROM (SELECT respondent_id FROM respondents WHERE survey = ? AND wave = ? "
                    "GROUP BY 1 HAVING count(*) > 1)", [survey, wave]).fetchall()[0][0]
    return int(n), [(str(d[0]), int(d[1])) for d in dups[:shown]]
