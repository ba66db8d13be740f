"""The provenance rows and findings of harmonised files: the harmonisation report, conservation, lineage,
compiled SQL, sources and pandera failures of each file, gathered per group of files and inserted once per
table, and every check on what a file harmonised (every value accounted for)."""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from harmonise import __version__
from harmonise.checks import accounting, inputs
from harmonise.checks.labels import unread_letter_labels
from harmonise.checks.per_file import of_file
from harmonise.compile.sql import CompiledWave, compile_wave
from harmonise.compile.sqltext import quote_ident
from harmonise.errors import Issue, issues_from_json, issues_json
from harmonise.readers.files import SourceFile
from harmonise.samework import SameWork
from harmonise.spec.coverage import quality_of
from harmonise.spec.expr import referenced_names
from harmonise.spec.project import Project
from harmonise.spec.resolve import WavePlan
from harmonise.spec.source import SourceMeta, VarMeta
from harmonise.spec.yamlload import LineIndex, locate
from harmonise.store import provenance
from harmonise.store.cache import CachedFile
from harmonise.store.editions import gathered_facts, region_labels
from harmonise.store.identity import digest
from harmonise.store.provenance import to_json

if TYPE_CHECKING:
    from harmonise.pipeline.batch import PreparedFile



def _stored_sql(compiled: CompiledWave, plan: WavePlan, src: SourceFile, project: Project) -> str:
    """The query ``compiled_sql`` stores: without the Stata letter columns, as `harmonise sql` prints it."""
    assert project.schema is not None
    return compiled.sql if not compiled.extended else compile_wave(plan, src.meta, project.schema, project.tables).sql

class ProvenanceRows:
    """Provenance rows of a group's files, inserted once per table (not once per file)."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[provenance.Table, list[tuple[object, ...]]]] = {}
        self.staged: duckdb.DuckDBPyConnection | None = None  # the cursor whose transaction stage() inserted into
        # the report stage, folded, by file position: (target, source code, value, missing reason, n)
        self.report: dict[int, list[accounting.ReportRow]] = {}
        self.failures: dict[int, pd.DataFrame] = {}  # id(PreparedFile) → its pandera failure cases
        self.position: dict[int, int] = {}  # id(PreparedFile) → its position among the files harmonised together

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


def finish_file(f: PreparedFile, project: Project, rows: ProvenanceRows, same: SameWork) -> None:
    """The file's provenance rows (into ``rows``), and the checks on what it harmonised (every value
    accounted for)."""
    job, plan, src, out = f.job, f.plan, f.src, f.out
    survey, wid, fname = plan.survey, plan.wave.wave, job.file_name
    index = project.surveys[survey].index
    mine = rows.position.get(id(f), 0)
    rep = rows.report.get(mine, [])
    shape = (survey, wid, tuple(sorted(job.supplied.items())))
    labels = same.once("labels", src.meta, shape, lambda: _labels_for(plan, src))
    # a row per (target, code): 217,000 for 260 country files; each target's labels looked up once
    target_labels = {target: labels.get(target, NO_LABELS) for target in {row[0] for row in rep}}
    rows.add(provenance.REPORT, [(survey, wid, fname, target, target_labels[target][0], code,
                                  target_labels[target][1].get(code or ""), value, reason, n)
                                 for target, code, value, reason, n in rep])
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
    key = findings_key(f, project, same)
    if f.kept_findings is not None and f.kept_findings[0] == key and f.kept_findings[1] is not None:
        body: str | None = f.kept_findings[1]  # a kept file, its findings' inputs unchanged: as the cache holds them
        found = issues_from_json(f.kept_findings[1])
    else:
        found = _findings(f, project, same, rep, labels, totals, fc, shape)
        body = issues_json(found)
    out.issues.extend(of_file(locate(i, index, survey, wid), fname, str(job.path)) for i in found)
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
        if len(fc) else [], dict(f.unset), key, body)


def findings_key(f: PreparedFile, project: Project, same: SameWork) -> str:
    """What a file's findings are a function of beyond its cache key (its bytes, name, SQL, options, harmonise): the
    wave's plan (rules, paths, qualities, notes; not the crosswalk's lines, which :func:`locate` gives afterwards),
    the survey's missing conventions, the declared codebook, the file's path and its rows and unset content."""
    plan, job = f.plan, f.job
    survey, wid = plan.survey, plan.wave.wave
    held, planned = same.keyed(("findings plan", id(plan)), lambda: (plan, digest(  # held: no other plan takes its id
        [repr(plan.wave), repr(sorted(plan.targets.items())), repr(plan.letters), repr(plan.crosswalk.missing)])))
    assert held is plan
    codebook = project.surveys[survey].codebook_files.get(wid)
    declared = same.keyed(("findings codebook", survey, wid), lambda: digest(
        [(project.root / codebook).read_bytes() if codebook and (project.root / codebook).is_file() else b""]))
    return digest([planned, declared, str(job.path), f.out.rows, job.wave_rows, sorted(f.unset.items())])


def _findings(f: PreparedFile, project: Project, same: SameWork, rep: list[accounting.ReportRow],
              labels: dict[str, tuple[str, dict[str, str]]], totals: list[tuple[str, int]], fc: pd.DataFrame,
              shape: tuple[object, ...]) -> list[Issue]:
    """The checks on what a file harmonised (every value accounted for), not yet located."""
    job, plan, src, out = f.job, f.plan, f.src, f.out
    survey, wid, fname = plan.survey, plan.wave.wave, job.file_name
    judged: dict[tuple[str, str], Any] = same.once("expression inputs", src.meta, shape, dict)  # judged already
    unmapped = accounting.unmapped_codes(rep, plan, labels, src.meta)
    return [*unmapped, *accounting.empty_sources(rep, plan, out.rows), *accounting.empty_inputs(rep, plan, out.rows),
            *inputs.unlabelled_input_codes(rep, plan, src.meta, judged),
            *inputs.labelled_beyond_values(rep, plan, src.meta, judged),
            *inputs.declared_missing_values(rep, plan, src.meta),
            *inputs.new_input_codes(rep, plan, src.meta, same.declared(project, survey, wid), judged),
            *inputs.missing_weights(rep, plan, out.rows), *inputs.fractional_values(rep, plan, src.meta),
            *inputs.no_rows(plan, str(job.path), out.rows), *inputs.content_missing(f.unset, plan, str(job.path),
                                                                                     out.rows),
            *accounting.conservation(totals, plan, out.rows),
            *accounting.row_count(src.meta.rows if job.wave_rows is None else job.wave_rows, out.rows, str(job.path),
                                  plan),
            *accounting.unused_unmapped_labels(rep, plan, src.meta, same.once(
                "unaccounted", src.meta, shape, lambda: accounting.unaccounted_codes(plan, src.meta))),
            *accounting.not_available(plan, str(job.path)),
            *accounting.approximate_alternatives(plan, str(job.path)),
            *unread_letter_labels(rep, plan, src.meta, str(job.path)),
            *accounting.validation_failures(_failure_groups(fc) if len(fc) else [], plan, unmapped, fname, src.meta)]


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


def failure_cases(failures: list[pd.DataFrame]) -> pd.DataFrame:
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
