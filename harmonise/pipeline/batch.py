"""A group of source files through the compiled SQL into a DuckDB connection: the path shared by
`validate --data` and `build`.

For each (survey, wave, file): read metadata → resolve and statically check the crosswalk against it →
compile SQL → stream the needed columns in chunks through the SQL → validate each harmonised chunk with
pandera → insert, while counting every (target, source code → target value | missing reason) for the
harmonisation report and the conservation check (its rows: :mod:`harmonise.pipeline.rows`). A wave's small
files that compile to the same SQL go through those steps together (:func:`batches`).
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from harmonise.borrowed import borrow_labels, borrowed_issue
from harmonise.checks import drift, renames
from harmonise.checks.crosswalk import check_crosswalk
from harmonise.checks.labels import file_lettering, moved_labels
from harmonise.checks.per_file import of_file
from harmonise.compile.profile import VALIDATION_SELECT, profile_sql, report_insert
from harmonise.compile.sql import CompiledWave, CompileError, compile_in_order
from harmonise.compile.sqltext import quote_ident
from harmonise.discover import SEVERAL_WAVES, Job
from harmonise.errors import Issue, ValidationFailed
from harmonise.pipeline.rows import ProvenanceRows, failure_cases, finish_file
from harmonise.readers.files import EXT_SUFFIX, ROW_COLUMN, SourceFile, check_staged_names, open_source
from harmonise.readers.prefetch import FileFeed, has_frames, keep_frames, prefetched_chunks, recall_frames
from harmonise.recognition import CONTENT_SAMPLE
from harmonise.rounds import content_text, content_values, content_wanted
from harmonise.samework import SameWork
from harmonise.spec.coverage import plan_sources
from harmonise.spec.project import Project, without_set_aside
from harmonise.spec.resolve import TargetPlan, WavePlan, resolve_wave, without_override
from harmonise.spec.schema import TargetSchema
from harmonise.spec.source import SourceMeta, VarMeta, find_variable
from harmonise.spec.yamlload import LineIndex, locate
from harmonise.store.cache import CachedFile
from harmonise.store.editions import FileFacts, edition_variables, file_edition
from harmonise.store.respondents import (
    FILE_BITS,
    ROW_MASK,
    insert_select,
)
from harmonise.supplied import supply

Progress = Callable[[str], None]
# errors about what a file's labels or names say of the rules (a recode, a renamed variable): the rules still run
# on the file, so a run harmonises it to find the errors its rows hold too (the run fails all the same)
ADVISORY = frozenset({"label-contradiction", "renamed-variable"})
CHUNK_ROWS = 50_000  # rows per chunk: large enough to amortise planning, small enough to keep memory flat
# Files with fewer rows are small: read whole (by one reader for all of them, not a forked reader per
# file, which costs more than it overlaps) and harmonised together with their wave's other small files.
PREFETCH_MIN_ROWS = 10_000
SCRATCH = "harmonise_scratch"  # in-memory database of the chunks being harmonised, shared with the writer




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


class Hasher(threading.Thread):
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
    supply(job.supplied, job.crosswalk, job.wave, project, src)
    plan = resolve_wave(job.crosswalk, job.wave, project.schema, project.tables, src.meta.variables, job.supplied)
    return _source_columns(plan, src)


@dataclass
class PreparedFile:
    """A job ready to harmonise: its opened file, plan, compiled SQL, the columns it reads, its outcome."""

    job: Job
    src: SourceFile
    plan: WavePlan
    compiled: CompiledWave
    columns: list[str]
    out: Outcome
    hasher: Hasher
    edition: dict[str, str] = field(default_factory=dict)  # the descriptor's edition variables: key → variable
    first: dict[str, object] | None = None  # the first row of the edition variables, once read
    content: list[tuple[str, set[str]]] = field(default_factory=list)  # (column, its wave's values) checked per row
    # a file of one wave: per variable that tells its survey's waves apart, the rows without a value (stored as the
    # file's wave all the same, and said: ``content-missing``)
    unset: dict[str, int] = field(default_factory=dict)
    # a wave of a cumulative file harmonised with others of its waves: its rows as the file's one read for them all
    # left them (:func:`read_once`), read from there instead of the file
    spilled: Path | None = None
    # a file the build cache holds: its findings' key and findings as the previous build stored them
    kept_findings: tuple[str, str | None] | None = None

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

    @property
    def harmonisable(self) -> bool:
        """No error but those that leave the file's harmonising as meaningful as before (``ADVISORY``): the file is
        harmonised, so that the errors its rows hold are found in the same run (all errors, not the first)."""
        return not any(i.severity == "error" and i.code not in ADVISORY for i in self.out.issues)


def prepare_file(job: Job, project: Project, same: SameWork, encoding: str | None) -> PreparedFile:
    """Open ``job``'s file (its header read once), resolve and compile its wave (once per distinct metadata).

    The file's edition variables are read with the crosswalk's columns (for ``source_editions``)."""
    src = _opened(job, encoding or job.wave.encoding)
    supply(job.supplied, job.crosswalk, job.wave, project, src)
    src, borrowed = borrow_labels(src, same.declared(project, job.crosswalk.survey, job.wave.wave))
    plan, compiled = same.compile(job.crosswalk, job.wave, project, src.meta, src.format == "dta", job.supplied)
    said: list[Issue] = []
    if src.format == "dta":
        plan, compiled, said = _lettered(job, project, same, src, plan, compiled)
    if borrowed:
        entry = project.surveys[job.crosswalk.survey]
        told = borrowed_issue(str(job.path), borrowed, plan.sources(), entry.codebook_files.get(job.wave.wave, ""),
                              job.crosswalk.survey, job.wave.wave)
        said += [told] if told is not None else []
    columns = _source_columns(plan, src)
    edition = same.keyed(("edition", job.crosswalk.survey),
                         lambda: edition_variables(file_edition(project, job.crosswalk.survey)))
    columns += [v for v in edition.values() if v in src.meta.variables and v not in src.virtual and v not in columns]
    content = [(vm.name, job.content_seen.get(vm.name) or content_wanted(allowed))
               for name, allowed in (job.wave.content or {}).items()
               if job.sampled and (vm := src.meta.get(name)) is not None]
    columns += [c for c, _ in content if c not in columns]
    unset = {vm.name: 0 for name in (job.wave.content or {}) if job.wave_rows is None
             and (vm := src.meta.get(name)) is not None and vm.name not in src.virtual}
    columns += [c for c in unset if c not in columns]
    check_staged_names(job.path, columns, src.meta)
    f = PreparedFile(job, src, plan, compiled, columns, Outcome(job), Hasher(job.path, job.sha256), edition,
                     content=content, unset=unset)
    index = project.surveys[job.crosswalk.survey].index
    f.out.issues.extend(of_file(locate(i, index, plan.survey, plan.wave.wave), job.file_name, str(job.path))
                        for i in said)
    return f


def _lettered(job: Job, project: Project, same: SameWork, src: SourceFile, plan: WavePlan, compiled: CompiledWave
              ) -> tuple[WavePlan, CompiledWave, list[Issue]]:
    """A Stata file's plan and SQL with its unlabelled missing letters read as the file letters them (decision 97),
    and what was said of it: the letters of the variables that leave some letter of the convention unlabelled are
    read first (their columns only: 0.2 s for the 56,752 rows of the ESS4 extract; a cumulative file's were counted
    by discovery's pass over it, for every round), and :func:`lettering` judges
    them. A file read in order gets SQL of its own, so it is batched only with files read the same way, and its
    build-cache key (which holds the SQL) changes with the reading."""
    def held(wanted: list[str]) -> Mapping[str, Mapping[str, int]]:
        if job.letters is not None and set(wanted) <= job.letters.columns:
            return job.letters.held
        return same.keyed(("letters", str(job.path), job.sha256, src.encoding, tuple(wanted)),
                          lambda: src.letters(wanted, CHUNK_ROWS))

    reading = file_lettering(plan, src, same.declared(project, job.crosswalk.survey, job.wave.wave), str(job.path),
                             held)
    if reading is None:
        return plan, compiled, []
    if not reading.letters:
        return plan, compiled, reading.issues
    schema = project.schema
    assert schema is not None
    key = tuple((t, v, tuple(sorted(r.items()))) for t, by in sorted(reading.letters.items()) for v, r in sorted(by.items()))

    def ordered() -> tuple[WavePlan, CompiledWave]:  # the files of a wave converted alike share it
        return compile_in_order(plan, reading.letters, src.meta, schema, project.tables)

    supplied = tuple(sorted(job.supplied.items()))
    plan, compiled = same.once("compile-in-order", src.meta, (job.crosswalk.survey, job.wave.wave, supplied, key),
                               ordered, same.row_ids)
    return plan, compiled, reading.issues


def _wave_rows(f: PreparedFile, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` that ``f`` harmonises: of a file of several waves (``Job.wave_rows``), the rows its
    wave's content values mark (the other waves' jobs take the rest; discovery counted them all); of any other
    file every row, checked by :func:`_same_content`."""
    if f.job.wave_rows is None:
        _same_content(f, frame)
        for column in f.unset:
            f.unset[column] += int(frame[column].isna().sum())
        return frame
    keep = np.ones(len(frame), dtype=bool)
    for column, wanted in f.content:
        mine = [v for v in frame[column].dropna().unique() if content_text(v) in wanted]
        keep &= frame[column].isin(mine).to_numpy()
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _same_content(f: PreparedFile, frame: pd.DataFrame) -> None:
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


def check_file(f: PreparedFile, project: Project, same: SameWork) -> None:
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
        f.out.issues.append(of_file(Issue(
            f"{job.path}: the file records no usable text encoding; its texts were read as {src.meta.encoding}",
            code="encoding-guessed", severity="note", survey=cw.survey, wave=wave.wave,
            hint="pass --encoding to read them otherwise"), job.file_name, str(job.path)))
    if src.format == "por":
        f.out.issues.append(of_file(Issue(
            f"{job.path}: an SPSS portable file: pyreadstat reads the values it declares user-missing (refusal, "
            "don't know, …) as system-missing, so they are stored with the reason of a system-missing value, not "
            "their own", code="portable-missing", severity="warning", survey=cw.survey, wave=wave.wave,
            hint="re-save the file as .sav (SPSS or PSPP) to keep the reasons of its missing codes"),
            job.file_name, str(job.path)))
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
        f.out.issues.extend(of_file(i, job.file_name, str(job.path))  # a file's own: several files' said once
                            for i in same.once("drift", src.meta, key + (tuple(src.virtual),), drifted, names))
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


def batches(files: list[PreparedFile], limit: int = CHUNK_ROWS) -> list[list[PreparedFile]]:
    """Files in job order, grouped: consecutive small files with equal :meth:`PreparedFile.batch_key` share one
    pass through DuckDB and pandera, up to ``limit`` rows, except that a run's last group joins the one before it
    when the two hold at most :data:`TAIL_SLACK` × ``limit`` rows; any other file is a group of its own.

    Each group costs a fixed ~0.4 CPU-s (its recode statement planned, its pandera validation, its worker's file
    merged): an ESS round of 30 country files of 2,000 rows made a group of 25 files and one of 5."""
    out: list[list[PreparedFile]] = []
    rows: list[int] = []  # the rows of each group of ``out``
    run = 0  # where the run of compatible small files that the last group belongs to starts in ``out``
    for f in files:
        last = out[-1] if out else None
        n = f.src.meta.rows or 0
        if last is not None and f.small and last[0].small and f.batch_key() == last[0].batch_key():
            if rows[-1] + n <= limit:
                last.append(f)
                rows[-1] += n
                continue
        else:
            _join_tail(out, rows, run, limit)
            run = len(out)
        out.append([f])
        rows.append(n)
    _join_tail(out, rows, run, limit)
    return out


TAIL_SLACK = 1.25  # a run's last group joins the one before when both hold at most this many times the limit


def _join_tail(out: list[list[PreparedFile]], rows: list[int], run: int, limit: int) -> None:
    """The last group of ``out`` joined to the one before when both are of the run starting at ``run`` and hold at
    most :data:`TAIL_SLACK` × ``limit`` rows together."""
    if len(out) - run >= 2 and rows[-2] + rows[-1] <= TAIL_SLACK * limit:
        tail, n = out.pop(), rows.pop()
        out[-1].extend(tail)
        rows[-1] += n


def process(job: Job, con: duckdb.DuckDBPyConnection, project: Project, *, encoding: str | None = None,
            chunksize: int = CHUNK_ROWS, progress: Progress | None = None, prefetch: bool = True) -> Outcome:
    """Harmonise one file into ``con`` (tables already created). Never raises for data problems.

    Chunks of ``chunksize`` rows flow file → DuckDB (compiled SQL) → profile → report stage,
    pandera and ``respondents``, so memory does not grow with the file; with ``prefetch`` a
    forked reader reads the next chunk meanwhile.
    """
    same = SameWork()
    f = prepare_file(job, project, same, encoding)
    run_batch([f], con, project, same, chunksize, progress, prefetch)
    return f.out


def run_batch(files: list[PreparedFile], con: duckdb.DuckDBPyConnection, project: Project, same: SameWork,
               chunksize: int, progress: Progress | None, prefetch: bool, feed: FileFeed | None = None) -> None:
    """Harmonise a group of :func:`batches` into ``con``: its rows, then every file's provenance rows.
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
            check_file(f, project, same)
        ok = [f for f in files if f.harmonisable]
        rows = ProvenanceRows()
        if ok:
            _harmonise(ok, con, project, _counted(one, chunks) if chunks is not None else _whole_files(ok, feed),
                       progress, rows)
        for f in files:
            f.out.sha256 = f.hasher.result()
            if f.harmonisable:
                finish_file(f, project, rows, same)
        rows.flush(con)
        spent = time.perf_counter() - t0
        for f in files:
            f.out.seconds = spent / len(files)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _counted(f: PreparedFile, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        chunk = _wave_rows(f, chunk)
        if not len(chunk):
            continue
        _first_row(f, chunk)
        f.out.rows += len(chunk)
        yield chunk


def _first_row(f: PreparedFile, frame: pd.DataFrame) -> None:
    """Keep the file's first row of its edition variables (``source_editions``)."""
    if f.first is None and len(frame):
        f.first = {v: frame[v].iloc[0] for v in f.edition.values() if v in frame.columns}


def _whole_files(files: list[PreparedFile], feed: FileFeed | None) -> Iterator[pd.DataFrame]:
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


def read_once(files: list[PreparedFile], folder: Callable[[], Path], prefetch: bool) -> None:
    """The waves of a cumulative file (its jobs with ``Job.wave_rows``) read in one pass over the file, not one
    each (a file of 9 rounds was read 9 times): the union of their columns, :data:`CHUNK_ROWS` rows at a time,
    each chunk's rows of each wave (:func:`_wave_rows`, the rows its own read kept) with that wave's columns
    appended to a file of its own in ``folder()`` (the private jobs folder), from which the wave is harmonised
    (:attr:`PreparedFile.spilled`, :func:`_spilled`), here or in a worker. Memory holds a chunk, not the file (a chunk
    by ``prefetch``'s forked readers, as a file of one wave is read); the file's digest is computed once.
    A cumulative file with one wave to harmonise (the others kept from the previous build, or their frames kept by
    the validation server: :func:`recall_frames`) is read as before."""
    of: dict[Path, list[PreparedFile]] = {}
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
            f.spilled, f.hasher = p, Hasher(f.job.path, sha256)


def _spilled(path: Path, chunksize: int) -> Iterator[pd.DataFrame]:
    """The frames of a wave that :func:`read_once` left in ``path``, in row order, joined up to ``chunksize``
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


def _harmonise(files: list[PreparedFile], con: duckdb.DuckDBPyConnection, project: Project, chunks: Iterator[pd.DataFrame],
               progress: Progress | None, rows: ProvenanceRows) -> None:
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
    unpacked, see :func:`insert_select`), folded per file by :func:`failure_cases`; a failure without a
    row belongs to every file."""
    if files == 1:
        return [failure_cases(failures)]
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
    return [failure_cases(p) for p in parts]



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
