"""Table-driven tests of the schema's derived variables, run through the real expression compiler in DuckDB.

Each derivation in mappings/schema.yaml is compiled exactly as a build compiles it and evaluated
on a synthetic relation holding every combination of its inputs, including missing ones.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pytest

from harmonise.compile.expr import Context, NameSQL, compile_expr
from harmonise.compile.sqltext import quote_ident
from harmonise.spec.project import load_project

ROOT = Path(__file__).resolve().parents[1]
MISSING = None  # an input with no value; its reason column says 'refused' so propagation is visible


@pytest.fixture(scope="module")
def derive():
    """compile(target, {input: [values]}) → rows of (inputs..., value, reason) for every combination."""
    project = load_project(ROOT)
    schema = project.schema
    assert schema is not None
    eu, non_eu = project.tables.eu_groups()
    types = {v.name: v.type for v in schema.variables}

    def run(target: str, inputs: dict[str, list[object]]) -> dict[tuple[object, ...], tuple[object, object]]:
        expr = schema.variable(target).derive.expr  # type: ignore[union-attr]
        sql_type = {"boolean": "boolean", "category": "string", "country": "string"}

        def resolve(name: str) -> NameSQL:
            if name not in inputs:
                raise KeyError(name)
            return NameSQL(quote_ident(name), quote_ident(name + "_missing"), sql_type.get(types[name], "number"))  # type: ignore[arg-type]

        ctx = Context(resolve=resolve, reasons=schema.reasons, params=schema.params, tables=project.tables.lookups(),
                      eu_codes=eu, non_eu_codes=non_eu)
        c = compile_expr(expr, ctx)
        names = list(inputs)
        combos = list(itertools.product(*inputs.values()))
        con = duckdb.connect()
        duck = {"boolean": "BOOLEAN", "category": "VARCHAR", "country": "VARCHAR"}
        cols = ", ".join(f"{quote_ident(n)} {duck.get(types[n], 'DOUBLE')}, {quote_ident(n + '_missing')} VARCHAR"
                         for n in names)
        con.execute(f"CREATE TABLE t (k INTEGER, {cols})")
        for k, combo in enumerate(combos):
            row = [k]
            for v in combo:
                row += [v, "refused" if v is MISSING else None]
            con.execute(f"INSERT INTO t VALUES ({', '.join('?' * len(row))})", row)
        got = con.execute(f"SELECT k, {c.value}, CASE WHEN ({c.value}) IS NULL THEN {c.reason} END FROM t "
                          "ORDER BY k").fetchall()
        return {combos[k]: (v, r) for k, v, r in got}

    return run


T, F, M = True, False, MISSING

def expected_generation(b: object, f: object, m: object, age: object) -> str | None:
    """The UNECE/Eurostat rules written out by hand; None = unknown (an input needed to decide is missing)."""
    if b is M:
        return None
    if b is T:
        if M in (f, m):
            return None
        return {(T, T): "native_background", (F, F): "second_generation"}.get((f, m), "generation_2_5")  # type: ignore[arg-type]
    if f is T and m is T:
        return "foreign_born_native_parents"
    if F not in (f, m):  # one parent native, the other unknown: could be either
        return None
    if age is M:  # a foreign-born parent is established; the arrival age decides 1.5 vs first
        return None
    return "generation_1_5" if age < 15 else "first_generation"  # type: ignore[operator]


def test_migrant_generation_every_combination(derive) -> None:
    opts = [T, F, M]
    out = derive("migrant_generation", {"born_in_country": opts, "father_born_in_country": opts,
                                        "mother_born_in_country": opts, "age_at_arrival": [3.0, 14.0, 15.0, 40.0, M]})
    assert len(out) == 3 * 3 * 3 * 5
    wrong = {k: v for k, v in out.items() if v[0] != expected_generation(*k)}
    assert wrong == {}
    # unknown is never guessed and carries the missing input's reason
    for k, (value, reason) in out.items():
        assert (value is None) == (reason is not None), k
        if value is None:
            assert reason == "refused", k


def test_migrant_generation_threshold_is_the_schema_parameter(derive) -> None:
    out = derive("migrant_generation", {"born_in_country": [F], "father_born_in_country": [F],
                                        "mother_born_in_country": [T], "age_at_arrival": [14.0, 14.9, 15.0]})
    assert [v for v, _ in out.values()] == ["generation_1_5", "generation_1_5", "first_generation"]


def test_origin_group(derive) -> None:
    out = derive("origin_group", {"born_in_country": [T, F, M], "country_of_birth": ["DE", "MA", "YUCS", "DDDE", M]})
    assert out[(T, "MA")] == ("native", None)
    assert out[(T, M)] == ("native", None)  # country of birth is not needed for the native-born
    assert out[(F, "DE")] == ("eu_born", None)
    assert out[(F, "MA")] == ("non_eu_born", None)
    assert out[(F, "YUCS")] == ("non_eu_born", None)  # former Yugoslavia groups as non-EU (countries.yaml)
    assert out[(F, "DDDE")] == ("eu_born", None)  # the former GDR is part of Germany today
    assert out[(F, M)] == (None, "refused")
    assert out[(M, "DE")] == (None, "refused")


def test_citizenship_group(derive) -> None:
    out = derive("citizenship_group", {"citizen": [T, F, M], "citizenship": ["IT", "TR", "XX", M]})
    assert out[(T, "TR")] == ("national", None)
    assert out[(F, "IT")] == ("eu_citizen", None)
    assert out[(F, "TR")] == ("non_eu_citizen", None)
    assert out[(F, "XX")] == ("stateless", None)
    assert out[(F, M)] == (None, "refused")
    assert out[(M, "IT")] == (None, "refused")


def test_years_since_and_age_at_arrival(derive) -> None:
    since = derive("years_since_arrival", {"year": [2016.0], "year_of_arrival": [1990.0, 2016.0, 2017.0, M]})
    assert since[(2016.0, 1990.0)] == (26, None)
    assert since[(2016.0, 2016.0)] == (0, None)
    assert since[(2016.0, 2017.0)] == (None, "invalid")  # arrival after the interview
    assert since[(2016.0, M)] == (None, "refused")
    age = derive("age_at_arrival", {"birth_year": [1980.0, M], "year_of_arrival": [1979.0, 1980.0, 1995.0, M]})
    assert age[(1980.0, 1995.0)] == (15, None)
    assert age[(1980.0, 1980.0)] == (0, None)
    assert age[(1980.0, 1979.0)] == (None, "invalid")  # arrival before birth
    assert age[(M, 1995.0)] == (None, "refused")


def test_part_time_only_for_the_employed(derive) -> None:
    out = derive("part_time", {"labour_status": ["employed", "unemployed", "inactive", M],
                               "hours_worked": [10.0, 29.5, 30.0, 45.0, M]})
    assert out[("employed", 10.0)] == (True, None)
    assert out[("employed", 29.5)] == (True, None)
    assert out[("employed", 30.0)] == (False, None)
    assert out[("employed", 45.0)] == (False, None)
    assert out[("employed", M)] == (None, "refused")
    assert out[("unemployed", 10.0)] == (None, "not_applicable")
    assert out[("inactive", M)] == (None, "not_applicable")
    assert out[(M, 10.0)] == (None, "refused")


def test_education_level_collapses_isced_2011(derive) -> None:
    out = derive("education_level", {"education_isced": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, M]})
    assert {k[0]: v[0] for k, v in out.items()} == {
        0.0: "low", 1.0: "low", 2.0: "low", 3.0: "medium", 4.0: "medium",
        5.0: "high", 6.0: "high", 7.0: "high", 8.0: "high", None: None}
    assert out[(M,)] == (None, "refused")
