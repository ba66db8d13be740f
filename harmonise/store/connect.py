"""Read-only connections for researchers: no writes, no ATTACH, no extensions, no file access."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from harmonise.errors import InputError, UsageError

# DuckDB's memory for a reader (query, indicators, codebooks); beyond it DuckDB spills where it can and otherwise
# stops the query. Part of every read-only connection's configuration: DuckDB refuses a second connection to a file
# with a different configuration in one process, so harmonise.connect() and api.query must agree.
MEMORY_LIMIT = "2GB"
READ_ONLY_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "memory_limit": MEMORY_LIMIT,
}  # then no progress bar, and the configuration locked: :func:`seal`


def seal(con: duckdb.DuckDBPyConnection, lock: bool = True) -> duckdb.DuckDBPyConnection:
    """``con`` without DuckDB's progress bar (it wrote to standard output once a query ran for two seconds: between
    the rows of `indicators --format csv > out.csv` on the demo), its cursors too; with ``lock``, its configuration
    locked after that, so that no query changes it. DuckDB takes the progress bar per connection, not in the
    configuration a file is opened with, and a file's connections in one process share its lock: a second
    connection to a file this process holds open already is locked, and keeps DuckDB's progress bar."""
    (locked,) = con.execute("SELECT current_setting('lock_configuration')").fetchall()[0]
    if not locked:
        con.execute("SET enable_progress_bar = false")
        if lock:
            con.execute("SET lock_configuration = true")
    return con


_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def held_elsewhere(message: str) -> str | None:
    """For DuckDB's error when another process holds the file open for writing (a lock DuckDB could not
    set), what to do about it; None for any other error."""
    if "Could not set lock on file" not in message:
        return None
    found = _HOLDER.search(message)
    who = f" ({Path(found.group(1)).name}, PID {found.group(2)})" if found else ""
    return (f"another program{who} has it open for writing; close that program's connection to the file (or let "
            "it finish) and run again")


def connect(path: str | Path = "harmonised.duckdb", memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open a built database read-only with external access disabled; ``memory_limit`` (e.g. ``500MB``) replaces
    :data:`MEMORY_LIMIT`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such database; run `harmonise build` first or pass --db")
    if p.stat().st_size == 0:  # an empty file (a `touch`, a failed copy): DuckDB's message does not say so
        raise InputError(f"{p}: is empty (0 bytes), not a database; pass the --db that `harmonise build` wrote, or "
                         "build one there")
    config = dict(READ_ONLY_CONFIG)
    if memory_limit is not None:
        if memory_limit.strip().startswith("-"):  # DuckDB takes a negative size for no limit at all
            raise UsageError(f"--memory-limit {memory_limit!r} is not a memory size; give e.g. 2GB or 500MB")
        config["memory_limit"] = memory_limit
    try:
        return seal(duckdb.connect(str(p), read_only=True, config=config))
    except duckdb.Error as exc:
        if memory_limit is not None and isinstance(exc, duckdb.OutOfMemoryException):
            raise UsageError(f"--memory-limit {memory_limit!r} is too small to open the database; give e.g. 2GB or "
                             "500MB") from exc
        if memory_limit is not None and "memory" in str(exc).lower():
            raise UsageError(f"--memory-limit {memory_limit!r} is not a memory size; give e.g. 2GB or 500MB") from exc
        first = str(exc).splitlines()[0]
        if "corrupt" in first.lower() or "checksum" in first.lower():
            raise InputError(f"{p}: the database file is damaged ({first}); build it again with `harmonise build`") \
                from exc
        held = held_elsewhere(str(exc))
        if held is not None:
            raise InputError(f"{p}: {held}") from exc
        raise InputError(f"{p}: cannot open as a harmonise database ({first}); pass the --db that `harmonise "
                         "build` wrote") from exc


def require_tables(con: duckdb.DuckDBPyConnection, path: str | Path, tables: tuple[str, ...]) -> None:
    """Raise InputError unless the database at ``path`` has ``tables`` (a database harmonise built)."""
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    missing = [t for t in tables if t not in present]
    if missing:
        raise InputError(f"{path}: not a database harmonise built (no {', '.join(missing)} table{'s' if len(missing) > 1 else ''}); "
                         "build one with `harmonise build`, or pass the --db that it wrote")


# an export connection needs file access for COPY (and DuckDB's own memory limit for a whole table): else it loads
# and installs nothing, like every read-only connection
EXPORT_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    key: value for key, value in READ_ONLY_CONFIG.items() if key not in ("enable_external_access", "memory_limit")}


def code_in_database(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> list[str]:
    """What in the open database would run SQL of its own when ``tables`` are read: any of them that is a view or
    has a generated column, and user macros (a macro named ``count`` or ``upper`` replaces DuckDB's own in every
    query). A database harmonise built has none; a connection with file access must not run them. Every function
    here is called by its system name: a stored macro ``duckdb_functions`` would otherwise answer in its place."""
    names = ", ".join("?" for _ in tables)
    db = "system.main.current_database()"
    found = [f"view {name}" for (name,) in con.execute(
        f"SELECT view_name FROM system.main.duckdb_views() WHERE NOT internal AND database_name = {db} "
        f"AND view_name IN ({names}) ORDER BY 1", list(tables)).fetchall()]
    found += [f"generated column {t}.{c}" for t, c in con.execute(
        f"SELECT table_name, column_name FROM system.information_schema.columns WHERE table_catalog = {db} "
        f"AND is_generated = 'ALWAYS' AND table_name IN ({names}) ORDER BY ALL", list(tables)).fetchall()]
    found += [f"macro {name}" for (name,) in con.execute(
        f"SELECT DISTINCT function_name FROM system.main.duckdb_functions() WHERE NOT internal AND database_name = {db} "
        "ORDER BY 1").fetchall()]
    return found
