"""The ``respondents`` table: its DDL from the schema, the insert of harmonised chunks, key checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.spec.schema import TargetSchema
from harmonise.store.provenance import create_provenance

if TYPE_CHECKING:
    import duckdb

SQL_TYPES = {"category": "VARCHAR", "string": "VARCHAR", "country": "VARCHAR", "language": "VARCHAR", "city": "VARCHAR",
             "boolean": "BOOLEAN", "integer": "BIGINT", "number": "DOUBLE"}


def respondents_ddl(schema: TargetSchema, table: str = "respondents", temp: bool = False) -> str:
    cols = []
    for v in schema.variables:
        cols.append(f"{quote_ident(v.name)} {SQL_TYPES[v.type]}")
        if v.has_missing_column:
            cols.append(f"{quote_ident(v.missing_column)} VARCHAR")
    cols.append("source_row BIGINT")
    cols.append("source_file VARCHAR")
    return f"CREATE {'TEMP ' if temp else ''}TABLE {table} (" + ", ".join(cols) + ")"


FILE_BITS = 40  # rows of several files in one relation: source_row = (file ordinal << FILE_BITS) | row number
ROW_MASK = (1 << FILE_BITS) - 1


def insert_select(schema: TargetSchema, relation: str, files: str | Sequence[str]) -> str:
    """INSERT INTO respondents from a compiled result relation, casting to the stored types: rows of the
    source file named ``files``, or of several files whose ``source_row`` packs the file's position in
    ``files`` above :data:`FILE_BITS` bits of row number."""
    cols, exprs = [], []
    for v in schema.variables:
        cols.append(quote_ident(v.name))
        t = SQL_TYPES[v.type]
        exprs.append(f"TRY_CAST({quote_ident(v.name)} AS {t})" if t == "BIGINT" else quote_ident(v.name))
        if v.has_missing_column:
            cols.append(quote_ident(v.missing_column))
            exprs.append(quote_ident(v.missing_column))
    cols += ["source_row", "source_file"]
    if isinstance(files, str) or len(files) == 1:
        exprs += ["source_row", sql_literal(files if isinstance(files, str) else files[0])]
    else:
        names = ", ".join(sql_literal(f) for f in files)
        exprs += [f"source_row & {ROW_MASK}", f"[{names}][(source_row >> {FILE_BITS}) + 1]"]
    return f"INSERT INTO respondents ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {relation}"


def create_all(con: duckdb.DuckDBPyConnection, schema: TargetSchema, seeded: bool = False) -> bool:
    """The empty database of a build: ``respondents`` and every provenance table.

    ``seeded``: the database is a copy of the previous build's holding only its ``respondents`` table
    (``BuildCache.start``): kept, with its rows, when its columns are the schema's (the build then deletes
    all but the kept files' rows, ``BuildCache.keep_rows``), else dropped. Returns whether it was kept."""
    kept = seeded and _columns(con, "current_database()", "respondents") == _expected(con, schema)
    if seeded and not kept:
        con.execute("DROP TABLE IF EXISTS main.respondents")
    if not kept:
        con.execute(respondents_ddl(schema))
    create_provenance(con)
    return kept


def _columns(con: duckdb.DuckDBPyConnection, database: str, table: str) -> list[tuple[str, str]]:
    return [(str(n), str(t)) for n, t in con.execute(
        f"SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = {database} "
        f"AND schema_name = 'main' AND table_name = {sql_literal(table)} ORDER BY column_index").fetchall()]


def _expected(con: duckdb.DuckDBPyConnection, schema: TargetSchema) -> list[tuple[str, str]]:
    """The columns (name, type) :func:`respondents_ddl` makes."""
    con.execute(respondents_ddl(schema, "__respondents", temp=True))
    try:
        return _columns(con, "'temp'", "__respondents")
    finally:
        con.execute("DROP TABLE temp.main.__respondents")


Duplicates = tuple[str, str, int, list[tuple[str, int, list[str]]]]  # survey, wave, ids stored twice, examples


def duplicate_ids(con: duckdb.DuckDBPyConnection, shown: int = 5, waves: Sequence[tuple[str, str]] | None = None,
                  other: bool = False) -> list[Duplicates]:
    """Respondent ids stored more than once within a survey wave, across all its files (missing ids are
    the pandera check's):
    (survey, wave, number of such ids, the first ``shown`` as (id, count, files holding it)), by survey and
    wave; of the survey-``waves`` given (``other``: of all but those), else of all."""
    where = ""
    if waves is not None:
        if not waves:
            if not other:
                return []
        else:
            pairs = ", ".join(f"({sql_literal(s)}, {sql_literal(w)})" for s, w in waves)
            where = f" AND {'NOT ' if other else ''}ifnull((survey, wave) IN ({pairs}), false)"
    # the ids stored twice first, counted only; the files of the few shown looked up after (a list per id of
    # every wave's respondents took six times as long)
    rows = con.execute(
        "WITH twice AS (SELECT survey, wave, respondent_id, count(*) AS k, count(*) OVER (PARTITION BY survey, wave) "
        f"AS n FROM respondents WHERE respondent_id IS NOT NULL{where} GROUP BY survey, wave, respondent_id "
        "HAVING count(*) > 1 QUALIFY row_number() OVER (PARTITION BY survey, wave ORDER BY respondent_id) <= ?) "
        "SELECT t.survey, t.wave, t.respondent_id, t.k, list(DISTINCT r.source_file ORDER BY r.source_file), t.n "
        "FROM twice t JOIN respondents r ON r.survey = t.survey AND r.wave = t.wave AND r.respondent_id = t.respondent_id "
        "GROUP BY ALL ORDER BY 1, 2, 3", [shown]).fetchall()
    out: dict[tuple[str, str], tuple[int, list[tuple[str, int, list[str]]]]] = {}
    for survey, wave, rid, k, files, n in rows:
        _, examples = out.setdefault((str(survey), str(wave)), (int(n), []))
        examples.append((str(rid), int(k), [str(f) for f in files]))
    return [(s, w, n, ex) for (s, w), (n, ex) in out.items()]


def ids_written_differently(con: duckdb.DuckDBPyConnection, shown: int = 3) -> list[Duplicates]:
    """Respondent ids of one survey wave that are the same number written differently in two files — leading zeros
    or a trailing ``.0`` (`PL-00001002`, `PL-1002.0` and `PL-1002`: an id stored as text in one edition and as a
    number in another): (survey, wave, such ids, the first ``shown`` as (``id = other id``, 2, the two files))."""
    rows = con.execute(
        "WITH odd AS (SELECT survey, wave, respondent_id, source_file, regexp_replace(regexp_replace(respondent_id, "
        r"'[.]0+$', ''), '(^|[^0-9])0+([0-9])', '\1\2', 'g') AS nid FROM respondents "
        r"WHERE regexp_matches(respondent_id, '[.]0+$|(^|[^0-9])0[0-9]')), "
        "pairs AS (SELECT o.survey, o.wave, o.respondent_id AS a, r.respondent_id AS b, o.source_file AS fa, "
        "r.source_file AS fb FROM odd o JOIN respondents r ON r.survey = o.survey AND r.wave = o.wave "
        "AND r.respondent_id = o.nid WHERE r.source_file <> o.source_file) "
        "SELECT survey, wave, a, b, fa, fb, count(*) OVER (PARTITION BY survey, wave) FROM pairs "
        "QUALIFY row_number() OVER (PARTITION BY survey, wave ORDER BY a, b) <= ? ORDER BY 1, 2, 3, 4", [shown]).fetchall()
    out: dict[tuple[str, str], tuple[int, list[tuple[str, int, list[str]]]]] = {}
    for survey, wave, a, b, fa, fb, n in rows:
        _, examples = out.setdefault((str(survey), str(wave)), (int(n), []))
        examples.append((f"{b} = {a}", 2, sorted({str(fa), str(fb)})))
    return [(s, w, n, ex) for (s, w), (n, ex) in out.items()]
