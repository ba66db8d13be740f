"""Which file, and which rule, a DuckDB error while harmonising is due to: the error said at the rule
(file:line) when one rule alone fails on the file, else naming the file and wave."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from harmonise.compile.sql import target_checks
from harmonise.discover import Job
from harmonise.errors import InputError, Issue, ValidationFailed
from harmonise.pipeline.batch import CHUNK_ROWS, prepare_file, process
from harmonise.samework import SameWork
from harmonise.spec.project import Project
from harmonise.spec.yamlload import locate
from harmonise.store.respondents import (
    create_all,
)

# DuckDB errors that data or an expression can cause (a value out of range, a conversion, a full disk);
# parser and internal errors stay bugs.
DATA_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException,
               duckdb.IOException, duckdb.OutOfMemoryException)
# Those a rule can cause: its expression does not fit the file's values or types (what the compiler's type
# checks let through), said as the rule's error (exit 1), never as a bug or as a database of another version.
RULE_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException,
               duckdb.BinderException)


@contextmanager
def located(jobs: list[Job], project: Project | None = None, encoding: str | None = None) -> Iterator[None]:
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
        f = prepare_file(job, project, SameWork(), encoding)
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
