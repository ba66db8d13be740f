"""Harmonise source files into a DuckDB connection: the path shared by `validate --data` and `build`.

For each (survey, wave, file): read metadata → resolve and statically check
the crosswalk against it → compile SQL → stream the needed columns in chunks
through the SQL → validate each harmonised chunk with pandera → insert, while
counting every (target, source code → target value | missing reason) for the
harmonisation report and the conservation check.
"""

from __future__ import annotations

import fnmatch
import hashlib
import multiprocessing as mp
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from harmonise import __version__
from harmonise.checks import drift, inputs
from harmonise.compile.profile import VALIDATION_SELECT, profile_sql, report_insert
from harmonise.compile.sql import compile_wave
from harmonise.compile.sqltext import quote_ident
from harmonise.errors import InputError, Issue
from harmonise.readers.files import EXTENSIONS, SourceFile, open_source
from harmonise.readers.prefetch import prefetched_chunks
from harmonise.spec.check import check_crosswalk, locate
from harmonise.spec.coverage import quality_of
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.expr import referenced_names
from harmonise.spec.project import Project, load_project, without_set_aside
from harmonise.spec.resolve import WavePlan, resolve_wave
from harmonise.spec.schema import UNMAPPED, TargetSchema
from harmonise.store.atomic import open_build
from harmonise.store.tables import append_database, create_all, insert_select, to_json

Progress = Callable[[str], None]
CHUNK_ROWS = 50_000  # rows per chunk: large enough to amortise planning, small enough to keep memory flat
PREFETCH_MIN_ROWS = 10_000  # below this a forked reader costs more than it overlaps
SCRATCH = "harmonise_scratch"  # in-memory database of the chunks being harmonised, shared with the writer
PARALLEL_MIN_BYTES = 64 * 2**20  # below this (all files together) worker processes cost more than they save


@dataclass
class Job:
    crosswalk: Crosswalk
    wave: Wave
    path: Path


@dataclass
class Outcome:
    job: Job
    rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    sha256: str = ""
    seconds: float = 0.0


def discover(project: Project, data: list[Path]) -> tuple[list[Job], list[Issue]]:
    """Match data files against every crosswalk wave's file patterns."""
    files: list[Path] = []
    for d in data:
        if not d.exists():
            raise InputError(f"{d}: no such file or folder")
        if d.is_file():
            files.append(d)
        else:
            files.extend(sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS))
    jobs: list[Job] = []
    issues: list[Issue] = []
    unmatched: list[Path] = []
    for f in files:
        hits = [(cw, w) for cw in project.crosswalks.values() for w in cw.waves
                if any(fnmatch.fnmatch(f.name.lower(), pat.lower()) for pat in w.files)]
        if len(hits) > 1:
            names = ", ".join(f"{cw.survey} {w.wave}" for cw, w in hits)
            issues.append(Issue(f"{f}: file name matches several waves ({names})", code="ambiguous-file",
                                hint="make the waves' `files` patterns more specific"))
        elif hits:
            jobs.append(Job(hits[0][0], hits[0][1], f))
        else:
            unmatched.append(f)
    if jobs:  # some matched: say which were left out (with none, the error below says it)
        issues.extend(Issue(f"{f}: matches no crosswalk wave; it is not harmonised", code="unmatched-file",
                            severity="warning", hint="add its wave to the survey's crosswalk (a `files` pattern "
                            "that matches it), or move it out of --data") for f in unmatched)
    seen: dict[tuple[str, str], Path] = {}
    for j in jobs:
        key = (j.crosswalk.survey, j.wave.wave)
        if key in seen:
            issues.append(Issue(f"{j.path}: a second file for {key[0]} wave {key[1]} (first: {seen[key]})",
                                code="duplicate-wave-file", hint="keep one file per wave in --data"))
        seen[key] = j.path
    if not jobs and not any(i.severity == "error" for i in issues):
        pats = sorted({p for cw in project.crosswalks.values() for w in cw.waves for p in w.files})
        raise InputError(f"no data file in {', '.join(map(str, data))} matches any crosswalk wave "
                         f"(patterns: {', '.join(pats[:12])}{' …' if len(pats) > 12 else ''})")
    return jobs, issues


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
    plan = resolve_wave(job.crosswalk, job.wave, project.schema, project.tables, src.meta.variables)
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
    hasher = _Hasher(job.path)
    plan = resolve_wave(cw, wave, project.schema, project.tables, src.meta.variables)
    columns = _source_columns(plan, src)
    # the reader starts now, so reading overlaps the checks and compilation below (not worth it for small files)
    chunks = prefetched_chunks(src, columns, chunksize,
                               enabled=prefetch and (src.meta.rows is None or src.meta.rows >= PREFETCH_MIN_ROWS))
    try:
        return _harmonise(job, con, project, src, plan, chunks, hasher, out, progress, t0)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _harmonise(job: Job, con: duckdb.DuckDBPyConnection, project: Project, src: SourceFile, plan: WavePlan,
               chunks: Iterator[pd.DataFrame], hasher: _Hasher, out: Outcome, progress: Progress | None,
               t0: float) -> Outcome:
    from harmonise.checks.frame import validate_profile  # pandera loads while the reader reads

    assert project.schema is not None
    cw, wave = job.crosswalk, job.wave
    index = project.crosswalk_index.get(cw.survey)
    static = check_crosswalk(cw, project.schema, project.tables, index, {wave.wave: src.meta}, only_wave=wave.wave)
    out.issues.extend(without_set_aside(static, project.set_aside.get(cw.survey, set())))
    codebook = project.codebooks.get((cw.survey, wave.wave))
    if codebook is not None:
        declared = codebook.to_meta(project.codebook_files[(cw.survey, wave.wave)])
        out.issues.extend(drift.compare(declared, src.meta, set(plan.sources()), cw.survey, wave.wave))
    extended = {n for n, vm in src.meta.variables.items() if vm.type == "numeric"} if src.format == "dta" else set()
    compiled = compile_wave(plan, src.meta, project.schema, project.tables, extended)
    for e in compiled.errors:
        out.issues.append(locate(Issue(e.message, path=".".join(map(str, e.path)) or f"targets.{e.target}",
                                       code="compile", extra={"yaml_path": e.path}), index, cw.survey, wave.wave))
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
            writer.submit(h)  # inserts into respondents while this thread profiles and validates
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
    # compiled_sql stores the query without the Stata letter columns, as `harmonise sql` prints it
    stored = compiled.sql if not extended else compile_wave(plan, src.meta, project.schema, project.tables).sql
    _finish(job, con, project, plan, src, out, failures, index, stored)
    out.seconds = time.perf_counter() - t0
    return out


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

    def _insert(self, relation: str) -> None:
        try:
            self._cur.execute(insert_select(self._schema, relation))
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

    def submit(self, relation: str) -> None:
        """Wait for the previous insert (raising its error), then start inserting ``relation``."""
        self.wait()
        self._thread = threading.Thread(target=self._insert, args=(relation,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Wait for the last insert and release the connection; raises an insert's error."""
        try:
            self.wait()
        finally:
            self._cur.close()


def clip(value: object, limit: int = 60) -> str:
    """A value short enough for a message: long strings keep their start and say how long they were."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _labels_for(plan: WavePlan, src: SourceFile) -> dict[str, tuple[str, dict[str, str]]]:
    """target → (source variables, code text → source label)."""
    from harmonise.compile.sql import code_text  # noqa: F401  (same rendering rule as SQL)

    out: dict[str, tuple[str, dict[str, str]]] = {}
    for name, tp in plan.targets.items():
        if tp.kind in ("map", "table", "range") and tp.source:
            vm = src.meta.get(tp.source)
            labels = {}
            if vm is not None:
                labels = {str(k): v for k, v in vm.labels.items()}
                labels.update({f".{k}": v for k, v in vm.extended.items()})
            out[name] = (tp.source, labels)
        elif tp.kind == "expr" and tp.expr or tp.kind == "derived" and tp.expr:
            out[name] = (",".join(referenced_names(tp.expr)), {})
        else:
            out[name] = ("", {})
    return out


def _finish(job: Job, con: duckdb.DuckDBPyConnection, project: Project, plan: WavePlan, src: SourceFile,
            out: Outcome, failures: list[pd.DataFrame], index: object, sql: str) -> None:
    cw, wave = job.crosswalk, job.wave
    survey, wid = cw.survey, wave.wave
    rep = con.execute("SELECT target, source_code, target_value, missing_reason, sum(n)::BIGINT AS n "
                      "FROM report_stage GROUP BY ALL ORDER BY target, source_code, target_value, missing_reason").fetchall()
    labels = _labels_for(plan, src)
    report_rows = []
    for target, code, value, reason, n in rep:
        srcvars, labs = labels.get(target, ("", {}))
        report_rows.append((survey, wid, target, srcvars, code, labs.get(code or "", None), value, reason, n))
        if reason == UNMAPPED and plan.targets[target].kind != "derived":  # derived ones inherit it
            label = labs.get(code or "")
            lab = f" ('{label}')" if label else " (no value label)"
            tp = plan.targets[target]
            out.issues.append(locate(Issue(
                f"source variable {srcvars} code {clip(code)}{lab} has no mapping for target {target}: {n:,} row(s)",
                code="unmapped-code", survey=survey, wave=wid, variable=srcvars, path=".".join(map(str, tp.path)),
                hint="add the code to the rule's map or missing", extra={"yaml_path": tp.path,
                                                                        "source_code": code, "count": n}),
                index, survey, wid))  # type: ignore[arg-type]
    _insert(con, "harmonisation_report", report_rows)
    _empty_sources(rep, plan, out, index)
    for issue in [*inputs.unlabelled_input_codes(rep, plan, src.meta), *inputs.missing_weights(rep, plan, out.rows),
                  *inputs.no_rows(plan, str(job.path), out.rows)]:
        out.issues.append(locate(issue, index, survey, wid))  # type: ignore[arg-type]
    totals = con.execute("SELECT target, sum(n)::BIGINT FROM report_stage GROUP BY 1").fetchall()
    cons = [(survey, wid, t, out.rows, n, n == out.rows) for t, n in totals]
    _insert(con, "conservation", cons)
    for _, _, t, rin, rout, ok in cons:
        if not ok:
            out.issues.append(Issue(f"conservation failed for {t}: {rin} rows in, {rout} accounted for",
                                    code="conservation", survey=survey, wave=wid))
    if src.meta.rows is not None and src.meta.rows != out.rows:
        out.issues.append(Issue(f"{job.path}: header declares {src.meta.rows:,} rows but {out.rows:,} were read; "
                                "the file may be truncated", code="row-count", survey=survey, wave=wid))
    dups = con.execute("SELECT respondent_id, count(*) FROM respondents WHERE survey = ? AND wave = ? "
                       "GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 6", [survey, wid]).fetchall()
    if dups:
        ndup = con.execute("SELECT count(*) FROM (SELECT respondent_id FROM respondents WHERE survey = ? AND wave = ? "
                           "GROUP BY 1 HAVING count(*) > 1)", [survey, wid]).fetchone()[0]  # type: ignore[index]
        shown = ", ".join(f"{clip(d[0])} ({d[1]}×)" for d in dups[:5])
        out.issues.append(locate(Issue(f"respondent_id is not unique: {ndup:,} duplicated id(s), e.g. {shown}",
                                       code="duplicate-id", survey=survey, wave=wid, path="targets.respondent_id",
                                       extra={"yaml_path": plan.targets['respondent_id'].path}),
                                 index, survey, wid))  # type: ignore[arg-type]
    if failures:
        fc = (pd.concat(failures, ignore_index=True)
              .groupby(["column", "check", "failure_case"], dropna=False, sort=True)
              .agg(source_row=("source_row", "min"), n=("n", "sum")).reset_index())
        _insert(con, "validation_failures",
                [(survey, wid, str(col), str(check), None if pd.isna(case) else str(case), None if pd.isna(row) else int(row))
                 for col, check, case, row in zip(fc["column"], fc["check"], fc["failure_case"], fc["source_row"])])
        for (col, check), g in fc.groupby(["column", "check"], dropna=False):
            examples = ", ".join(sorted({clip(v) for v in g["failure_case"]})[:5])
            rows = ", ".join(str(int(r)) for r in sorted(g["source_row"].dropna())[:3])
            cases = int(g["n"].fillna(1).sum())
            out.issues.append(Issue(f"pandera check '{check}' failed on column {col}: {cases:,} case(s), "
                                    f"e.g. {examples}" + (f" (source rows {rows})" if rows else ""),
                                    code="validation", survey=survey, wave=wid, variable=str(col)))
    con.execute("INSERT INTO compiled_sql VALUES (?, ?, ?)", [survey, wid, sql])
    _lineage(con, project, plan, src, labels)
    cwfile = project.crosswalk_files.get(survey, "")
    cwsha = hashlib.sha256(project.crosswalk_text.get(survey, "").encode()).hexdigest()
    st = job.path.stat()
    con.execute("INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [survey, wid, job.path.name, str(job.path), src.format, st.st_size, out.sha256, out.rows,
                 src.meta.encoding, src.meta.file_label, to_json(src.meta.header), cwfile, cwsha,
                 project.codebook_files.get((survey, wid)), __version__, time.strftime("%Y-%m-%dT%H:%M:%S")])


def _empty_sources(rep: list[tuple[str, str, str, str, int]], plan: WavePlan, out: Outcome, index: object) -> None:
    """Warn when a mapped source variable is system-missing in every row (an empty column, not an answer)."""
    codes: dict[str, set[str | None]] = {}
    for target, code, _, _, _ in rep:
        codes.setdefault(target, set()).add(code)
    for target, seen in codes.items():
        tp = plan.targets.get(target)
        if out.rows and tp is not None and tp.kind in ("map", "range", "table") and tp.source and seen == {"."}:
            out.issues.append(locate(Issue(
                f"source variable {tp.source} is empty (system-missing) in all {out.rows:,} rows: every {target} is "
                f"{tp.missing.system}", code="empty-source", severity="warning", survey=plan.survey,
                wave=plan.wave.wave, variable=tp.source, path=".".join(map(str, tp.path)),
                hint="check that the file is the complete release", extra={"yaml_path": tp.path}),
                index, plan.survey, plan.wave.wave))  # type: ignore[arg-type]


def _lineage(con: duckdb.DuckDBPyConnection, project: Project, plan: WavePlan, src: SourceFile,
             labels: dict[str, tuple[str, dict[str, str]]]) -> None:
    rows = []
    for name, tp in plan.targets.items():
        srcvars = labels.get(name, ("", {}))[0]
        slabels = "; ".join(f"{n}: {src.meta.get(n).label}" for n in srcvars.split(",")  # type: ignore[union-attr]
                            if n and src.meta.get(n) is not None)
        quality = quality_of(tp)
        rows.append((plan.survey, plan.wave.wave, name, tp.kind, srcvars, slabels, tp.rule_text, quality,
                     tp.notes, ".".join(map(str, tp.path))))
    _insert(con, "lineage", rows)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Bulk insert (executemany is row-by-row in DuckDB)."""
    if not rows:
        return
    cols = [d[0] for d in con.execute(f"SELECT * FROM main.{table} LIMIT 0").description]
    frame = pd.DataFrame(rows, columns=cols).astype(object)
    con.register("__rows", frame)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM __rows")
    finally:
        con.unregister("__rows")


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
    database holds the same rows whatever the number of workers.
    """
    if workers <= 1 or len(jobs) <= 1:
        return [process(j, con, project, encoding=encoding, progress=progress) for j in jobs]
    workers = min(workers, len(jobs))
    prefetch = (os.cpu_count() or 1) > workers
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="harmonise-jobs-") as folder, \
            ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                initargs=(project.root, mappings)) as pool:
        futures: list[Future[Outcome]] = [
            pool.submit(_worker, job, str(Path(folder) / f"job-{i}.duckdb"), encoding, prefetch)
            for i, job in enumerate(jobs)]
        for i, fut in enumerate(futures):
            out = fut.result()
            append_database(con, Path(folder) / f"job-{i}.duckdb")
            outcomes.append(out)
            if progress:
                progress(f"{out.job.crosswalk.survey} {out.job.wave.wave}: {out.rows:,} rows")
    return outcomes


_WORKER: dict[str, Project] = {}


def _worker_init(root: Path, mappings: list[Path] | None) -> None:
    _WORKER["project"] = load_project(root, mappings or None)


def _worker(job: Job, path: str, encoding: str | None, prefetch: bool) -> Outcome:
    project = _WORKER["project"]
    assert project.schema is not None
    con = open_build(Path(path))
    try:
        con.execute("SET threads = 1")  # the workers already use the cores
        create_all(con, project.schema)
        return process(job, con, project, encoding=encoding, prefetch=prefetch)
    finally:
        con.close()
