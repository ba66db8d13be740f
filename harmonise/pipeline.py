"""Harmonise source files into a DuckDB connection: the path shared by `validate --data` and `build`.

For each (survey, wave, file): read metadata → resolve and statically check
the crosswalk against it → compile SQL → stream the needed columns in chunks
through the SQL → validate each harmonised chunk with pandera → insert, while
counting every (target, source code → target value | missing reason) for the
harmonisation report and the conservation check.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandas as pd

from harmonise import __version__
from harmonise.checks import accounting, drift, inputs, renames
from harmonise.checks.crosswalk import check_crosswalk
from harmonise.compile.profile import VALIDATION_SELECT, profile_sql, report_insert
from harmonise.compile.sql import CompiledWave, compile_wave, plan_and_compile
from harmonise.compile.sqltext import quote_ident
from harmonise.discover import Job, supply
from harmonise.errors import InputError, Issue
from harmonise.procs import die_with_parent
from harmonise.readers.files import SourceFile, open_source
from harmonise.readers.prefetch import prefetched_chunks
from harmonise.spec.coverage import quality_of
from harmonise.spec.expr import referenced_names
from harmonise.spec.project import Project, load_project, without_set_aside
from harmonise.spec.resolve import WavePlan, resolve_wave
from harmonise.spec.schema import TargetSchema
from harmonise.spec.yamlload import LineIndex, locate
from harmonise.store import provenance
from harmonise.store.atomic import open_build
from harmonise.store.provenance import append_database, to_json
from harmonise.store.respondents import create_all, duplicate_ids, insert_select

Progress = Callable[[str], None]
CHUNK_ROWS = 50_000  # rows per chunk: large enough to amortise planning, small enough to keep memory flat
PREFETCH_MIN_ROWS = 10_000  # below this a forked reader costs more than it overlaps
SCRATCH = "harmonise_scratch"  # in-memory database of the chunks being harmonised, shared with the writer
PARALLEL_MIN_BYTES = 64 * 2**20  # below this (all files together) worker processes cost more than they save


@dataclass
class Outcome:
    job: Job
    rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    sha256: str = ""
    seconds: float = 0.0


class _Hasher(threading.Thread):
    """sha256 of a file, computed in a thread beside the harmonisation (started with the first chunk)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.digest = ""

    def run(self) -> None:
        h = hashlib.sha256()
        with self.path.open("rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
        self.digest = h.hexdigest()

    def begin(self) -> None:
        """Start hashing unless it has started."""
        if self.ident is None:
            self.start()

    def result(self) -> str:
        """The digest of the whole file (starts hashing first if it has not started)."""
        self.begin()
        self.join()
        return self.digest


def _source_columns(plan: WavePlan, src: SourceFile) -> list[str]:
    cols = []
    for name in plan.sources():
        vm = src.meta.get(name)
        if vm is not None and vm.name not in cols:
            cols.append(vm.name)
    return cols


def needed_columns(job: Job, project: Project, encoding: str | None = None) -> list[str]:
    """The source columns harmonising ``job`` reads (what a crosswalk wave needs from its file)."""
    assert project.schema is not None
    src = open_source(job.path, encoding or job.wave.encoding)
    supply(job, project, src)
    plan = resolve_wave(job.crosswalk, job.wave, project.schema, project.tables, src.meta.variables, job.supplied)
    return _source_columns(plan, src)


def process(job: Job, con: duckdb.DuckDBPyConnection, project: Project, *, encoding: str | None = None,
            chunksize: int = CHUNK_ROWS, progress: Progress | None = None, prefetch: bool = True) -> Outcome:
    """Harmonise one file into ``con`` (tables already created). Never raises for data problems.

    Chunks of ``chunksize`` rows flow file → DuckDB (compiled SQL) → profile → report stage,
    pandera and ``respondents``, so memory does not grow with the file; with ``prefetch`` a
    forked reader reads the next chunk meanwhile.
    """
    assert project.schema is not None
    t0 = time.perf_counter()
    cw, wave = job.crosswalk, job.wave
    out = Outcome(job)
    src = open_source(job.path, encoding or wave.encoding)
    supply(job, project, src)
    hasher = _Hasher(job.path)
    plan, compiled = plan_and_compile(cw, wave, project, src.meta, stata=src.format == "dta", supplied=job.supplied)
    columns = _source_columns(plan, src)
    # the reader starts now, so reading overlaps the checks below (not worth it for small files)
    chunks = prefetched_chunks(src, columns, chunksize,
                               enabled=prefetch and (src.meta.rows is None or src.meta.rows >= PREFETCH_MIN_ROWS))
    try:
        return _harmonise(job, con, project, src, plan, compiled, chunks, hasher, out, progress, t0)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _harmonise(job: Job, con: duckdb.DuckDBPyConnection, project: Project, src: SourceFile, plan: WavePlan,
               compiled: CompiledWave, chunks: Iterator[pd.DataFrame], hasher: _Hasher, out: Outcome,
               progress: Progress | None, t0: float) -> Outcome:
    from harmonise.checks.frame import validate_profile  # pandera loads while the reader reads

    assert project.schema is not None
    cw, wave = job.crosswalk, job.wave
    entry = project.surveys[cw.survey]
    static = check_crosswalk(cw, project.schema, project.tables, entry.index, {wave.wave: src.meta},
                             only_wave=wave.wave, data=True, supplied=job.supplied)
    out.issues.extend(without_set_aside(static, entry.set_aside))
    if src.codec is not None:
        out.issues.append(Issue(f"{job.path}: the file records no usable text encoding; its texts were read as "
                                f"{src.meta.encoding}", code="encoding-guessed", severity="note", survey=cw.survey,
                                wave=wave.wave, hint="pass --encoding to read them otherwise"))
    declared = project.declared_meta(cw.survey, wave.wave)
    if declared is not None:
        real = replace(src.meta, variables={k: v for k, v in src.meta.variables.items() if k not in src.virtual})
        out.issues.extend(drift.compare(declared, real, set(plan.sources()), cw.survey, wave.wave))
        out.issues.extend(locate(i, entry.index, cw.survey, wave.wave)
                          for i in renames.renamed_variables(plan, declared, src.meta))
    for e in compiled.errors:
        out.issues.append(locate(Issue(e.message, path=".".join(map(str, e.path)) or f"targets.{e.target}",
                                       code="compile", extra={"yaml_path": e.path}), entry.index, cw.survey, wave.wave))
    if any(i.severity == "error" for i in out.issues):
        out.sha256 = hasher.result()
        return out
    con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {SCRATCH}")
    con.execute("CREATE OR REPLACE TEMP TABLE report_stage (target VARCHAR, source_code VARCHAR, "
                "target_value VARCHAR, missing_reason VARCHAR, n BIGINT)")
    fold = report_insert(compiled)
    failures: list[pd.DataFrame] = []
    writer = _Writer(con, project.schema)
    try:
        h = f"{SCRATCH}.h"
        for chunk in chunks:
            hasher.begin()  # from the first chunk on: before it, the readers need the cores
            con.register("src", chunk)
            con.execute(f"CREATE OR REPLACE TABLE {h} AS {compiled.sql}")
            con.unregister("src")
            out.rows += len(chunk)
            del chunk
            writer.submit(h, job.path.name)  # inserts into respondents while this thread profiles and validates
            con.execute(f"CREATE OR REPLACE TEMP TABLE prof AS {profile_sql(compiled, plan, project.schema, h)}")
            con.execute(fold)
            fc = validate_profile(con.execute(VALIDATION_SELECT).df(), project.schema, project.tables)
            if len(fc):
                failures.append(fc)
            con.execute("DROP TABLE prof")
            writer.wait()  # one staged chunk at a time keeps memory flat (a chunk is ~100 MB in DuckDB)
            con.execute(f"DROP TABLE {h}")
            if progress:
                progress(f"{cw.survey} {wave.wave}: {out.rows:,} rows")
    finally:
        writer.close()
    out.sha256 = hasher.result()
    _finish(job, con, project, plan, src, out, failures, entry.index, _stored_sql(compiled, plan, src, project))
    out.seconds = time.perf_counter() - t0
    return out


def _stored_sql(compiled: CompiledWave, plan: WavePlan, src: SourceFile, project: Project) -> str:
    """The query ``compiled_sql`` stores: without the Stata letter columns, as `harmonise sql` prints it."""
    assert project.schema is not None
    return compiled.sql if not compiled.extended else compile_wave(plan, src.meta, project.schema, project.tables).sql


class _Writer:
    """Inserts harmonised chunks into ``respondents`` on a second connection, one chunk at a time.

    DuckDB releases the GIL while it works, so the insert of a chunk runs beside its profile and
    validation; chunks are inserted in order. An insert's error is raised by :meth:`wait`,
    the next :meth:`submit` or :meth:`close`.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, schema: TargetSchema) -> None:
        self._cur = con.cursor()
        database = con.execute("SELECT current_database()").fetchall()[0][0]
        self._cur.execute(f"USE {quote_ident(database)}")  # a cursor starts in the default database
        self._schema = schema
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _insert(self, relation: str, file_name: str) -> None:
        try:
            self._cur.execute(insert_select(self._schema, relation, file_name))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc

    def wait(self) -> None:
        """Wait for the running insert; raises its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def submit(self, relation: str, file_name: str) -> None:
        """Wait for the previous insert (raising its error), then start inserting ``relation`` (rows of ``file_name``)."""
        self.wait()
        self._thread = threading.Thread(target=self._insert, args=(relation, file_name), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Wait for the last insert and release the connection; raises an insert's error."""
        try:
            self.wait()
        finally:
            self._cur.close()


def _labels_for(plan: WavePlan, src: SourceFile) -> accounting.Labels:
    """target → (source variables, code text → source label)."""
    out: accounting.Labels = {}
    for name, tp in plan.targets.items():
        if tp.kind in ("map", "table", "range") and tp.source:
            vm = src.meta.get(tp.source)
            labels = {}
            if vm is not None:
                labels = {str(k): v for k, v in vm.labels.items()}
                labels.update({f".{k}": v for k, v in vm.extended.items()})
            out[name] = (tp.source, labels)
        elif tp.kind in ("expr", "derived") and tp.expr:
            out[name] = (",".join(referenced_names(tp.expr)), {})
        else:
            out[name] = ("", {})
    return out


def _finish(job: Job, con: duckdb.DuckDBPyConnection, project: Project, plan: WavePlan, src: SourceFile,
            out: Outcome, failures: list[pd.DataFrame], index: LineIndex, sql: str) -> None:
    """The file's provenance rows, and the checks on what it harmonised (every value accounted for)."""
    survey, wid, fname = plan.survey, plan.wave.wave, job.path.name
    rep = con.execute("SELECT target, source_code, target_value, missing_reason, sum(n)::BIGINT AS n "
                      "FROM report_stage GROUP BY ALL ORDER BY target, source_code, target_value, missing_reason").fetchall()
    labels = _labels_for(plan, src)
    provenance.REPORT.insert(con, [(survey, wid, fname, target, labels.get(target, ("", {}))[0], code,
                                    labels.get(target, ("", {}))[1].get(code or ""), value, reason, n)
                                   for target, code, value, reason, n in rep])
    totals = con.execute("SELECT target, sum(n)::BIGINT FROM report_stage GROUP BY 1").fetchall()
    provenance.CONSERVATION.insert(con, [(survey, wid, fname, t, out.rows, n, n == out.rows) for t, n in totals])
    fc = _failure_cases(failures)
    provenance.VALIDATION_FAILURES.insert(con, [(survey, wid, fname, str(col), str(check), None if pd.isna(case) else str(case),
                                                 None if pd.isna(row) else int(row))
                                                for col, check, case, row in zip(fc["column"], fc["check"],
                                                                                 fc["failure_case"], fc["source_row"])])
    found = [*accounting.unmapped_codes(rep, plan, labels), *accounting.empty_sources(rep, plan, out.rows),
             *inputs.unlabelled_input_codes(rep, plan, src.meta), *inputs.missing_weights(rep, plan, out.rows),
             *inputs.no_rows(plan, str(job.path), out.rows), *accounting.conservation(totals, plan, out.rows),
             *accounting.row_count(src.meta.rows, out.rows, str(job.path), plan),
             *accounting.unused_unmapped_labels(rep, plan, src.meta), *accounting.not_available(plan, str(job.path)),
             *accounting.validation_failures(_failure_groups(fc), plan)]
    out.issues.extend(locate(i, index, survey, wid) for i in found)
    provenance.COMPILED_SQL.insert(con, [(survey, wid, fname, sql)])
    provenance.LINEAGE.insert(con, _lineage(plan, src, labels, fname, index))
    record_source(con, project, survey, wid, src, out.sha256, out.rows,
                  project.surveys[survey].codebook_files.get(wid))


def record_source(con: duckdb.DuckDBPyConnection, project: Project, survey: str, wave: str, src: SourceFile,
                  sha256: str, rows: int, codebook: str | None) -> None:
    """The ``sources`` row of a file read for ``survey`` ``wave`` (a data file, or a design file)."""
    entry = project.surveys[survey]
    provenance.SOURCES.insert(con, [(
        survey, wave, src.path.name, str(src.path), src.format, src.path.stat().st_size, sha256, rows,
        src.meta.encoding, src.meta.file_label, to_json(src.meta.header), entry.file,
        hashlib.sha256(entry.text.encode()).hexdigest(), codebook, __version__, time.strftime("%Y-%m-%dT%H:%M:%S"))])


def _failure_cases(failures: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks' pandera failure cases, one row per (column, check, value) with its first source row and count."""
    if not failures:
        return pd.DataFrame(columns=["column", "check", "failure_case", "source_row", "n"])
    return (pd.concat(failures, ignore_index=True)
            .groupby(["column", "check", "failure_case"], dropna=False, sort=True)
            .agg(source_row=("source_row", "min"), n=("n", "sum")).reset_index())


def _failure_groups(fc: pd.DataFrame) -> list[tuple[str, str, list[str], list[int], int]]:
    return [(str(col), str(check), [str(v) for v in g["failure_case"]], [int(r) for r in g["source_row"].dropna()],
             int(g["n"].fillna(1).sum())) for (col, check), g in fc.groupby(["column", "check"], dropna=False)]


def _lineage(plan: WavePlan, src: SourceFile, labels: accounting.Labels, fname: str,
             index: LineIndex) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for name, tp in plan.targets.items():
        srcvars = labels.get(name, ("", {}))[0]
        slabels = "; ".join(f"{n}: {vm.label}" for n in srcvars.split(",") if n and (vm := src.meta.get(n)) is not None)
        rows.append((plan.survey, plan.wave.wave, fname, name, tp.kind, srcvars, slabels, tp.rule_text, quality_of(tp),
                     tp.notes, index.display(".".join(map(str, tp.path)))))
    return rows


def default_jobs(jobs: list[Job]) -> int:
    """Worker processes used when ``--jobs`` is not given: one per core and file once the files are
    large enough to repay starting the workers (each imports harmonise and loads the project)."""
    size = sum(j.path.stat().st_size for j in jobs)
    return 1 if size < PARALLEL_MIN_BYTES else max(1, min(os.cpu_count() or 1, len(jobs)))


def run_jobs(jobs: list[Job], con: duckdb.DuckDBPyConnection, project: Project, *, encoding: str | None = None,
             progress: Progress | None = None, workers: int = 1,
             mappings: list[Path] | None = None) -> list[Outcome]:
    """Harmonise every job into ``con`` (tables already created), in job order.

    With ``workers`` > 1 and several files, each file is harmonised in a worker process into a
    DuckDB file of its own; the main process merges those into ``con`` in job order, so the
    database holds the same rows whatever the number of workers. The workers' files live in a
    folder beside the database being built (``<file>.jobs``, mode 0700, removed with the build's
    other leftovers if the build is killed); the workers die with the process that started them.
    """
    if workers <= 1 or len(jobs) <= 1:
        outcomes = []
        for j in jobs:
            with _located(j):
                outcomes.append(process(j, con, project, encoding=encoding, progress=progress))
    else:
        outcomes = _in_workers(jobs, con, project, encoding, progress, workers, mappings)
    if outcomes:
        outcomes[-1].issues.extend(_duplicates(con, project, jobs))
    return outcomes


def _duplicates(con: duckdb.DuckDBPyConnection, project: Project, jobs: list[Job]) -> list[Issue]:
    """Respondent ids stored twice in a wave, across all its files (checked once, after every file)."""
    out: list[Issue] = []
    for survey, wave, n, examples in duplicate_ids(con):
        job = next(j for j in jobs if j.crosswalk.survey == survey and j.wave.wave == wave)
        entry = project.surveys[survey]
        assert project.schema is not None
        plan = resolve_wave(job.crosswalk, job.wave, project.schema, project.tables)
        path = plan.targets["respondent_id"].path if "respondent_id" in plan.targets else ()
        out.extend(locate(i, entry.index, survey, wave) for i in accounting.duplicate_ids(survey, wave, n, examples, path))
    return out


def _in_workers(jobs: list[Job], con: duckdb.DuckDBPyConnection, project: Project, encoding: str | None,
                progress: Progress | None, workers: int, mappings: list[Path] | None) -> list[Outcome]:
    """Each file in a worker process, into a DuckDB file of its own, merged into ``con`` in job order."""
    workers = min(workers, len(jobs))
    prefetch = (os.cpu_count() or 1) > workers
    outcomes: list[Outcome] = []
    with _jobs_folder(con) as folder, \
            ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                initargs=(project.root, mappings, os.getpid())) as pool:
        futures: list[Future[Outcome]] = [
            pool.submit(_worker, job, str(folder / f"job-{i}.duckdb"), encoding, prefetch)
            for i, job in enumerate(jobs)]
        for i, fut in enumerate(futures):
            with _located(jobs[i]):
                out = fut.result()
                append_database(con, folder / f"job-{i}.duckdb")
            outcomes.append(out)
            if progress:
                progress(f"{out.job.crosswalk.survey} {out.job.wave.wave}: {out.rows:,} rows")
    return outcomes


# DuckDB errors that data or an expression can cause (a value out of range, a conversion, a full disk);
# parser, binder and internal errors stay bugs.
DATA_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException,
               duckdb.IOException, duckdb.OutOfMemoryException)


@contextmanager
def _located(job: Job) -> Iterator[None]:
    """DuckDB errors a file or a rule's expression can cause, as an InputError naming the file and wave."""
    try:
        yield
    except DATA_ERRORS as exc:
        first = str(exc).splitlines()[0]
        raise InputError(f"{job.path}: harmonising {job.crosswalk.survey} wave {job.wave.wave} failed in DuckDB "
                         f"({first}); if a rule's expression cannot hold this file's values, guard it (e.g. "
                         "with if/else); if the disk or memory is full, free some and build again") from exc


@contextmanager
def _jobs_folder(con: duckdb.DuckDBPyConnection) -> Iterator[Path]:
    """A private folder (0700) for the workers' files: ``<database file>.jobs`` beside the file ``con`` writes,
    or a temporary folder for an in-memory database (``validate --data``); removed afterwards."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    if row and row[0]:
        folder = Path(str(row[0]) + ".jobs")
        folder.mkdir(mode=0o700)
    else:
        folder = Path(tempfile.mkdtemp(prefix="harmonise-jobs-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_WORKER: dict[str, Project] = {}


def _worker_init(root: Path, mappings: list[Path] | None, parent: int) -> None:
    die_with_parent(parent)
    _WORKER["project"] = load_project(root, mappings or None)


def _worker(job: Job, path: str, encoding: str | None, prefetch: bool) -> Outcome:
    project = _WORKER["project"]
    assert project.schema is not None
    con = open_build(Path(path))
    try:
        con.execute("SET threads = 1")  # the workers already use the cores
        create_all(con, project.schema)
        with _located(job):
            return process(job, con, project, encoding=encoding, prefetch=prefetch)
    finally:
        con.close()
