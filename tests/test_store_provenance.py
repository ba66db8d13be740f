"""Table names of a built database: none clashes with a DuckDB keyword or built-in name."""

from __future__ import annotations

from pathlib import Path

import duckdb

from harmonise.store.provenance import TABLES


def test_describe_of_every_table_shows_its_columns(fr_db: Path) -> None:
    """`DESCRIBE variables` answered with DuckDB's session variables; every table name must describe the table."""
    con = duckdb.connect(str(fr_db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        provenance = {t.name for t in TABLES}
        assert provenance <= set(tables)
        for table in tables:
            columns = [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                                                 "ORDER BY column_index", [table]).fetchall()]
            assert [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()] == columns, table
            assert [r[0] for r in con.execute(f"SHOW {table}").fetchall()] == columns, table
    finally:
        con.close()
