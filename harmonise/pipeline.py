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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from harmonise import __version__
from harmonise.checks import drift
from harmonise.checks.frame import validate_frame
from harmonise.compile.sql import CompiledWave, compile_wave
from harmonise.errors import InputError, Issue
from harmonise.readers.files import EXTENSIONS, SourceFile, open_source
from harmonise.spec.check import check_crosswalk, locate
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.expr import quote_ident, referenced_names
from harmonise.spec.coverage import quality_of
from harmonise.spec.project import Project
from harmonise.spec.resolve import WavePlan, resolve_wave
from harmonise.spec.schema import UNMAPPED
from harmonise.store.tables import insert_select, to_json

Progress = Callable[[str], None]
NUMERIC_REPORT = ("integer", "number", "string", "country", "language", "city")


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
    for f in files:
        hits = [(cw, w) for cw in project.crosswalks.values() for w in cw.waves
                if any(fnmatch.fnmatch(f.name.lower(), pat.lower()) for pat in w.files)]
        if len(hits) > 1:
            names = ", ".join(f"{cw.survey} {w.wave}" for cw, w in hits)
            issues.append(Issue(f"{f}: file name matches several waves ({names})", code="ambiguous-file",
                                hint="make the waves' `files` patterns more specific"))
        elif hits:
            jobs.append(Job(hits[0][0], hits[0][1], f))
    seen: dict[tuple[str, str], Path] = {}
    for j in jobs:
        key = (j.crosswalk.survey, j.wave.wave)
        if key in seen:
            issues.append(Issue(f"{j.path}: a second file for {key[0]} wave {key[1]} (first: {seen[key]})",
                                code="duplicate-wave-file", hint="keep one file per wave in --data"))
        seen[key] = j.path
    if not jobs and not issues:
        pats = sorted({p for cw in project.crosswalks.values() for w in cw.waves for p in w.files})
        raise InputError(f"no data file in {', '.join(map(str, data))} matches any crosswalk wave "
                         f"(patterns: {', '.join(pats[:12])}{' …' if len(pats) > 12 else ''})")
    return jobs, issues


class _Hasher(threading.Thread):
    """sha256 of a file, computed beside the read."""

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


def _source_columns(plan: WavePlan, src: SourceFile) -> list[str]:
    cols = []
    for name in plan.sources():
        vm = src.meta.get(name)
        if vm is not None and vm.name not in cols:
            cols.append(vm.name)
    return cols


def _report_sql(compiled: CompiledWave, plan: WavePlan, project: Project) -> str:
    assert project.schema is not None
    parts = []
    for name in compiled.report_targets:
        var = project.schema.variable(name)
        tp = plan.targets[name]
        v = quote_ident(name)
        if var.type in NUMERIC_REPORT and not (tp.kind in ("map", "table") and var.type in ("country", "language", "city")):
            tv = f"CASE WHEN {v} IS NULL THEN NULL ELSE '*' END"
        else:
            tv = f"CAST({v} AS VARCHAR)"
        reason = quote_ident(var.missing_column) if var.has_missing_column else "NULL"
        parts.append(f"SELECT '{name}' AS target, CAST({quote_ident(name + '__src')} AS VARCHAR) AS source_code, "
                     f"{tv} AS target_value, {reason} AS missing_reason, count(*) AS n FROM h GROUP BY ALL")
    return "\nUNION ALL ".join(parts)


def process(job: Job, con: duckdb.DuckDBPyConnection, project: Project, *, encoding: str | None = None,
            chunksize: int = 100_000, progress: Progress | None = None) -> Outcome:
    """Harmonise one file into ``con`` (tables already created). Never raises for data problems."""
    assert project.schema is not None
    t0 = time.perf_counter()
    cw, wave = job.crosswalk, job.wave
    out = Outcome(job)
    index = project.crosswalk_index.get(cw.survey)
    src = open_source(job.path, encoding or wave.encoding)
    hasher = _Hasher(job.path)
    hasher.start()
    static = check_crosswalk(cw, project.schema, project.tables, index, {wave.wave: src.meta}, only_wave=wave.wave)
    out.issues.extend(static)
    plan = resolve_wave(cw, wave, project.schema, project.tables, src.meta.variables)
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
        hasher.join()
        out.sha256 = hasher.digest
        return out
    columns = _source_columns(plan, src)
    report_sql = _report_sql(compiled, plan, project)
    insert = insert_select(project.schema, "h")
    con.execute("CREATE OR REPLACE TEMP TABLE report_stage (target VARCHAR, source_code VARCHAR, "
                "target_value VARCHAR, missing_reason VARCHAR, n BIGINT)")
    failures: list[pd.DataFrame] = []
    for chunk in src.chunks(columns, chunksize):
        con.register("src", chunk)
        con.execute(f"CREATE OR REPLACE TEMP TABLE h AS {compiled.sql}")
        con.unregister("src")
        h = con.execute("SELECT * FROM h").df()
        out.rows += len(h)
        fc = validate_frame(h, project.schema, project.tables)
        if len(fc):
            rows = h["source_row"].to_numpy()
            fc["source_row"] = [int(rows[i]) if isinstance(i, (int,)) and 0 <= i < len(rows) else None
                                for i in fc["index"]]
            failures.append(fc)
        con.execute(f"INSERT INTO report_stage {report_sql}")
        con.execute(insert)
        con.execute("DROP TABLE h")
        if progress:
            progress(f"{cw.survey} {wave.wave}: {out.rows:,} rows")
    hasher.join()
    out.sha256 = hasher.digest
    _finish(job, con, project, plan, src, out, failures, index)
    out.seconds = time.perf_counter() - t0
    return out


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
        elif tp.kind == "expr" and tp.expr:
            out[name] = (",".join(referenced_names(tp.expr)), {})
        elif tp.kind == "derived" and tp.expr:
            out[name] = (",".join(referenced_names(tp.expr)), {})
        else:
            out[name] = ("", {})
    return out


def _finish(job: Job, con: duckdb.DuckDBPyConnection, project: Project, plan: WavePlan, src: SourceFile,
            out: Outcome, failures: list[pd.DataFrame], index: object) -> None:
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
                f"source variable {srcvars} code {code}{lab} has no mapping for target {target}: {n:,} row(s)",
                code="unmapped-code", survey=survey, wave=wid, variable=srcvars, path=".".join(map(str, tp.path)),
                hint="add the code to the rule's map or missing", extra={"yaml_path": tp.path,
                                                                        "source_code": code, "count": n}),
                index, survey, wid))  # type: ignore[arg-type]
    _insert(con, "harmonisation_report", report_rows)
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
        shown = ", ".join(f"{d[0]} ({d[1]}×)" for d in dups[:5])
        out.issues.append(locate(Issue(f"respondent_id is not unique: {ndup:,} duplicated id(s), e.g. {shown}",
                                       code="duplicate-id", survey=survey, wave=wid, path="targets.respondent_id",
                                       extra={"yaml_path": plan.targets['respondent_id'].path}),
                                 index, survey, wid))  # type: ignore[arg-type]
    if failures:
        fc = pd.concat(failures, ignore_index=True)
        _insert(con, "validation_failures",
                [(survey, wid, str(r.column), str(r.check), str(r.failure_case),
                  None if pd.isna(r.source_row) else int(r.source_row)) for r in fc.itertuples()])
        grouped = fc.groupby(["column", "check"], dropna=False)
        for (col, check), g in grouped:
            examples = ", ".join(sorted({str(v) for v in g["failure_case"].head(50)})[:5])
            rows = ", ".join(str(int(r)) for r in g["source_row"].dropna().head(3))
            out.issues.append(Issue(f"pandera check '{check}' failed on column {col}: {len(g):,} case(s), "
                                    f"e.g. {examples}" + (f" (source rows {rows})" if rows else ""),
                                    code="validation", survey=survey, wave=wid, variable=str(col)))
    con.execute("INSERT INTO compiled_sql VALUES (?, ?, ?)",
                [survey, wid, compile_wave(plan, src.meta, project.schema, project.tables).sql])  # type: ignore[arg-type]
    _lineage(con, project, plan, src, labels)
    cwfile = project.crosswalk_files.get(survey, "")
    cwsha = hashlib.sha256(project.crosswalk_text.get(survey, "").encode()).hexdigest()
    st = job.path.stat()
    con.execute("INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [survey, wid, job.path.name, str(job.path), src.format, st.st_size, out.sha256, out.rows,
                 src.meta.encoding, src.meta.file_label, to_json(src.meta.header), cwfile, cwsha,
                 project.codebook_files.get((survey, wid)), __version__, time.strftime("%Y-%m-%dT%H:%M:%S")])


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


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple[object, ...]]) -> None:
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
