"""The build cache beside a database: what an incremental build reuses of the previous one.

``<db>.cache/index.duckdb`` (folder mode 0700) describes the database at ``<db>`` as the last
successful build wrote it:

- ``scans``: each read file's header (variables, labels, missing codes) and content values, by the
  sha256 of its bytes, so discovery does not parse an unchanged file again (``metas`` holds each
  distinct set of variables once: a wave's country files share theirs);
- ``files``: each harmonised file by its *key* — a digest of its bytes, name, compiled SQL, profile,
  the declarations pandera checks against, the build options and the harmonise version
  (``pipeline.file_key``) — with its row count, the pandera failures and the harmonisation report
  rows (``reports``, ``failures``) and the first row of its edition variables;
- ``waves``: each survey-wave's stored indicator rows (``indicator_rows``: their number and the column
  types the estimator gave them; the rows are the database's) by a key over its files' keys, the build
  options, harmonise's code, the lineage columns the quality flags read, the sampling type and the
  indicator definitions (a wave harmonised again into the previous database's rows keeps them:
  ``previous_wave``, ``same_rows``);
- ``stats``: each harmonised file's path, device, inode, size and modification and change times with
  its sha256, so a build does not hash again a file no write has touched since (:meth:`BuildCache.hashes`);
- ``info``: the cache format, the harmonise and DuckDB versions and the identity (device, inode, size,
  modification time) of the database file it describes.

A build the index checks out for starts its new database as a copy of the previous one
(:meth:`BuildCache.start`). A file whose key is unchanged keeps its respondents rows where they are;
the rows of every other file are deleted (:meth:`BuildCache.keep_rows`) and the files harmonised
again are appended; every other table is written anew, the provenance rows of kept files from the
cached report and failures exactly as a full build writes them. Nothing is trusted that does not
check out: an index of another format, version or database file is ignored, a file is reused only if
the previous database holds as many rows of it as the index says (and no other file of its name),
and an index that does not open is rebuilt. The index is written to a temporary name and renamed over the old one only after
the new database replaced the old (:func:`harmonise.store.atomic.atomic_target`), so a failed build
leaves the previous database with its own index, never a half-written one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import pickle
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from harmonise import __version__
from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.readers.files import SourceFile, extension_agrees
from harmonise.spec.source import VarMeta
from harmonise.store.connect import seal
from harmonise.store.headers import source_from, source_json, variables_from, variables_json
from harmonise.store.identity import hash_files
from harmonise.store.provenance import insert_rows

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

FORMAT = "5"  # the index layout; an index of another format is ignored
SUFFIX = ".cache"
INDEX = "index.duckdb"
PREVIOUS = "previous"  # the previous database, attached read-only to the build connection

ReportRow = tuple[str, str | None, str | None, str | None, int]
FailureRow = tuple[str, str, str | None, int | None, int | None]

TABLES = {
    "info": "name VARCHAR, value VARCHAR",
    "metas": "digest VARCHAR, variables VARCHAR",
    "scans": "sha256 VARCHAR, encoding VARCHAR, names VARCHAR, digest VARCHAR, source VARCHAR, seen VARCHAR",
    "files": "key VARCHAR, position INTEGER, survey VARCHAR, wave VARCHAR, file_name VARCHAR, rows BIGINT, "
             "sha256 VARCHAR, first VARCHAR, unset VARCHAR",
    "reports": "key VARCHAR, seq INTEGER, target VARCHAR, source_code VARCHAR, target_value VARCHAR, "
               "missing_reason VARCHAR, n BIGINT",
    "failures": 'key VARCHAR, seq INTEGER, "column" VARCHAR, "check" VARCHAR, failure_case VARCHAR, source_row BIGINT, '
                "n BIGINT",
    "waves": "key VARCHAR, survey VARCHAR, wave VARCHAR, dtypes VARCHAR, n BIGINT",
    "stats": "path VARCHAR, dev BIGINT, ino BIGINT, size BIGINT, mtime_ns BIGINT, ctime_ns BIGINT, sha256 VARCHAR",
    # a file's findings (unlocated issues, as JSON) and what they were a function of beyond the file's key
    "findings": "key VARCHAR, findings_key VARCHAR, body VARCHAR",
}
SETTLED_NS = 2_000_000_000  # a file's stat is kept only when it last changed this long before the build began


def folder_of(db: Path) -> Path:
    """``<db>.cache``: the cache folder of the database ``db``."""
    return db.with_name(db.name + SUFFIX)


def identity(path: Path) -> str:
    """What tells a database file from any other that took its place: device, inode, size, modification time."""
    st = path.stat()
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _jsonable(value: object) -> object:
    """A first-row value as JSON holds it (NaN and pandas' missing values as null)."""
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()  # type: ignore[union-attr]
    return value if isinstance(value, (int, float, str, bool)) else str(value)


@dataclass
class CachedFile:
    """What a full build computes from a file's rows, kept to write its provenance again without reading it."""

    key: str
    survey: str
    wave: str
    file_name: str
    rows: int
    sha256: str
    first: dict[str, object] = field(default_factory=dict)
    report: list[ReportRow] = field(default_factory=list)
    failures: list[FailureRow] = field(default_factory=list)
    unset: dict[str, int] = field(default_factory=dict)  # rows without a value of each content variable (a round's)
    # the file's findings (:func:`findings_json`) and their key (the plan, declared codebook and path they come from)
    findings_key: str = ""
    findings: str | None = None


@dataclass
class KeptIndicators:
    """A survey-wave's indicator rows as the previous database holds them (attached as ``previous``)."""

    con: duckdb.DuckDBPyConnection
    survey: str
    wave: str
    dtypes: dict[str, str]  # the estimator's column types (DuckDB reads nullable integers back as floats)

    @property
    def sql(self) -> str:
        """A SELECT of the rows."""
        return (f"SELECT * FROM {PREVIOUS}.main.indicators WHERE survey = {sql_literal(self.survey)} "
                f"AND wave = {sql_literal(self.wave)}")

    def frame(self) -> pd.DataFrame:
        """The rows as the estimator gave them."""
        return self.con.execute(self.sql).df().astype(self.dtypes)


@dataclass
class Scan:
    """What discovery read of a file: its header and the values of the content variables it holds."""

    source: SourceFile
    seen: dict[str, set[str]]
    variables: str = ""  # the sha256 of the variables' JSON (the same for files of equal variables)


class BuildCache:
    """The cache of the database ``db``: read at the start of a build (unless ``full``), written after it."""

    def __init__(self, db: Path, *, full: bool = False) -> None:
        self.db = db
        self.folder = folder_of(db)
        self.scans: dict[tuple[str, str, str], tuple[str, str, str]] = {}  # (sha, encoding, names) → digest, source, seen
        self.metas: dict[str, str] = {}  # digest → variables JSON
        self.files: dict[str, tuple[int, str, str, str, int, str, str, str]] = {}  # key → position, survey, … (index row)
        self.waves: dict[str, tuple[str, str, str, int]] = {}  # indicator key → survey, wave, dtypes, rows
        self.previous: Path | None = None  # the database the index describes, when it checks out
        self._parsed: dict[str, dict[str, VarMeta]] = {}
        self._new_scans: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        self._new_metas: dict[str, str] = {}
        self._new_files: list[CachedFile] = []
        self._new_paths: list[Path] = []
        self.stats: dict[str, tuple[int, int, int, int, int, str]] = {}  # real path → dev, ino, size, times, sha256
        self.began = time.time_ns()
        self._new_waves: list[tuple[str, str, str, str, int]] = []
        self._pending: dict[str, tuple[tuple[str, str], tuple[str, str, str]]] = {}  # path → scan without its sha
        self._texts: dict[bytes, tuple[str, str]] = {}
        self._kept: set[str] = set()  # keys of files whose rows the previous index holds
        self.seeded = False  # the new database is a copy of the previous one holding its rows (:meth:`start`)
        self._attached = 0  # nested :meth:`attach` calls not yet detached
        self._writing: tuple[Path, threading.Thread, list[BaseException]] | None = None  # :meth:`prepare`
        self._made = False  # :meth:`prepare` made the folder (a first build)
        if not full:
            self._load()

    # --- reading ----------------------------------------------------------------------------------------------
    def _load(self) -> None:
        import duckdb

        index = self.folder / INDEX
        if not index.is_file():
            return
        try:
            con = duckdb.connect(str(index), read_only=True)
        except duckdb.Error:
            return  # damaged: rebuilt
        try:
            info = dict(con.execute("SELECT name, value FROM info").fetchall())
            if info.get("format") != FORMAT or info.get("version") != __version__ or \
                    info.get("duckdb") != duckdb.__version__:
                return  # another version of harmonise (or DuckDB: its storage) wrote it
            if not self.db.is_file() or info.get("database") != identity(self.db):
                return  # it describes another database (or none is there)
            self.metas = dict(con.execute("SELECT digest, variables FROM metas").fetchall())
            self.scans = {(s, e, n): (d, src, seen) for s, e, n, d, src, seen in
                          con.execute("SELECT sha256, encoding, names, digest, source, seen FROM scans").fetchall()}
            self.files = {r[0]: tuple(r[1:]) for r in con.execute(  # type: ignore[misc]
                "SELECT key, position, survey, wave, file_name, rows, sha256, first, unset FROM files").fetchall()}
            self.waves = {r[0]: (r[1], r[2], r[3], int(r[4])) for r in
                          con.execute("SELECT key, survey, wave, dtypes, n FROM waves").fetchall()}
            self.stats = {r[0]: tuple(r[1:]) for r in con.execute(  # type: ignore[misc]
                "SELECT path, dev, ino, size, mtime_ns, ctime_ns, sha256 FROM stats").fetchall()}
        except (duckdb.Error, ValueError, TypeError):  # damaged: rebuilt
            self.metas, self.scans, self.files, self.waves, self.stats = {}, {}, {}, {}, {}
            return
        finally:
            con.close()
        self.previous = self.db

    def several_waves(self) -> set[str]:
        """The sha256 of the files the previous build harmonised as several waves (a cumulative file read wave by
        wave): read so again without a first run finding out."""
        waves: dict[str, set[tuple[str, str]]] = {}
        for _, survey, wave, _, _, sha256, _, _ in self.files.values():
            waves.setdefault(sha256, set()).add((survey, wave))
        return {sha for sha, found in waves.items() if len(found) > 1}

    def scan(self, sha256: str, encoding: str | None, names: Sequence[str], path: Path) -> Scan | None:
        """The cached header and content values of the file with these bytes, read with ``encoding``."""
        key = (sha256, encoding or "", ",".join(names))
        hit = self.scans.get(key)
        if hit is None or hit[0] not in self.metas:
            return None
        digest_, source, seen = hit
        try:
            if digest_ not in self._parsed:
                self._parsed[digest_] = variables_from(self.metas[digest_])
            src = source_from(path, source, self._parsed[digest_])
            values = {k: set(v) for k, v in json.loads(seen).items()}
        except (ValueError, TypeError, KeyError, IndexError):
            return None  # a damaged row: the file is read again
        if not extension_agrees(path, src.format):
            return None  # the same bytes renamed to another format's extension: read, and refused, again
        self._new_scans[key] = hit  # still this build's: kept in the new index as it was
        self._new_metas[digest_] = self.metas[digest_]
        return Scan(src, values, digest_)

    def harmonised(self, con: duckdb.DuckDBPyConnection, keys: Sequence[str]) -> dict[str, CachedFile]:
        """The cached files among ``keys`` whose rows the previous database holds (attached to ``con`` as
        ``previous`` by :meth:`attach`), with their report and failures."""
        wanted = [k for k in dict.fromkeys(keys) if k in self.files]
        if not wanted or self.previous is None:
            return {}
        names: dict[tuple[str, str, str], int] = {}
        for row in self.files.values():
            names[(row[1], row[2], row[3])] = names.get((row[1], row[2], row[3]), 0) + 1
        counts = {(str(s), str(w), str(f)): int(n) for s, w, f, n in con.execute(
            f"SELECT survey, wave, source_file, count(*) FROM {PREVIOUS}.main.respondents GROUP BY ALL").fetchall()}
        out: dict[str, CachedFile] = {}
        for key in wanted:
            _, survey, wave, name, rows, sha, first, unset = self.files[key]
            if names[(survey, wave, name)] == 1 and counts.get((survey, wave, name), 0) == rows:
                out[key] = CachedFile(key, survey, wave, name, rows, sha, json.loads(first), unset=json.loads(unset))
        if out:
            index = self.folder / INDEX
            con.execute(f"ATTACH {sql_literal(str(index))} AS cache_index (READ_ONLY)")
            try:
                con.execute("CREATE OR REPLACE TEMP TABLE __keys (key VARCHAR)")
                insert_rows(con, "__keys", [[k] for k in out])
                # a file's rows are consecutive: sliced off their key per file (247,000 report rows for 268 files)
                for key, held in groupby(con.execute(
                        "SELECT r.key, target, source_code, target_value, missing_reason, n FROM cache_index.reports r "
                        "JOIN __keys USING (key) ORDER BY r.key, seq").fetchall(), key=itemgetter(0)):
                    out[key].report.extend([r[1:] for r in held])
                for key, held in groupby(con.execute(
                        'SELECT f.key, "column", "check", failure_case, source_row, n FROM cache_index.failures f '
                        "JOIN __keys USING (key) ORDER BY f.key, seq").fetchall(), key=itemgetter(0)):
                    out[key].failures.extend([r[1:] for r in held])
                for key, findings_key, body in con.execute(
                        "SELECT key, findings_key, body FROM cache_index.findings JOIN __keys USING (key)").fetchall():
                    out[key].findings_key, out[key].findings = findings_key, body
            finally:
                con.execute("DROP TABLE IF EXISTS __keys")
                con.execute("DETACH cache_index")
        return out

    def attach(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Attach the previous database read-only as ``previous`` (calls nest: each is undone by one
        :meth:`detach`); False (nothing reusable) when it does not open."""
        import duckdb

        if self.previous is None:
            return False
        if not self._attached:
            try:
                con.execute(f"ATTACH {sql_literal(str(self.previous))} AS {PREVIOUS} (READ_ONLY)")
            except duckdb.Error:  # it does not open: nothing of it is reused
                self.previous = None
                return False
        self._attached += 1
        return True

    def detach(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._attached:
            self._attached -= 1
            if not self._attached:
                con.execute(f"DETACH {PREVIOUS}")

    def start(self, path: Path) -> duckdb.DuckDBPyConnection:
        """The build connection to the new database at ``path``: when the index describes a previous database,
        a copy of it holding only its ``respondents`` table (:attr:`seeded`: the rows of files the build keeps
        are in place, see :meth:`keep_rows`), else an empty file."""
        import duckdb

        from harmonise.store.atomic import open_build

        if self.previous is not None:
            try:
                shutil.copyfile(self.previous, path)
                con = open_build(path)
                try:
                    for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                                "current_database() AND table_name <> 'respondents'").fetchall():
                        con.execute(f"DROP TABLE {quote_ident(table)}")  # written anew by the build
                except BaseException:
                    con.close()
                    raise
                self.seeded = True
                return con
            except (OSError, duckdb.Error):  # not copied or does not open: nothing of it is reused
                self.previous = None
                for leftover in (path, path.with_name(path.name + ".wal")):
                    leftover.unlink(missing_ok=True)
        return open_build(path)

    def keep_rows(self, con: duckdb.DuckDBPyConnection, files: Sequence[CachedFile]) -> None:
        """In a :attr:`seeded` database, delete the respondents rows of every file but ``files`` (those the
        build keeps): the rows left are the kept files', in the order the previous database stored them."""
        con.execute("CREATE OR REPLACE TEMP TABLE __kept (survey VARCHAR, wave VARCHAR, source_file VARCHAR)")
        insert_rows(con, "__kept", [[f.survey, f.wave, f.file_name] for f in files])
        try:
            con.execute("DELETE FROM main.respondents WHERE NOT ifnull((survey, wave, source_file) IN "
                        "(SELECT survey, wave, source_file FROM __kept), false)")
        finally:
            con.execute("DROP TABLE __kept")

    def previous_wave(self, survey: str, wave: str) -> tuple[str, list[str]] | None:
        """The key the previous build stored a survey-wave's indicator rows by, and the keys of the wave's
        files in that build (in build order); None when it stored none."""
        found = [k for k, (s, w, _, _) in self.waves.items() if (s, w) == (survey, wave)]
        if len(found) != 1 or self.previous is None:
            return None
        files = sorted((row[0], key) for key, row in self.files.items() if (row[1], row[2]) == (survey, wave))
        return found[0], [key for _, key in files]

    def same_rows(self, con: duckdb.DuckDBPyConnection, survey: str, wave: str,
                  only: Sequence[str] | None = None) -> bool:
        """Whether the survey-wave's respondents rows in ``con`` are those the previous database holds
        (the same columns and, compared as multisets, the same rows); with ``only``, the same values in
        those of them the table has (the rows still paired by file and row)."""
        import duckdb

        if not self.attach(con):
            return False
        try:
            columns = ("SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = {} "
                       "AND schema_name = 'main' AND table_name = 'respondents' ORDER BY column_index")
            if con.execute(columns.format("current_database()")).fetchall() != \
                    con.execute(columns.format(sql_literal(PREVIOUS))).fetchall():
                return False
            # rows paired by (file, row): with as many rows on both sides and no pair repeated in this build's,
            # no unpaired or differing row means the same rows (a join is ~5 x faster than EXCEPT ALL here)
            where = "WHERE survey = $survey AND wave = $wave"
            new, old = f"main.respondents {where}", f"{PREVIOUS}.main.respondents {where}"
            picked = "*"
            if only is not None:
                have = {c for (c, _) in con.execute(columns.format("current_database()")).fetchall()}
                picked = ", ".join(quote_ident(c) for c in ["source_file", "source_row", *sorted(set(only) & have)])
            (same,) = con.execute(
                f"SELECT (SELECT count(*) FROM {new}) = (SELECT count(*) FROM {old}) "
                f"AND (SELECT count(*) = count(DISTINCT (source_file, source_row)) FROM {new}) "
                f"AND NOT EXISTS (SELECT 1 FROM (SELECT {picked} FROM {new}) n FULL JOIN (SELECT {picked} FROM {old}) o "
                "ON n.source_file = o.source_file AND n.source_row = o.source_row WHERE n IS DISTINCT FROM o)",
                {"survey": survey, "wave": wave}).fetchall()[0]
            return bool(same)
        except duckdb.Error:
            return False
        finally:
            self.detach(con)

    def indicator_rows(self, con: duckdb.DuckDBPyConnection, key: str, keep_as: str | None = None
                       ) -> KeptIndicators | None:
        """The stored indicator rows of a survey-wave whose key is ``key``, as the previous database holds them
        (None when the index has no such key or that database does not hold as many rows of the wave), kept in
        the new index by their key or by ``keep_as``. Read them while the previous database is attached
        (:meth:`attach`)."""
        import duckdb

        if key not in self.waves or not self.attach(con):
            return None
        survey, wave, dtypes, n = self.waves[key]
        try:
            kept = KeptIndicators(con, survey, wave, json.loads(dtypes))
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
                "AND table_name = 'indicators' ORDER BY column_index", [PREVIOUS]).fetchall()]
            if columns != list(kept.dtypes) or con.execute(f"SELECT count(*) FROM ({kept.sql})").fetchall()[0][0] != n:
                return None
        except (duckdb.Error, ValueError, TypeError):
            return None
        finally:
            self.detach(con)
        self._new_waves.append((keep_as or key, survey, wave, dtypes, n))
        return kept

    # --- writing ------------------------------------------------------------------------------------------------
    def note_scan(self, path: Path, encoding: str | None, names: Sequence[str], src: SourceFile,
                  seen: dict[str, set[str]], sha256: str | None = None, same_meta: str | None = None) -> None:
        """Keep what discovery read of a file for the next build (its sha256 now, or from :meth:`note_file`);
        ``same_meta``: a digest equal for files of equal metadata (their variables are serialised once)."""
        quick = same_meta.encode() if same_meta is not None else \
            hashlib.blake2b(pickle.dumps(src.meta.variables, protocol=5), digest_size=16).digest()
        if quick not in self._texts:  # one wave's country files share their variables: serialised once
            text = variables_json(src.meta)
            self._texts[quick] = (hashlib.sha256(text.encode()).hexdigest(), text)
        d, text = self._texts[quick]
        self._new_metas[d] = text
        self._pending[str(path)] = ((encoding or "", ",".join(names)), (
            d, source_json(src), json.dumps({k: sorted(v) for k, v in seen.items()}, ensure_ascii=False)))
        if sha256 is not None:
            self._keep_scan(str(path), sha256)

    def _keep_scan(self, path: str, sha256: str) -> None:
        scan = self._pending.pop(path, None)
        if scan is not None:
            self._new_scans[(sha256, *scan[0])] = scan[1]

    def note_file(self, cached: CachedFile, path: Path, kept: bool = False) -> None:
        """Keep a harmonised file read from ``path`` (its position in the build is the order of these calls);
        ``kept``: the previous index holds it (its report and failures are copied from there)."""
        self._new_files.append(cached)
        self._new_paths.append(path)
        if kept:
            self._kept.add(cached.key)
        self._keep_scan(str(path), cached.sha256)

    def hashes(self, paths: Sequence[Path], threads: int = 2) -> list[str]:
        """The sha256 of every file: the one the index holds for a path whose device, inode, size, modification
        and change times are those it recorded (no write has touched the file since: a write sets the change
        time, which no user command can set back), else :func:`sha256_of` it (``threads`` at a time)."""
        out: list[str] = [""] * len(paths)
        todo = []
        for i, path in enumerate(paths):
            try:
                st = path.stat()
                known = self.stats.get(os.path.realpath(path))
            except OSError:
                known = None
            if known is not None and known[:5] == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns):
                out[i] = known[5]
            else:
                todo.append(i)
        for i, sha in zip(todo, hash_files([paths[i] for i in todo], threads)):
            out[i] = sha
        return out

    def note_wave(self, key: str, survey: str, wave: str, frame: pd.DataFrame) -> None:
        """Keep a survey-wave's indicator rows (their number and column types: the rows are the database's)."""
        self._new_waves.append((key, survey, wave, json.dumps({c: str(t) for c, t in frame.dtypes.items()}),
                                len(frame)))

    def prepare(self) -> None:
        """Start writing the new index, in a thread, to a temporary file beside the old one: all but the new
        database's identity and the waves' indicator rows, which :meth:`write` adds once they are known (the
        files' reports, ~240,000 rows for 290 country files, are written while the indicators are estimated)."""
        if self._writing is not None:
            return
        self._made = not self.folder.exists()  # a failed first build leaves no empty folder behind (discard)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        for stale in self.folder.iterdir():
            if stale.name.startswith(INDEX + ".tmp-"):
                _remove(stale)
        tmp = self.folder / f"{INDEX}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        failed: list[BaseException] = []

        def fill() -> None:
            import duckdb

            try:
                out = seal(duckdb.connect(str(tmp)), lock=False)
                try:
                    self._fill(out)
                finally:
                    out.close()
            except BaseException as exc:  # noqa: BLE001  (raised by write(), in the build's thread)
                failed.append(exc)

        thread = threading.Thread(target=fill, name="harmonise-cache-index", daemon=True)
        self._writing = (tmp, thread, failed)
        thread.start()

    def write(self, database: Path) -> None:
        """Write the new index (to a temporary name, renamed into place) for the database file ``database``
        (its identity is recorded: call this once it is in place)."""
        import duckdb

        self.prepare()
        assert self._writing is not None
        tmp, thread, failed = self._writing
        try:
            thread.join()
            if failed:
                raise failed[0]
            out = seal(duckdb.connect(str(tmp)), lock=False)
            try:
                insert_rows(out, "info", [["format", FORMAT], ["version", __version__], ["duckdb", duckdb.__version__],
                                          ["database", identity(database)]])
                self._fill_waves(out)
            finally:
                out.close()
            os.replace(tmp, self.folder / INDEX)
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove what :meth:`prepare` wrote, unless :meth:`write` put it in place (a failed build)."""
        if self._writing is None:
            return
        tmp, thread, _ = self._writing
        thread.join()
        _remove(tmp)
        _remove(tmp.with_name(tmp.name + ".wal"))
        self._writing = None
        if self._made:
            with contextlib.suppress(OSError):  # not empty: another build's files
                self.folder.rmdir()

    def _fill(self, out: duckdb.DuckDBPyConnection) -> None:
        for name, cols in TABLES.items():
            out.execute(f"CREATE TABLE {name} ({cols})")
        insert_rows(out, "metas", [list(r) for r in self._new_metas.items()])
        insert_rows(out, "scans", [[*k, *v] for k, v in self._new_scans.items()])
        import pandas as pd

        files = self._new_files
        insert_rows(out, "files", [
            [f.key, i, f.survey, f.wave, f.file_name, f.rows, f.sha256,
             json.dumps({k: _jsonable(v) for k, v in f.first.items()}, ensure_ascii=False), json.dumps(f.unset)]
            for i, f in enumerate(files)])
        insert_rows(out, "stats", self._stats())
        insert_rows(out, "findings", [[f.key, f.findings_key, f.findings] for f in files if f.findings is not None])
        fresh = [f for f in files if f.key not in self._kept]
        reports = pd.DataFrame([(f.key, i, *r) for f in fresh for i, r in enumerate(f.report)],
                               columns=["key", "seq", "target", "source_code", "target_value", "missing_reason", "n"])
        failures = pd.DataFrame([(f.key, i, *r) for f in fresh for i, r in enumerate(f.failures)],
                                columns=["key", "seq", "column", "check", "failure_case", "source_row", "n"])
        for table, frame in (("reports", reports), ("failures", failures)):
            if len(frame):
                out.register("__rows", frame.astype(object))
                out.execute(f"INSERT INTO {table} SELECT * FROM __rows")
                out.unregister("__rows")
        if self._kept:  # the kept files' rows as the previous index holds them
            out.execute(f"ATTACH {sql_literal(str(self.folder / INDEX))} AS old (READ_ONLY)")
            try:
                out.execute("CREATE TEMP TABLE __kept (key VARCHAR)")
                insert_rows(out, "__kept", [[k] for k in sorted(self._kept)])
                for table in ("reports", "failures"):
                    out.execute(f"INSERT INTO {table} SELECT * FROM old.{table} WHERE key IN (SELECT key FROM __kept)")
            finally:
                out.execute("DETACH old")

    def _stats(self) -> list[list[object]]:
        """The stat of each harmonised file whose last write was :data:`SETTLED_NS` before the build began, so
        the sha256 the build computed is that of the bytes the stat describes (a file written during the build,
        or within the resolution of its file system's times, is hashed again next time)."""
        rows: list[list[object]] = []
        for f, path in zip(self._new_files, self._new_paths):
            try:
                st = path.stat()
                real = os.path.realpath(path)
            except OSError:
                continue
            if max(st.st_mtime_ns, st.st_ctime_ns) < self.began - SETTLED_NS:
                rows.append([real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, f.sha256])
        return rows

    def _fill_waves(self, out: duckdb.DuckDBPyConnection) -> None:
        insert_rows(out, "waves", [list(w) for w in self._new_waves])


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
