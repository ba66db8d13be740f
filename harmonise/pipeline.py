"""Harmonise source files into a DuckDB connection: the path shared by `validate --data` and `build`.

For each (survey, wave, file): read metadata → resolve and statically check
the crosswalk against it → compile SQL → stream the needed columns in chunks
through the SQL → validate each harmonised chunk with pandera → insert, while
counting every (target, source code → target value | missing reason) for the
harmonisation report and the conservation check. A wave's small files that compile
to the same SQL go through those steps together (:func:`_batches`); files the build
cache holds are not read at all (:class:`Reuse`).
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing as mp
import os
import pickle
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Container, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from harmonise import __version__
from harmonise.checks import accounting, drift, inputs, renames
from harmonise.checks.crosswalk import check_crosswalk
from harmonise.checks.labels import moved_labels, unlabelled_letters, unread_letter_labels
from harmonise.compile.profile import VALIDATION_SELECT, profile_sql, report_insert
from harmonise.compile.sql import CompiledWave, CompileError, compile_wave, target_checks
from harmonise.compile.sqltext import quote_ident
from harmonise.discover import CONTENT_SAMPLE, SEVERAL_WAVES, Job, content_text, content_values, content_wanted, supply
from harmonise.errors import InputError, Issue, ValidationFailed
from harmonise.procs import die_with_parent
from harmonise.readers.files import EXT_SUFFIX, ROW_COLUMN, SourceFile, check_staged_names, open_source
from harmonise.readers.prefetch import FileFeed, has_frames, keep_frames, prefetched_chunks, recall_frames
from harmonise.samework import SameWork
from harmonise.spec.coverage import plan_sources, quality_of
from harmonise.spec.expr import referenced_names
from harmonise.spec.project import Project, load_project, without_set_aside
from harmonise.spec.resolve import TargetPlan, WavePlan, resolve_wave, without_override
from harmonise.spec.schema import TargetSchema
from harmonise.spec.source import SourceMeta, VarMeta, find_variable
from harmonise.spec.yamlload import LineIndex, locate
from harmonise.store import provenance
from harmonise.store.atomic import open_build
from harmonise.store.cache import BuildCache, CachedFile
from harmonise.store.editions import FileFacts, edition_variables, file_edition, gathered_facts, region_labels
from harmonise.store.identity import code_digest, digest
from harmonise.store.provenance import append_database, to_json
from harmonise.store.respondents import (
    FILE_BITS,
    ROW_MASK,
    Duplicates,
    create_all,
    duplicate_ids,
    ids_written_differently,
    insert_select,
)

Progress = Callable[[str], None]
Idle = Callable[[list[tuple[str, str]]], bool]  # given the survey-waves complete so far: True when it did some work
CHUNK_ROWS = 50_000  # rows per chunk: large enough to amortise planning, small enough to keep memory flat
# Files with fewer rows are small: read whole (by one reader for all of them, not a forked reader per
# file, which costs more than it overlaps) and harmonised together with their wave's other small files.
PREFETCH_MIN_ROWS = 10_000
# A build or validate --data of fewer rows in all (one country file, a test fixture) runs DuckDB on one thread:
# a second costs more CPU than it saves at these sizes. Not above: a 56,752-row extract ran out of the
# build's 256 MB on one thread (docs/decisions.md 48). Nor does it read its files in a child ahead of the
# harmonising: the fork costs more than the read it would overlap (decision 49).
ONE_THREAD_ROWS = 10_000
SCRATCH = "harmonise_scratch"  # in-memory database of the chunks being harmonised, shared with the writer
PARALLEL_MIN_BYTES = 64 * 2**20  # below this (all files together) worker processes cost more than they save


@dataclass
class Outcome:
    job: Job
    rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    sha256: str = ""
    seconds: float = 0.0
    facts: FileFacts | None = None  # its edition and region labels, for source_editions and nuts_regions
    cached: CachedFile | None = None  # what the build cache keeps of it (its key set by the caller)
    reused: bool = False  # its rows came from the previous build (see Reuse)


class _Hasher(threading.Thread):
    """sha256 of a file, computed in a thread beside the harmonisation (started with the first chunk)."""

    def __init__(self, path: Path, known: str | None = None) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.digest = known or ""
        self.known = known is not None

    def run(self) -> None:
        h = hashlib.sha256()
        with self.path.open("rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
        self.digest = h.hexdigest()

    def begin(self) -> None:
        """Start hashing unless it has started (or the digest is known)."""
        if self.ident is None and not self.known:
            self.start()

    def result(self) -> str:
        """The digest of the whole file (starts hashing first if it has not started)."""
        if self.known:
            return self.digest
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


def _opened(job: Job, encoding: str | None) -> SourceFile:
    """The job's file with its metadata: as discovery opened it when the encoding is the one wanted, else
    opened now (its header read again)."""
    if job.source is not None and job.opened_with == encoding:
        return job.source
    return open_source(job.path, encoding)


def needed_columns(job: Job, project: Project, encoding: str | None = None) -> list[str]:
    """The source columns harmonising ``job`` reads (what a crosswalk wave needs from its file)."""
    assert project.schema is not None
    src = _opened(job, encoding or job.wave.encoding)
    supply(job, project, src)
    plan = resolve_wave(job.crosswalk, job.wave, project.schema, project.tables, src.meta.variables, job.supplied)
    return _source_columns(plan, src)


@dataclass
class _File:
    """A job ready to harmonise: its opened file, plan, compiled SQL, the columns it reads, its outcome."""

    job: Job
    src: SourceFile
    plan: WavePlan
    compiled: CompiledWave
    columns: list[str]
    out: Outcome
    hasher: _Hasher
    edition: dict[str, str] = field(default_factory=dict)  # the descriptor's edition variables: key → variable
    first: dict[str, object] | None = None  # the first row of the edition variables, once read
    content: list[tuple[str, set[str]]] = field(default_factory=list)  # (column, its wave's values) checked per row
    # a wave of a cumulative file harmonised with others of its waves: its rows as the file's one read for them all
    # left them (:func:`_read_once`), read from there instead of the file
    spilled: Path | None = None

    @property
    def small(self) -> bool:
        """Few enough rows to be read whole and harmonised with the other files of its wave."""
        return self.src.meta.rows is not None and self.src.meta.rows < PREFETCH_MIN_ROWS

    def batch_key(self) -> tuple[object, ...]:
        """Files with equal keys harmonise through the same SQL from the same columns (of the same types)."""
        types = tuple((c, vm.type if (vm := self.src.meta.get(c)) is not None else "") for c in self.columns)
        return (self.job.crosswalk.survey, self.job.wave.wave, self.compiled.sql, types, self.src.format,
                self.src.codec is None)

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.out.issues)


def _open(job: Job, project: Project, same: SameWork, encoding: str | None) -> _File:
    """Open ``job``'s file (its header read once), resolve and compile its wave (once per distinct metadata).

    The file's edition variables are read with the crosswalk's columns (for ``source_editions``)."""
    src = _opened(job, encoding or job.wave.encoding)
    supply(job, project, src)
    plan, compiled = same.compile(job.crosswalk, job.wave, project, src.meta, src.format == "dta", job.supplied)
    columns = _source_columns(plan, src)
    edition = same.keyed(("edition", job.crosswalk.survey),
                         lambda: edition_variables(file_edition(project, job.crosswalk.survey)))
    columns += [v for v in edition.values() if v in src.meta.variables and v not in src.virtual and v not in columns]
    content = [(vm.name, job.content_seen.get(vm.name) or content_wanted(allowed))
               for name, allowed in (job.wave.content or {}).items()
               if job.sampled and (vm := src.meta.get(name)) is not None]
    columns += [c for c, _ in content if c not in columns]
    check_staged_names(job.path, columns, src.meta)
    return _File(job, src, plan, compiled, columns, Outcome(job), _Hasher(job.path, job.sha256), edition,
                 content=content)


def _wave_rows(f: _File, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` that ``f`` harmonises: of a file of several waves (``Job.wave_rows``), the rows its
    wave's content values mark (the other waves' jobs take the rest; discovery counted them all); of any other
    file every row, checked by :func:`_same_content`."""
    if f.job.wave_rows is None:
        _same_content(f, frame)
        return frame
    keep = np.ones(len(frame), dtype=bool)
    for column, wanted in f.content:
        mine = [v for v in frame[column].dropna().unique() if content_text(v) in wanted]
        keep &= frame[column].isin(mine).to_numpy()
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _same_content(f: _File, frame: pd.DataFrame) -> None:
    """Fail validation (exit 1, as a file whose first rows are another wave's) when a row of ``frame`` holds a
    content value its wave does not allow: discovery read the file's first :data:`CONTENT_SAMPLE` rows only
    (``Job.sampled``). The file's rows would all be stored as one wave: nothing of the run is kept."""
    for column, wanted in f.content:
        if content_values(frame[column]) <= wanted:
            continue
        texts = [None if pd.isna(v) else content_text(v) for v in frame[column]]
        i = next(i for i, t in enumerate(texts) if t is not None and t not in wanted)
        row = int(frame["__row"].to_numpy()[i]) & ROW_MASK
        cw, wave = f.job.crosswalk.survey, f.job.wave.wave
        forced = bool(f.job.content_seen)
        made = f"{cw} wave {wave}" + (" (given by --survey/--wave)" if forced else "")
        raise ValidationFailed([Issue(
            f"{f.job.path}: {column} = {texts[i]} at row {row:,}, but the {column} values of its first "
            f"{CONTENT_SAMPLE:,} rows are {', '.join(sorted(wanted))}: rows of several waves, which would all be "
            f"stored as {made}", code="mixed-waves", survey=cw, wave=wave,
            hint=("drop --survey/--wave: a file of several waves is read wave by wave" if forced else
                  "split a file that holds several waves into one file per wave") + " (if a row's value is wrong, "
                 "mend it in the file)",
            # a file recognised by its content is read wave by wave when run again (api: Options.whole)
            extra={} if forced else {SEVERAL_WAVES: str(f.job.path)})], "the file holds rows of several waves")


def _check(f: _File, project: Project, same: SameWork) -> None:
    """What the crosswalk checks, drift and compilation find against the file (reused across files whose
    metadata are the same, unless a finding names the file)."""
    assert project.schema is not None
    schema = project.schema
    cw, wave, src, job = f.job.crosswalk, f.job.wave, f.src, f.job
    entry = project.surveys[cw.survey]
    names = same.names(src.meta)
    key = (cw.survey, wave.wave, tuple(sorted(job.supplied.items())))
    f.out.issues.extend(same.once("check", src.meta, key, lambda: without_set_aside(
        check_crosswalk(cw, schema, project.tables, entry.index, {wave.wave: src.meta}, only_wave=wave.wave,
                        data=True, supplied=job.supplied), entry.set_aside), names))
    if src.codec is not None and src.codec.guessed:
        f.out.issues.append(Issue(f"{job.path}: the file records no usable text encoding; its texts were read as "
                                  f"{src.meta.encoding}", code="encoding-guessed", severity="note", survey=cw.survey,
                                  wave=wave.wave, hint="pass --encoding to read them otherwise"))
    if src.format == "por":
        f.out.issues.append(Issue(
            f"{job.path}: an SPSS portable file: pyreadstat reads the values it declares user-missing (refusal, "
            "don't know, …) as system-missing, so they are stored with the reason of a system-missing value, not "
            "their own", code="portable-missing", severity="warning", survey=cw.survey, wave=wave.wave,
            hint="re-save the file as .sav (SPSS or PSPP) to keep the reasons of its missing codes"))
    declared = same.declared(project, cw.survey, wave.wave)
    if declared is not None:
        def drifted() -> list[Issue]:
            real = replace(src.meta, variables={k: v for k, v in src.meta.variables.items() if k not in src.virtual})
            return [*drift.compare(declared, real, set(f.plan.sources()), cw.survey, wave.wave),
                    *(locate(i, entry.index, cw.survey, wave.wave)
                      for i in (*renames.renamed_variables(f.plan, declared, src.meta),
                                *moved_labels(f.plan, declared, src.meta, schema,
                                              lambda target: without_override(cw, wave, target, schema, project.tables,
                                                                               src.meta.variables, job.supplied))))]
        f.out.issues.extend(same.once("drift", src.meta, key + (tuple(src.virtual),), drifted, names))
    for e in f.compiled.errors:
        issue = _compile_issue(e, f.plan, project, entry.index)
        retyped = _retyped(f.plan.targets.get(e.target), declared, src.meta) \
            if declared is not None and "holds text" not in e.message else []  # (the compiler said so already)
        if retyped:  # the rule fits the declared codebook: the file is what differs
            issue = replace(issue, hint=f"this file stores {', '.join(retyped)} — a file that differs from the declared "
                                        f"codebook ({entry.codebook_files.get(wave.wave) or 'surveys/'}); convert the "
                                        "variable in the file, or give this file a rule for its type")
        f.out.issues.append(issue)


def _retyped(tp: TargetPlan | None, declared: SourceMeta, meta: SourceMeta) -> list[str]:
    """The variables a rule reads that ``meta`` stores as another type than the declared codebook (``inwds as
    text, declared a number``)."""
    if tp is None:
        return []
    words = {"string": "text", "numeric": "a number"}
    out = []
    for name in plan_sources(tp):
        mine, theirs = find_variable(meta.variables, name), find_variable(declared.variables, name)
        if mine is not None and theirs is not None and mine.type != theirs.type:
            out.append(f"{mine.name} as {words.get(mine.type, mine.type)}, declared {words.get(theirs.type, theirs.type)}")
    return out


def _compile_issue(e: CompileError, plan: WavePlan, project: Project, index: LineIndex | None) -> Issue:
    """A rule that does not compile against a file, located at its rule: a derivation at schema.yaml (where the
    static check reports it too: said once), any other rule in its crosswalk."""
    assert project.schema is not None
    tp = plan.targets.get(e.target)
    if tp is not None and tp.kind == "derived" and project.schema_index is not None:
        pos = next(i for i, v in enumerate(project.schema.variables) if v.name == e.target)
        return replace(project.schema_index.issue(("variables", pos, "derive", "expr"), f"{e.target}: {e.message}",
                                                  code="compile"), survey=plan.survey, wave=plan.wave.wave)
    return locate(Issue(e.message, path=".".join(map(str, e.path)) or f"targets.{e.target}", code="compile",
                        extra={"yaml_path": e.path}), index, plan.survey, plan.wave.wave)


def _batches(files: list[_File], limit: int = CHUNK_ROWS) -> list[list[_File]]:
    """Files in job order, grouped: consecutive small files with equal :meth:`_File.batch_key` share one
    pass through DuckDB and pandera, up to ``limit`` rows; any other file is a group of its own."""
    out: list[list[_File]] = []
    rows = 0
    for f in files:
        last = out[-1] if out else None
        n = f.src.meta.rows or 0
        if (last is not None and f.small and last[0].small and f.batch_key() == last[0].batch_key()
                and rows + n <= limit):
            last.append(f)
            rows += n
        else:
            out.append([f])
            rows = n
    return out


def process(job: Job, con: duckdb.DuckDBPyConnection, project: Project, *, encoding: str | None = None,
            chunksize: int = CHUNK_ROWS, progress: Progress | None = None, prefetch: bool = True) -> Outcome:
    """Harmonise one file into ``con`` (tables already created). Never raises for data problems.

    Chunks of ``chunksize`` rows flow file → DuckDB (compiled SQL) → profile → report stage,
    pandera and ``respondents``, so memory does not grow with the file; with ``prefetch`` a
    forked reader reads the next chunk meanwhile.
    """
    same = SameWork()
    f = _open(job, project, same, encoding)
    _run_batch([f], con, project, same, chunksize, progress, prefetch)
    return f.out


def _run_batch(files: list[_File], con: duckdb.DuckDBPyConnection, project: Project, same: SameWork,
               chunksize: int, progress: Progress | None, prefetch: bool, feed: FileFeed | None = None) -> None:
    """Harmonise a group of :func:`_batches` into ``con``: its rows, then every file's provenance rows.
    ``feed``: reads the small files (else they are read here)."""
    t0 = time.perf_counter()
    one = files[0]
    chunks: Iterator[pd.DataFrame] | None = None
    if len(files) == 1 and not one.small:
        # the reader starts now, so reading overlaps the checks below (not worth it for small files)
        chunks = _spilled(one.spilled, chunksize) if one.spilled is not None else \
            prefetched_chunks(one.src, one.columns, chunksize, enabled=prefetch)
    try:
        for f in files:
            _check(f, project, same)
        ok = [f for f in files if f.ok]
        rows = _Rows()
        if ok:
            _harmonise(ok, con, project, _counted(one, chunks) if chunks is not None else _whole_files(ok, feed),
                       progress, rows)
        for f in files:
            f.out.sha256 = f.hasher.result()
            if f.ok:
                _finish(f, project, rows, same)
        rows.flush(con)
        spent = time.perf_counter() - t0
        for f in files:
            f.out.seconds = spent / len(files)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _counted(f: _File, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        chunk = _wave_rows(f, chunk)
        if not len(chunk):
            continue
        _first_row(f, chunk)
        f.out.rows += len(chunk)
        yield chunk


def _first_row(f: _File, frame: pd.DataFrame) -> None:
    """Keep the file's first row of its edition variables (``source_editions``)."""
    if f.first is None and len(frame):
        f.first = {v: frame[v].iloc[0] for v in f.edition.values() if v in frame.columns}


def _whole_files(files: list[_File], feed: FileFeed | None) -> Iterator[pd.DataFrame]:
    """One frame of the small ``files``' rows, each file read whole; ``source_row`` carries the file's
    position in ``files`` above :data:`FILE_BITS` bits (one file: its rows as they are)."""
    frames = []
    for i, f in enumerate(files):
        f.hasher.begin()
        # one wave's rows of a cumulative file (spilled) are never kept as the file's frames
        parts = recall_frames(f.job.sha256, f.src, f.columns) if f.spilled is None else list(_spilled(f.spilled, CHUNK_ROWS))
        if parts is None:
            parts = feed.take(f.src, f.columns) if feed is not None else list(f.src.chunks(f.columns, CHUNK_ROWS))
            keep_frames(f.job.sha256, f.src, f.columns, parts)
        for frame in map(partial(_wave_rows, f), parts):
            _first_row(f, frame)
            if i:
                frame["__row"] += i << FILE_BITS
            f.out.rows += len(frame)
            frames.append(frame)
    if frames:
        yield frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _read_once(files: list[_File], folder: Callable[[], Path], prefetch: bool) -> None:
    """The waves of a cumulative file (its jobs with ``Job.wave_rows``) read in one pass over the file, not one
    each (a file of 9 rounds was read 9 times): the union of their columns, :data:`CHUNK_ROWS` rows at a time,
    each chunk's rows of each wave (:func:`_wave_rows`, the rows its own read kept) with that wave's columns
    appended to a file of its own in ``folder()`` (the private jobs folder), from which the wave is harmonised
    (:attr:`_File.spilled`, :func:`_spilled`), here or in a worker. Memory holds a chunk, not the file (a chunk
    by ``prefetch``'s forked readers, as a file of one wave is read); the file's digest is computed once.
    A cumulative file with one wave to harmonise (the others kept from the previous build, or their frames kept by
    the validation server: :func:`recall_frames`) is read as before."""
    of: dict[Path, list[_File]] = {}
    for f in files:
        if f.job.wave_rows is not None and f.spilled is None \
                and not (f.small and has_frames(f.job.sha256, f.src, f.columns)):
            of.setdefault(f.job.path, []).append(f)
    for n, waves in enumerate(w for w in of.values() if len(w) > 1):
        first = waves[0]
        variables: dict[str, VarMeta] = {}
        for f in waves:  # a wave lacks the variables empty in its rows (discover: _empty_in_rows); the file has them
            variables.update(f.src.meta.variables)
        src = replace(first.src, meta=replace(first.src.meta, variables=variables))
        columns = list(dict.fromkeys(c for f in waves for c in f.columns))
        own = [{ROW_COLUMN, *f.columns, *(c + EXT_SUFFIX for c in f.columns)} for f in waves]
        first.hasher.begin()
        paths = [folder() / f"rows-{n}-{i}.pickle" for i in range(len(waves))]
        with ExitStack() as stack:
            out = [stack.enter_context(p.open("xb")) for p in paths]
            chunks = prefetched_chunks(src, columns, CHUNK_ROWS, enabled=prefetch)
            stack.callback(getattr(chunks, "close", lambda: None))
            for chunk in chunks:
                for f, keep, fh in zip(waves, own, out):
                    part = _wave_rows(f, chunk)
                    if len(part):
                        pickle.dump(part[[c for c in part.columns if c in keep]], fh, pickle.HIGHEST_PROTOCOL)
        sha256 = first.hasher.result()
        for f, p in zip(waves, paths):
            f.spilled, f.hasher = p, _Hasher(f.job.path, sha256)


def _spilled(path: Path, chunksize: int) -> Iterator[pd.DataFrame]:
    """The frames of a wave that :func:`_read_once` left in ``path``, in row order, joined up to ``chunksize``
    rows (a shuffled file's wave has some rows of every chunk)."""
    parts: list[pd.DataFrame] = []
    rows = 0
    with path.open("rb") as fh:
        while True:
            try:
                part = pickle.load(fh)  # written by this run into its private folder (0700), never a user's file
            except EOFError:
                break
            if parts and rows + len(part) > chunksize:
                yield parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
                parts, rows = [], 0
            parts.append(part)
            rows += len(part)
    if parts:
        yield parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _harmonise(files: list[_File], con: duckdb.DuckDBPyConnection, project: Project, chunks: Iterator[pd.DataFrame],
               progress: Progress | None, rows: _Rows) -> None:
    """Every chunk through the compiled SQL into ``respondents``; the files' profile into the report stage,
    their pandera failures into ``rows``."""
    from harmonise.checks.frame import validate_profile  # pandera loads while the reader reads

    assert project.schema is not None
    one = files[0]
    cw, wave, compiled = one.job.crosswalk, one.job.wave, one.compiled
    names = [f.job.file_name for f in files]
    by = f"(source_row >> {FILE_BITS})" if len(files) > 1 else None
    con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {SCRATCH}")
    con.execute("CREATE OR REPLACE TEMP TABLE report_stage (file BIGINT, target VARCHAR, source_code VARCHAR, "
                "target_value VARCHAR, missing_reason VARCHAR, n BIGINT)")
    fold = report_insert(compiled)
    failures: list[pd.DataFrame] = []
    writer = _Writer(con, project.schema)
    try:
        h = f"{SCRATCH}.h"
        for chunk in chunks:
            one.hasher.begin()  # from the first chunk on: before it, the readers need the cores
            con.register("src", chunk)
            con.execute(f"CREATE OR REPLACE TABLE {h} AS {compiled.sql}")
            con.unregister("src")
            del chunk
            writer.submit(h, names)  # inserts into respondents while this thread profiles and validates
            con.execute(f"CREATE OR REPLACE TEMP TABLE prof AS {profile_sql(compiled, one.plan, project.schema, h, by)}")
            con.execute(fold)
            fc = validate_profile(con.execute(VALIDATION_SELECT).df(), project.schema, project.tables)
            if len(fc):
                failures.append(fc)
            con.execute("DROP TABLE prof")
            writer.wait()  # one staged chunk at a time keeps memory flat (a chunk is ~100 MB in DuckDB)
            con.execute(f"DROP TABLE {h}")
            if progress:
                progress(f"{cw.survey} {wave.wave}: {sum(f.out.rows for f in files):,} rows")
    finally:
        writer.close()
    for i, (f, found) in enumerate(zip(files, _failures_by_file(failures, len(files)))):
        rows.position[id(f)] = i
        rows.failures[id(f)] = found
    for file, *rep in con.execute(
            "SELECT file, target, source_code, target_value, missing_reason, sum(n)::BIGINT AS n FROM report_stage "
            "GROUP BY ALL ORDER BY file, target, source_code, target_value, missing_reason").fetchall():
        rows.report.setdefault(int(file), []).append(tuple(rep))  # type: ignore[arg-type]


def _failures_by_file(failures: list[pd.DataFrame], files: int) -> list[pd.DataFrame]:
    """The chunks' pandera failure cases of each of ``files`` files harmonised together (its rows' numbers
    unpacked, see :func:`insert_select`), folded per file by :func:`_failure_cases`; a failure without a
    row belongs to every file."""
    if files == 1:
        return [_failure_cases(failures)]
    parts: list[list[pd.DataFrame]] = [[] for _ in range(files)]
    for fc in failures:
        packed = [None if pd.isna(r) else int(r) for r in fc["source_row"]]
        for i in range(files):
            mine = [j for j, r in enumerate(packed) if r is None or r >> FILE_BITS == i]
            if mine:
                part = fc.iloc[mine].copy()
                part["source_row"] = [float("nan") if packed[j] is None else float(packed[j] & ROW_MASK)  # type: ignore[operator]
                                      for j in mine]
                parts[i].append(part)
    return [_failure_cases(p) for p in parts]


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

    def _insert(self, relation: str, files: list[str]) -> None:
        try:
            self._cur.execute(insert_select(self._schema, relation, files))
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

    def submit(self, relation: str, files: list[str]) -> None:
        """Wait for the previous insert (raising its error), then start inserting ``relation`` (rows of
        ``files``, see :func:`insert_select`)."""
        self.wait()
        self._thread = threading.Thread(target=self._insert, args=(relation, files), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Wait for the last insert and release the connection; raises an insert's error."""
        try:
            self.wait()
        finally:
            self._cur.close()


class _Rows:
    """Provenance rows of a group's files, inserted once per table (not once per file)."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[provenance.Table, list[tuple[object, ...]]]] = {}
        self.staged: duckdb.DuckDBPyConnection | None = None  # the cursor whose transaction stage() inserted into
        # the report stage, folded, by file position: (target, source code, value, missing reason, n)
        self.report: dict[int, list[accounting.ReportRow]] = {}
        self.failures: dict[int, pd.DataFrame] = {}  # id(_File) → its pandera failure cases
        self.position: dict[int, int] = {}  # id(_File) → its position among the files harmonised together

    def add(self, table: provenance.Table, rows: list[tuple[object, ...]]) -> None:
        self.tables.setdefault(table.name, (table, []))[1].extend(rows)

    def stage(self, con: duckdb.DuckDBPyConnection) -> None:
        """Insert the rows now (a build waiting for its workers), in a transaction on a cursor of their own that
        :meth:`flush` commits: DuckDB places a transaction's rows at its commit, so they follow every group
        committed before (decision 56)."""
        (database,) = con.execute("SELECT current_database()").fetchall()[0]
        cur = con.cursor()
        try:
            cur.execute(f"USE {quote_ident(database)}")  # a cursor starts in the default database
            cur.execute("BEGIN TRANSACTION")
            for table, rows in self.tables.values():
                table.insert(cur, rows)
        except BaseException:
            cur.close()
            raise
        self.staged = cur
        self.tables.clear()

    def flush(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.staged is not None:
            try:
                self.staged.execute("COMMIT")
            finally:
                self.close()
        for table, rows in self.tables.values():
            table.insert(con, rows)
        self.tables.clear()

    def close(self) -> None:
        """Roll back the rows staged and not flushed (a failed build)."""
        if self.staged is not None:
            self.staged.close()
            self.staged = None


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


def _finish(f: _File, project: Project, rows: _Rows, same: SameWork) -> None:
    """The file's provenance rows (into ``rows``), and the checks on what it harmonised (every value
    accounted for)."""
    job, plan, src, out = f.job, f.plan, f.src, f.out
    survey, wid, fname = plan.survey, plan.wave.wave, job.file_name
    index = project.surveys[survey].index
    mine = rows.position.get(id(f), 0)
    rep = rows.report.get(mine, [])
    shape = (survey, wid, tuple(sorted(job.supplied.items())))
    labels = same.once("labels", src.meta, shape, lambda: _labels_for(plan, src))
    report: list[tuple[object, ...]] = []  # a row per (target, code): 217,000 for 260 country files
    for target, code, value, reason, n in rep:
        variables, texts = labels.get(target, NO_LABELS)
        report.append((survey, wid, fname, target, variables, code, texts.get(code or ""), value, reason, n))
    rows.add(provenance.REPORT, report)
    sums: dict[str, int] = {}
    for target, _, _, _, n in rep:
        sums[target] = sums.get(target, 0) + n
    totals = sorted(sums.items())
    rows.add(provenance.CONSERVATION, [(survey, wid, fname, t, out.rows, n, n == out.rows) for t, n in totals])
    fc = rows.failures.get(id(f), NO_FAILURES)
    if len(fc):
        rows.add(provenance.VALIDATION_FAILURES, [
            (survey, wid, fname, str(col), str(check), None if pd.isna(case) else str(case),
             None if pd.isna(r) else int(r))
            for col, check, case, r in zip(fc["column"], fc["check"], fc["failure_case"], fc["source_row"])])
    unmapped = accounting.unmapped_codes(rep, plan, labels, src.meta)
    found = [*unmapped, *accounting.empty_sources(rep, plan, out.rows),
             *inputs.unlabelled_input_codes(rep, plan, src.meta), *inputs.declared_missing_values(rep, plan, src.meta),
             *inputs.missing_weights(rep, plan, out.rows),
             *inputs.no_rows(plan, str(job.path), out.rows), *accounting.conservation(totals, plan, out.rows),
             *accounting.row_count(src.meta.rows if job.wave_rows is None else job.wave_rows, out.rows, str(job.path),
                                   plan),
             *accounting.unused_unmapped_labels(rep, plan, src.meta, same.once(
                 "unaccounted", src.meta, shape, lambda: accounting.unaccounted_codes(plan, src.meta))),
             *accounting.not_available(plan, str(job.path)),
             *accounting.approximate_alternatives(plan, str(job.path)),
             *unlabelled_letters(rep, plan, src.meta, same.declared(project, survey, wid), str(job.path)),
             *unread_letter_labels(rep, plan, src.meta, str(job.path)),
             *accounting.validation_failures(_failure_groups(fc) if len(fc) else [], plan, unmapped, fname)]
    out.issues.extend(locate(i, index, survey, wid) for i in found)
    rows.add(provenance.COMPILED_SQL, [(survey, wid, fname, _stored_sql(f.compiled, plan, src, project))])
    rows.add(provenance.LINEAGE, [(*r[:2], fname, *r[3:]) for r in same.once(
        "lineage", src.meta, shape, lambda: _lineage(plan, src, labels, "", index))])
    rows.add(provenance.SOURCES, [_source_row(project, survey, wid, src, out.sha256, out.rows,
                                              project.surveys[survey].codebook_files.get(wid), fname)])
    # the labels of the variables region_nuts takes its codes from name NUTS regions; not those of a variable
    # whose codes a map turns into NUTS codes (a city code 'BER' labelled 'Berlin' is no NUTS region)
    regions = [n.strip() for n in re.split(r"[,;]", labels.get("region_nuts", ("", {}))[0]) if n.strip()] \
        if "region_nuts" in plan.targets and plan.targets["region_nuts"].kind not in ("map", "table") else []
    out.facts = gathered_facts(survey, wid, fname, f.first or {}, f.edition,
                               same.once("regions", src.meta, tuple(regions), lambda: _regions(src.meta, regions)))
    out.cached = CachedFile("", survey, wid, fname, out.rows, out.sha256, dict(f.first or {}), list(rep), [
        (str(col), str(check), None if pd.isna(case) else str(case), None if pd.isna(r) else int(r),
         None if pd.isna(n) else int(n))
        for col, check, case, r, n in zip(fc["column"], fc["check"], fc["failure_case"], fc["source_row"], fc["n"])]
        if len(fc) else [])


def _regions(meta: SourceMeta, names: list[str]) -> dict[str, dict[str, str]]:
    """The region variables' value labels by code text (none for a variable the file lacks)."""
    return {n: region_labels(_value_labels(vm)) if (vm := meta.variables.get(n)) is not None else {} for n in names}


def _value_labels(vm: VarMeta) -> dict[Any, str]:
    """A variable's value labels as the file holds them (Stata's labelled letters too)."""
    return {**vm.labels, **{k: v for k, v in vm.extended.items() if v}}


def record_source(con: duckdb.DuckDBPyConnection, project: Project, survey: str, wave: str, src: SourceFile,
                  sha256: str, rows: int, codebook: str | None) -> None:
    """The ``sources`` row of a file read for ``survey`` ``wave`` (a data file, or a design file)."""
    provenance.SOURCES.insert(con, [_source_row(project, survey, wave, src, sha256, rows, codebook)])


def _source_row(project: Project, survey: str, wave: str, src: SourceFile, sha256: str, rows: int,
                codebook: str | None, name: str | None = None) -> tuple[object, ...]:
    entry = project.surveys[survey]
    return (survey, wave, name or src.path.name, str(src.path), src.format, src.path.stat().st_size, sha256, rows,
            src.meta.encoding, src.meta.file_label, to_json(src.meta.header), entry.file,
            hashlib.sha256(entry.text.encode()).hexdigest(), codebook, __version__, time.strftime("%Y-%m-%dT%H:%M:%S"))


FAILURE_COLUMNS = ["column", "check", "failure_case", "source_row", "n"]  # as checks.frame.validate_profile gives them
NO_FAILURES = pd.DataFrame(columns=FAILURE_COLUMNS)  # read only
NO_LABELS: tuple[str, dict[str, str]] = ("", {})  # a target without source variables or labels (read only)


def _failure_cases(failures: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks' pandera failure cases, one row per (column, check, value) with its first source row and count."""
    if not failures:
        return NO_FAILURES
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
    large enough to repay the workers (starting them, and merging their files into the database)."""
    size = sum(j.path.stat().st_size for j in jobs)
    return 1 if size < PARALLEL_MIN_BYTES else max(1, min(os.cpu_count() or 1, len(jobs)))


@dataclass
class Reuse:
    """An incremental build: the previous build's cache, and the build options every file's key holds
    (``--encoding``, ``--survey``/``--wave``/``--country``, the design files and their digests)."""

    cache: BuildCache
    options: tuple[str, ...] = ()
    declarations: str = ""  # digest of the schema and code tables (set by run_jobs)


def file_key(f: _File, project: Project, reuse: Reuse, sha256: str) -> str:
    """What a file's harmonised rows, report and pandera failures are a function of: its bytes and name,
    its wave, the columns read and the SQL they go through, the profile, the declarations pandera checks
    against (schema and code tables), the build options and harmonise itself (version and code)."""
    assert project.schema is not None
    return digest([code_digest(), *reuse.options, reuse.declarations, sha256, f.job.file_name,
                   f.job.crosswalk.survey, f.job.wave.wave, f.job.wave_rows, sorted(f.job.supplied.items()), f.columns,
                   f.src.encoding,
                   f.src.codec, f.compiled.sql, f.compiled.report_targets,
                   profile_sql(f.compiled, f.plan, project.schema, "h")])


def _declarations_digest(root: Path) -> str:
    """The schema and code tables (what pandera's checks are built from)."""
    mappings = root / "mappings"
    return digest([(str(p.relative_to(root)), p.read_bytes()) for p in
                   [mappings / "schema.yaml", *sorted((mappings / "tables").rglob("*"))] if p.is_file()])


def run_jobs(jobs: list[Job], con: duckdb.DuckDBPyConnection, project: Project, *, encoding: str | None = None,
             progress: Progress | None = None, workers: int | None = 1,
             mappings: list[Path] | None = None, reuse: Reuse | None = None, idle: Idle | None = None) -> list[Outcome]:
    """Harmonise every job into ``con`` (tables already created), in job order.

    Small files of one wave that compile to the same SQL are harmonised together (:func:`_batches`).
    With ``workers`` > 1 and several such groups, each group is harmonised in a worker process into a
    DuckDB file of its own; the main process merges those into ``con`` in job order, so the
    database holds the same rows whatever the number of workers. The workers' files live in a
    folder beside the database being built (``<file>.jobs``, mode 0700, removed with the build's
    other leftovers if the build is killed); the workers die with the process that started them.
    ``workers`` None: :func:`default_jobs` of the files to harmonise (not those reused).

    With ``reuse``, a file whose :func:`file_key` the cache holds is not read: its rows are those of the
    previous database ``con`` started as a copy of (:meth:`BuildCache.keep_rows`) and its provenance is
    written from the cached report, as a full build writes it;
    every harmonised file is noted in the cache for the next build. ``idle``: work for this process
    while it waits for a worker (see :func:`_in_workers`).
    """
    same = SameWork()
    files = []
    for j in jobs:
        with _located([j]):
            files.append(_open(j, project, same, encoding))
    if reuse is not None:
        reuse.declarations = _declarations_digest(project.root)
    hits: dict[int, CachedFile] = {}
    keys: dict[int, str] = {}
    started: _Started | None = None
    stack = ExitStack()
    # neither a second thread nor a reader child ahead pays for its start (decisions 48, 49)
    few = sum(ONE_THREAD_ROWS if f.src.meta.rows is None else f.src.meta.rows for f in files) < ONE_THREAD_ROWS
    folder: list[Path] = []  # the jobs folder, once made

    def jobs_folder() -> Path:
        if not folder:
            folder.append(stack.enter_context(_jobs_folder(con)))
        return folder[0]

    try:
        seeded = reuse is not None and reuse.cache.attach(con) and reuse.cache.seeded  # kept files' rows are in place
        if reuse is not None and seeded:
            keys = {id(f): file_key(f, project, reuse, f.job.sha256) for f in files if f.job.sha256}
        # a cumulative file's waves to harmonise are read in one pass (those whose key the cache holds are not read)
        _read_once([f for f in files if keys.get(id(f)) not in (reuse.cache.files if reuse is not None else ())],
                   jobs_folder, not few)
        if reuse is not None and seeded:
            # the files whose key the cache lacks are harmonised again: their workers start on them while the
            # rest are checked against the previous database
            started = _early_workers(files, {i for i, k in keys.items() if k in reuse.cache.files}, workers,
                                     project, mappings, same, encoding, jobs_folder)
            found = reuse.cache.harmonised(con, list(keys.values()))
            hits = {i: found[k] for i, k in keys.items() if k in found}
        if reuse is not None and reuse.cache.seeded:
            reuse.cache.keep_rows(con, [hits[id(f)] for f in files if id(f) in hits])
        # waves whose every file is kept have their final rows already: their ids are checked while waiting
        fresh_waves = {_wave_of(f) for f in files if id(f) not in hits}
        kept_waves = [w for w in dict.fromkeys(map(_wave_of, files)) if w not in fresh_waves]
        duplicates: dict[str, list[Duplicates]] = {}

        def waiting(complete: list[tuple[str, str]]) -> bool:
            if "kept" not in duplicates:
                duplicates["kept"] = duplicate_ids(con, waves=kept_waves)
                return True
            return idle is not None and idle(complete)

        workers, segments = _plan(files, hits, workers)
        if not _parallel(workers, segments):
            if few:
                con.execute("SET threads = 1")
            feed = FileFeed([(f.src, f.columns) for kind, groups in segments if kind == "fresh" for g in groups
                             for f in g if f.small and f.spilled is None
                             and not has_frames(f.job.sha256, f.src, f.columns)], enabled=not few)
            try:
                for kind, groups in segments:
                    for g in groups:
                        if kind == "reuse":
                            _reuse_run(g, con, project, same, hits)
                            continue
                        with _located([f.job for f in g], project, encoding):
                            _run_batch(g, con, project, same, CHUNK_ROWS, progress, True, feed)
            finally:
                feed.close()
            outcomes = [f.out for f in files]
        else:
            outcomes = _in_workers(segments, con, project, encoding, progress, workers, mappings,
                                   lambda g, ready: _reuse_run(g, con, project, same, hits, ready),
                                   lambda g: _reuse_prepare(g, project, same, hits), waiting, started, same,
                                   jobs_folder)
    finally:
        if started is not None:
            started.pool.shutdown(wait=False, cancel_futures=True)  # unused (or shut down already)
        stack.close()
        if reuse is not None:
            reuse.cache.detach(con)
    if reuse is not None:
        for f, out in zip(files, outcomes):
            if out.cached is not None and not any(i.severity == "error" for i in out.issues):
                out.cached.key = keys[id(f)] if id(f) in keys and f.job.sha256 == out.sha256 else \
                    file_key(f, project, reuse, out.sha256)
                reuse.cache.note_file(out.cached, f.job.path, out.reused)
    if outcomes:
        twice = duplicate_ids(con) if "kept" not in duplicates else sorted(
            [*duplicates["kept"], *duplicate_ids(con, waves=kept_waves, other=True)], key=lambda d: (d[0], d[1]))
        outcomes[-1].issues.extend(_duplicates(twice, project, jobs))
        outcomes[-1].issues.extend(_duplicates(ids_written_differently(con), project, jobs, written=True))
    return outcomes


def _plan(files: list[_File], kept: Container[int], workers: int | None
          ) -> tuple[int, list[tuple[str, list[list[_File]]]]]:
    """The worker processes (``workers``, or :func:`default_jobs` of the files to harmonise) and the
    :func:`_segments` of ``files`` when those whose ``id`` is in ``kept`` are kept."""
    if workers is None:
        workers = default_jobs([f.job for f in files if id(f) not in kept])
    rows = group_rows(sum(f.src.meta.rows or 0 for f in files if id(f) not in kept and f.small), workers)
    return workers, _segments(files, kept, rows)


def _parallel(workers: int, segments: list[tuple[str, list[list[_File]]]]) -> bool:
    """Whether the groups to harmonise go to worker processes: more than one worker and group."""
    return workers > 1 and sum(len(groups) for kind, groups in segments if kind == "fresh") > 1


@dataclass
class _Started:
    """Workers started before the files to harmonise were known for sure (:func:`_early_workers`): the pool,
    its jobs folder, and per group of files (their ids) the worker's future and the file it writes."""

    pool: ProcessPoolExecutor
    folder: Path
    groups: dict[tuple[int, ...], tuple[Future[list[Outcome]], Path]]


def _early_workers(files: list[_File], kept: Container[int], workers: int | None, project: Project,
                   mappings: list[Path] | None, same: SameWork, encoding: str | None,
                   jobs_folder: Callable[[], Path]) -> _Started | None:
    """The workers for the files not ``kept``, started now on their groups, when those go to workers: they
    harmonise while the main process checks the kept files against the previous database. A group the final
    plan does not have (a kept file the previous database lacks) is left unused, its file removed with the
    jobs folder (``jobs_folder()``, which the caller removes)."""
    workers, segments = _plan(files, kept, workers)
    if not _parallel(workers, segments):
        return None
    fresh = [g for kind, groups in segments if kind == "fresh" for g in groups]
    folder = jobs_folder()
    workers = min(workers, len(fresh))
    pool = _pool(workers, project, mappings, same)
    return _Started(pool, folder, {_key(g): _submit(pool, g, folder / f"early-{i}.duckdb", encoding, workers)
                                   for i, g in enumerate(fresh)})


def _key(group: list[_File]) -> tuple[int, ...]:
    return tuple(map(id, group))


def _submit(pool: ProcessPoolExecutor, group: list[_File], path: Path, encoding: str | None,
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


def _segments(files: list[_File], hits: Container[int], rows: int = CHUNK_ROWS
              ) -> list[tuple[str, list[list[_File]]]]:
    """The files in job order as runs of reused files (one group each) and of files to harmonise (in
    :func:`_batches` of up to ``rows`` rows)."""
    out: list[tuple[str, list[list[_File]]]] = []
    for reused, run in itertools.groupby(files, key=lambda f: id(f) in hits):
        members = list(run)
        out.append(("reuse", [members]) if reused else ("fresh", _batches(members, rows)))
    return out


def group_rows(small: int, workers: int) -> int:
    """The rows of a group of small files when ``small`` rows of them are to be harmonised by ``workers``
    processes: :data:`CHUNK_ROWS`, or an even share when they hold fewer than ``workers`` times that (a
    rebuild harmonising one wave's 30 country files of 2,000 rows again made groups of 25 and 5 files, one
    worker waiting on the other; now 15 and 15)."""
    return CHUNK_ROWS if workers <= 1 or small <= 0 else max(1, min(CHUNK_ROWS, -(-small // workers)))


def _reuse_run(files: list[_File], con: duckdb.DuckDBPyConnection, project: Project, same: SameWork,
               hits: dict[int, CachedFile], prepared: _Rows | None = None) -> None:
    """Files the cache holds (their rows are in the database already: :meth:`BuildCache.keep_rows`): their
    provenance and findings written from the cached report and pandera failures, as :func:`_run_batch` writes
    them (``prepared``: what :func:`_reuse_prepare` made of them already)."""
    rows = prepared if prepared is not None else _reuse_prepare(files, project, same, hits)
    rows.flush(con)


def _reuse_prepare(files: list[_File], project: Project, same: SameWork, hits: dict[int, CachedFile]) -> _Rows:
    """The checks, findings and provenance rows of files the cache holds (nothing written yet)."""
    rows = _Rows()
    for f in files:
        _check(f, project, same)
    for i, f in enumerate(files):
        cached = hits[id(f)]
        f.out.sha256 = cached.sha256
        if not f.ok:
            continue
        f.out.rows, f.first, f.out.reused = cached.rows, dict(cached.first), True
        rows.position[id(f)] = i
        rows.report[i] = list(cached.report)
        rows.failures[id(f)] = pd.DataFrame(cached.failures, columns=FAILURE_COLUMNS) if cached.failures \
            else NO_FAILURES
        _finish(f, project, rows, same)
    return rows


def _duplicates(found: list[Duplicates], project: Project, jobs: list[Job], written: bool = False) -> list[Issue]:
    """Respondent ids stored twice in a wave, across all its files (:func:`duplicate_ids` of every wave, once
    all are in; ``written``: :func:`ids_written_differently`)."""
    out: list[Issue] = []
    for survey, wave, n, examples in found:
        job = next(j for j in jobs if j.crosswalk.survey == survey and j.wave.wave == wave)
        entry = project.surveys[survey]
        assert project.schema is not None
        plan = resolve_wave(job.crosswalk, job.wave, project.schema, project.tables)
        path = plan.targets["respondent_id"].path if "respondent_id" in plan.targets else ()
        out.extend(locate(i, entry.index, survey, wave)
                   for i in accounting.duplicate_ids(survey, wave, n, examples, path, written))
    return out


def _in_workers(segments: list[tuple[str, list[list[_File]]]], con: duckdb.DuckDBPyConnection, project: Project,
                encoding: str | None, progress: Progress | None, workers: int, mappings: list[Path] | None,
                reuse: Callable[[list[_File], _Rows | None], None],
                prepare: Callable[[list[_File]], _Rows], idle: Idle | None, started: _Started | None,
                same: SameWork, jobs_folder: Callable[[], Path]) -> list[Outcome]:
    """Each group of files to harmonise in a worker process, into a DuckDB file of its own, merged into
    ``con`` in job order; runs of reused files are written by this process (``reuse``) in their place.
    While a worker's group is not ready, the next runs of reused files are checked and their provenance
    rows made (``prepare``), to be written in their turn; then ``idle`` is called with the survey-waves
    whose every file is in ``con`` and some harmonised afresh, until it has nothing to do. ``started``: the
    workers, started already on the groups they were given (:func:`_early_workers`); ``same``: what this
    process compiled already (a forked worker starts with it); ``jobs_folder()``: the folder for the workers'
    files (made once, removed by the caller)."""
    fresh = [g for kind, groups in segments if kind == "fresh" for g in groups]
    ready: dict[int, _Rows] = {}
    ordered = [g for _, groups in segments for g in groups]
    last = {_wave_of(f): i for i, g in enumerate(ordered) for f in g}
    harmonised = {_wave_of(f) for g in fresh for f in g}
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
        merges: dict[int, _Merge] = {}
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
                            merges[id(r)] = _Merge(con, written[id(r)], merger)
                    mine = merges.get(id(g))
                    if mine is not None and mine.future.done() or waiting.done() and waiting.exception() is not None:
                        break
                    pending: list[Future[Any]] = [futures[id(r)] for r in rest if id(r) not in merges]
                    wait([*pending, *([mine.future] if mine else [])], return_when=FIRST_COMPLETED)
                jobs = [f.job for f in g]
                with _located(jobs):
                    outs = waiting.result()
                    if all(f.done() for f in futures.values()):
                        pool.shutdown(wait=False)  # the workers exit while their last files are merged (~0.3 s)
                    merges.pop(id(g)).commit()
                for job, out in zip(jobs, outs):
                    out.job = job  # the worker's copy came back without the opened file
                    outcomes.append(out)
                    if progress:
                        progress(f"{out.job.crosswalk.survey} {out.job.wave.wave}: {out.rows:,} rows")
            complete.extend(w for w in dict.fromkeys(_wave_of(f) for f in g) if last[w] == position and w in harmonised)
    return outcomes


class _Merge:
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


def _close_all(merges: dict[int, _Merge], ready: dict[int, _Rows]) -> None:
    """Roll back the merges and staged rows a failed build left uncommitted (before the merger's shutdown)."""
    for m in merges.values():
        m.close()
    for r in ready.values():
        r.close()


def _wave_of(f: _File) -> tuple[str, str]:
    return f.job.crosswalk.survey, f.job.wave.wave


# DuckDB errors that data or an expression can cause (a value out of range, a conversion, a full disk);
# parser and internal errors stay bugs.
DATA_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException,
               duckdb.IOException, duckdb.OutOfMemoryException)
# Those a rule can cause: its expression does not fit the file's values or types (what the compiler's type
# checks let through), said as the rule's error (exit 1), never as a bug or as a database of another version.
RULE_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException,
               duckdb.BinderException)


@contextmanager
def _located(jobs: list[Job], project: Project | None = None, encoding: str | None = None) -> Iterator[None]:
    """DuckDB errors a file or a rule's expression can cause: the rule's error when one rule alone fails on
    the file (a ValidationFailed naming survey, wave, target and file:line), else an InputError naming the
    file and wave.

    When several files were harmonised together, each is harmonised alone (into a scratch database,
    given ``project``) to find the one at fault."""
    try:
        yield
    except (*DATA_ERRORS, *RULE_ERRORS) as exc:
        job = jobs[0]
        if len(jobs) > 1 and project is not None:
            job = _culprit(jobs, project, encoding) or job
        first = str(exc).splitlines()[0]
        found = _culprit_rule(job, project, encoding) if project is not None and isinstance(exc, RULE_ERRORS) \
            else None
        if found is not None:
            raise ValidationFailed([found], "a rule fails on the file") from exc
        if isinstance(exc, duckdb.BinderException):
            cw, wave = job.crosswalk.survey, job.wave.wave
            raise ValidationFailed([Issue(
                f"{job.path}: harmonising {cw} wave {wave} failed in DuckDB ({first}): a rule of the wave does not "
                "fit the types of this file's variables", code="compile", survey=cw, wave=wave,
                hint=f"`harmonise sql {cw} {wave} --data FILE` shows the SQL; check the wave's expressions")],
                "a rule fails on the file") from exc
        raise InputError(f"{job.path}: harmonising {job.crosswalk.survey} wave {job.wave.wave} failed in DuckDB "
                         f"({first}); if a rule's expression cannot hold this file's values, guard it (e.g. "
                         "with if/else); if the disk or memory is full, free some and build again") from exc


def _culprit(jobs: list[Job], project: Project, encoding: str | None) -> Job | None:
    """The first of ``jobs`` whose harmonising alone fails in DuckDB (None if none does)."""
    assert project.schema is not None
    for job in jobs:
        scratch = duckdb.connect(":memory:")
        try:
            create_all(scratch, project.schema)
            process(job, scratch, project, encoding=encoding, prefetch=False)
        except (*DATA_ERRORS, *RULE_ERRORS):
            return job
        finally:
            scratch.close()
    return None


def _culprit_rule(job: Job, project: Project, encoding: str | None) -> Issue | None:
    """The first rule of ``job``'s wave whose value alone fails in DuckDB on the file's rows, as an error located
    at the rule (None if none does alone: a derivation, or not a rule's doing)."""
    assert project.schema is not None
    try:
        f = _open(job, project, SameWork(), encoding)
    except (*DATA_ERRORS, *RULE_ERRORS):
        return None
    checks = target_checks(f.plan, f.src.meta, project.schema, project.tables, f.compiled.extended)
    scratch = duckdb.connect(":memory:")
    try:
        scratch.execute("SET threads = 1")
        for chunk in f.src.chunks(f.columns, CHUNK_ROWS):
            scratch.register("src", chunk)
            for target, sql in checks:
                try:
                    scratch.execute(sql).fetchall()
                except RULE_ERRORS as exc:
                    tp = f.plan.targets[target]
                    first = str(exc).splitlines()[0]
                    cw, wave = job.crosswalk.survey, job.wave.wave
                    field = next((k for k in ("expr", "transform") if getattr(tp, k, None)), None)
                    path = tp.path + ((field,) if field and tp.path else ())
                    return locate(Issue(
                        f"{job.path}: the rule of {target} ({cw} wave {wave}) fails in DuckDB on this file ({first})",
                        code="compile", path=".".join(map(str, path)) or f"targets.{target}",
                        extra={"yaml_path": path}, hint="make the rule fit the file's values and types (compare "
                        "text with quoted codes, convert with int(), float() or str(), guard with if/else)"),
                        project.surveys[cw].index, cw, wave)
            scratch.unregister("src")
    finally:
        scratch.close()
    return None


@contextmanager
def _jobs_folder(con: duckdb.DuckDBPyConnection) -> Iterator[Path]:
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
    :func:`_read_once` wrote and the data file's digest (None: it is read from its data file)."""
    project = _WORKER["project"]
    same = _WORKER.setdefault("same", SameWork())
    assert isinstance(project, Project) and isinstance(same, SameWork) and project.schema is not None
    con = open_build(Path(path))
    try:
        con.execute("SET threads = 1")  # the workers already use the cores
        create_all(con, project.schema)
        with _located(jobs, project, encoding):
            files = [_open(job, project, same, encoding) for job in jobs]
            for f, spill in zip(files, spilled):
                if spill is not None:
                    f.spilled, f.hasher = Path(spill[0]), _Hasher(f.job.path, spill[1])
            _run_batch(files, con, project, same, CHUNK_ROWS, None, prefetch)
        outs = [f.out for f in files]
        for out in outs:
            out.job = replace(out.job, source=None)  # the main process has it: not sent back
        return outs
    finally:
        con.close()
