"""Harmonise source files into a DuckDB connection, in job order.

The path shared by `validate --data` and `build`.

:func:`run_jobs` opens every file (:mod:`.batch`), keeps the files the build cache holds (:class:`Reuse`), and
harmonises the rest here or in worker processes (:mod:`.workers`), each group of files as :mod:`.batch` does and
with the provenance rows of :mod:`.rows`; :mod:`.located` says which file or rule a DuckDB error is due to.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from harmonise.checks import accounting
from harmonise.compile.profile import profile_sql
from harmonise.discover import Job
from harmonise.errors import Issue
from harmonise.pipeline.batch import (
    CHUNK_ROWS,
    Outcome,
    PreparedFile,
    Progress,
    check_file,
    prepare_file,
    read_once,
    run_batch,
)
from harmonise.pipeline.located import located
from harmonise.pipeline.rows import FAILURE_COLUMNS, NO_FAILURES, ProvenanceRows, finish_file
from harmonise.pipeline.workers import (
    Idle,
    Started,
    early_workers,
    in_workers,
    parallel,
    plan_groups,
    wave_of,
    workers_folder,
)
from harmonise.readers.prefetch import FileFeed, has_frames
from harmonise.samework import SameWork
from harmonise.spec.project import Project
from harmonise.spec.resolve import resolve_wave
from harmonise.spec.yamlload import locate
from harmonise.store.cache import BuildCache, CachedFile
from harmonise.store.identity import code_digest, digest
from harmonise.store.respondents import Duplicates, duplicate_ids, ids_written_differently

# A build or validate --data of fewer rows in all (one country file, a test fixture) runs DuckDB on one thread:
# a second costs more CPU than it saves at these sizes. Not above: a 56,752-row extract ran out of the
# build's 256 MB on one thread (docs/decisions.md 48). Nor does it read its files in a child ahead of the
# harmonising: the fork costs more than the read it would overlap (decision 49).
ONE_THREAD_ROWS = 10_000


@dataclass
class Reuse:
    """An incremental build: the previous build's cache, and the build options every file's key holds
    (``--encoding``, ``--survey``/``--wave``/``--country``, the design files and their digests)."""

    cache: BuildCache
    options: tuple[str, ...] = ()
    declarations: str = ""  # digest of the schema and code tables (set by run_jobs)


def file_key(f: PreparedFile, project: Project, reuse: Reuse, sha256: str) -> str:
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

    Small files of one wave that compile to the same SQL are harmonised together (:func:`batches`).
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
    while it waits for a worker (see :func:`in_workers`).
    """
    same = SameWork()
    files = []
    for j in jobs:
        with located([j]):
            files.append(prepare_file(j, project, same, encoding))
    if reuse is not None:
        reuse.declarations = _declarations_digest(project.root)
    hits: dict[int, CachedFile] = {}
    keys: dict[int, str] = {}
    started: Started | None = None
    stack = ExitStack()
    # neither a second thread nor a reader child ahead pays for its start (decisions 48, 49)
    few = sum(ONE_THREAD_ROWS if f.src.meta.rows is None else f.src.meta.rows for f in files) < ONE_THREAD_ROWS
    folder: list[Path] = []  # the jobs folder, once made

    def jobs_folder() -> Path:
        if not folder:
            folder.append(stack.enter_context(workers_folder(con)))
        return folder[0]

    try:
        seeded = reuse is not None and reuse.cache.attach(con) and reuse.cache.seeded  # kept files' rows are in place
        if reuse is not None and seeded:
            keys = {id(f): file_key(f, project, reuse, f.job.sha256) for f in files if f.job.sha256}
        # a cumulative file's waves to harmonise are read in one pass (those whose key the cache holds are not read)
        read_once([f for f in files if keys.get(id(f)) not in (reuse.cache.files if reuse is not None else ())],
                   jobs_folder, not few)
        if reuse is not None and seeded:
            # the files whose key the cache lacks are harmonised again: their workers start on them while the
            # rest are checked against the previous database
            started = early_workers(files, {i for i, k in keys.items() if k in reuse.cache.files}, workers,
                                     project, mappings, same, encoding, jobs_folder)
            found = reuse.cache.harmonised(con, list(keys.values()))
            hits = {i: found[k] for i, k in keys.items() if k in found}
        if reuse is not None and reuse.cache.seeded:
            reuse.cache.keep_rows(con, [hits[id(f)] for f in files if id(f) in hits])
        # waves whose every file is kept have their final rows already: their ids are checked while waiting
        fresh_waves = {wave_of(f) for f in files if id(f) not in hits}
        kept_waves = [w for w in dict.fromkeys(map(wave_of, files)) if w not in fresh_waves]
        duplicates: dict[str, list[Duplicates]] = {}

        def waiting(complete: list[tuple[str, str]]) -> bool:
            if "kept" not in duplicates:
                duplicates["kept"] = duplicate_ids(con, waves=kept_waves)
                return True
            return idle is not None and idle(complete)

        workers, segments = plan_groups(files, hits, workers)
        if not parallel(workers, segments):
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
                        with located([f.job for f in g], project, encoding):
                            run_batch(g, con, project, same, CHUNK_ROWS, progress, True, feed)
            finally:
                feed.close()
            outcomes = [f.out for f in files]
        else:
            outcomes = in_workers(segments, con, project, encoding, progress, workers, mappings,
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

def _reuse_run(files: list[PreparedFile], con: duckdb.DuckDBPyConnection, project: Project, same: SameWork,
               hits: dict[int, CachedFile], prepared: ProvenanceRows | None = None) -> None:
    """Files the cache holds (their rows are in the database already: :meth:`BuildCache.keep_rows`): their
    provenance and findings written from the cached report and pandera failures, as :func:`run_batch` writes
    them (``prepared``: what :func:`_reuse_prepare` made of them already)."""
    rows = prepared if prepared is not None else _reuse_prepare(files, project, same, hits)
    rows.flush(con)


def _reuse_prepare(files: list[PreparedFile], project: Project, same: SameWork, hits: dict[int, CachedFile]) -> ProvenanceRows:
    """The checks, findings and provenance rows of files the cache holds (nothing written yet)."""
    rows = ProvenanceRows()
    for f in files:
        check_file(f, project, same)
    for i, f in enumerate(files):
        cached = hits[id(f)]
        f.out.sha256 = cached.sha256
        if not f.harmonisable:
            continue
        f.out.rows, f.first, f.unset, f.out.reused = cached.rows, dict(cached.first), dict(cached.unset), True
        rows.position[id(f)] = i
        rows.report[i] = list(cached.report)
        rows.failures[id(f)] = pd.DataFrame(cached.failures, columns=FAILURE_COLUMNS) if cached.failures \
            else NO_FAILURES
        f.kept_findings = (cached.findings_key, cached.findings)
        finish_file(f, project, rows, same)
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
