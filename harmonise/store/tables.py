"""DDL and provenance rows of the harmonised database."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from harmonise.spec.expr import quote_ident, sql_literal
from harmonise.spec.schema import TargetSchema, Variable

SQL_TYPES = {"category": "VARCHAR", "string": "VARCHAR", "country": "VARCHAR", "language": "VARCHAR", "city": "VARCHAR",
             "boolean": "BOOLEAN", "integer": "BIGINT", "number": "DOUBLE"}

PROVENANCE_DDL = [
    """CREATE TABLE sources (survey VARCHAR, wave VARCHAR, file_name VARCHAR, path VARCHAR, format VARCHAR,
       size_bytes BIGINT, sha256 VARCHAR, rows BIGINT, encoding VARCHAR, file_label VARCHAR, header_json VARCHAR,
       crosswalk_file VARCHAR, crosswalk_sha256 VARCHAR, codebook_file VARCHAR, harmonise_version VARCHAR,
       built_at VARCHAR)""",
    """CREATE TABLE schema_variables (name VARCHAR, label VARCHAR, "group" VARCHAR, type VARCHAR, definition VARCHAR,
       unit VARCHAR, derived BOOLEAN, derivation VARCHAR, range_low DOUBLE, range_high DOUBLE, pattern VARCHAR,
       missing_column VARCHAR, position INTEGER, measure VARCHAR)""",
    "CREATE TABLE value_labels (variable VARCHAR, code VARCHAR, label VARCHAR, is_missing_reason BOOLEAN)",
    "CREATE TABLE missing_reasons (reason VARCHAR, label VARCHAR, definition VARCHAR)",
    """CREATE TABLE lineage (survey VARCHAR, wave VARCHAR, target VARCHAR, kind VARCHAR, source_variables VARCHAR,
       source_labels VARCHAR, rule VARCHAR, quality VARCHAR, notes VARCHAR, crosswalk_path VARCHAR)""",
    """CREATE TABLE harmonisation_report (survey VARCHAR, wave VARCHAR, target VARCHAR, source_variables VARCHAR,
       source_code VARCHAR, source_label VARCHAR, target_value VARCHAR, missing_reason VARCHAR, n BIGINT)""",
    """CREATE TABLE conservation (survey VARCHAR, wave VARCHAR, target VARCHAR, rows_in BIGINT, rows_out BIGINT,
       ok BOOLEAN)""",
    """CREATE TABLE validation_failures (survey VARCHAR, wave VARCHAR, "column" VARCHAR, "check" VARCHAR,
       failure_case VARCHAR, source_row BIGINT)""",
    "CREATE TABLE build_info (key VARCHAR, value VARCHAR)",
    "CREATE TABLE compiled_sql (survey VARCHAR, wave VARCHAR, sql VARCHAR)",
]


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
    con.execute(respondents_ddl(schema))
    for ddl in PROVENANCE_DDL:
        con.execute(ddl)


def write_schema_tables(con: duckdb.DuckDBPyConnection, schema: TargetSchema) -> None:
    rows = []
    labels = []
    for i, v in enumerate(schema.variables):
        rows.append(_var_row(v, i))
        for code, label in (v.codes or {}).items():
            labels.append((v.name, code, label, False))
        if v.type == "boolean":
            labels.extend([(v.name, "true", "Yes", False), (v.name, "false", "No", False)])
    for reason, mr in schema.missing_reasons.items():
        labels.append(("*_missing", reason, mr.label, True))
    from harmonise.pipeline import _insert

    _insert(con, "schema_variables", rows)
    _insert(con, "value_labels", labels)
    _insert(con, "missing_reasons", [(r, m.label, m.definition) for r, m in schema.missing_reasons.items()])


def _var_row(v: Variable, i: int) -> tuple[object, ...]:
    return (v.name, v.label, v.group, v.type, v.definition, v.unit, v.derived,
            v.derive.expr if v.derive else None, v.range[0] if v.range else None,
            v.range[1] if v.range else None, v.pattern, v.missing_column if v.has_missing_column else None, i,
            v.measurement)


def to_json(data: object) -> str:
    return json.dumps(data, sort_keys=True, default=str)


def append_database(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Append every table of the database file ``path`` to the table of the same name in ``con``."""
    con.execute(f"ATTACH {sql_literal(str(path))} AS part (READ_ONLY)")
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'part' "
                                            "ORDER BY table_name").fetchall()]
        for t in tables:
            con.execute(f"INSERT INTO main.{quote_ident(t)} SELECT * FROM part.main.{quote_ident(t)}")
    finally:
        con.execute("DETACH part")
