"""Read-only connections for researchers: no writes, no ATTACH, no extensions, no file access."""

from __future__ import annotations

from pathlib import Path

import duckdb

from harmonise.errors import InputError

READ_ONLY_CONFIG = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}


def connect(path: str | Path = "harmonised.duckdb") -> duckdb.DuckDBPyConnection:
    """Open a built database read-only with external access disabled."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such database; run `harmonise build` first or pass --db")
    try:
        return duckdb.connect(str(p), read_only=True, config=dict(READ_ONLY_CONFIG))
    except duckdb.Error as exc:
        raise InputError(f"{p}: cannot open as a harmonise database ({str(exc).splitlines()[0]})") from exc
