"""Comparative indicators: declarations (mappings/indicators.yaml) compiled to SQL, estimated in DuckDB.

The declarations are validated with pydantic and their expressions compiled with the restricted
expression language at build time; the compiled definitions are stored in the database
(``indicator_definitions``, ``indicator_breakdowns``) beside the default ``indicators`` table, so
a built database answers :func:`indicators` on its own.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from harmonise.checks.expressions import compared_codes
from harmonise.compile.expr import Context, NameSQL, compile_expr
from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.errors import UsageError, ValidationFailed
from harmonise.reports.estimate import MOMENTS, Rule, estimate_sql
from harmonise.spec.expr import EXPR_TYPES, ExprError, result_literals
from harmonise.spec.project import Project, rel, validate_model
from harmonise.spec.schema import TargetSchema
from harmonise.spec.yamlload import load_yaml_file

if TYPE_CHECKING:  # DuckDB loads with the first database opened, not with the module (the CLI imports it)
    import duckdb

BY_COLUMNS = ("survey", "wave", "country", "city", "region_nuts", "urbanisation", "sex", "age_band")
DEFAULT_BY = ("survey", "wave", "country")
WEIGHTS = ("weight", "weight_design", "none")
OUT_OF_POPULATION = ("not_asked", "not_applicable")
_IDENT = re.compile(r'"((?:[^"]|"")+)"')
STRATUM_SQL = "survey || '|' || wave || '|' || country || '|' || coalesce(stratum, '')"
PSU_SQL = "coalesce('p:' || psu, 'r:' || respondent_id)"
DESIGN_SQL = f"SELECT stratum_id, count(DISTINCT psu_id) AS n_h FROM (SELECT {STRATUM_SQL} AS stratum_id, " \
             f"{PSU_SQL} AS psu_id FROM respondents) GROUP BY stratum_id"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndicatorSpec(_Strict):
    label: str
    age: tuple[int, int] = Field(description="Default age band [from, to], inclusive.")
    unit: Literal["share", "mean"]
    outcome: str
    population: str | None = None
    source: str
    weight: Literal["weight", "weight_design"] = Field(
        "weight", description="weight_design: the design weight where a survey-wave has one (domain.md: dweight "
                              "when education is the outcome), else weight.")


class BreakdownSpec(_Strict):
    label: str
    expr: str
    native: str


class IndicatorFile(_Strict):
    age_bands: list[int]
    breakdowns: dict[str, BreakdownSpec]
    indicators: dict[str, IndicatorSpec]


@dataclass(frozen=True)
class Definition:
    """One indicator, compiled."""

    name: str
    label: str
    unit: str
    age_low: int
    age_high: int
    population: str | None
    outcome: str
    source: str
    population_sql: str
    outcome_sql: str
    outcome_reason_sql: str
    weight: str = "weight"  # the declared weight: weight, or weight_design (weight where a survey-wave has none)


@dataclass(frozen=True)
class Breakdown:
    name: str
    label: str
    expr: str
    native: str
    sql: str


@dataclass
class Definitions:
    indicators: dict[str, Definition]
    breakdowns: dict[str, Breakdown]
    age_bands: list[int]


def _context(schema: TargetSchema) -> Context:
    def resolve(name: str) -> NameSQL:
        v = schema.variable(name)
        return NameSQL(quote_ident(name), quote_ident(v.missing_column) if v.has_missing_column else "NULL",
                       EXPR_TYPES[v.type])

    return Context(resolve=resolve, reasons=schema.reasons, params=schema.params, tables={})


def load_definitions(root: Path, schema: TargetSchema) -> Definitions:
    """Validate and compile ``mappings/indicators.yaml``; every problem located by file:line and path."""
    path = root / "mappings" / "indicators.yaml"
    loaded = load_yaml_file(path, rel(path, root))
    model, issues = validate_model(IndicatorFile, loaded)
    if model is None:
        raise ValidationFailed(issues, f"{rel(path, root)}: indicator declarations are invalid")
    ctx, idx = _context(schema), loaded.index

    def compiled(text: str, where: tuple[str | int, ...], want: tuple[str, ...]) -> tuple[str, str]:
        try:
            c = compile_expr(text, ctx)
        except ExprError as exc:
            issues.append(idx.issue(where, f"{exc}", code="indicator-expr", hint="see docs/expressions.md"))
            return "NULL", "NULL"
        if c.type not in want and c.type != "unknown":
            issues.append(idx.issue(where, f"expression gives a {c.type}, expected {' or '.join(want)}",
                                    code="indicator-type"))
        for why in compared_codes(text, schema):
            issues.append(idx.issue(where, why, code="indicator-code"))
        return c.value, c.reason

    defs: dict[str, Definition] = {}
    for name, spec in model.indicators.items():
        lo, hi = spec.age
        if not 0 <= lo <= hi <= 120:
            issues.append(idx.issue(("indicators", name, "age"), f"age band [{lo}, {hi}] must satisfy "
                                    "0 <= from <= to <= 120", code="indicator-age"))
        want = ("boolean",) if spec.unit == "share" else ("number",)
        out_sql, reason_sql = compiled(spec.outcome, ("indicators", name, "outcome"), want)
        pop_sql = compiled(spec.population, ("indicators", name, "population"), ("boolean",))[0] \
            if spec.population else "TRUE"
        defs[name] = Definition(name, spec.label, spec.unit, lo, hi, spec.population, spec.outcome, spec.source,
                                pop_sql, out_sql, reason_sql, spec.weight)
    breakdowns = {}
    for name, b in model.breakdowns.items():
        if name in BY_COLUMNS:
            issues.append(idx.issue(("breakdowns", name), f"breakdown name {name!r} is a grouping column",
                                    code="indicator-breakdown", hint="choose another name"))
        breakdowns[name] = Breakdown(name, b.label, b.expr, b.native,
                                     compiled(b.expr, ("breakdowns", name, "expr"), ("string",))[0])
        groups = _groups(b.expr, schema)
        if groups is not None and b.native not in groups:
            close = difflib.get_close_matches(b.native, groups, n=1)
            issues.append(idx.issue(("breakdowns", name, "native"), f"native group {b.native!r} is not a group "
                                    f"the expression gives ({', '.join(groups)})", code="indicator-code",
                                    hint=f"did you mean '{close[0]}'?" if close else None))
    if model.age_bands != sorted(set(model.age_bands)) or not model.age_bands:
        issues.append(idx.issue(("age_bands",), "age_bands must be increasing lower bounds", code="indicator-age"))
    if issues:
        raise ValidationFailed(issues, f"{rel(path, root)}: indicator declarations are invalid")
    return Definitions(defs, breakdowns, model.age_bands)


def _groups(text: str, schema: TargetSchema) -> list[str] | None:
    """The groups a breakdown expression can give: a category variable's codes, or the quoted
    results of a conditional; None when they cannot be listed (a parse error is reported elsewhere)."""
    var = next((v for v in schema.variables if v.name == text.strip()), None)
    if var is not None:
        return list(var.codes or {}) if var.type == "category" else None
    try:
        results = result_literals(text)
    except ExprError:
        return None
    return list(dict.fromkeys(map(str, results))) if results and all(isinstance(r, str) for r in results) else None


def _age_band_sql(bands: list[int], lo: int, hi: int) -> str:
    whens = []
    for i, a in enumerate(bands):
        b = bands[i + 1] - 1 if i + 1 < len(bands) else 200
        a2, b2 = max(a, lo), min(b, hi)
        if a2 <= b2:
            label = f"{a2}+" if b2 >= 120 else f"{a2}-{b2}"
            whens.append(f"WHEN age BETWEEN {a2} AND {b2} THEN {sql_literal(label)}")
    return f"(CASE {' '.join(whens)} END)" if whens else "NULL"


def _branch(d: Definition, by: Sequence[str], age: tuple[int, int] | None, bands: list[int], gcols: list[str],
            wcol: str) -> str:
    """Rows of one indicator's population (over relation ``resp``) weighted by column ``wcol``, with the
    breakdown groups ``g0``…"""
    lo, hi = age or (d.age_low, d.age_high)
    keys = {c: (_age_band_sql(bands, lo, hi) if c == "age_band" else quote_ident(c)) for c in by}
    cols = [f"{sql_literal(d.name)} AS indicator", f"{sql_literal(f'{lo}+' if hi >= 120 else f'{lo}-{hi}')} AS ages",
            *[f"{e} AS {quote_ident(c)}" for c, e in keys.items()],
            f"{wcol} AS w", f"CAST({d.outcome_sql} AS DOUBLE) AS y", f"({d.outcome_sql}) IS NOT NULL AS answered",
            "stratum_id", "psu_id", "has_design", *gcols]
    out_reasons = ", ".join(sql_literal(r) for r in OUT_OF_POPULATION)
    where = [f"{wcol} IS NOT NULL", f"age BETWEEN {lo} AND {hi}", f"coalesce({d.population_sql}, FALSE)",
             f"(({d.outcome_sql}) IS NOT NULL OR coalesce({d.outcome_reason_sql}, '') NOT IN ({out_reasons}))",
             *[f"({e}) IS NOT NULL" for e in keys.values()]]
    return f"SELECT {', '.join(cols)} FROM resp WHERE {' AND '.join(where)}"


MIXED_WEIGHTS = "as declared per indicator"
DECLARED_DESIGN = "weight_design, else weight"  # a declared weight_design: the weight where a survey-wave has none
_WEIGHT_SQL = {"weight": 'CAST("weight" AS DOUBLE)', "weight_design": 'CAST("weight_design" AS DOUBLE)', "none": "1.0",
               DECLARED_DESIGN: 'CAST((CASE WHEN __has_design_weight THEN "weight_design" ELSE "weight" END) AS DOUBLE)'}
# survey-waves whose design weight is given: a declared weight_design falls back to weight elsewhere
_HAS_DESIGN_WEIGHT = ("LEFT JOIN (SELECT survey AS __dw_survey, wave AS __dw_wave, TRUE AS __has_design_weight "
                      "FROM respondents WHERE weight_design IS NOT NULL GROUP BY ALL) "
                      "ON survey = __dw_survey AND wave = __dw_wave")


def weights_of(defs: Definitions, names: Sequence[str], weight: str | None) -> dict[str, str]:
    """The weight each indicator is estimated with: ``weight`` for all when given, else each one's
    declared weight (a declared ``weight_design`` falls back to ``weight`` in survey-waves without one)."""
    return {n: weight or (DECLARED_DESIGN if defs.indicators[n].weight == "weight_design" else "weight")
            for n in names}


def _base(defs: Definitions, names: list[str], by: Sequence[str], groups: Sequence[str | None], weight: str | None,
          age: tuple[int, int] | None) -> str:
    """The estimator's base relation: weighted moments per indicator × cell × breakdown group × stratum
    (× design PSU).

    Moments are summed first over the finest grouping — every breakdown's group at once — and only
    then spread to one row per breakdown, so the respondents are not multiplied by the breakdowns.
    """
    rules = weights_of(defs, names, weight)
    wcol = {r: f"__w{i}" for i, r in enumerate(dict.fromkeys(rules.values()))}
    gcol = {g: f"__g{i}" for i, g in enumerate(dict.fromkeys(g for g in groups if g))}  # group in each breakdown
    gcols = list(gcol.values())
    parts = []
    for g in groups:
        grp, native = ((gcol[g], f"coalesce({gcol[g]} = {sql_literal(defs.breakdowns[g].native)}, FALSE)") if g
                       else ("'all'", "FALSE"))
        parts.append(f"{{'breakdown': {sql_literal(g or 'total')}, 'group': {grp}, 'is_native': {native}}}")
    # only the columns the expressions read (every column reference in compiled SQL is a quoted identifier);
    # `resp` is not materialised: each indicator rescans the columns it needs, and memory stays flat
    # (materialised, 800,000 respondents spilled beyond the build's 256 MB: 9.7 s instead of 3.7 s)
    sql_parts = [defs.breakdowns[g].sql for g in gcol]
    sql_parts += [x for n in names for d in [defs.indicators[n]]
                  for x in (d.population_sql, d.outcome_sql, d.outcome_reason_sql)]
    used = {c for r in wcol for c in ("weight", "weight_design") if f'"{c}"' in _WEIGHT_SQL[r]}
    cols = {"survey", "wave", "country", "stratum", "psu", "age", *by, *used}
    cols.update(m.group(1).replace('""', '"') for part in sql_parts for m in _IDENT.finditer(part))
    keep = ", ".join(sql_literal(c) for c in sorted(cols))
    gsel = "".join(f", {defs.breakdowns[g].sql} AS {c}" for g, c in gcol.items())
    wsel = "".join(f", {_WEIGHT_SQL[r]} AS {c}" for r, c in wcol.items())
    join = f" {_HAS_DESIGN_WEIGHT}" if DECLARED_DESIGN in wcol else ""
    resp = (f"SELECT COLUMNS(lambda c: c IN ({keep})){wsel}, {STRATUM_SQL} AS stratum_id, psu AS psu_id, "
            f"psu IS NOT NULL AS has_design{gsel} FROM respondents{join}")
    branches = " UNION ALL ".join(_branch(defs.indicators[n], by, age, defs.age_bands, gcols, wcol[rules[n]])
                                  for n in names)
    fine = MOMENTS.format(keys=", ".join(["indicator", "ages", *map(quote_ident, by), *gcols]), base="SELECT * FROM ind")
    exclude = f" EXCLUDE ({', '.join(gcols)})" if gcols else ""
    return (f"WITH resp AS NOT MATERIALIZED ({resp}), ind AS ({branches}), fine AS ({fine}) "
            f"SELECT * FROM (SELECT *{exclude}, unnest([{', '.join(parts)}], recursive := true) FROM fine) "
            f"WHERE \"group\" IS NOT NULL")


@dataclass
class Estimates:
    """Indicator estimates: one row per indicator × grouping cell × group, with the rule used."""

    columns: list[str]
    rows: list[tuple[object, ...]]
    rule: Rule = field(default_factory=Rule)
    weight: str = MIXED_WEIGHTS  # the weight of every row, or MIXED_WEIGHTS when the indicators' differ
    definitions: dict[str, Definition] = field(default_factory=dict)

    def records(self) -> list[dict[str, object]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def _check_args(defs: Definitions, names: Sequence[str] | None, by: Sequence[str], group: Sequence[str | None],
                weight: str | None) -> list[str]:
    chosen = list(names) if names else list(defs.indicators)
    unknown = [n for n in chosen if n not in defs.indicators]
    if unknown:
        raise UsageError(f"unknown indicator(s) {', '.join(unknown)}; known: {', '.join(defs.indicators)}")
    bad = [c for c in by if c not in BY_COLUMNS]
    if bad:
        raise UsageError(f"cannot group by {', '.join(bad)}; choose from {', '.join(BY_COLUMNS)} "
                         f"(migrant breakdowns go in --group: {', '.join(defs.breakdowns)})")
    if len(set(by)) != len(by):
        raise UsageError("each grouping column may be given once")
    badg = [g for g in group if g is not None and g not in defs.breakdowns]
    if badg:
        raise UsageError(f"unknown breakdown {', '.join(badg)}; choose from {', '.join(defs.breakdowns)}")
    if weight is not None and weight not in WEIGHTS:
        raise UsageError(f"unknown weight {weight!r}; choose from {', '.join(WEIGHTS)}")
    return chosen


def indicator_sql(defs: Definitions, names: Sequence[str] | None = None, by: Sequence[str] = DEFAULT_BY,
                  groups: Sequence[str | None] = (None,), *, weight: str | None = None,
                  age: tuple[int, int] | None = None, rule: Rule | None = None) -> str:
    """SQL estimating ``names`` (default: all) by ``by`` for each breakdown in ``groups`` (None: total),
    weighted by ``weight`` (default: each indicator's declared weight; the ``weight`` column says which)."""
    rule = rule or Rule()
    chosen = _check_args(defs, names, by, groups, weight)
    if age is not None and not 0 <= age[0] <= age[1] <= 120:
        raise UsageError(f"age band {age[0]}-{age[1]} must satisfy 0 <= from <= to <= 120")
    inner = estimate_sql(_base(defs, chosen, by, groups, weight, age), DESIGN_SQL, ["indicator", "ages", *by, "breakdown"],
                         rule, moments=True)
    rules = weights_of(defs, chosen, weight)
    label = (sql_literal(next(iter(rules.values()))) if len(set(rules.values())) == 1 else
             "(CASE indicator " + " ".join(f"WHEN {sql_literal(n)} THEN {sql_literal(r)}" for n, r in rules.items())
             + " END)")
    return f"SELECT *, {label} AS weight, {sql_literal(rule.describe())} AS rule FROM ({inner})"


def read_definitions(con: duckdb.DuckDBPyConnection) -> Definitions:
    """The compiled definitions a database was built with."""
    import duckdb

    try:
        ind = con.execute("SELECT name, label, unit, age_low, age_high, population, outcome, source, population_sql, "
                          "outcome_sql, outcome_reason_sql, weight FROM indicator_definitions ORDER BY position").fetchall()
        brk = con.execute("SELECT name, label, expr, native, sql FROM indicator_breakdowns ORDER BY position").fetchall()
        bands = con.execute("SELECT value FROM build_info WHERE key = 'indicator_age_bands'").fetchone()
    except (duckdb.CatalogException, duckdb.BinderException):  # no such table, or one from an older version
        raise UsageError("this database has no indicator definitions; rebuild it with this version of harmonise") \
            from None
    return Definitions({r[0]: Definition(*r) for r in ind}, {r[0]: Breakdown(*r) for r in brk},
                       [int(x) for x in bands[0].split(",")] if bands else [])


def indicators(db: str | Path | duckdb.DuckDBPyConnection = "harmonised.duckdb", names: Sequence[str] | None = None,
               by: Sequence[str] = DEFAULT_BY, group: str | None = None, *, weight: str | None = None,
               age: tuple[int, int] | None = None, rule: Rule | None = None) -> Estimates:
    """Weighted estimates, SEs, CIs, reliability and gaps vs natives from a built database (read-only)."""
    from harmonise.store.connect import connect

    con = connect(db) if isinstance(db, (str, os.PathLike)) else db
    rule = rule or Rule()
    try:
        defs = read_definitions(con)
        cur = con.execute(indicator_sql(defs, names, by, (group,), weight=weight, age=age, rule=rule))
        columns, rows = [c[0] for c in cur.description], cur.fetchall()
        used = {r[columns.index("weight")] for r in rows}
        return Estimates(columns, rows, rule, str(used.pop()) if len(used) == 1 else weight or MIXED_WEIGHTS,
                         defs.indicators)
    finally:
        if con is not db:
            con.close()


def store_indicators(con: duckdb.DuckDBPyConnection, project: Project) -> None:
    """Write the compiled definitions and the default ``indicators`` table into a database being built."""
    if project.schema is None or not (project.root / "mappings" / "indicators.yaml").is_file():
        return
    defs = load_definitions(project.root, project.schema)
    con.execute("CREATE TABLE indicator_definitions (name VARCHAR, label VARCHAR, unit VARCHAR, age_low INTEGER, "
                "age_high INTEGER, population VARCHAR, outcome VARCHAR, source VARCHAR, population_sql VARCHAR, "
                "outcome_sql VARCHAR, outcome_reason_sql VARCHAR, weight VARCHAR, position INTEGER)")
    con.executemany("INSERT INTO indicator_definitions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*vars(d).values(), i) for i, d in enumerate(defs.indicators.values())])
    con.execute("CREATE TABLE indicator_breakdowns (name VARCHAR, label VARCHAR, expr VARCHAR, native VARCHAR, "
                "sql VARCHAR, position INTEGER)")
    con.executemany("INSERT INTO indicator_breakdowns VALUES (?, ?, ?, ?, ?, ?)",
                    [(*vars(b).values(), i) for i, b in enumerate(defs.breakdowns.values())])
    con.execute("INSERT INTO build_info VALUES ('indicator_age_bands', ?)", [",".join(map(str, defs.age_bands))])
    # One query for all: the estimator streams the respondents once per indicator into weighted moments
    # per cell, stratum and design PSU, so memory does not grow with the respondents.
    con.execute(f"CREATE TABLE indicators AS {indicator_sql(defs, None, DEFAULT_BY, (None, *defs.breakdowns))}")
