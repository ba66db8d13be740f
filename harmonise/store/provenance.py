"""The provenance tables of a harmonised database: each table's columns beside its insert.

Every provenance row the build writes goes through :class:`Table.insert` (a bulk insert: DuckDB's
``executemany`` is row by row); the pipeline only decides what the rows are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.spec.schema import TargetSchema, Variable

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class Table:
    """A provenance table: its name, its columns in order, and how rows go in."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type)

    def ddl(self) -> str:
        cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in self.columns)
        return f"CREATE TABLE {quote_ident(self.name)} ({cols})"

    def insert(self, con: duckdb.DuckDBPyConnection, rows: Sequence[Sequence[object]]) -> None:
        """Insert ``rows`` (tuples in column order) in one statement."""
        insert_rows(con, f"main.{quote_ident(self.name)}", rows, [c for c, _ in self.columns])


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Sequence[object]],
                columns: Sequence[str] | None = None) -> None:
    """Insert ``rows`` (in the column order of ``table``, an SQL name) in one statement, from a frame
    (``columns`` names its columns): DuckDB's ``executemany`` is one statement per row (0.7 ms each)."""
    if not rows:
        return
    import pandas as pd

    con.register("__rows", pd.DataFrame(list(rows), columns=list(columns) if columns else None, dtype=object))
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM __rows")
    finally:
        con.unregister("__rows")


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """``"a VARCHAR, b BIGINT"`` → ``(("a", "VARCHAR"), ("b", "BIGINT"))``."""
    return tuple((name, typ) for name, typ in (part.split() for part in spec.split(",")))


SOURCES = Table("sources", _cols(
    "survey VARCHAR, wave VARCHAR, file_name VARCHAR, path VARCHAR, format VARCHAR, size_bytes BIGINT, "
    "sha256 VARCHAR, rows BIGINT, encoding VARCHAR, file_label VARCHAR, header_json VARCHAR, crosswalk_file VARCHAR, "
    "crosswalk_sha256 VARCHAR, codebook_file VARCHAR, harmonise_version VARCHAR, built_at VARCHAR"))
VARIABLES = Table("schema_variables", _cols(
    "name VARCHAR, label VARCHAR, group VARCHAR, type VARCHAR, definition VARCHAR, unit VARCHAR, derived BOOLEAN, "
    "derivation VARCHAR, range_low DOUBLE, range_high DOUBLE, pattern VARCHAR, missing_column VARCHAR, "
    "position INTEGER, measure VARCHAR"))
VALUE_LABELS = Table("value_labels", _cols("variable VARCHAR, code VARCHAR, label VARCHAR, is_missing_reason BOOLEAN"))
MISSING_REASONS = Table("missing_reasons", _cols("reason VARCHAR, label VARCHAR, definition VARCHAR"))
LINEAGE = Table("lineage", _cols(
    "survey VARCHAR, wave VARCHAR, file_name VARCHAR, target VARCHAR, kind VARCHAR, source_variables VARCHAR, source_labels VARCHAR, "
    "rule VARCHAR, quality VARCHAR, notes VARCHAR, crosswalk_path VARCHAR"))
REPORT = Table("harmonisation_report", _cols(
    "survey VARCHAR, wave VARCHAR, file_name VARCHAR, target VARCHAR, source_variables VARCHAR, source_code VARCHAR, "
    "source_label VARCHAR, target_value VARCHAR, missing_reason VARCHAR, n BIGINT"))
CONSERVATION = Table("conservation", _cols(
    "survey VARCHAR, wave VARCHAR, file_name VARCHAR, target VARCHAR, rows_in BIGINT, rows_out BIGINT, ok BOOLEAN"))
VALIDATION_FAILURES = Table("validation_failures", _cols(
    "survey VARCHAR, wave VARCHAR, file_name VARCHAR, column VARCHAR, check VARCHAR, failure_case VARCHAR, source_row BIGINT"))
BUILD_INFO = Table("build_info", _cols("key VARCHAR, value VARCHAR"))
COMPILED_SQL = Table("compiled_sql", _cols("survey VARCHAR, wave VARCHAR, file_name VARCHAR, sql VARCHAR"))

TABLES = (SOURCES, VARIABLES, VALUE_LABELS, MISSING_REASONS, LINEAGE, REPORT, CONSERVATION, VALIDATION_FAILURES,
          BUILD_INFO, COMPILED_SQL)


def create_provenance(con: duckdb.DuckDBPyConnection) -> None:
    """Create every (empty) provenance table."""
    for table in TABLES:
        con.execute(table.ddl())


def write_schema_tables(con: duckdb.DuckDBPyConnection, schema: TargetSchema) -> None:
    """The schema's variables, value labels and missing reasons, for queries and codebooks."""
    labels = []
    for v in schema.variables:
        for code, label in (v.codes or {}).items():
            labels.append((v.name, code, label, False))
        if v.type == "boolean":
            labels.extend([(v.name, "true", "Yes", False), (v.name, "false", "No", False)])
    for reason, mr in schema.missing_reasons.items():
        labels.append(("*_missing", reason, mr.label, True))
    VARIABLES.insert(con, [_var_row(v, i) for i, v in enumerate(schema.variables)])
    VALUE_LABELS.insert(con, labels)
    MISSING_REASONS.insert(con, [(r, m.label, m.definition) for r, m in schema.missing_reasons.items()])


def _var_row(v: Variable, i: int) -> tuple[object, ...]:
    return (v.name, v.label, v.group, v.type, v.definition, v.unit, v.derived,
            v.derive.expr if v.derive else None, v.range[0] if v.range else None,
            v.range[1] if v.range else None, v.pattern, v.missing_column if v.has_missing_column else None, i,
            v.measurement)


def to_json(data: object) -> str:
    """Stable JSON for a provenance cell (sorted keys)."""
    return json.dumps(data, sort_keys=True, default=str)


def append_database(con: duckdb.DuckDBPyConnection, path: Path, alias: str = "part") -> None:
    """Append every table of the database file ``path`` (attached as ``alias`` meanwhile) to the table of the
    same name in ``con``."""
    name = quote_ident(alias)
    con.execute(f"ATTACH {sql_literal(str(path))} AS {name} (READ_ONLY)")
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                                            "ORDER BY table_name", [alias]).fetchall()]
        for t in tables:
            con.execute(f"INSERT INTO main.{quote_ident(t)} SELECT * FROM {name}.main.{quote_ident(t)}")
    finally:
        con.execute(f"DETACH {name}")
