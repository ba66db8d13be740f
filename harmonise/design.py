"""Sample-design files joined to their wave: ``build --design FILE``.

ESS rounds 1-8 ship the primary sampling unit and stratum in separate sample-design data files
(SDDF: ``idno``, ``cntry``, ``psu``, ``stratum``, ``prob``). A crosswalk's ``design`` key says how
to compute design targets from such a file (``psu: "concat(cntry, '-', str(psu))"``). The file is
recognised like a data file (content, then name), harmonised with the wave's own rules — so its
``respondent_id`` is made exactly as the respondents' — and its design targets replace those of
the wave's respondents with the same id. ``lineage`` records the file and the expressions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from harmonise.compile.sql import plan_and_compile
from harmonise.compile.sqltext import quote_ident
from harmonise.errors import InputError, Issue, UsageError
from harmonise.pipeline.rows import record_source
from harmonise.readers.files import SourceFile, check_staged_names, open_source
from harmonise.recognition import Options, recognise
from harmonise.spec.project import Project
from harmonise.store import provenance

KEY = "respondent_id"


def attach_design(con: duckdb.DuckDBPyConnection, project: Project, path: Path, options: Options) -> list[Issue]:
    """Join the design targets of ``path`` to the respondents of its wave; issues for what did not match."""
    assert project.schema is not None
    src = open_source(path, options.encoding)
    hits, why = recognise(path, src, list(project.crosswalks.values()) if not options.survey
                          else [project.crosswalks[options.survey]], options)
    if len(hits) != 1:
        raise InputError(f"{path}: a design file must match one crosswalk wave ({why or 'it matches none'}); "
                         "name it with --survey and --wave")
    cw, wave = hits[0]
    if not cw.design:
        raise UsageError(f"{path}: the {cw.survey} crosswalk has no `design` key saying how to read a design file")
    unknown = [t for t in cw.design if t not in project.schema.names]
    if unknown:
        raise UsageError(f"{cw.survey} crosswalk `design`: unknown target(s) {', '.join(unknown)}")
    note = f"joined by respondent_id from the design file {path.name}"
    overrides = {**wave.overrides, **{t: {"expr": e, "quality": "exact", "notes": note} for t, e in cw.design.items()}}
    joined = wave.model_copy(update={"overrides": overrides})
    design_cw = cw.model_copy(update={"waves": [joined if w is wave else w for w in cw.waves]})
    plan, compiled = plan_and_compile(design_cw, joined, project, src.meta, stata=src.format == "dta")
    lacking = [t for t in [KEY, *cw.design] if plan.targets[t].kind == "absent"]
    if lacking or compiled.errors:
        what = "; ".join([*(f"{t} needs {', '.join(plan.targets[t].absent)}" for t in lacking),
                          *(e.message for e in compiled.errors)])
        raise InputError(f"{path}: cannot read it as a design file of {cw.survey} wave {wave.wave}: {what}")
    columns = list(dict.fromkeys(vm.name for n in plan.sources() if (vm := src.meta.get(n)) is not None))
    check_staged_names(path, columns, src.meta)
    targets = [KEY, *cw.design]
    con.execute(f"CREATE OR REPLACE TEMP TABLE design_rows ({', '.join(f'{quote_ident(t)} VARCHAR' for t in targets)})")
    rows = 0
    for chunk in src.chunks(columns):
        con.register("src", chunk)
        con.execute(f"INSERT INTO design_rows SELECT {', '.join(quote_ident(t) for t in targets)} FROM ({compiled.sql})")
        con.unregister("src")
        rows += len(chunk)
    total = con.execute("SELECT count(*) FROM respondents WHERE survey = ? AND wave = ?",
                        [cw.survey, wave.wave]).fetchall()[0][0]
    if not total:  # its wave's data files are not in this build: nothing to join, nothing recorded
        return [Issue(f"{path.name}: a design file of {cw.survey} wave {wave.wave}, whose respondents this run has not "
                      f"harmonised: nothing joined", code="design-unmatched", severity="warning", survey=cw.survey,
                      wave=wave.wave, hint=f"give the design file of the waves in --data, or the {cw.survey} wave "
                                           f"{wave.wave} files with it")]
    issues = _design_rows(con, path, cw.survey, wave.wave, list(cw.design), rows)
    if any(i.severity == "error" for i in issues):
        return issues
    sets = []
    for t in cw.design:
        var = project.schema.variable(t)
        sets.append(f"{quote_ident(t)} = coalesce(d.{quote_ident(t)}, r.{quote_ident(t)})")
        if var.has_missing_column:
            sets.append(f"{quote_ident(var.missing_column)} = CASE WHEN d.{quote_ident(t)} IS NULL "
                        f"THEN r.{quote_ident(var.missing_column)} END")
    matched = con.execute(
        f"UPDATE respondents AS r SET {', '.join(sets)} FROM design_rows AS d "
        f"WHERE r.survey = ? AND r.wave = ? AND r.respondent_id = d.{KEY}", [cw.survey, wave.wave]).fetchall()[0][0]
    _record(con, project, cw.survey, wave.wave, path, src, rows, [(t, e) for t, e in cw.design.items()], note)
    if matched < total:
        issues.append(Issue(f"{path.name}: {total - matched:,} of {total:,} respondents of {cw.survey} wave "
                            f"{wave.wave} have no row in the design file; their {', '.join(cw.design)} stay as the "
                            "data files give them", code="design-unmatched", severity="warning", survey=cw.survey,
                            wave=wave.wave, hint="a design file per country: pass each with --design"))
    if rows > matched:
        issues.append(Issue(f"{path.name}: {rows - matched:,} of its {rows:,} rows match no respondent of "
                            f"{cw.survey} wave {wave.wave} (countries not built?)", code="design-extra",
                            severity="note", survey=cw.survey, wave=wave.wave))
    return issues


def _design_rows(con: duckdb.DuckDBPyConnection, path: Path, survey: str, wave: str, targets: list[str],
                 rows: int) -> list[Issue]:
    """What is wrong with the design file's rows (``design_rows``): a respondent id given several different
    design values (an error: which applies cannot be told), rows without any design value (a warning: those
    respondents keep the data files' values)."""
    columns = [f"d.{quote_ident(t)}" for t in targets]
    cols = ", ".join(columns)
    conflicts = con.execute(f"SELECT {KEY}, list(DISTINCT [{cols}]) FROM design_rows AS d GROUP BY {KEY} "
                            f"HAVING count(DISTINCT [{cols}]) > 1 ORDER BY {KEY}").fetchall()
    out = []
    if conflicts:
        shown = "; ".join(f"{key}: " + " or ".join(", ".join(f"{t} {v}" for t, v in zip(targets, vals))
                                                   for vals in sorted(values, key=str)) for key, values in conflicts[:3])
        out.append(Issue(f"{path.name}: {len(conflicts):,} respondent id(s) have several rows with different "
                         f"{' or '.join(targets)} (e.g. {shown}): which one applies cannot be told",
                         code="design-conflict", survey=survey, wave=wave,
                         hint="give each respondent one row in the design file (check that it is the wave's file)"))
    empty = con.execute(f"SELECT count(*) FROM design_rows AS d WHERE {' AND '.join(f'{c} IS NULL' for c in columns)}"
                        ).fetchall()[0][0]
    if empty:
        out.append(Issue(f"{path.name}: {empty:,} of its {rows:,} rows have no {' or '.join(targets)}: those "
                         "respondents keep the data files' values", code="design-empty", severity="warning",
                         survey=survey, wave=wave, hint="check the design file's variables (empty, or other names)"))
    return out


def _record(con: duckdb.DuckDBPyConnection, project: Project, survey: str, wave: str, path: Path, src: SourceFile,
            rows: int, exprs: list[tuple[str, str]], note: str) -> None:
    """The design file in ``sources`` and its targets in ``lineage``."""
    provenance.LINEAGE.insert(con, [(survey, wave, path.name, t, "design", e, "", f"design: {e}", "exact", note,
                                     "design")
                                    for t, e in exprs])
    record_source(con, project, survey, wave, src, hashlib.sha256(path.read_bytes()).hexdigest(), rows, None)
