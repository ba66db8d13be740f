"""Quality flags that reach an indicator row: what the lineage and the survey descriptors say of its inputs.

An indicator row reads, in each survey-wave of its ``source``: the variables of its population
and outcome, the breakdown's variable(s), ``age`` and the weight — and, for a derived variable,
the inputs of its derivation (recursively, from the ``lineage`` table's source variables). Every
one whose ``lineage.quality`` is ``approximate`` or ``proxy`` is named (labour status is always an
approximation; rescaled scales and proxy rules are flagged so by their crosswalks), and a survey
whose descriptor (``surveys/<id>/survey.yaml`` ``sampling.type``) is not a probability sample is
named as such (e.g. EU-MIDIS I: partly interviewer-generated samples). A breakdown's row of a survey whose target
population is not the general population (``target_population.definition``: EU-MIDIS's selected minorities, the
city surveys' migrants) says that its native group is the sample's (Roma born in Slovakia, a comparison sample), not
the population's natives, against whom its gaps would otherwise read. Stored in the build as ``survey_sampling``; an
older database without it gives the lineage flags only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from harmonise.compile.sqltext import sql_literal
from harmonise.spec.expr import ExprError, referenced_names

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from harmonise.reports.indicators import Definitions
    from harmonise.spec.project import Project

FLAGGED = ("approximate", "proxy")
SAMPLING_WORDS = {"mixed": "partly non-probability sample", "non_probability": "non-probability sample"}
GENERAL = "general_population"  # a survey of the whole population: its native group is the population's natives
WEIGHT_TARGET = {"weight": "weight", "weight_design": "weight_design", "none": None}


def store_sampling(con: duckdb.DuckDBPyConnection, project: Project) -> None:
    """Write ``survey_sampling`` (survey, acronym, sampling type, notes, whether unverified, the target population's
    definition) from the project's survey descriptors."""
    from pydantic import ValidationError

    from harmonise.spec.descriptor import load_descriptor

    rows = []
    for survey in sorted(project.crosswalks):
        path = project.root / "surveys" / survey / "survey.yaml"
        if not path.is_file():
            continue
        try:
            d = load_descriptor(path)
        except ValidationError:  # reported by the codebook and descriptor checks; no flag is better than a guess
            continue
        rows.append((survey, d.acronym, d.sampling.type, d.sampling.notes, d.sampling.unverified,
                     d.target_population.definition))
    con.execute("CREATE TABLE survey_sampling (survey VARCHAR, acronym VARCHAR, sampling_type VARCHAR, notes VARCHAR, "
                "unverified BOOLEAN, population VARCHAR)")
    if rows:
        con.executemany("INSERT INTO survey_sampling VALUES (?, ?, ?, ?, ?, ?)", rows)


def _names(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        return referenced_names(text)
    except ExprError:
        return []


def _read(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    import duckdb

    try:
        return con.execute(sql).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):  # a database built before the table existed
        return []


def _expand(targets: Iterable[str], lineage: Mapping[str, tuple[str, list[str], object]]) -> set[str]:
    """``targets`` and, through derivations, every target they are computed from."""
    seen: set[str] = set()
    todo = list(targets)
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        kind, sources, _ = lineage.get(t, ("", [], None))
        if kind == "derived":
            todo.extend(sources)
    return seen


def quality_column(con: duckdb.DuckDBPyConnection, defs: Definitions, rows: pd.DataFrame, weight: str) -> list[str]:
    """The ``quality`` text of every row (empty when nothing is flagged): what the targets its estimate reads were
    mapped with, in the files of its survey-wave — those holding its country's respondents when it has one (a
    country file's approximation is not its neighbours')."""
    # the lineage of the survey-waves the rows name only (a build estimates a wave at a time)
    named = sorted({s for source in rows["source"].unique() for s in str(source or "").split(", ") if s})
    within = ", ".join(sql_literal(s) for s in named) or "NULL"
    lineage: dict[tuple[str, str], dict[str, dict[str, tuple[str, list[str], str | None]]]] = {}
    for survey, wave, file, target, kind, sources, quality in _read(
            con, "SELECT survey, wave, file_name, target, kind, source_variables, quality FROM lineage "
                 f"WHERE survey || ' ' || wave IN ({within})"):
        srcs = [s for s in str(sources or "").split(",") if s]
        lineage.setdefault((str(survey), str(wave)), {}).setdefault(str(file), {})[str(target)] = \
            (str(kind), srcs, quality)  # type: ignore[assignment]
    by_country = "country" in rows.columns
    held: dict[tuple[str, str, str], set[str]] = {}
    if by_country:
        for survey, wave, file, country in _read(
                con, "SELECT DISTINCT survey, wave, source_file, country FROM respondents "
                     f"WHERE survey || ' ' || wave IN ({within})"):
            held.setdefault((str(survey), str(wave), str(country)), set()).add(str(file))
    sampling = {str(s): str(t) for s, t in _read(con, "SELECT survey, sampling_type FROM survey_sampling")}
    population = {str(s): str(p) for s, p in _read(con, "SELECT survey, population FROM survey_sampling")}
    merged: dict[tuple[str, str, str], dict[str, tuple[str, list[str], frozenset[str]]]] = {}

    def lineage_of(survey: str, wave: str, country: str) -> dict[str, tuple[str, list[str], frozenset[str]]]:
        """The targets' lineage in the files of the survey-wave holding the country (every file when none
        does): kind, source variables and the qualities any of those files maps it with."""
        key = (survey, wave, country)
        if key not in merged:
            files = lineage.get((survey, wave), {})
            mine = held.get(key)
            chosen = [lin for f, lin in files.items() if mine is None or f in mine] or list(files.values())
            out: dict[str, tuple[str, list[str], frozenset[str]]] = {}
            for lin in chosen:
                for t, (kind, srcs, quality) in lin.items():
                    k, s, qs = out.get(t, (kind, [], frozenset()))
                    out[t] = (k, list(dict.fromkeys([*s, *srcs])), qs | ({quality} if quality else set()))
            merged[key] = out
        return merged[key]

    read_by: dict[tuple[str, str], frozenset[str]] = {}

    def reads_of(indicator: str, breakdown: str) -> frozenset[str]:
        """The targets an estimate of ``indicator`` in ``breakdown`` reads."""
        if (indicator, breakdown) not in read_by:
            d = defs.indicators[indicator]
            reads = [*_names(d.population), *_names(d.outcome), "age"]
            if breakdown in defs.breakdowns:
                reads += _names(defs.breakdowns[breakdown].expr)
            if WEIGHT_TARGET.get(weight):
                reads.append(str(WEIGHT_TARGET[weight]))
            read_by[(indicator, breakdown)] = frozenset(reads)
        return read_by[(indicator, breakdown)]

    cache: dict[tuple[str, str, str, str], str] = {}

    def flags(indicator: str, breakdown: str, source: str, country: str) -> str:
        key = (indicator, breakdown, source, country)
        if key not in cache:
            survey, _, wave = source.partition(" ")
            lin = lineage_of(survey, wave, country)
            used = _expand(reads_of(indicator, breakdown), lin)
            parts = []
            for q in FLAGGED:
                hit = sorted(t for t in used if q in lin.get(t, ("", [], frozenset()))[2])
                if hit:
                    parts.append(f"{q}: {', '.join(hit)}")
            if sampling.get(survey) in SAMPLING_WORDS:
                parts.append(f"{SAMPLING_WORDS[sampling[survey]]} ({survey} survey descriptor)")
            if breakdown != "total" and population.get(survey, GENERAL) != GENERAL:
                parts.append(f"native group from a sample of {population[survey].replace('_', ' ')}, not of the "
                             f"population's natives ({survey} survey descriptor)")
            cache[key] = "; ".join(parts)
        return cache[key]

    out = []
    countries = rows["country"].tolist() if by_country else [None] * len(rows)
    for indicator, breakdown, source, country in zip(rows["indicator"].tolist(), rows["breakdown"].tolist(),
                                                     rows["source"].tolist(), countries):
        sources = [s for s in str(source or "").split(", ") if s]
        texts = [(s, flags(str(indicator), str(breakdown), s, str(country))) for s in sources]
        out.append(texts[0][1] if len(texts) == 1 else " | ".join(f"{s}: {t}" for s, t in texts if t))
    return out
