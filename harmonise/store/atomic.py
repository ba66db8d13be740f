"""Atomic database replacement with a lock against concurrent builds, and the build's connection.

A build writes ``<db>.tmp-<pid>-<random>`` beside the target and renames it
over the target only when everything succeeded (``os.replace`` is atomic on
one filesystem). A killed build leaves a temporary file, never a half-written
database; the next build removes such leftovers while holding the lock. Leftovers
are found by exact names derived from the target's (never by a glob of it): the
file, its ``.wal``, DuckDB's spill folder ``.tmp`` and the workers' folder ``.jobs``.
The target is replaced only if it is absent, empty or a database harmonise built
(it has ``build_info``), unless forced; a stale ``<db>.wal`` is removed with it; the new
database must open read-only and answer a query before it replaces the old one, and again after.
A build writes through :func:`open_build` (small row groups, spill folder beside the file).
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from harmonise.compile.sqltext import sql_literal
from harmonise.errors import BuildLocked, InputError, UsageError
from harmonise.store.connect import READ_ONLY_CONFIG, held_elsewhere, seal

# Rows per row group of a built database (DuckDB's default is 122,880). An insert that fills a row
# group writes it to the file compressed, without the write-ahead log; with row groups smaller than
# a chunk every chunk's insert does so, instead of logging its rows and rewriting them at each
# checkpoint (benchmarks/README.md: 16 inserts of 50,000 rows 18.8 s → 5.7 s; file 51 → 49 MB).
ROW_GROUP_ROWS = 16_384


def open_build(path: Path) -> duckdb.DuckDBPyConnection:
    """A writable connection to a new database file at ``path`` with :data:`ROW_GROUP_ROWS`-row row groups.

    DuckDB spills to ``<path>.tmp/`` as it does for a file opened directly, so a killed build's
    spill folder is found and removed like the file itself.
    """
    con = seal(duckdb.connect(), lock=False)
    try:
        con.execute(f"SET temp_directory = {sql_literal(str(path) + '.tmp')}")
        con.execute(f"ATTACH {sql_literal(str(path))} AS build (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
        con.execute("USE build")
    except BaseException:
        con.close()
        raise
    return con


LEFTOVER_SUFFIXES = ("", ".wal", ".tmp", ".jobs")  # a temporary database and what DuckDB and the workers put beside it


def _leftovers(db: Path) -> list[Path]:
    """Temporary files of killed builds of ``db``: ``<name>.tmp-<pid>-<8 hex digits>`` and its companions,
    matched literally (a ``*`` or ``[`` in the name is just a character)."""
    exact = re.compile(re.escape(db.name) + r"\.tmp-[0-9]+-[0-9a-f]{8}(?:" +
                       "|".join(re.escape(s) for s in LEFTOVER_SUFFIXES) + ")")
    return sorted(db.parent / n for n in os.listdir(db.parent) if exact.fullmatch(n))


def _remove(path: Path) -> None:
    """Delete a leftover temporary file, or DuckDB's spill folder (``<file>.tmp/``) of a killed build."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _built_by_harmonise(db: Path) -> str | None:
    """Why ``db`` (a DuckDB file) may not be replaced, or None if harmonise built it (it has ``build_info``).

    A ``<db>.wal`` that DuckDB finds does not belong to the file (a crash, or a copy) is stale: removed."""
    for attempt in (1, 2):
        try:
            con = seal(duckdb.connect(str(db), read_only=True, config=dict(READ_ONLY_CONFIG)))
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            wal = db.with_name(db.name + ".wal")
            if attempt == 1 and "WAL does not match database file" in first and wal.is_file():
                wal.unlink()  # not this file's log: it could only ever stop the database from opening
                continue
            held = held_elsewhere(str(exc))
            if held is not None:  # not a question of who built it: --force is not the way out
                raise InputError(f"{db}: {held} (or choose another --db path)") from None
            return f"cannot check that harmonise built it ({first})"
        try:
            present = con.execute("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_name = 'build_info'").fetchone()
        finally:
            con.close()
        return None if present and present[0] else "it is a DuckDB database harmonise did not build (no build_info table)"
    return None


def verify(path: Path) -> None:
    """Raise InputError unless the database at ``path`` opens read-only and answers a query."""
    try:
        con = seal(duckdb.connect(str(path), read_only=True, config=dict(READ_ONLY_CONFIG)))
        try:
            con.execute("SELECT count(*) FROM build_info").fetchall()
        finally:
            con.close()
    except duckdb.Error as exc:
        raise InputError(f"{path}: the new database does not open read-only ({str(exc).splitlines()[0]}); "
                         "the build did not succeed — check free space and build again") from exc


def _is_duckdb(path: Path) -> bool:
    """DuckDB files carry the magic bytes ``DUCK`` after an 8-byte checksum."""
    try:
        with path.open("rb") as fh:
            return fh.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


@contextmanager
def atomic_target(db: Path, force: bool = False, after: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path; on normal exit it replaces ``db``, on error it is removed.

    ``db`` must be absent, empty or a database harmonise built; ``force`` replaces any regular file.
    ``after`` runs once the new database is in place, still under the build lock (the build cache)."""
    db = db.resolve() if db.parent.exists() else db
    if not db.parent.exists():
        raise UsageError(f"{db.parent}: folder does not exist; create it or choose another --db path")
    if db.exists() and db.is_dir():
        raise UsageError(f"{db}: is a folder; --db needs a file path")
    if db.exists() and not db.is_file():
        raise UsageError(f"{db}: is not a regular file (a device, pipe or socket); --db needs a database file path")
    if db.is_file() and db.stat().st_size and not force and not _is_duckdb(db):
        raise UsageError(f"{db}: exists and is not a DuckDB database; refusing to replace it — "
                         "choose another --db path, or pass --force to replace it")
    lock_path = db.with_name(db.name + ".lock")
    try:
        fh = lock_path.open("a+")
    except OSError as exc:
        raise UsageError(f"{db}: cannot create the build lock {lock_path.name} beside it ({exc.strerror or exc}); "
                         "choose a --db path in a folder you can write to") from None
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(f"{db}: another harmonise build is writing this database; "
                              "wait for it to finish or choose another --db path") from None
        for stale in _leftovers(db):
            _remove(stale)
        why = _built_by_harmonise(db) if db.is_file() and db.stat().st_size and not force else None
        if why:
            raise UsageError(f"{db}: {why}; refusing to replace it — choose another --db path, "
                             "or pass --force to replace it")
        tmp = db.with_name(f"{db.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            yield tmp
            verify(tmp)
            db.with_name(db.name + ".wal").unlink(missing_ok=True)  # the old file's log would not match the new one
            os.replace(tmp, db)
            dirfd = os.open(db.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
            verify(db)
            if after is not None:
                after()
        finally:
            for suffix in LEFTOVER_SUFFIXES:
                _remove(tmp.with_name(tmp.name + suffix))
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()
