"""The three city-survey crosswalks (ICS 2012, LOCALMULTIDEM 2006, TIES 2007) on hand-made rows.

Each crosswalk is resolved and compiled against its declared codebook, and the SQL runs in
DuckDB on a tiny frame staged as the pipeline stages a file (one column per source
variable: DOUBLE for numeric, VARCHAR for strings, plus ``__row``). The assertions pin the
recodes that are easy to get wrong: city codes, country derivation, generations, the
education schemes, rescaled scales, weights and missing codes that collide with values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml

from harmonise.checks import rule_issues, static_issues
from harmonise.compile.sql import compile_wave
from harmonise.spec.project import Project, load_project
from harmonise.spec.resolve import resolve_wave

ROOT = Path(__file__).resolve().parents[1]
WAVES = {"ics": "2012", "localmultidem": "2006", "ties": "2007"}
CROSSWALKS = [ROOT / "mappings" / f"{s}.yaml" for s in WAVES]


@pytest.fixture(scope="module")
def project() -> Project:
    proj = load_project(ROOT, CROSSWALKS)
    assert proj.ok, [str(i) for i in proj.issues]
    return proj


@pytest.fixture(scope="module")
def cities() -> dict[str, dict[str, Any]]:
    rows = yaml.safe_load((ROOT / "mappings" / "cities.yaml").read_text(encoding="utf-8"))["rows"]
    return {r["code"]: r for r in rows}


class Wave:
    """A compiled wave and a runner for hand-made rows (one DuckDB query per call)."""

    def __init__(self, project: Project, survey: str) -> None:
        wave = WAVES[survey]
        cw = project.crosswalks[survey]
        meta = project.declared_meta(survey, wave)
        assert project.schema is not None
        plan = resolve_wave(cw, cw.wave(wave), project.schema, project.tables, meta.variables)
        found = rule_issues(cw, cw.wave(wave), project.schema, project.tables)
        assert not found, [str(i) for i in found]
        compiled = compile_wave(plan, meta, project.schema, project.tables)
        assert not compiled.errors, [e.message for e in compiled.errors]
        self.sql = compiled.sql
        self.meta = meta
        self.sources = list(compiled.sources)

    def run(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        names = list(dict.fromkeys([*self.sources, *(k for r in rows for k in r)]))
        unknown = [n for n in names if self.meta.get(n) is None]
        assert not unknown, f"not variables of the declared codebook: {unknown}"
        data: dict[str, Any] = {}
        for name in names:
            typ = self.meta.variables[name].type
            values = [r.get(name) for r in rows]
            data[name] = (pd.Series(values, dtype="float64") if typ == "numeric"
                          else pd.Series(values, dtype="object"))
        data["__row"] = pd.Series(range(1, len(rows) + 1), dtype="int64")
        con = duckdb.connect(":memory:")
        try:
            con.register("src", pd.DataFrame(data))
            return con.execute(self.sql).df()
        finally:
            con.close()


def _clean(v: Any) -> Any:
    if isinstance(v, str) or v is None:
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return v
    return v.item() if hasattr(v, "item") else v


class Batch:
    """Named hand-made rows of one survey, harmonised in a single query."""

    def __init__(self, wave: Wave, cases: dict[str, list[dict[str, Any]]]) -> None:
        flat = [(name, i, row) for name, rows in cases.items() for i, row in enumerate(rows)]
        out = wave.run([row for _, _, row in flat])
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
        for (name, _, _), rec in zip(flat, out.to_dict("records")):
            self.rows[name].append({k: _clean(v) for k, v in rec.items()})

    def col(self, case: str, target: str) -> list[Any]:
        return [r[target] for r in self.rows[case]]

    def one(self, case: str) -> dict[str, Any]:
        (row,) = self.rows[case]
        return row


# --- hand-made rows ---------------------------------------------------------------------------

ICS_CITIES = {"ANT": "BE002C", "BRU": "BE001C", "LIE": "BE005C", "LYO": "FR003C", "PAR": "FR001C",
              "BER": "DE001C", "STU": "DE007C", "BUD": "HU001C", "MIL": "IT002C", "NAP": "IT003C",
              "FAR": "PT_0805", "LIS": "PT001C", "SET": "PT_1512", "BAR": "ES002C", "MAD": "ES001C"}
ICS_COUNTRY = {"BE": 1, "FR": 2, "DE": 3, "HU": 4, "IT": 5, "PT": 6, "ES": 7}
LMD_CITIES = {"Bar": "ES002C", "Bud": "HU001C", "Gen": "CH002C", "LON": "UK001K", "Lyo": "FR003C",
              "Mad": "ES001C", "Mil": "IT002C", "Osl": "NO001C", "Sto": "SE001C", "Zur": "CH001C",
              "Tur": "IT004C"}
TIES_CITIES = {"VIE": "AT001C", "LIN": "AT003C", "ANT": "BE002C", "BRU": "BE001C", "PAR": "FR001C",
               "STR": "FR006C", "BER": "DE001C", "FRA": "DE005C", "AMS": "NL002C", "ROT": "NL003C",
               "MAD": "ES001C", "BAR": "ES002C", "STO": "SE001C", "ZUR": "CH001C", "BAS": "CH003C"}
TIES_COUNTRY = {"AT": 1, "BE": 2, "FR": 3, "DE": 4, "NL": 5, "ES": 6, "SE": 7, "CH": 8}
CITY_COUNTRY = {"BE": ["ANT", "BRU", "LIE"], "FR": ["LYO", "PAR"], "DE": ["BER", "STU"], "HU": ["BUD"],
                "IT": ["MIL", "NAP"], "PT": ["FAR", "LIS", "SET"], "ES": ["BAR", "MAD"]}
ICS_SRC_COUNTRY = {c: ICS_COUNTRY[iso] for iso, cs in CITY_COUNTRY.items() for c in cs}
TIES_SRC_COUNTRY = {"VIE": 1, "LIN": 1, "ANT": 2, "BRU": 2, "PAR": 3, "STR": 3, "BER": 4, "FRA": 4,
                    "AMS": 5, "ROT": 5, "MAD": 6, "BAR": 6, "STO": 7, "ZUR": 8, "BAS": 8}

ICS_CASES: dict[str, list[dict[str, Any]]] = {
    "cities": [{"city": c, "respid": 1, "country": ICS_SRC_COUNTRY[c]} for c in ICS_CITIES],
    "ids": [{"city": "BER", "respid": 7}, {"city": "PAR", "respid": 7}],
    "generation": [{"city": "MAD", "respid": 1, "s2": 1980, "s5": 1990, "s4": 218},
                   {"city": "MAD", "respid": 2, "s2": 1980, "s5": 2000, "s4": 901},
                   {"city": "MAD", "respid": 3, "s2": 1980, "s5": 9998, "s4": 990},
                   {"city": "MAD", "respid": 4, "s2": 1990, "s5": 1985, "s4": 504}],
    # an SPSS date (seconds since 1582), and a Stata edition's %tc (milliseconds since 1960) or %td (days)
    "year": [{"intdate": 13544755200.0 - 86400}, {"intdate": 13544755200.0 + 86400 * 40}, {},
             {"intdate": 1640995200000.0 - 1000}, {"intdate": 1640995200000.0 + 86400000 * 40},
             {"intdate": 18992.0}, {"intdate": 18993.0 + 40}],
    "education": [{"d5": c} for c in (1, 2, 3, 4, 5, 6, 7, 98)],
    "scales": [{"p6": 1, "p10": 4}, {"p6": 4, "p10": 1}, {"p6": 2, "p10": 98}],
    "weight": [{"weight": 1.75}],
    "labour": [{"e1": 2, "e5": 97}, {"e1": 3, "e5": 1}, {"e1": 3, "e5": 2}, {"e1": 4, "e5": 1},
               {"e1": 6, "e5": 97}, {"e1": 3, "e5": 98}, {"e1": 97, "e5": 1}],
    "missing": [{"s3": 999, "s2": 9999, "c1": 2, "c3": 991, "p7": 1, "p8": 1, "d8": 3}],
    "not_discriminated": [{"p7": 2, "p8": 97}],
}
LMD_CASES: dict[str, list[dict[str, Any]]] = {
    "cities": [{"city": c, "id": 1} for c in LMD_CITIES],
    "ids": [{"city": "Mil", "id": 7}, {"city": "Tur", "id": 7}],
    # In Zurich the host country is code 7 (Switzerland); 8 is the United Kingdom, 9 Algeria:
    # the 1-digit missing codes 7/8/9 of other items must not swallow them.
    "swiss_native": [{"city": "Zur", "id": 1, "q3": 1, "q7001": 7, "q7002": 97, "q801": 7, "q802": 97,
                      "q11": 7, "q12": 7, "qtype": 2, "group": 13}],
    "londoner": [{"city": "LON", "id": 2, "q3": 2, "q3a": 25, "q7001": 8, "q7002": 25, "q801": 25,
                  "q802": 97, "q11": 25, "q12": 9, "q2": 1960, "q4": 1970, "intyear": 2005, "qtype": 1,
                  "group": 18}],
    "second_generation": [{"city": "Sto", "id": 3, "q3": 1, "q3a": 97, "q7001": 6, "q7002": 34,
                           "q801": 34, "q802": 97, "q11": 34, "q12": 34, "qtype": 1, "group": 23}],
    # a second citizenship not known (98 don't know, 99 no answer) is not "no second citizenship" (97)
    "second_unknown": [{"city": "Zur", "id": 4, "q3": 2, "q3a": 25, "q7001": 25, "q7002": 98, "q801": 25, "q802": 97},
                       {"city": "Zur", "id": 5, "q3": 2, "q3a": 25, "q7001": 7, "q7002": 99, "q801": 25, "q802": 97},
                       {"city": "Zur", "id": 6, "q3": 2, "q3a": 25, "q7001": 25, "q7002": 97, "q801": 25, "q802": 98}],
    "groups": [{"city": "Zur", "id": 1, "qtype": 1, "group": 8}, {"city": "Mil", "id": 2, "qtype": 2, "group": 8},
               {"city": "Bud", "id": 3, "qtype": 1, "group": 22}, {"city": "Gen", "id": 4, "qtype": 1, "group": 14}],
    "education": [{"q54": c} for c in (2, 3, 4, 5, 7, 8, 9, 99)],
    "scales": [{"q40": 1, "q35": 7}, {"q40": 4, "q35": 88}, {"q40": 9, "q35": 0}],
    "weight": [{"city": "Osl", "id": 1}],
    "labour": [{"q55": 1, "q57": 3}, {"q55": 3, "q57": 7}, {"q55": 4, "q57": 9}, {"q55": 4, "q57": 2},
               {"q55": 1, "q57": 9}],
    "discrimination": [{"q15": 1, "q1601": 0, "q1603": 1}, {"q15": 2, "q1601": 7, "q1603": 7},
                       {"q15": 9, "q1601": 7, "q1603": 7}],
}
TIES_CASES: dict[str, list[dict[str, Any]]] = {
    "cities": [{"city": c, "resp_id": 1, "country": TIES_SRC_COUNTRY[c]} for c in TIES_CITIES],
    "ids": [{"city": "AMS", "resp_id": 1001}],
    "generations": [
        {"city": "AMS", "country": 5, "resp_id": 1, "group": 1, "birth_c": 1, "f_birth_c": 2, "m_birth_c": 2},
        {"city": "AMS", "country": 5, "resp_id": 2, "group": 4, "birth_c": 1, "f_birth_c": 1, "m_birth_c": 1},
        {"city": "AMS", "country": 5, "resp_id": 3, "group": 3, "birth_c": 1, "f_birth_c": 6, "m_birth_c": 1},
        {"city": "AMS", "country": 5, "resp_id": 4, "group": 2, "birth_c": 1, "f_birth_c": 3, "m_birth_c": -8},
    ],
    "relative_codes": [{"city": "VIE", "country": 1, "birth_c": 1, "f_birth_c": 1, "m_birth_c": 11},
                       {"city": "STO", "country": 7, "birth_c": 2, "f_birth_c": 2, "m_birth_c": 12}],
    "naturalised": [{"cit_host": 1, "cit_how": 1}, {"cit_host": 1, "cit_how": 2}, {"cit_host": 1, "cit_how": 3},
                    {"cit_host": 2, "cit_how": -7}, {"cit_host": 1, "cit_how": -9}],
    "education": [{"edu_isced": c} for c in (1, 2, 3, 4, 5, 6, 7, 8, -8)],
    "scales": [{"trust_parl": 1, "id_host": 5}, {"trust_parl": 3, "id_host": 2}, {"trust_parl": 5, "id_host": -9}],
    "weight": [{"weight": 3.5}],
    "labour": [{"act_main": 2, "emp_contract": 3}, {"act_main": 3, "emp_contract": -7},
               {"act_main": 1, "emp_contract": 3}],
    "missing": [{"sex": 1, "age": -9, "yob": -8, "cit_other": 5, "disc_origin": 2}],
    "discrimination": [{"disc_origin": 3, "disc_relig": 1, "disc_work": 1, "disc_school": -7},
                       {"disc_origin": 1, "disc_relig": 2, "disc_work": 1, "disc_school": 1},
                       {"disc_origin": 1, "disc_relig": 1, "disc_work": -7, "disc_school": -7},
                       {"disc_origin": -8, "disc_relig": 1, "disc_work": 1, "disc_school": 1}],
    "home_language": [{"city": "ANT", "lang_home": 1}, {"city": "BAS", "lang_home": 1}, {"city": "STR", "lang_home": 8},
                      {"city": "MAD", "lang_home": 6}],
}


@pytest.fixture(scope="module")
def ics(project: Project) -> Batch:
    return Batch(Wave(project, "ics"), ICS_CASES)


@pytest.fixture(scope="module")
def lmd(project: Project) -> Batch:
    return Batch(Wave(project, "localmultidem"), LMD_CASES)


@pytest.fixture(scope="module")
def ties(project: Project) -> Batch:
    return Batch(Wave(project, "ties"), TIES_CASES)


# --- static validity ----------------------------------------------------------------------------


def test_the_three_crosswalks_validate_cleanly(project: Project) -> None:
    errors = [str(i) for i in static_issues(project) if i.severity == "error"]
    assert errors == []


# --- cities and countries -----------------------------------------------------------------------


def _sampled(row: dict[str, Any], survey: str) -> bool:
    return any(e["survey"] == survey and e["wave"] == WAVES[survey] for e in row["sampled_by"])


@pytest.mark.parametrize(("survey", "expected"), [("ics", ICS_CITIES), ("localmultidem", LMD_CITIES),
                                                  ("ties", TIES_CITIES)])
def test_every_sampled_city_gets_its_code_and_country(survey: str, expected: dict[str, str], request: pytest.FixtureRequest,
                                                      cities: dict[str, dict[str, Any]]) -> None:
    batch: Batch = request.getfixturevalue({"ics": "ics", "localmultidem": "lmd", "ties": "ties"}[survey])
    rows = batch.rows["cities"]
    assert [r["city"] for r in rows] == list(expected.values())
    assert all(r["city_missing"] is None for r in rows)
    for r in rows:
        city = cities[r["city"]]
        assert _sampled(city, survey)
        assert r["country"] == city["country"]
        assert r["urbanisation"] == "city"
        assert r["region_nuts"] == (city["nuts3"] if r["city"] != "UK001K" else "UKI")
    # ... and no city in cities.yaml sampled by this wave is left out
    assert {c for c, row in cities.items() if _sampled(row, survey)} == set(expected.values())


def test_localmultidem_country_comes_from_the_city(lmd: Batch) -> None:
    got = dict(zip(LMD_CITIES, lmd.col("cities", "country")))
    assert got == {"Bar": "ES", "Bud": "HU", "Gen": "CH", "LON": "GB", "Lyo": "FR", "Mad": "ES", "Mil": "IT",
                   "Osl": "NO", "Sto": "SE", "Zur": "CH", "Tur": "IT"}


def test_respondent_ids_are_prefixed_with_the_city(ics: Batch, lmd: Batch, ties: Batch) -> None:
    assert ics.col("ids", "respondent_id") == ["BER-7", "PAR-7"]
    assert lmd.col("ids", "respondent_id") == ["Mil-7", "Tur-7"]
    assert ties.col("ids", "respondent_id") == ["AMS-1001"]


def test_sample_groups(ics: Batch, lmd: Batch, ties: Batch) -> None:
    assert set(ics.col("cities", "sample_group")) == {"non_eu_born_residents"}
    assert lmd.col("groups", "sample_group") == ["origin:it", "native_comparison", "origin:ethnic_hungarian", "origin:xk"]
    assert ties.col("generations", "sample_group") == ["origin:tr", "native_comparison", "origin:yu", "origin:ma"]


# --- generations, birthplaces, citizenship ------------------------------------------------------


def test_ties_second_generation_and_comparison_group(ties: Batch) -> None:
    gen = ties.rows["generations"]
    assert [r["migrant_generation"] for r in gen[:3]] == ["second_generation", "native_background", "generation_2_5"]
    assert gen[3]["migrant_generation"] is None and gen[3]["migrant_generation_missing"] == "dont_know"
    assert ties.col("generations", "country_of_birth") == ["NL"] * 4
    assert ties.col("generations", "father_country_of_birth") == ["TR", "NL", "RS", "MA"]
    assert ties.col("generations", "mother_country_of_birth")[:3] == ["TR", "NL", "NL"]
    assert gen[3]["mother_country_of_birth_missing"] == "dont_know"
    assert ties.col("generations", "origin_group") == ["native"] * 4


def test_ties_survey_country_code_resolves_per_country(ties: Batch) -> None:
    assert ties.col("relative_codes", "country_of_birth") == ["AT", "TR"]
    assert ties.col("relative_codes", "father_country_of_birth") == ["AT", "TR"]
    assert ties.col("relative_codes", "born_in_country") == [True, False]
    assert ties.col("relative_codes", "mother_country_of_birth") == ["YUCS", "ZZ"]


def test_ties_naturalised(ties: Batch) -> None:
    assert ties.col("naturalised", "naturalised")[:4] == [False, True, True, False]
    assert ties.rows["naturalised"][4]["naturalised_missing"] == "no_answer"


def test_localmultidem_country_codes_7_8_9_are_countries_not_missing(lmd: Batch) -> None:
    swiss = lmd.one("swiss_native")
    assert swiss["citizen"] is True and swiss["naturalised"] is False
    assert swiss["citizenship_missing"] == "not_applicable"
    assert swiss["father_born_in_country"] is True and swiss["mother_born_in_country"] is True
    assert swiss["migrant_generation"] == "native_background"
    assert swiss["sample_group"] == "native_comparison"
    londoner = lmd.one("londoner")
    assert londoner["citizen"] is True and londoner["naturalised"] is True
    assert londoner["citizenship"] == "IN" and londoner["country_of_birth"] == "IN"
    assert londoner["father_country_of_birth"] == "DZ" and londoner["father_born_in_country"] is False
    assert londoner["migrant_generation"] == "generation_1_5"
    assert (londoner["year"], londoner["age"], londoner["years_since_arrival"]) == (2005, 45, 35)
    assert londoner["sample_group"] == "origin:in"


def test_localmultidem_second_generation(lmd: Batch) -> None:
    row = lmd.one("second_generation")
    assert row["migrant_generation"] == "second_generation"
    assert row["country_of_birth"] is None and row["country_of_birth_missing"] == "not_applicable"
    assert row["citizen"] is True and row["naturalised"] is True and row["citizenship"] == "IQ"
    assert row["origin_group"] == "native" and row["citizenship_group"] == "national"


def test_localmultidem_an_unknown_second_citizenship_leaves_citizenship_unknown(lmd: Batch) -> None:
    """q7002 98/99 was read as "no other citizenship": a non-host first citizen stored as not a citizen, a host
    national's other citizenship as not applicable (the semantic audit, decision 67)."""
    dont_know, no_answer, single = lmd.rows["second_unknown"]
    assert (dont_know["citizen"], dont_know["citizen_missing"]) == (None, "dont_know")
    assert dont_know["citizenship"] == "IN"  # the first citizenship is not the host's: it is the one named
    assert (no_answer["citizen"], no_answer["naturalised"]) == (True, True)  # the first is the host's
    assert (no_answer["citizenship"], no_answer["citizenship_missing"]) == (None, "no_answer")
    assert (single["citizen"], single["citizen_missing"]) == (False, None)  # 97: a single national, not the host's
    assert single["naturalised"] is False


def test_ics_generation_from_age_at_arrival(ics: Batch) -> None:
    rows = ics.rows["generation"]
    assert [r["migrant_generation"] for r in rows[:2]] == ["generation_1_5", "first_generation"]
    assert rows[2]["migrant_generation_missing"] == "dont_know"
    assert rows[3]["migrant_generation_missing"] == "invalid"
    assert ics.col("generation", "born_in_country") == [False] * 4
    assert ics.col("generation", "country_of_birth") == ["EC", "XK", "ZZ", "MA"]
    assert ics.col("generation", "origin_group") == ["non_eu_born", "non_eu_born", None, "non_eu_born"]
    assert rows[2]["origin_group_missing"] == "not_available"


def test_ics_year_from_interview_date(ics: Batch) -> None:
    assert ics.col("year", "year") == [2011, 2012, 2011, 2011, 2012, 2011, 2012]


# --- education -----------------------------------------------------------------------------------


def test_ics_education_scheme(ics: Batch) -> None:
    assert ics.col("education", "education_isced")[:7] == [0, 1, 2, 3, 4, 6, 7]
    assert ics.col("education", "education_level")[:7] == ["low", "low", "low", "medium", "medium", "high", "high"]
    last = ics.rows["education"][7]
    assert last["education_isced_missing"] == "dont_know" and last["education_level_missing"] == "dont_know"


def test_localmultidem_education_scheme_keeps_codes_7_8_9(lmd: Batch) -> None:
    assert lmd.col("education", "education_isced")[:7] == [0, 1, 2, 3, 4, 6, 7]
    assert lmd.col("education", "education_level")[:7] == ["low", "low", "low", "medium", "medium", "high", "high"]
    assert lmd.rows["education"][7]["education_isced_missing"] == "no_answer"


def test_ties_education_from_isced_1997(ties: Batch) -> None:
    assert ties.col("education", "education_isced")[:8] == [1, 2, 3, 3, 4, 5, 6, 8]
    assert ties.col("education", "education_level")[:8] == ["low", "low", "medium", "medium", "medium", "high",
                                                            "high", "high"]
    assert ties.rows["education"][8]["education_isced_missing"] == "dont_know"


# --- scales, weights, labour, missing codes -------------------------------------------------------


def test_rescaled_scales_run_the_right_way(ics: Batch, lmd: Batch, ties: Batch) -> None:
    trust = ics.col("scales", "trust_parliament")
    assert trust[:2] == [10.0, 0.0] and trust[2] == pytest.approx(20 / 3)
    assert ics.col("scales", "belonging_country")[:2] == [0.0, 10.0]
    assert ics.rows["scales"][2]["belonging_country_missing"] == "dont_know"
    assert ties.col("scales", "trust_parliament") == [10.0, 5.0, 0.0]
    assert ties.col("scales", "belonging_country")[:2] == [0.0, 7.5]
    assert ties.rows["scales"][2]["belonging_country_missing"] == "no_answer"
    assert lmd.col("scales", "belonging_country")[:2] == [10.0, 0.0]
    assert lmd.rows["scales"][2]["belonging_country_missing"] == "no_answer"
    assert lmd.col("scales", "trust_parliament") == [7.0, None, 0.0]
    assert lmd.rows["scales"][1]["trust_parliament_missing"] == "dont_know"


def test_weights(ics: Batch, lmd: Batch, ties: Batch) -> None:
    assert ics.one("weight")["weight"] == 1.75
    assert lmd.one("weight")["weight"] == 1.0
    assert ties.one("weight")["weight"] == 1.0  # the modelled TIES weight is not used: unweighted
    for batch in (ics, lmd, ties):
        row = batch.one("weight")
        assert row["weight_design_missing"] == row["psu_missing"] == row["stratum_missing"] == "not_asked"


def test_labour_status_approximations(ics: Batch, lmd: Batch, ties: Batch) -> None:
    rows = ics.rows["labour"]
    assert [r["labour_status"] for r in rows[:5]] == ["employed", "unemployed", "inactive", "unemployed", "inactive"]
    # self-declared unemployed whose search answer is missing: known not employed, counted as unemployed
    assert rows[5]["labour_status"] == "unemployed" and rows[5]["main_activity_missing"] == "dont_know"
    assert rows[6]["labour_status_missing"] == "not_applicable"  # main activity unknown: not guessed from e5
    assert [r["main_activity"] for r in rows[:3]] == ["paid_work", "unemployed_looking", "unemployed_not_looking"]
    assert rows[0]["self_employed"] is True and rows[1]["self_employed_missing"] == "not_applicable"
    assert lmd.col("labour", "labour_status") == ["employed", "inactive", "inactive", "inactive", "employed"]
    assert lmd.col("labour", "in_education") == [False, False, True, True, False]
    # the job of a student (q55 4) is not the current main job labour_status reads: not applicable, as elsewhere
    assert lmd.col("labour", "self_employed") == [True, None, None, None, None]
    assert [r["self_employed_missing"] for r in lmd.rows["labour"][1:]] == ["not_applicable", "not_applicable",
                                                                             "not_applicable", "no_answer"]
    assert ties.col("labour", "labour_status") == ["employed", "unemployed", "employed"]
    # employees only: the self-employed (act_main 2) have no contract to count
    assert ties.col("labour", "temporary_contract") == [None, None, True]
    assert [r["temporary_contract_missing"] for r in ties.rows["labour"][:2]] == ["not_applicable", "not_applicable"]


def test_discrimination(ics: Batch, lmd: Batch, ties: Batch) -> None:
    row = ics.one("missing")  # ICS's item covers 5 years: not the 12-month target (as in TIES)
    assert row["discrimination_ethnic"] is True and row["discrimination_experienced_12m_missing"] == "not_asked"
    assert ics.one("not_discriminated")["discrimination_ethnic_missing"] == "not_applicable"
    assert lmd.col("discrimination", "discrimination_ethnic") == [True, None, None]
    assert [r["discrimination_ethnic_missing"] for r in lmd.rows["discrimination"]] == [None, "not_applicable",
                                                                                         "no_answer"]
    assert lmd.col("discrimination", "discrimination_experienced_12m") == [True, False, None]
    # TIES: on grounds of origin among those treated unfairly on any ground asked (ICS's and LOCALMULTIDEM's
    # population), not among everyone
    assert ties.col("discrimination", "discrimination_ethnic") == [True, False, None, None]
    assert [r["discrimination_ethnic_missing"] for r in ties.rows["discrimination"][2:]] == ["not_applicable",
                                                                                             "dont_know"]


def test_missing_code_conventions(ics: Batch, ties: Batch) -> None:
    row = ics.one("missing")
    assert row["age_missing"] == "not_available"  # 999 'not computable', not a refusal
    assert row["birth_year_missing"] == "refused"
    assert row["citizenship"] == "XX" and row["citizenship_group"] == "stateless"
    assert row["income_difficulty"] == "difficult"
    row = ties.one("missing")
    assert row["age_missing"] == "no_answer" and row["birth_year_missing"] == "dont_know"
    assert row["citizenship_missing"] == "not_applicable"
    assert row["discrimination_ethnic"] is True
    assert row["discrimination_experienced_12m_missing"] == "not_asked"


def test_ties_home_language_resolves_the_survey_country_language(ties: Batch) -> None:
    assert ties.col("home_language", "home_language") == ["DUT", "GER", "MUL", "SLA"]
