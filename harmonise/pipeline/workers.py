"""Groups of files harmonised in worker processes, each into a DuckDB file of its own, merged into the
build's database in job order: how many workers and which groups (:func:`plan_groups`), the workers'
private folder, the pool (forked on Linux), and the merges (:class:`Merge`)."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Container, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb

from harmonise.compile.sqltext import quote_ident
from harmonise.discover import Job
from harmonise.pipeline.batch import (
    CHUNK_ROWS,
    Hasher,
    Outcome,
    PreparedFile,
    Progress,
    batches,
    prepare_file,
    run_batch,
)
from harmonise.pipeline.located import located
from harmonise.pipeline.rows import ProvenanceRows
from harmonise.procs import die_with_parent
from harmonise.samework import SameWork
from harmonise.spec.project import Project, load_project
from harmonise.store.atomic import open_build
from harmonise.store.provenance import append_database
from harmonise.store.respondents import (
    create_all,
)

Idle = Callable[[list[tuple[str, str]]], bool]  # given the survey-waves complete so far: True when it did some work
PARALLEL_MIN_BYTES = 64 * 2**20  # below this (all files together) worker processes cost more than they save


def default_jobs(jobs: list[Job]) -> int:
    """Worker processes used when ``--jobs`` is not given: one per core and file once the files are
    large enough to repay the workers (starting them, and merging their files into the database)."""
    size = sum(j.path.stat().st_size for j in jobs)
    return 1 if size < PARALLEL_MIN_BYTES else max(1, min(os.cpu_count() or 1, len(jobs)))



def plan_groups(files: list[PreparedFile], kept: Container[int], workers: int | None
          ) -> tuple[int, list[tuple[str, list[list[PreparedFile]]]]]:
    """The worker processes (``workers``, or :func:`default_jobs` of the files to harmonise) and the
    :func:`_segments` of ``files`` when those whose ``id`` is in ``kept`` are kept."""
    if workers is None:
        workers = default_jobs([f.job for f in files if id(f) not in kept])
    rows = group_rows(sum(f.src.meta.rows or 0 for f in files if id(f) not in kept and f.small), workers)
    return workers, _segments(files, kept, rows)


def parallel(workers: int, segments: list[tuple[str, list[list[PreparedFile]]]]) -> bool:
    """Whether the groups to harmonise go to worker processes: more than one worker and group."""
    return workers > 1 and sum(len(groups) for kind, groups in segments if kind == "fresh") > 1


@dataclass
class Started:
    """Workers started before the files to harmonise were known for sure (:func:`early_workers`): the pool,
    its jobs folder, and per group of files (their ids) the worker's future and the file it writes."""

    pool: ProcessPoolExecutor
    folder: Path
    groups: dict[tuple[int, ...], tuple[Future[list[Outcome]], Path]]


def early_workers(files: list[PreparedFile], kept: Container[int], workers: int | None, project: Project,
                   mappings: list[Path] | None, same: SameWork, encoding: str | None,
                   jobs_folder: Callable[[], Path]) -> Started | None:
    """The workers for the files not ``kept``, started now on their groups, when those go to workers: they
    harmonise while the main process checks the kept files against the previous database. A group the final
    plan does not have (a kept file the previous database lacks) is left unused, its file removed with the
    jobs folder (``jobs_folder()``, which the caller removes)."""
    workers, segments = plan_groups(files, kept, workers)
    if not parallel(workers, segments):
        return None
    fresh = [g for kind, groups in segments if kind == "fresh" for g in groups]
    folder = jobs_folder()
    workers = min(workers, len(fresh))
    pool = _pool(workers, project, mappings, same)
    return Started(pool, folder, {_key(g): _submit(pool, g, folder / f"early-{i}.duckdb", encoding, workers)
                                   for i, g in enumerate(fresh)})


def _key(group: list[PreparedFile]) -> tuple[int, ...]:
    return tuple(map(id, group))


def _submit(pool: ProcessPoolExecutor, group: list[PreparedFile], path: Path, encoding: str | None,
            workers: int) -> tuple[Future[list[Outcome]], Path]:
    """``group`` harmonised by one of the pool's ``workers`` into ``path``: the future and the path. A worker
    reads its files through a forked reader when a core is left for it."""
    prefetch = (os.cpu_count() or 1) > workers
    spilled = [(str(f.spilled), f.hasher.result()) if f.spilled is not None else None for f in group]
    return pool.submit(_worker, [f.job for f in group], str(path), encoding, prefetch, spilled), path


def _pool(workers: int, project: Project, mappings: list[Path] | None, same: SameWork) -> ProcessPoolExecutor:
    """``workers`` processes, forked on Linux (docs/decisions.md 46), spawned elsewhere (macOS's system
    libraries are not fork-safe): a forked worker starts with harmonise imported, ``project`` loaded and the
    SQL ``same`` compiled already, where a spawned one imports and loads them (about a second of a core
    each). The fork happens while no query runs, and a worker never touches the database this process has
    open: it opens its own file."""
    if sys.platform.startswith("linux"):
        return ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=_worker_init,
                                   initargs=(project.root, mappings, os.getpid(), project, same))
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(project.root, mappings, os.getpid()))


def _segments(files: list[PreparedFile], hits: Container[int], rows: int = CHUNK_ROWS
              ) -> list[tuple[str, list[list[PreparedFile]]]]:
    """The files in job order as runs of reused files (one group each) and of files to harmonise (in
    :func:`batches` of up to ``rows`` rows)."""
    out: list[tuple[str, list[list[PreparedFile]]]] = []
    for reused, run in itertools.groupby(files, key=lambda f: id(f) in hits):
        members = list(run)
        out.append(("reuse", [members]) if reused else ("fresh", batches(members, rows)))
    return out


def group_rows(small: int, workers: int) -> int:
    """The rows of a group of small files when ``small`` rows of them are to be harmonised by ``workers``
    processes: :data:`CHUNK_ROWS`, or an even share when they hold fewer than ``workers`` times that (a
    rebuild harmonising one wave's 30 country files of 2,000 rows again made groups of 25 and 5 files, one
    worker waiting on the other; now 15 and 15)."""
    return CHUNK_ROWS if workers <= 1 or small <= 0 else max(1, min(CHUNK_ROWS, -(-small // workers)))



def in_workers(segments: list[tuple[str, list[list[PreparedFile]]]], con: duckdb.DuckDBPyConnection, project: Project,
                encoding: str | None, progress: Progress | None, workers: int, mappings: list[Path] | None,
                reuse: Callable[[list[PreparedFile], ProvenanceRows | None], None],
                prepare: Callable[[list[PreparedFile]], ProvenanceRows], idle: Idle | None, started: Started | None,
                same: SameWork, jobs_folder: Callable[[], Path]) -> list[Outcome]:
    """Each group of files to harmonise in a worker process, into a DuckDB file of its own, merged into
    ``con`` in job order; runs of reused files are written by this process (``reuse``) in their place.
    While a worker's group is not ready, the next runs of reused files are checked and their provenance
    rows made (``prepare``), to be written in their turn; then ``idle`` is called with the survey-waves
    whose every file is in ``con`` and some harmonised afresh, until it has nothing to do. ``started``: the
    workers, started already on the groups they were given (:func:`early_workers`); ``same``: what this
    process compiled already (a forked worker starts with it); ``jobs_folder()``: the folder for the workers'
    files (made once, removed by the caller)."""
    fresh = [g for kind, groups in segments if kind == "fresh" for g in groups]
    ready: dict[int, ProvenanceRows] = {}
    ordered = [g for _, groups in segments for g in groups]
    last = {wave_of(f): i for i, g in enumerate(ordered) for f in g}
    harmonised = {wave_of(f) for g in fresh for f in g}
    complete: list[tuple[str, str]] = []
    workers = min(workers, len(fresh))
    outcomes: list[Outcome] = []
    with ExitStack() as stack:
        if started is not None:  # its folder is removed by the caller, after the pool's shutdown here
            folder, pool = started.folder, stack.enter_context(started.pool)
        else:
            folder = jobs_folder()
            pool = stack.enter_context(_pool(workers, project, mappings, same))
        futures: dict[int, Future[list[Outcome]]] = {}
        written: dict[int, Path] = {}
        merges: dict[int, Merge] = {}
        turn = {id(g): i for i, g in enumerate(fresh)}
        merger = stack.enter_context(ThreadPoolExecutor(workers, thread_name_prefix="harmonise-merge"))
        stack.callback(_close_all, merges, ready)
        for i, g in enumerate(fresh):
            early = started.groups.get(_key(g)) if started is not None else None
            futures[id(g)], written[id(g)] = early or _submit(pool, g, folder / f"job-{i}.duckdb", encoding, workers)
        for position, g in enumerate(ordered):
            if id(g) not in futures:
                reuse(g, ready.pop(id(g), None))
                outcomes.extend(f.out for f in g)
            else:
                waiting = futures[id(g)]
                while not waiting.done() and (todo := next((r for r in ordered[position + 1:]
                                                             if id(r) not in futures and id(r) not in ready), None)):
                    ready[id(todo)] = prepare(todo)
                    ready[id(todo)].stage(con)  # committed after the worker's rows
                while idle is not None and not waiting.done() and idle(complete):
                    pass
                rest = fresh[turn[id(g)]:]
                while True:  # every group done is merged at once, this one's and later ones', committed in turn
                    for r in rest:
                        if id(r) not in merges and futures[id(r)].done() and futures[id(r)].exception() is None:
                            merges[id(r)] = Merge(con, written[id(r)], merger)
                    mine = merges.get(id(g))
                    if mine is not None and mine.future.done() or waiting.done() and waiting.exception() is not None:
                        break
                    pending: list[Future[Any]] = [futures[id(r)] for r in rest if id(r) not in merges]
                    wait([*pending, *([mine.future] if mine else [])], return_when=FIRST_COMPLETED)
                jobs = [f.job for f in g]
                with located(jobs):
                    outs = waiting.result()
                    if all(f.done() for f in futures.values()):
                        pool.shutdown(wait=False)  # the workers exit while their last files are merged (~0.3 s)
                    merges.pop(id(g)).commit()
                for job, out in zip(jobs, outs):
                    out.job = job  # the worker's copy came back without the opened file
                    outcomes.append(out)
                    if progress:
                        progress(f"{out.job.crosswalk.survey} {out.job.wave.wave}: {out.rows:,} rows")
            complete.extend(w for w in dict.fromkeys(wave_of(f) for f in g) if last[w] == position and w in harmonised)
    return outcomes


class Merge:
    """A worker's database file appended by ``merger`` (a thread) on a cursor of its own, in a transaction that
    :meth:`commit` ends in the group's turn: groups done at about the same time are merged at once, and a
    group done before the one ahead of it is merged while that one is still harmonised (DuckDB places a
    transaction's appended rows at its commit, so the tables hold the groups in their order; decision 56).
    :meth:`close` rolls back what was not committed."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, merger: ThreadPoolExecutor) -> None:
        (database,) = con.execute("SELECT current_database()").fetchall()[0]
        self._cur = con.cursor()
        self.future = merger.submit(self._append, database, path)

    def _append(self, database: str, path: Path) -> None:
        self._cur.execute(f"USE {quote_ident(database)}")  # a cursor starts in the default database
        self._cur.execute("BEGIN TRANSACTION")
        append_database(self._cur, path, f"merge_{path.stem}")

    def commit(self) -> None:
        """Wait for the append and commit it; raises its error (then nothing of it is kept)."""
        try:
            self.future.result()
            self._cur.execute("COMMIT")
        finally:
            self._cur.close()

    def close(self) -> None:
        if not self.future.done():
            self._cur.interrupt()  # a failed build: the append is not needed
        wait([self.future])
        self._cur.close()


def _close_all(merges: dict[int, Merge], ready: dict[int, ProvenanceRows]) -> None:
    """Roll back the merges and staged rows a failed build left uncommitted (before the merger's shutdown)."""
    for m in merges.values():
        m.close()
    for r in ready.values():
        r.close()


def wave_of(f: PreparedFile) -> tuple[str, str]:
    return f.job.crosswalk.survey, f.job.wave.wave


@contextmanager
def workers_folder(con: duckdb.DuckDBPyConnection) -> Iterator[Path]:
    """A private folder (0700) for the workers' files: ``<database file>.jobs`` beside the file ``con`` writes,
    or a temporary folder for an in-memory database (``validate --data``); removed afterwards."""
    # fetchall: a result fetched only in part stays pending and stops the connection's next register()
    row = next(iter(con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
                    .fetchall()), None)
    if row and row[0]:
        folder = Path(str(row[0]) + ".jobs")
        folder.mkdir(mode=0o700)
    else:
        _remove_orphans(Path(tempfile.gettempdir()))
        folder = Path(tempfile.mkdtemp(prefix=f"harmonise-jobs-{os.getpid()}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_ORPHAN = re.compile(r"harmonise-jobs-([0-9]+)-[a-z0-9_]{8}")


def _remove_orphans(tmp: Path) -> None:
    """Remove the workers' folders (``harmonise-jobs-<pid>-<random>``, this user's) that a `validate --data` killed
    by SIGKILL or the OOM killer left in the temporary folder ``tmp``, with the workers' DuckDB files of
    harmonised microdata: those whose process is gone (a process of that id that runs, or that this user may
    not signal, keeps its folder)."""
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        found = _ORPHAN.fullmatch(name)
        if found is None:
            continue
        path = tmp / name
        try:
            st = path.lstat()
            os.kill(int(found.group(1)), 0)
        except ProcessLookupError:  # its process is gone
            if path.is_dir() and not path.is_symlink() and st.st_uid == os.getuid():
                shutil.rmtree(path, ignore_errors=True)
        except (OSError, OverflowError):  # alive under another user, or vanished meanwhile
            continue


_WORKER: dict[str, Project | SameWork] = {}


def _worker_init(root: Path, mappings: list[Path] | None, parent: int, project: Project | None = None,
                 same: SameWork | None = None) -> None:
    """A worker's start: it dies with ``parent``; a forked worker is handed the parent's ``project`` and
    ``same`` (not pickled), a spawned one loads the project from ``root`` and ``mappings``."""
    die_with_parent(parent)
    _WORKER["project"] = project if project is not None else load_project(root, mappings or None)
    if same is not None:
        _WORKER["same"] = same


def _worker(jobs: list[Job], path: str, encoding: str | None, prefetch: bool,
            spilled: list[tuple[str, str] | None]) -> list[Outcome]:
    """Harmonise a group of ``jobs`` into the database file ``path``; ``spilled``: per job, the file of its rows that
    :func:`read_once` wrote and the data file's digest (None: it is read from its data file)."""
    project = _WORKER["project"]
    same = _WORKER.setdefault("same", SameWork())
    assert isinstance(project, Project) and isinstance(same, SameWork) and project.schema is not None
    con = open_build(Path(path))
    try:
        con.execute("SET threads = 1")  # the workers already use the cores
        create_all(con, project.schema)
        with located(jobs, project, encoding):
            files = [prepare_file(job, project, same, encoding) for job in jobs]
            for f, spill in zip(files, spilled):
                if spill is not None:
                    f.spilled, f.hasher = Path(spill[0]), Hasher(f.job.path, spill[1])
            run_batch(files, con, project, same, CHUNK_ROWS, None, prefetch)
        outs = [f.out for f in files]
        for out in outs:
            out.job = replace(out.job, source=None)  # the main process has it: not sent back
        return outs
    finally:
        con.close()
