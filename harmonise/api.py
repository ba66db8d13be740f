"""The Python API behind every CLI command: validate, build, query, compiled SQL.

The CLI only parses arguments and renders results; everything is callable here.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from harmonise import __version__
from harmonise.checks import declaration_issues, inputs, static_issues
from harmonise.checks.drift import retyped_static
from harmonise.compile.sql import plan_and_compile
from harmonise.compile.sqltext import quote_ident
from harmonise.errors import InputError, Issue, UsageError, ValidationFailed
from harmonise.spec.project import NOT_CROSSWALKS, Project, crosswalk_paths, load_crosswalk, load_project, rel
from harmonise.spec.yamlload import locate

if TYPE_CHECKING:
    import duckdb

    from harmonise.compile.sql import CompiledWave
    from harmonise.pipeline import Idle, Reuse
    from harmonise.pipeline.batch import Outcome
    from harmonise.readers.files import SourceFile
    from harmonise.spec.crosswalk import Crosswalk
    from harmonise.spec.resolve import WavePlan
    from harmonise.store.cache import BuildCache
    from harmonise.store.query import QueryResult

# DuckDB, pandas and the pipeline are imported by the functions that read data or open a database,
# so a static `validate` (the mapping author's loop) does not pay for them (docs/decisions.md 19).

Progress = Callable[[str], None]
# DuckDB memory for the whole build; beyond it DuckDB spills to disk, so peak memory does not grow with the
# rows (measured: 16x rows peak at 1.3x the memory of 1x, for 13% more time than without a limit).
BUILD_MEMORY_LIMIT = "256MB"
# The stored indicators table keeps weighted moments per cell, stratum and design PSU: its size grows with
# the cells and PSUs, not the rows. Spilling it at 256 MB made the demo's (about 1.4 million PSU-cell rows,
# ~1 GB of buffers) 2.4x slower (7.1 s against 2.9 s), so it gets more room (docs/decisions.md 28).
INDICATORS_MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class FileOptions:
    """What the user says of the data files: their survey and wave (``--survey``, ``--wave``), and the
    country or city of one-country or one-city files that lack the variable (``--country``, ``--city``)."""

    survey: str | None = None
    wave: str | None = None
    country: str | None = None
    design: tuple[Path, ...] = ()  # sample-design files joined to their waves (``--design``)
    # files a first run found to hold rows of several waves past their first rows: read wave by wave (see
    # :func:`_again`)
    whole: frozenset[Path] = frozenset()
    city: str | None = None


@dataclass
class RunResult:
    """Outcome of ``validate`` or ``build``."""

    issues: list[Issue] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    db: Path | None = None
    seconds: float = 0.0

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "notes": len(self.issues) - len(self.errors) - len(self.warnings),
            "categories": {code: sum(i.code == code for i in self.issues)
                           for code in sorted({i.code for i in self.issues})},
            "issues": [i.to_dict() for i in self.issues],
            "sources": [{"survey": o.job.crosswalk.survey, "wave": o.job.wave.wave, "file": str(o.job.path),
                         "rows": o.rows, "sha256": o.sha256} for o in self.outcomes],
            "db": str(self.db) if self.db else None,
        }


def project_root(start: Path | None = None) -> Path:
    """The folder holding ``mappings/schema.yaml`` (the given one, or the current one)."""
    root = (start or Path.cwd()).resolve()
    if not (root / "mappings" / "schema.yaml").is_file():
        raise UsageError(f"{root}: not a harmonise project (no mappings/schema.yaml); run from the project folder "
                         "or pass --project")
    return root


def _load(root: Path, mappings: list[Path] | None) -> Project:
    return load_project(root, crosswalk_files(root, mappings or []) or None)


def crosswalk_files(root: Path, mappings: list[Path]) -> list[Path]:
    """The crosswalk files named (each once, however often named); a UsageError naming every path that is not
    one: absent, a folder, or one of the project's other declarations (`harmonise validate mappings/*.yaml`
    named the schema, the cities, the aliases and the indicators as crosswalks: dozens of false errors)."""
    others = {(root / "mappings" / n).resolve() for n in NOT_CROSSWALKS}
    tables = (root / "mappings" / "tables").resolve()
    wrong, files, seen = [], [], set()
    for m in mappings:
        real = m.resolve()
        if m.is_dir():
            wrong.append(f"{m}: is a folder, not a crosswalk file; name crosswalk files (e.g. mappings/ess.yaml), "
                         "or no path to validate every crosswalk of the project")
        elif not m.is_file():
            wrong.append(f"{m}: no such crosswalk file")
        elif real in others or real.parent == tables:
            what = "a code table" if real.parent == tables else f"the project's {m.name}"
            wrong.append(f"{m}: is {what}, not a crosswalk; `harmonise validate` with no path checks it with every "
                         "crosswalk (name crosswalk files only)")
        elif real not in seen:
            seen.add(real)
            files.append(m)
    if wrong:
        raise UsageError("\n".join(wrong))
    return files


def _not_loaded(root: Path, project: Project) -> list[tuple[Crosswalk, str]]:
    """The project's crosswalks ``project`` did not load (validating named ones), with their files: how a build
    would recognise the data files (those that do not load are left out)."""
    out = []
    loaded = {(root / e.file).resolve() for e in project.surveys.values()}
    for path in crosswalk_paths(root):
        if path.resolve() not in loaded:
            cw = load_crosswalk(path, root)[0]
            if cw is not None and cw.survey not in project.crosswalks:
                out.append((cw, rel(path, root)))
    return out


def indicator_issues(project: Project) -> list[Issue]:
    """Problems of ``mappings/indicators.yaml`` (none when the project has no such file)."""
    if project.schema is None or not (project.root / "mappings" / "indicators.yaml").is_file():
        return []
    from harmonise.reports.indicators import load_definitions

    try:
        load_definitions(project.root, project.schema)
    except ValidationFailed as exc:
        return exc.issues
    return []


def validate(root: Path, mappings: list[Path] | None = None, data: list[Path] | None = None, *,
             encoding: str | None = None, progress: Progress | None = None, jobs: int | None = None,
             files: FileOptions | None = None) -> RunResult:
    """Check crosswalks statically (declared codebooks), and against real files when ``data`` is given.

    ``jobs``: worker processes for the files (default: ``pipeline.default_jobs``); ``files``: the
    survey, wave and country the user assigns to the files (``--survey/--wave/--country``).
    """
    t0 = time.perf_counter()
    project = _load(root, mappings)
    result = RunResult(issues=static_issues(project))
    if not mappings:  # the whole project: the indicator declarations too (a build would refuse them)
        result.issues.extend(indicator_issues(project))
    if data and project.schema is not None:
        import duckdb

        from harmonise.store.connect import seal

        static = list(result.issues)
        while True:
            con = seal(duckdb.connect(":memory:"), lock=False)  # its output may be JSON on standard output
            try:
                with spared_by_collector() as sparing:
                    result.issues.extend(_run(project, data, con, result, encoding, progress, jobs, mappings, files,
                                              sparing=sparing, others=_not_loaded(root, project) if mappings else ()))
                result.issues.extend(inputs.weight_issues(con))  # as a build says them (all zero, negative)
            except ValidationFailed as exc:  # a file that stops the run (rows of several waves), with what was found
                files = _again(exc, files, progress)
                if files is not None:
                    result = RunResult(issues=list(static))
                    continue
                raise ValidationFailed(_unique([*result.issues, *exc.issues]), exc.summary) from None
            except InputError as exc:
                if project.ok:
                    raise
                # e.g. no file matches because the crosswalk naming its files did not load: say both
                result.issues.append(Issue(str(exc), code="data"))
            finally:
                con.close()
            break
        result.issues = [*retyped_static(result.issues[:len(static)], result.issues), *result.issues[len(static):]]
    result.issues = _unique(result.issues)
    result.seconds = time.perf_counter() - t0
    return result


def _again(exc: ValidationFailed, files: FileOptions | None, progress: Progress | None) -> FileOptions | None:
    """The options of a second run when ``exc`` stopped a run only because files recognised by their first rows hold
    rows of other waves further on (a cumulative file sorted by round): those files are read wave by wave then
    (discovery reads their content variables whole, which it does not for every file). None when not so."""
    from harmonise.discover import SEVERAL_WAVES

    f = files or FileOptions()
    errors = [i for i in exc.issues if i.severity == "error"]
    found = {Path(str(i.extra[SEVERAL_WAVES])) for i in errors if SEVERAL_WAVES in i.extra}
    if not errors or len(found) < len(errors) or found <= f.whole:
        return None
    if progress:
        progress(f"{', '.join(sorted(map(str, found - f.whole)))}: rows of several waves; starting again, wave by wave")
    return replace(f, whole=f.whole | found)


def _unique(issues: list[Issue]) -> list[Issue]:
    """Issues without repeats: one located at a file line is one issue whichever wave's check found it
    (a static check and the same check against a data file); unlocated ones are told apart by wave."""
    seen, out = set(), []
    # a rule a file cannot compile for a type the static check found already is said once, at the rule's field
    typed = {(i.file, i.path) for i in issues if i.code == "expr-type" and i.severity == "error" and i.file}
    for i in issues:
        key = (i.severity, i.file, i.line, i.path, i.message) if i.file else \
            (i.severity, i.file, i.line, i.path, i.message, i.survey, i.wave)
        if i.code == "compile" and any(f == i.file and p and i.path and p.startswith(i.path + ".") for f, p in typed):
            continue
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out


def _run(project: Project, data: list[Path], con: duckdb.DuckDBPyConnection, result: RunResult,
         encoding: str | None, progress: Progress | None, workers: int | None = None,
         mappings: list[Path] | None = None, files: FileOptions | None = None,
         reuse: Reuse | None = None, idle: Idle | None = None,
         sparing: Callable[[], AbstractContextManager[None]] | None = None,
         others: Sequence[tuple[Crosswalk, str]] = ()) -> list[Issue]:
    from harmonise.checks.accounting import identical_files
    from harmonise.checks.consistency import contradictions, decimal_ids, inconsistent
    from harmonise.checks.per_file import grouped
    from harmonise.checks.supplied import country_contradicted
    from harmonise.discover import discover
    from harmonise.pipeline import run_jobs
    from harmonise.recognition import Options
    from harmonise.store.respondents import create_all

    assert project.schema is not None
    f = files or FileOptions()
    with sparing() if sparing is not None else nullcontext():  # what discovery reads lives to the end of the run
        jobs, issues = discover(project, data, Options(f.survey, f.wave, f.country, encoding, f.whole, f.city),
                                reuse.cache if reuse is not None else None, others)
    kept = create_all(con, project.schema, reuse is not None and reuse.cache.seeded)
    if reuse is not None:
        reuse.cache.seeded = kept  # a copy whose respondents table was not the schema's keeps no rows
    if workers is not None and workers < 1:
        raise UsageError(f"--jobs must be at least 1 (got {workers})")
    outcomes = run_jobs(jobs, con, project, encoding=encoding, progress=progress, workers=workers, mappings=mappings,
                        reuse=reuse, idle=idle)
    for out in outcomes:
        result.outcomes.append(out)
        issues.extend(out.issues)
    issues.extend(country_contradicted(con, {o.job.file_name: o.job.supplied["country"] for o in outcomes
                                             if "country" in o.job.stood and o.rows}))
    issues.extend(contradictions(con, project.schema))
    issues.extend(inconsistent(con, project.schema, project.tables))
    issues.extend(decimal_ids(con))
    issues.extend(identical_files([(o.job.crosswalk.survey, o.job.wave.wave, o.job.file_name, o.sha256, o.rows)
                                   for o in outcomes if o.rows and any(i.code == "row-id" for i in o.issues)]))
    issues = grouped(issues, len(outcomes))  # what several files found is said once, naming them
    if f.design and not any(i.severity == "error" for i in issues):
        from harmonise.design import attach_design

        for path in f.design:
            issues.extend(attach_design(con, project, path, Options(f.survey, f.wave, f.country, encoding, city=f.city)))
    return issues


@contextmanager
def spared_by_collector() -> Iterator[Callable[[], AbstractContextManager[None]]]:
    """Yield ``sparing``: a block under ``with sparing():`` runs with the cyclic garbage collector paused,
    and every object alive at its end is moved out of the collector's reach (``gc.freeze``) until the outer
    block ends (``gc.unfreeze``). A run spares its discovery: the files' metadata it reads (~20,000 objects an
    ESS country file) lives to the end of the run, so collections during discovery (in this process and in
    the reader children it forks, which inherit the paused collector) and after it (here and in the forked
    workers) found nothing to free in it (decisions 52, 55). Nothing is frozen when something is frozen
    already: the caller's own freeze (the test workers freeze what collection imported) is not undone at
    the end; the block still runs with the collector paused."""
    frozen = False

    @contextmanager
    def sparing() -> Iterator[None]:
        nonlocal frozen
        was = gc.isenabled()
        gc.disable()
        try:
            yield
            if not frozen and gc.get_freeze_count() == 0:
                gc.freeze()
                frozen = True
        finally:
            if was:
                gc.enable()

    try:
        yield sparing
    finally:
        if frozen:
            gc.unfreeze()


def build(root: Path, data: list[Path], db: Path, mappings: list[Path] | None = None, *,
          encoding: str | None = None, progress: Progress | None = None, jobs: int | None = None,
          synthetic: bool = False, force: bool = False, files: FileOptions | None = None,
          full: bool = False) -> RunResult:
    """Harmonise ``data`` into a new database file at ``db``; atomic: on any error ``db`` is untouched.

    ``jobs``: worker processes for the files (default: one per core and file once the files total
    64 MB, see ``pipeline.default_jobs``); the database content does not depend on it.
    ``files``: the survey, wave and country the user assigns to the files.
    ``synthetic``: the files are generated (the demo), recorded as ``('synthetic', 'true')`` in
    ``build_info`` for codebooks and charts to say so.
    ``force``: replace ``db`` even if harmonise did not build it (see ``store.atomic``).
    Incremental: the build cache beside ``db`` (``<db>.cache/``, see ``store.cache``) lets a file whose
    bytes, compiled SQL, options and harmonise are unchanged keep its rows and provenance from the
    previous build, and a survey-wave whose files all did keep its indicator rows; the database is the
    one a full build writes. ``full``: reuse nothing (the cache is written anew).
    """
    while True:
        try:
            return _build(root, data, db, mappings, encoding=encoding, progress=progress, jobs=jobs,
                          synthetic=synthetic, force=force, files=files, full=full)
        except ValidationFailed as exc:  # nothing written: a file of several waves' rows is read wave by wave
            again = _again(exc, files, progress)
            if again is None:
                raise
            files = again


def _build(root: Path, data: list[Path], db: Path, mappings: list[Path] | None, *, encoding: str | None,
           progress: Progress | None, jobs: int | None, synthetic: bool, force: bool, files: FileOptions | None,
           full: bool) -> RunResult:
    """One run of :func:`build`."""
    import duckdb

    from harmonise.pipeline import Reuse
    from harmonise.reports.indicator_table import KeptWaveRows, WaveEstimates, store_indicators, stores_indicators
    from harmonise.reports.indicators import stored_inputs
    from harmonise.store.atomic import atomic_target
    from harmonise.store.cache import BuildCache
    from harmonise.store.identity import code_digest
    from harmonise.store.lookups import write_lookups
    from harmonise.store.provenance import write_schema_tables

    t0 = time.perf_counter()
    project = _load(root, mappings)
    result = RunResult(issues=declaration_issues(project))
    if result.errors or project.schema is None:
        raise ValidationFailed(result.issues, "crosswalks failed to load")
    caches: list[BuildCache] = []
    with ExitStack() as stack:
        stack.callback(_discard, caches)  # registered first, run last: a failed build's half-written index
        tmp = stack.enter_context(atomic_target(db, force, after=lambda: _write_cache(caches, db, result)))
        sparing = stack.enter_context(spared_by_collector())
        cache = BuildCache(db.resolve() if db.parent.exists() else db, full=full)
        caches.append(cache)
        reuse = Reuse(cache, _options(encoding, files))
        con = cache.start(tmp)
        con.execute(f"SET memory_limit = '{BUILD_MEMORY_LIMIT}'")  # spills beyond it: memory stays flat
        try:
            # waves' indicators are estimated while waiting for the workers, unless design files change the rows after
            ahead = WaveEstimates(con, project, (INDICATORS_MEMORY_LIMIT, BUILD_MEMORY_LIMIT), cache) \
                if stores_indicators(project) and not (files and files.design) else None
            try:
                result.issues.extend(_run(project, data, con, result, encoding, progress, jobs, mappings, files,
                                          reuse, ahead.idle if ahead is not None else None, sparing))
            except ValidationFailed as exc:  # a file that stops the run (rows of several waves): said as a build's
                raise ValidationFailed(_unique([*result.issues, *exc.issues]),
                                       "build failed; the previous database is unchanged") from None
            result.issues = _unique(result.issues)
            if result.errors:
                raise ValidationFailed(result.issues, "build failed; the previous database is unchanged")
            cache.prepare()  # the next build's index is written while the indicators are estimated
            result.issues.extend(inputs.weight_issues(con))
            write_schema_tables(con, project.schema)
            facts = {(o.job.crosswalk.survey, o.job.wave.wave, str(o.job.path)): o.facts
                     for o in result.outcomes if o.facts is not None}
            con.execute(f"SET memory_limit = '{INDICATORS_MEMORY_LIMIT}'")
            rows_of = KeptWaveRows(con, cache, reuse.options, result.outcomes,
                                   stored_inputs(ahead.defs) if ahead is not None else None)
            # while the lookup tables are written (Python, mostly), DuckDB finds on a cursor of its own whether the
            # waves harmonised afresh kept their rows, and estimates those that did not (decision 56)
            with _alongside(con, lambda cur: rows_of.check(cur, ahead)) if ahead is not None else nullcontext():
                write_lookups(con, project, encoding, facts)
            cache.attach(con)  # the previous database's indicator rows of unchanged waves are copied
            try:
                store_indicators(con, project, rows_of, ahead)
            finally:
                cache.detach(con)
            con.executemany("INSERT INTO build_info VALUES (?, ?)", [
                ("harmonise_version", __version__), ("schema_version", str(project.schema.version)),
                ("duckdb_version", duckdb.__version__), ("built_at", time.strftime("%Y-%m-%dT%H:%M:%S")),
                ("harmonise_code", code_digest()),  # a query reads the stored estimates when it runs this code
                ("sources", str(len(result.outcomes))), ("rows", str(sum(o.rows for o in result.outcomes))),
                *([("synthetic", "true")] if synthetic else []),
            ])
            con.execute("CHECKPOINT")
        finally:
            con.close()
    result.db = db
    result.seconds = time.perf_counter() - t0
    return result


@contextmanager
def _alongside(con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], None]) -> Iterator[None]:
    """Run ``work`` on a cursor of ``con`` (in its current database) in a thread while the block runs, and wait
    for it at the block's end; its error is raised then, unless the block raised one (decision 56). The two
    must write different tables: each commits its own transactions."""
    from concurrent.futures import ThreadPoolExecutor

    (database,) = con.execute("SELECT current_database()").fetchall()[0]
    cur = con.cursor()

    def run() -> None:
        cur.execute(f"USE {quote_ident(database)}")  # a cursor starts in the default database
        work(cur)

    try:
        with ThreadPoolExecutor(1, thread_name_prefix="harmonise-alongside") as pool:
            done = pool.submit(run)
            try:
                yield
            except BaseException:
                cur.interrupt()  # the build fails: its other work is not waited for longer than needed
                raise
    finally:
        cur.close()
    done.result()


def _options(encoding: str | None, files: FileOptions | None) -> tuple[str, ...]:
    """The build options every file's cache key holds: ``--encoding``, ``--survey/--wave/--country/--city`` and the
    design files (name and digest: their rows are joined into the respondents the cache keeps)."""
    from harmonise.store.identity import sha256_of

    f = files or FileOptions()
    return (f"encoding={encoding}", f"survey={f.survey}", f"wave={f.wave}", f"country={f.country}",
            f"city={f.city}", *(f"design={p.name}:{sha256_of(p)}" for p in f.design))


def _discard(caches: list[BuildCache]) -> None:
    for cache in caches:
        cache.discard()


def _write_cache(caches: list[BuildCache], db: Path, result: RunResult) -> None:
    """Write the build cache of the database now at ``db`` (a failure only costs the next build its reuse)."""
    import duckdb

    for cache in caches:
        try:
            cache.write(db)
        except (OSError, duckdb.Error) as exc:
            result.issues.append(Issue(f"{cache.folder}: the build cache was not written ({str(exc).splitlines()[0]}); "
                                       "the next build of this database reuses nothing", code="cache-not-written",
                                       severity="warning", hint="check the folder's permissions and free space"))


def demo_data(root: Path, seed: int = 1, rows: int | None = None, progress: Progress | None = None) -> Path:
    """Fixture files for every declared wave, generated once into a cache keyed by the declarations.

    Each wave samples a few countries (or every city of a city survey) at the sizes the survey
    declares (``harmonise.fixtures.design``); ``rows`` instead gives every file that many rows.
    Only the files a demo build reads are written (no Stata editions).
    """
    import hashlib
    import shutil

    h = hashlib.sha256(f"{__version__}/{seed}/{rows}".encode())
    # The fixtures depend on the crosswalks, code tables, schema and codebooks — not on indicators or aliases.
    mappings = [root / "mappings" / "schema.yaml", root / "mappings" / "cities.yaml", *crosswalk_paths(root)]
    sources = [p for p in mappings if p.is_file()] + sorted((root / "mappings" / "tables").rglob("*.yaml")) + \
        sorted((root / "surveys").rglob("*.yaml")) + sorted((Path(__file__).parent / "fixtures").glob("*.py"))
    for p in sources:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    cache = root / ".cache" / "demo"
    target = cache / h.hexdigest()[:16]
    if (target / ".complete").exists():
        return target
    # Generate beside the target and rename: concurrent runs never see (or delete) a half-written folder.
    tmp = cache / f"{target.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    from harmonise.fixtures import generate  # only on a cold cache: the generator imports ~1 s of modules

    generate(root, tmp, seed=seed, rows=rows, editions=False, progress=progress)
    (tmp / ".complete").write_text("ok\n")
    try:
        tmp.rename(target)
    except OSError:  # another run finished the same declarations first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    stale = time.time() - 3600
    for old in cache.iterdir():
        if old.name != target.name and old.stat().st_mtime < stale:
            shutil.rmtree(old, ignore_errors=True)
    return target


def demo_files(folder: Path) -> list[Path]:
    """The SPSS/primary edition of every demo wave (Stata editions live in <survey>/stata/)."""
    return sorted(p for p in folder.glob("*/*") if p.is_file())


def query(db: str | Path, sql: str, *, timeout: float | None = None, max_rows: int | None = None,
          memory_limit: str | None = None) -> QueryResult:
    """Run ``sql`` on a read-only connection; returns a QueryResult (``cols, rows = …`` or ``.to_pandas()``).

    ``timeout`` (seconds) stops the query with QueryTimeout; ``max_rows`` keeps only the first rows;
    ``memory_limit`` (e.g. ``"2GB"``, the default) bounds DuckDB's memory. Ctrl-C raises Interrupted.
    """
    from harmonise.store.query import MEMORY_LIMIT, query_all

    return query_all(db, sql, timeout=timeout, max_rows=max_rows, memory_limit=memory_limit or MEMORY_LIMIT)


def query_stream(db: str | Path, sql: str, on_columns: Callable[[list[str]], None],
                 on_rows: Callable[[list[tuple[object, ...]]], None], *, timeout: float | None = None,
                 max_rows: int | None = None, memory_limit: str | None = None) -> tuple[int, bool]:
    """Like :func:`query`, handing the columns and then batches of rows to the callbacks as DuckDB produces
    them; returns (rows, whether ``max_rows`` cut the result short)."""
    from harmonise.store.query import MEMORY_LIMIT, run_query

    return run_query(db, sql, on_columns, on_rows, timeout=timeout, max_rows=max_rows,
                     memory_limit=memory_limit or MEMORY_LIMIT)


def compiled_sql(root: Path, survey: str, wave: str, data: Path | None = None) -> tuple[str, list[str]]:
    """The DuckDB SQL a wave compiles to (against a file's metadata, or the declared codebook), and what the
    crosswalk's checks find against the file (a query compiles where the file does not fit the wave: targets it
    lacks are stored as not available, rules that do not fit it are errors of `validate --data`)."""
    project = load_project(root)
    issues = declaration_issues(project)
    if any(i.severity == "error" for i in issues):  # malformed rules load set aside: never compile that
        raise ValidationFailed(issues, "the declarations do not load; fix them first")
    if project.schema is None or survey not in project.surveys:
        raise UsageError(f"no crosswalk for survey '{survey}'; known: {', '.join(project.surveys) or 'none'}")
    cw = project.surveys[survey].crosswalk
    try:
        w = cw.wave(wave)
    except KeyError:
        raise UsageError(f"{survey} has no wave '{wave}'; known: {', '.join(x.wave for x in cw.waves)}") from None
    if data is not None:
        from harmonise.borrowed import borrow_labels
        from harmonise.readers.files import open_source

        src, _ = borrow_labels(open_source(data), project.declared_meta(survey, wave))  # as the build reads it
        meta, stata = src.meta, src.format == "dta"
    else:
        declared = project.declared_meta(survey, wave)
        if declared is None:
            raise UsageError(f"{survey} wave {wave} has no declared codebook; pass --data FILE")
        meta, stata = declared, False
    plan, compiled = plan_and_compile(cw, w, project, meta, stata)
    notes: list[str] = []
    if data is not None and stata and not compiled.errors:
        plan, compiled, notes = _lettered(project, survey, wave, src, data, plan, compiled)
    if compiled.errors:
        raise ValidationFailed([locate(Issue(e.message, path=".".join(map(str, e.path)) or f"targets.{e.target}",
                                             code="compile", extra={"yaml_path": e.path}),
                                       project.surveys[survey].index, survey, wave)
                                for e in compiled.errors], "cannot compile")
    if data is not None:
        from harmonise.checks.crosswalk import check_crosswalk

        entry = project.surveys[survey]
        found = check_crosswalk(cw, project.schema, project.tables, entry.index, {wave: meta}, only_wave=wave,
                                data=True)
        notes += [f"{i.severity}: {i.format()}" for i in found if i.severity in ("error", "warning")]
        notes += _cumulative_note(data, src, cw, wave)
        absent = [t for t, tp in plan.targets.items() if tp.kind in ("absent", "row_id")]
        if absent:
            notes.append(f"note: {data.name} lacks the variables of {len(absent)} target(s), stored as not available: "
                         f"{', '.join(absent[:12])}{' …' if len(absent) > 12 else ''}")
        if notes:
            notes.append(f"note: the SQL above is the query for {data.name} as it is; `harmonise validate --data "
                         f"{data}` checks the file against {survey} wave {wave}")
    return compiled.sql, notes


def _lettered(project: Project, survey: str, wave: str, src: SourceFile, data: Path, plan: WavePlan,
              compiled: CompiledWave) -> tuple[WavePlan, CompiledWave, list[str]]:
    """A Stata file's plan and SQL with its unlabelled missing letters read as the build reads them (decision 97:
    by the convention, or in each variable's order, said), and what was said of them."""
    from harmonise.checks.labels import file_lettering
    from harmonise.compile.sql import compile_in_order

    reading = file_lettering(plan, src, project.declared_meta(survey, wave), str(data), src.letters)
    if reading is None:
        return plan, compiled, []
    assert project.schema is not None
    said = [f"{i.severity}: {i.format()}" for i in reading.issues]
    if reading.letters:
        plan, compiled = compile_in_order(plan, reading.letters, src.meta, project.schema, project.tables)
    return plan, compiled, said


def _cumulative_note(data: Path, src: SourceFile, cw: Crosswalk, wave: str) -> list[str]:
    """What `sql --data` says of a file holding several waves' rows (a cumulative file): the query reads every
    row, where a build harmonises only the wave's rows with it."""
    from harmonise.rounds import split_waves

    split = split_waves(data, src, [cw])
    if split is None:
        return []
    if isinstance(split, Issue):
        return [f"{split.severity}: {split.format()}"]
    content = ", ".join(f"{n} = {v}" for n, v in (cw.wave(wave).content or {}).items())
    held = [w.wave for _, w, _ in split[0]]
    keeps = (f"a build harmonises only its rows of {cw.survey} wave {wave} ({content}) with it" if wave in held else
             f"it holds no rows of {cw.survey} wave {wave}")
    return [(f"note: {data.name} holds rows of {cw.survey} waves {', '.join(held)}: the SQL above reads every row "
            f"as wave {wave}'s; {keeps}")]


def issues_json(issues: list[Issue]) -> str:
    return json.dumps([i.to_dict() for i in issues], indent=2, default=str)


def _one_wave(issue: Issue, like: str) -> Issue:
    """``adapt``'s form of a ``mixed-waves`` error: the wave is given by ``--like`` (``adapt`` has no
    --survey/--wave to drop), and no override makes a file of several waves' rows one wave's."""
    if issue.code != "mixed-waves":
        return issue
    return replace(issue, message=issue.message.replace("(given by --survey/--wave)", f"(given by --like {like})"),
                   hint=f"adapt checks a file of one wave (--like {like}): give it that wave's rows only; a file of "
                        "several waves' rows needs no adapting to be built — `harmonise build` and `validate --data` "
                        "read it wave by wave, each wave's rows with that wave's rules")


def _other_wave(issue: Issue, like: str, crosswalk: str) -> Issue:
    """``adapt``'s form of a ``content-overridden`` warning: an error, as a build (which recognises files by their
    content) would not read the file as the wave ``--like`` names, whatever override is added."""
    if issue.code != "content-overridden":
        return issue
    message = issue.message.replace("by --survey/--wave", f"by --like {like}").replace(
        ": it is harmonised as the wave given", ": a build recognises files by their content and would not read it "
        "as that wave")
    return replace(issue, message=message, severity="error", hint=(
        f"if it is a file of another declared wave, adapt it --like that wave; if it is a wave {crosswalk} does not "
        f"declare yet (a new round), declare it there: a wave entry with the file's content value (copy the nearest "
        f"wave's entry), then `harmonise validate --data FILE`; `harmonise scaffold FILE` drafts rules from the file"))


@dataclass
class AdaptResult:
    """``harmonise adapt``: whether the file harmonises as it is, else the block to paste and what it leaves."""

    survey: str
    wave: str
    as_is: RunResult
    block: str = ""
    after: RunResult | None = None  # validation with the block pasted in

    @property
    def ok(self) -> bool:
        """The file harmonises, as it is or with the block."""
        return self.as_is.ok or (self.after is not None and self.after.ok)


def adapt(root: Path, file: Path, like: str, *, encoding: str | None = None,
          country: str | None = None, city: str | None = None) -> AdaptResult:
    """What the crosswalk wave ``like`` (``SURVEY:WAVE``) needs to harmonise ``file``: nothing when it does
    as it is; else override lines (alternatives for variables found under other names), checked by
    validating the file again with them pasted into a copy of the crosswalk."""
    import tempfile

    from harmonise.authoring.adapt import adapt as draft
    from harmonise.authoring.adapt import paste
    from harmonise.borrowed import borrow_labels
    from harmonise.readers.files import open_source
    from harmonise.spec.resolve import resolve_wave

    survey, _, wave = like.partition(":")
    project = _load(root, None)
    if not wave or survey not in project.surveys:
        raise UsageError(f"--like {like}: give SURVEY:WAVE of a crosswalk (surveys: {', '.join(project.surveys)})")
    entry = project.surveys[survey]
    try:
        w = entry.crosswalk.wave(wave)
    except KeyError:
        raise UsageError(f"--like {like}: {survey} has no wave '{wave}' "
                         f"(waves: {', '.join(x.wave for x in entry.crosswalk.waves)})") from None
    files = FileOptions(survey, wave, country, city=city)
    try:
        result = AdaptResult(survey, wave, validate(root, data=[file], encoding=encoding, files=files))
    except ValidationFailed as exc:  # a row of another wave past the first rows stops the run
        raise ValidationFailed([_one_wave(i, like) for i in exc.issues], exc.summary) from None
    if any(i.code == "mixed-waves" for i in result.as_is.errors):  # no override makes one wave of several
        result.as_is.issues = [_one_wave(i, like) for i in result.as_is.issues]
        return result
    if any(i.code == "content-overridden" for i in result.as_is.issues):  # another wave's file: no override makes
        result.as_is.issues = [_other_wave(i, like, entry.file) for i in result.as_is.issues]  # a build read it so
        return result
    if result.as_is.ok or project.schema is None:
        return result
    declared = project.declared_meta(survey, wave)
    src, _ = borrow_labels(open_source(file, encoding or w.encoding), declared)  # as the build reads it
    plan = resolve_wave(entry.crosswalk, w, project.schema, project.tables, src.meta.variables)
    found = draft(entry.crosswalk, w, project.schema, plan, declared, src.meta, project.tables)
    result.block = found.text(file.name, entry.file)
    if found.lines:
        with tempfile.TemporaryDirectory(prefix="harmonise-adapt-") as tmp:
            pasted = Path(tmp) / Path(entry.file).name
            pasted.write_text(paste(entry.text, wave, found.lines), encoding="utf-8")
            result.after = validate(root, [pasted], data=[file], encoding=encoding, files=files)
    return result
