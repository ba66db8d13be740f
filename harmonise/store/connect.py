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
    "lock_configuration": True,
    "memory_limit": MEMORY_LIMIT,
}


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
        config["memory_limit"] = memory_limit
    try:
        return duckdb.connect(str(p), read_only=True, config=config)
    except duckdb.Error as exc:
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
