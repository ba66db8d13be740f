"""Comparative indicators: declarations (mappings/indicators.yaml) compiled to SQL, estimated in DuckDB.

The declarations are validated with pydantic and their expressions compiled with the restricted
expression language at build time; the compiled definitions are stored in the database
(``indicator_definitions``, ``indicator_breakdowns``) beside the default ``indicators`` table, so
a built database answers :func:`indicators` on its own.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from harmonise.checks.expressions import compared_codes
from harmonise.compile.expr import Context, NameSQL, compile_expr
from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.errors import UsageError, ValidationFailed
from harmonise.reports.estimate import ALL, MOMENTS, Rule, check_lonely, design_sql, estimate_sql, margins_sql
from harmonise.spec.expr import EXPR_TYPES, ExprError, result_literals
from harmonise.spec.project import rel, validate_model
from harmonise.spec.schema import TargetSchema
from harmonise.spec.yamlload import load_yaml_file

if TYPE_CHECKING:  # DuckDB and pandas load with the first database opened, not with the module (the CLI imports it)
    import duckdb
    import pandas as pd

BY_COLUMNS = ("survey", "wave", "country", "city", "region_nuts", "urbanisation", "sex", "age_band")
DEFAULT_BY = ("survey", "wave", "country")
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # indicator and breakdown names: page file names, SQL text, CLI options
SAMPLE_KEYS = ("survey", "wave")  # never pooled over unless asked (--pool)
UNKNOWN = "unknown"  # the group or grouping value of respondents whose value is missing (Eurostat's UNK)
WEIGHTS = ("weight", "weight_design", "none")
OUT_OF_POPULATION = ("not_asked", "not_applicable")
_IDENT = re.compile(r'"((?:[^"]|"")+)"')
STRATUM_SQL = "survey || '|' || wave || '|' || country || '|' || coalesce(stratum, '')"
NESTED = ("country",)  # grouping columns the strata lie within (STRATUM_SQL): margined per stratum by the estimator
PSU_SQL = "coalesce('p:' || psu, 'r:' || respondent_id)"
DESIGN_SOURCE = (f"SELECT {STRATUM_SQL} AS stratum_id, {PSU_SQL} AS psu_id, survey || '|' || wave || '|' || country "
                 "AS block, stratum FROM respondents")
_POOLED = ("pooled over the survey-waves named in each row's source: weights rescaled within each {within} to sum to "
           "its number of weighted respondents, so each {unit} counts by its {size} and keeps its own relative "
           "weights{more}; strata stay nested in survey-wave and country")
POOLING = _POOLED.format(within="survey-wave", unit="survey-wave", size="sample size", more="")
# by country, each country's samples alone: a country's pooled figure does not depend on the other countries in the
# database (rescaled within the survey-wave, a country's waves counted by the wave's sample over every country)
POOLING_BY_COUNTRY = _POOLED.format(
    within="survey-wave and country", unit="country's sample in each survey-wave", size="size",
    more=" (no margin over countries, which would weight them by sample size: pool without country in --by for that)")


def pooling(by: Sequence[str]) -> str:
    """How a pooled query by ``by`` pools: :data:`POOLING_BY_COUNTRY` when grouped by country, else :data:`POOLING`."""
    return POOLING_BY_COUNTRY if "country" in by else POOLING


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndicatorSpec(_Strict):
    label: str
    age: tuple[int, int] = Field(description="Default age band [from, to], inclusive.")
    unit: Literal["share", "mean"]
    outcome: str
    population: str | None = None
    source: str
    not_by: list[str] = Field(default_factory=list, description="Breakdowns this indicator is not published by "
                              "(the breakdown defines the outcome, so its groups would be 0 or 1 by construction).")


class BreakdownSpec(_Strict):
    label: str
    expr: str
    native: str
    groups: dict[str, str] = Field(default_factory=dict, description="Labels of the groups an expression gives "
                                   "(a category variable's groups take the schema's code labels).")


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
    not_by: str = ""  # comma-separated breakdowns the indicator is not published by


@dataclass(frozen=True)
class Breakdown:
    name: str
    label: str
    expr: str
    native: str
    sql: str
    labels: str = "{}"  # JSON: group code → label


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

    for kind, names in (("indicators", model.indicators), ("breakdowns", model.breakdowns)):
        for name in names:  # a codebook page is named after it (html/indicators/<name>.html): no '../', no '/'
            if not NAME.fullmatch(name):
                issues.append(idx.issue((kind, name), f"{kind[:-1]} name {name!r} is not a plain name",
                                        code="indicator-name", hint="use lower-case letters, digits and _ (starting "
                                        "with a letter, at most 64 characters), e.g. employment_rate"))
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
        for i, excluded in enumerate(spec.not_by):
            if excluded not in model.breakdowns:
                issues.append(idx.issue(("indicators", name, "not_by", i), f"{excluded!r} is not a declared breakdown "
                                        f"({', '.join(model.breakdowns)})", code="indicator-breakdown"))
        defs[name] = Definition(name, spec.label, spec.unit, lo, hi, spec.population, spec.outcome, spec.source,
                                pop_sql, out_sql, reason_sql, ",".join(spec.not_by))
    breakdowns = {}
    for name, b in model.breakdowns.items():
        if name in BY_COLUMNS:
            issues.append(idx.issue(("breakdowns", name), f"breakdown name {name!r} is a grouping column",
                                    code="indicator-breakdown", hint="choose another name"))
        groups = _groups(b.expr, schema)
        var = next((v for v in schema.variables if v.name == b.expr.strip()), None)
        labels = dict(var.codes or {}) if var is not None and var.type == "category" else {}
        labels.update(b.groups)
        for g in b.groups:
            if groups is not None and g not in groups:
                issues.append(idx.issue(("breakdowns", name, "groups", g), f"{g!r} is not a group the expression "
                                        f"gives ({', '.join(groups)})", code="indicator-code"))
        breakdowns[name] = Breakdown(name, b.label, b.expr, b.native,
                                     compiled(b.expr, ("breakdowns", name, "expr"), ("string",))[0],
                                     json.dumps(labels, ensure_ascii=False))
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


def _branch(d: Definition, by: Sequence[str], age: tuple[int, int] | None, bands: list[int], gcols: list[str]) -> str:
    """Rows of one indicator's population (over relation ``resp``, weight ``__w``), with the breakdown groups ``g0``…"""
    lo, hi = age or (d.age_low, d.age_high)
    keys = {c: (_age_band_sql(bands, lo, hi) if c == "age_band" else f"CAST({quote_ident(c)} AS VARCHAR)") for c in by}
    keys = {c: e if c in SAMPLE_KEYS else f"coalesce({e}, {sql_literal(UNKNOWN)})" for c, e in keys.items()}
    cols = [f"{sql_literal(d.name)} AS indicator", f"{sql_literal(f'{lo}+' if hi >= 120 else f'{lo}-{hi}')} AS ages",
            *[f"{e} AS {quote_ident(c)}" for c, e in keys.items()], "source",
            "__w AS w", f"CAST({d.outcome_sql} AS DOUBLE) AS y", f"({d.outcome_sql}) IS NOT NULL AS answered",
            "stratum_id", "psu_id", "has_design", *gcols]
    out_reasons = ", ".join(sql_literal(r) for r in OUT_OF_POPULATION)
    where = ["__w IS NOT NULL", f"age BETWEEN {lo} AND {hi}", f"coalesce({d.population_sql}, FALSE)",
             f"(({d.outcome_sql}) IS NOT NULL OR coalesce({d.outcome_reason_sql}, '') NOT IN ({out_reasons}))"]
    return f"SELECT {', '.join(cols)} FROM resp WHERE {' AND '.join(where)}"


_WEIGHT_SQL = {"weight": 'CAST("weight" AS DOUBLE)', "weight_design": 'CAST("weight_design" AS DOUBLE)', "none": "1.0"}


def _base(defs: Definitions, names: list[str], by: Sequence[str], groups: Sequence[str | None], weight: str,
          age: tuple[int, int] | None, pool: bool, where: str = "", atoms: bool = False, fine_from: str | None = None,
          fine_only: bool = False) -> str:
    """The estimator's base relation: weighted moments per indicator × cell (margins included) × breakdown
    group × stratum (× design PSU).

    Moments are summed first over the finest grouping — every breakdown's group at once — and only
    then spread to one row per breakdown and to the margins (value ``all``) over each grouping
    column but survey and wave, so the respondents are not multiplied by the breakdowns. The margin
    over a column the strata lie within (:data:`NESTED`) is left to the estimator, which adds it from
    per-stratum sums (a stratum's PSUs are the same in its country and in the margin).

    ``atoms``: instead, the respondents with an answer per indicator × cell (no margin) × combination of every
    breakdown's group (one column per breakdown, named after it; NULL where the group is unknown) — what every
    published cell of the same indicator, age band and keys is a sum of (:func:`atoms_sql`).

    ``fine_only``: the finest moments alone (what both of the above start from); ``fine_from``: a table holding
    them already, read instead of the respondents (:func:`estimate_frame`'s ``materialise``).
    """
    gcol = {g: f"__g{i}" for i, g in enumerate(dict.fromkeys(g for g in groups if g))}  # group in each breakdown
    gcols = list(gcol.values())
    parts = []
    for g in groups:
        excluded = [n for n in names if g and g in defs.indicators[n].not_by.split(",")]
        # a breakdown's table: its groups and their total, over the respondents whose group is known
        cells = [(gcol[g], f"coalesce({gcol[g]} = {sql_literal(defs.breakdowns[g].native)}, FALSE)"),
                 (f"CASE WHEN {gcol[g]} IS NOT NULL THEN {sql_literal(ALL)} END", "FALSE")] if g else \
            [(sql_literal(ALL), "FALSE")]
        for grp, native in cells:
            if excluded:
                grp = f"CASE WHEN indicator IN ({', '.join(map(sql_literal, excluded))}) THEN NULL ELSE {grp} END"
            parts.append(f"{{'breakdown': {sql_literal(g or 'total')}, 'group': {grp}, 'is_native': {native}}}")
    # only the columns the expressions read (every column reference in compiled SQL is a quoted identifier);
    # `resp` is not materialised: each indicator rescans the columns it needs, and memory stays flat
    # (materialised, 800,000 respondents spilled beyond the build's 256 MB: 9.7 s instead of 3.7 s)
    keep = ", ".join(sql_literal(c) for c in sorted(_read_columns(defs, names, by, groups, weight)))
    gsel = "".join(f", {defs.breakdowns[g].sql} AS {c}" for g, c in gcol.items())
    w = _WEIGHT_SQL[weight]
    if pool:  # each survey-wave's (by country: each country's in it) weights sum to its number of weighted respondents
        within = "survey, wave, country" if "country" in by else "survey, wave"
        w = f"{w} * count({w}) OVER (PARTITION BY {within}) / nullif(fsum({w}) OVER (PARTITION BY {within}), 0)"
    # A design PSU holding one respondent is that respondent's own PSU: it joins the stratum's moments like a
    # respondent without a PSU (the same variance, and no group shares it with the native group), so only
    # PSUs shared by respondents keep a row per cell (ESS rounds with simple random sampling name every
    # respondent a PSU: 3,580 PSUs for 5,307 respondents made 655,000 cell × PSU rows)
    shared = (f"SELECT {STRATUM_SQL} AS __sid, psu AS __spsu FROM respondents{where or ' WHERE TRUE'} "
              "AND psu IS NOT NULL GROUP BY ALL HAVING count(*) > 1")
    resp = (f"SELECT COLUMNS(lambda c: c IN ({keep})), {w} AS __w, survey || ' ' || wave AS source, "
            f"{STRATUM_SQL} AS stratum_id, __spsu AS psu_id, psu IS NOT NULL AS has_design{gsel} "
            f"FROM respondents LEFT JOIN shared ON __sid = {STRATUM_SQL} AND __spsu = psu{where}")
    branches = " UNION ALL ".join(_branch(defs.indicators[n], by, age, defs.age_bands, gcols) for n in names)
    fine = MOMENTS.format(keys=", ".join(["indicator", "ages", *map(quote_ident, by), *gcols]), base="SELECT * FROM ind")
    head = f"WITH fine AS (SELECT * FROM {fine_from})" if fine_from is not None else \
        f"WITH shared AS MATERIALIZED ({shared}), resp AS NOT MATERIALIZED ({resp}), ind AS ({branches}), fine AS ({fine})"
    if fine_only:
        return f"{head} SELECT * FROM fine"
    if atoms:
        named = "".join(f", {c} AS {quote_ident(g)}" for g, c in gcol.items())
        return (f"{head} SELECT indicator, ages, {', '.join(map(quote_ident, by))}{named}, "
                "sum(n)::BIGINT AS n FROM fine GROUP BY ALL HAVING sum(n) > 0")
    exclude = f" EXCLUDE ({', '.join(gcols)})" if gcols else ""
    spread = f"SELECT *{exclude}, unnest([{', '.join(parts)}], recursive := true) FROM fine"
    cube = margins_sql("spread", [c for c in by if c not in SAMPLE_KEYS and c not in NESTED])
    return f"{head}, spread AS (SELECT * FROM ({spread}) WHERE \"group\" IS NOT NULL) {cube}"


def _read_columns(defs: Definitions, names: Sequence[str], by: Sequence[str], groups: Sequence[str | None],
                  weight: str) -> set[str]:
    """The respondents columns an estimate reads (besides the design's): the grouping columns, the weight and
    every column the indicators' and breakdowns' compiled SQL names (each a quoted identifier)."""
    sql_parts = [defs.breakdowns[g].sql for g in dict.fromkeys(g for g in groups if g)]
    sql_parts += [x for n in names for d in [defs.indicators[n]]
                  for x in (d.population_sql, d.outcome_sql, d.outcome_reason_sql)]
    cols = {"survey", "wave", "country", "stratum", "psu", "age", *by}
    cols.update(c for c in ("weight", "weight_design") if f'"{c}"' in _WEIGHT_SQL[weight])
    cols.update(m.group(1).replace('""', '"') for part in sql_parts for m in _IDENT.finditer(part))
    return cols


def stored_inputs(defs: Definitions) -> list[str]:
    """The respondents columns the stored ``indicators`` table is estimated from (the design's
    ``respondent_id`` included; some may name no column, as ``age_band``): a wave whose rows hold the same
    values there has the same estimates."""
    keys = grouping(DEFAULT_BY, False)
    return sorted(_read_columns(defs, sorted(defs.indicators), keys, (None, *defs.breakdowns), "weight")
                  | {"respondent_id"})


@dataclass
class Estimates:
    """Indicator estimates: one row per indicator × grouping cell (margins ``all`` included) × group."""

    columns: list[str]
    rows: list[tuple[object, ...]]
    rule: Rule = field(default_factory=Rule)
    weight: str = "weight"
    definitions: dict[str, Definition] = field(default_factory=dict)
    lonely_psu: str = "adjust"
    pooling: str | None = None  # the pooling method, when pooled (--pool)
    breakdowns: dict[str, Breakdown] = field(default_factory=dict)
    unestimated: list[str] = field(default_factory=list)  # survey-waves of the database without a row, and why

    def records(self) -> list[dict[str, object]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def _check_args(defs: Definitions, names: Sequence[str] | None, by: Sequence[str], group: Sequence[str | None],
                weight: str) -> list[str]:
    chosen = list(names) if names else list(defs.indicators)
    unknown = [n for n in chosen if n not in defs.indicators]
    if unknown:
        raise UsageError(f"unknown indicator(s) {', '.join(unknown)}; known: {', '.join(defs.indicators)}")
    bad = [c for c in by if c not in BY_COLUMNS]
    if bad:
        raise UsageError(f"cannot group by {', '.join(bad)}; choose from {', '.join(BY_COLUMNS)} "
                         f"(migrant breakdowns go in --group: {', '.join(defs.breakdowns)})")
    if len(set(by)) != len(by):
        twice = sorted({c for c in by if by.count(c) > 1})
        raise UsageError(f"--by {', '.join(twice)}: given more than once; give each grouping column once")
    badg = [g for g in group if g is not None and g not in defs.breakdowns]
    if badg:
        raise UsageError(f"unknown breakdown {', '.join(map(repr, badg))}; choose from {', '.join(defs.breakdowns)}")
    if weight not in WEIGHTS:
        raise UsageError(f"unknown weight {weight!r}; choose from {', '.join(WEIGHTS)}")
    return chosen


def in_wave_order(source: object) -> object:
    """A pooled row's survey-waves by survey, then by the numbers in the wave id: SQL's text order put
    ``ess 11`` before ``ess 4`` (``ess 1, ess 4, ess 11, eumidis I, eumidis II``)."""
    if not isinstance(source, str):
        return source

    def key(sw: str) -> tuple[str, list[tuple[int, int, str]]]:
        survey, _, wave = sw.partition(" ")
        return survey, [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", wave) if p]

    return ", ".join(sorted(source.split(", "), key=key))


def default_by(pool: bool) -> list[str]:
    """The grouping when none is given: :data:`DEFAULT_BY`; pooled, without survey and wave (which, given in
    ``by``, keep every survey-wave apart: pooling nothing)."""
    return [c for c in DEFAULT_BY if not pool or c not in SAMPLE_KEYS]


def grouping(by: Sequence[str], pool: bool) -> list[str]:
    """The grouping columns: ``by``, led by survey and wave unless pooled (comparability first)."""
    return list(by) if pool else [*SAMPLE_KEYS, *(c for c in by if c not in SAMPLE_KEYS)]


def indicator_sql(defs: Definitions, names: Sequence[str] | None = None, by: Sequence[str] = DEFAULT_BY,
                  groups: Sequence[str | None] = (None,), *, weight: str = "weight",
                  age: tuple[int, int] | None = None, lonely_psu: str = "adjust", pool: bool = False,
                  sample: Sequence[tuple[str, str]] | None = None, fine_from: str | None = None,
                  unmargined: Sequence[tuple[str, str]] = ()) -> str:
    """SQL of the estimator rows (nothing suppressed yet) of ``names`` (default: all) by ``by`` (led by
    survey and wave unless ``pool``) for each breakdown in ``groups`` (None: the total); ``sample``: the
    respondents of those (survey, wave) pairs only. With the design weight there is no margin over countries:
    design weights sum to each country's sample size, so such a margin would weight the countries by it (ESS
    guidance: dweight within one country only); nor pooled, whose weights by country are rescaled so (:func:`pooling`);
    nor for the ``unmargined`` survey-waves (:func:`unmargined`). ``fine_from``: a table of :func:`fine_sql`'s rows (the same
    arguments, every breakdown), read instead of the respondents."""
    chosen = _check_args(defs, names, by, groups, weight)
    check_lonely(lonely_psu)
    if age is not None and not 0 <= age[0] <= age[1] <= 120:
        raise UsageError(f"age band {age[0]}-{age[1]} must satisfy 0 <= from <= to <= 120")
    keys = grouping(by, pool)
    where = _sample_where(sample)
    return estimate_sql(_base(defs, chosen, keys, groups, weight, age, pool, where, fine_from=fine_from),
                        design_sql(DESIGN_SOURCE + where, lonely_psu), ["indicator", "ages", *keys, "breakdown"],
                        lonely_psu, moments=True,
                        margins=[c for c in keys if c in NESTED and weight != "weight_design" and not pool],
                        unmargined=unmargined if {"survey", "wave"} <= set(keys) else ())


def atoms_sql(defs: Definitions, names: Sequence[str] | None = None, by: Sequence[str] = DEFAULT_BY, *,
              weight: str = "weight", age: tuple[int, int] | None = None, pool: bool = False,
              sample: Sequence[tuple[str, str]] | None = None, fine_from: str | None = None) -> str:
    """SQL of the respondents with an answer per indicator, age band, ``by`` cell and combination of every
    breakdown's group (a column per breakdown): the atoms every published cell of :func:`indicator_sql` (the same
    arguments, every breakdown) is a sum of. Disclosure control reads them (a cell of one breakdown may be the
    sum and difference of other breakdowns' cells: born in the country = native + second generation).
    ``fine_from``: as :func:`indicator_sql`'s."""
    chosen = _check_args(defs, names, by, (None,), weight)
    keys = grouping(by, pool)
    return _base(defs, chosen, keys, (None, *defs.breakdowns), weight, age, pool, _sample_where(sample), atoms=True,
                 fine_from=fine_from)


def fine_sql(defs: Definitions, names: Sequence[str] | None = None, by: Sequence[str] = DEFAULT_BY, *,
             weight: str = "weight", age: tuple[int, int] | None = None, pool: bool = False,
             sample: Sequence[tuple[str, str]] | None = None) -> str:
    """SQL of the finest weighted moments (indicator × age band × ``by`` cell × every breakdown's group × stratum ×
    design PSU) that both :func:`indicator_sql` (every breakdown) and :func:`atoms_sql` sum, given the same
    arguments: stored as a table once, it is read by both instead of the respondents twice."""
    chosen = _check_args(defs, names, by, (None,), weight)
    return _base(defs, chosen, grouping(by, pool), (None, *defs.breakdowns), weight, age, pool, _sample_where(sample),
                 fine_only=True)


def _sample_where(sample: Sequence[tuple[str, str]] | None) -> str:
    """The WHERE clause of the respondents of the (survey, wave) pairs ``sample`` (none: every respondent)."""
    return (" WHERE (" + " OR ".join(f"survey = {sql_literal(s)} AND wave = {sql_literal(w)}" for s, w in sample)
            + ")") if sample else ""


NORMALISED = 1e-3  # a country's weights summing to its weighted respondents within this share are scaled to its n


def unmargined(con: duckdb.DuckDBPyConnection, weight: str, sample: Sequence[tuple[str, str]] | None = None
               ) -> list[tuple[str, str]]:
    """Survey-waves of several countries whose weights sum to each country's number of weighted respondents (EVS's
    calibration weight, EU-MIDIS II's person weight as modelled): weights scaled so cannot weight the countries
    against each other, and a margin over countries would weight them by sample size (as the design weight's would:
    decision 70), so they get none. Not for ``--weight none``, where the unweighted margin is what is asked."""
    if weight != "weight":
        return []
    rows = con.execute(
        f"SELECT survey, wave FROM (SELECT survey, wave, country, fsum(w) AS sw, count(w) AS n FROM (SELECT survey, "
        f"wave, country, {_WEIGHT_SQL[weight]} AS w FROM respondents{_sample_where(sample)}) GROUP BY ALL) "
        f"GROUP BY ALL HAVING count(*) > 1 AND bool_and(n > 0 AND abs(sw - n) <= {NORMALISED} * n) "
        "ORDER BY ALL").fetchall()
    return [(str(s), str(w)) for s, w in rows]


def estimate_frame(con: duckdb.DuckDBPyConnection, defs: Definitions, names: Sequence[str] | None,
                   by: Sequence[str], groups: Sequence[str | None], *, weight: str = "weight",
                   age: tuple[int, int] | None = None, rule: Rule | None = None, lonely_psu: str = "adjust",
                   pool: bool = False, sample: Sequence[tuple[str, str]] | None = None,
                   materialise: bool = False) -> pd.DataFrame:
    """Published rows (suppression applied, quality flags, weight and rule named) as a typed DataFrame;
    ``sample``: of those (survey, wave) pairs only (unless pooled, their rows are those of the whole
    estimate: no cell, stratum or suppression table spans two survey-waves). ``materialise``: the finest
    moments the estimates and the atoms both sum are stored in a temporary table of ``con`` (dropped at the end)
    and read twice, where each query would read the respondents (the build's stored table, a survey-wave at a
    time: an ESS round's atoms then cost 0.3–0.45 s less; a query over every wave would hold them all)."""
    from harmonise.reports.disclosure import publish
    from harmonise.reports.quality import quality_column

    rule = rule or Rule()
    _check_args(defs, names, by, groups, weight)
    # every breakdown is estimated and protected, whichever are asked for: a breakdown's total and the total
    # without a breakdown are often the same cell, so one suppression decides for all (decision 69), and a
    # query of one breakdown hides what the stored table and a query of another hide
    every: tuple[str | None, ...] = (None, *defs.breakdowns)
    fine = f"__fine_{uuid.uuid4().hex}" if materialise else None
    try:
        if fine is not None:
            con.execute(f"CREATE TEMP TABLE {fine} AS "
                        f"{fine_sql(defs, names, by, weight=weight, age=age, pool=pool, sample=sample)}")
        frame = con.execute(indicator_sql(defs, names, by, every, weight=weight, age=age, lonely_psu=lonely_psu,
                                          pool=pool, sample=sample, fine_from=fine,
                                          unmargined=unmargined(con, weight, sample))).df()
        atoms = con.execute(atoms_sql(defs, names, by, weight=weight, age=age, pool=pool, sample=sample,
                                      fine_from=fine)).df()
    finally:
        if fine is not None:
            con.execute(f"DROP TABLE IF EXISTS {fine}")
    frame["share"] = frame["indicator"].map(lambda n: defs.indicators[n].unit == "share").astype(bool)
    keys = grouping(by, pool)
    dims = [c for c in keys if c not in SAMPLE_KEYS]
    fixed = _stored_suppression(con, frame, dims) if (not pool and weight == "weight" and age is None and rule == Rule()
                                                      and dims != ["country"]) else None
    out = publish(frame, ["indicator", "ages", *(c for c in keys if c in SAMPLE_KEYS)], dims, rule, lonely_psu, atoms,
                  fixed)
    asked = {g or "total" for g in groups}
    if asked != {g or "total" for g in every}:
        out = out[out["breakdown"].isin(asked)].reset_index(drop=True)
    if pool:
        out["source"] = out["source"].map(in_wave_order)
    out.insert(list(out.columns).index("design") + 1, "quality", quality_column(con, defs, out, weight))
    out["weight"] = weight
    out["rule"] = rule.describe()
    return out


def _stored_suppression(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, dims: Sequence[str]) -> dict[int, bool]:
    """Rows of ``frame`` that are cells of the stored ``indicators`` table (by survey, wave and country: the rows
    whose other grouping columns are all margins) → whether the stored table hides them. A query by country and
    sex published a country's cell as its sex margin where the stored table hid it (80 of ESS8 France's 624
    cells): the same cell, read from the other table. Empty when the database has no stored table."""
    import duckdb

    try:
        stored = {tuple(map(str, r[:-1])): bool(r[-1]) for r in con.execute(
            "SELECT indicator, ages, survey, wave, country, breakdown, \"group\", reliability = 'suppressed' "
            "FROM indicators").fetchall()}
    except (duckdb.CatalogException, duckdb.BinderException):  # an older database, or one being built
        return {}
    others = [d for d in dims if d != "country"]
    cols = ["indicator", "ages", "survey", "wave", "breakdown", "group", *dims]
    out: dict[int, bool] = {}
    for i, row in enumerate(zip(*(frame[c].astype(str).tolist() for c in cols))):
        value = dict(zip(cols, row))
        if all(value[d] == ALL for d in others):
            key = (value["indicator"], value["ages"], value["survey"], value["wave"],
                   value["country"] if "country" in dims else ALL, value["breakdown"], value["group"])
            if key in stored:
                out[i] = stored[key]
    return out


def read_definitions(con: duckdb.DuckDBPyConnection) -> Definitions:
    """The compiled definitions a database was built with."""
    import duckdb

    try:
        ind = con.execute("SELECT name, label, unit, age_low, age_high, population, outcome, source, population_sql, "
                          "outcome_sql, outcome_reason_sql, not_by FROM indicator_definitions ORDER BY position").fetchall()
        brk = con.execute("SELECT name, label, expr, native, sql, labels FROM indicator_breakdowns "
                          "ORDER BY position").fetchall()
        bands = con.execute("SELECT value FROM build_info WHERE key = 'indicator_age_bands'").fetchone()
    except (duckdb.CatalogException, duckdb.BinderException):  # no such table, or one from an older version
        raise UsageError("this database has no indicator definitions of this version; rebuild it with this version "
                         "of harmonise") from None
    if bands is None:  # without them every respondent's age band would be "unknown"
        raise UsageError("this database records no indicator age bands (build_info.indicator_age_bands): another "
                         "version of harmonise built it; rebuild it with this version of harmonise")
    return Definitions({r[0]: Definition(*r) for r in ind}, {r[0]: Breakdown(*r) for r in brk},
                       [int(x) for x in bands[0].split(",")] if bands[0] else [])


def indicators(db: str | Path | duckdb.DuckDBPyConnection = "harmonised.duckdb", names: Sequence[str] | None = None,
               by: Sequence[str] | None = None, group: str | None = None, *, weight: str = "weight",
               age: tuple[int, int] | None = None, rule: Rule | None = None, lonely_psu: str = "adjust",
               pool: bool = False) -> Estimates:
    """Weighted estimates, SEs, CIs, reliability and gaps vs natives from a built database (read-only).

    Rows are per survey × wave × ``by`` cell unless ``pool`` (then the ``source`` column names the
    survey-waves pooled; see :func:`pooling`), with margins over ``by`` (value ``all``): the total
    (breakdown ``total``, group ``all``) or, with ``group``, that breakdown's groups and their total
    (group ``all``, over the respondents whose group is known). ``by`` defaults to :data:`DEFAULT_BY`, and
    pooled to its columns other than survey and wave (by country)."""
    from harmonise.store.connect import connect, require_tables

    by = default_by(pool) if by is None else by
    con = connect(db) if isinstance(db, (str, os.PathLike)) else db
    rule = rule or Rule()
    try:
        if con is not db:  # a database another program wrote: said so, not "rebuild it with this version"
            require_tables(con, str(db), ("respondents",))
        defs = read_definitions(con)
        chosen = _check_args(defs, names, by, (group,), weight)
        excluded = [n for n in chosen if group is not None and group in defs.indicators[n].not_by.split(",")]
        if excluded and len(excluded) == len(chosen):
            raise UsageError(f"{', '.join(excluded)} {'is' if len(excluded) == 1 else 'are'} not published by "
                             f"{group} (not_by in mappings/indicators.yaml: the breakdown is the indicator's own "
                             "outcome or defines its population); choose another --group or none")
        stored = _stored_rows(con, names, group) if (
            not pool and tuple(grouping(by, pool)) == DEFAULT_BY and weight == "weight" and age is None and rule == Rule()
            and lonely_psu == "adjust") else None
        frame = stored if stored is not None else estimate_frame(
            con, defs, names, by, (group,), weight=weight, age=age, rule=rule, lonely_psu=lonely_psu, pool=pool)
        absent = [] if pool else _unestimated(con, frame, weight)
    finally:
        if con is not db:
            con.close()
    rows = [tuple(None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in r)
            for r in frame.astype(object).itertuples(index=False)]
    return Estimates(list(frame.columns), rows, rule, weight, defs.indicators, lonely_psu, pooling(by) if pool else None,
                     defs.breakdowns, absent)


def _stored_rows(con: duckdb.DuckDBPyConnection, names: Sequence[str] | None, group: str | None
                 ) -> pd.DataFrame | None:
    """The stored ``indicators`` rows of ``group``'s breakdown (of ``names``), in the order an estimate gives them,
    when this code built the database with this DuckDB: a query with the build's options (by country, the analysis
    weight, the indicators' own ages, the default rule, lonely PSUs adjusted, not pooled) then gives exactly those
    rows, as the estimator is deterministic and its suppression already spans every breakdown. None otherwise
    (another harmonise or DuckDB built it, or a database without the table): then the query estimates. A query by
    country on the demo: 2.3 s estimating, 0.06 s read (decision 79)."""
    import duckdb

    from harmonise.store.identity import code_digest

    try:
        built = dict(con.execute("SELECT key, value FROM build_info WHERE key IN ('harmonise_code', 'duckdb_version')"
                                 ).fetchall())
        if built != {"harmonise_code": code_digest(), "duckdb_version": duckdb.__version__}:
            return None
        chosen = f" AND indicator IN ({', '.join(map(sql_literal, names))})" if names else ""
        return con.execute(f"SELECT * FROM indicators WHERE breakdown = ?{chosen} "
                           'ORDER BY indicator, ages, survey, wave, country, breakdown, "group"',
                           [group or "total"]).df()
    except (duckdb.CatalogException, duckdb.BinderException):  # an older database
        return None


def _unestimated(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, weight: str) -> list[str]:
    """The database's survey-waves without an estimate, each with why: no respondent has the weight, none has an
    age, or none is in the indicators' populations (their ages, the ``--age`` band, their outcome asked)."""
    got = set(zip(frame["survey"], frame["wave"])) if len(frame) else set()
    weighted = _WEIGHT_SQL[weight]
    out = []
    for survey, wave, n, w, aged in con.execute(
            f"SELECT survey, wave, count(*), count({weighted}), count(age) FROM respondents GROUP BY ALL "
            "ORDER BY ALL").fetchall():
        if (survey, wave) not in got:
            if not w:
                why = f"none of its {n:,} respondents has a value of {weight}" + \
                    (" (--weight none estimates unweighted)" if weight != "none" else "")
            elif not aged:  # an extract without the age variable: no population's ages can be told
                why = (f"none of its {n:,} respondents has an age (its files lack the variable the crosswalk reads "
                       "it from), and every indicator's population is an age band")
            else:
                why = "none of its respondents is in the indicators' populations (ages, the question asked)"
            out.append(f"{survey} {wave}: {why}")
    return out
