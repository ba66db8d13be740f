"""ESS rounds 1-11: every round resolves the renamed variables, and file patterns never cross rounds."""

from __future__ import annotations

import fnmatch

import pytest

from harmonise.checks import rule_issues
from harmonise.spec.descriptor import load_descriptor
from harmonise.spec.project import load_project
from harmonise.spec.resolve import TargetPlan, WavePlan, resolve_wave
from tests.conftest import ROOT, waves_of

ROUNDS = waves_of("ess")


@pytest.fixture(scope="module")
def plans() -> dict[str, WavePlan]:
    proj = load_project(ROOT, [ROOT / "mappings" / "ess.yaml"])
    assert proj.ok, [str(i) for i in proj.issues]
    cw = proj.crosswalks["ess"]
    out = {}
    for wave in cw.waves:
        meta = proj.declared_meta("ess", wave.wave)
        plan = resolve_wave(cw, wave, proj.schema, proj.tables, meta.variables)
        assert rule_issues(cw, wave, proj.schema, proj.tables) == [], wave.wave
        out[wave.wave] = plan
    return out


def rule(plan: WavePlan, target: str) -> tuple[str, str | None, str | None]:
    tp: TargetPlan = plan.targets[target]
    return tp.kind, tp.source or tp.expr, tp.table


def test_waves_years_and_codebooks(plans: dict[str, WavePlan]) -> None:
    assert list(plans) == [str(r) for r in range(1, 12)]
    assert {w: p.wave.year for w, p in plans.items()} == {
        "1": 2002, "2": 2004, "3": 2006, "4": 2008, "5": 2010, "6": 2012, "7": 2014, "8": 2016, "9": 2018,
        "10": 2020, "11": 2023}
    assert all(p.wave.codebook == f"codebook_{w}.yaml" for w, p in plans.items())


SOURCES = {
    # round: (country_of_birth, citizenship, father_country_of_birth, mother_country_of_birth)
    "1": ("cntbrth", "ctzship", None, None),
    "2": ("cntbrtha", "ctzshipa", "fbrncnt", "mbrncnt"),
    "3": ("cntbrtha", "ctzshipa", "fbrncnt", "mbrncnt"),
    "4": ("cntbrthb", "ctzshipb", "fbrncnta", "mbrncnta"),
    "5": ("cntbrthb", "ctzshipb", "fbrncnta", "mbrncnta"),
    "6": ("cntbrthc", "ctzshipc", "fbrncntb", "mbrncntb"),  # edition 2.4 (ESS6IE.sav) already uses the round-7 names
    "7": ("cntbrthc", "ctzshipc", "fbrncntb", "mbrncntb"),
    "8": ("cntbrthc", "ctzshipc", "fbrncntb", "mbrncntb"),
    "9": ("cntbrthd", "ctzshipd", "fbrncntc", "mbrncntc"),
    "10": ("cntbrthd", None, "fbrncntc", "mbrncntc"),
    "11": ("cntbrthd", None, "fbrncntc", "mbrncntc"),
}


@pytest.mark.parametrize("wave", ROUNDS)
def test_country_variables_by_round(plans: dict[str, WavePlan], wave: str) -> None:
    plan = plans[wave]
    targets = ("country_of_birth", "citizenship", "father_country_of_birth", "mother_country_of_birth")
    got = tuple(plan.targets[t].source if plan.targets[t].kind == "table" else None for t in targets)
    assert got == SOURCES[wave]
    for t, src in zip(targets, SOURCES[wave]):
        tp = plan.targets[t]
        if src is None:
            assert tp.kind == "not_asked" and tp.not_asked
        else:
            assert (tp.table, tp.quality) == ("ess_country_codes", "exact")


def test_country_legacy_codes(plans: dict[str, WavePlan]) -> None:
    r1 = plans["1"].targets["country_of_birth"]
    assert {c: r1.values[c] for c in ("CS", "SU", "YU", "TP", "AN")} == {
        "CS": "CSHH", "SU": "SUHH", "YU": "YUCS", "TP": "TPTL", "AN": "ANHH"}
    assert plans["3"].targets["country_of_birth"].values["03"] == "CSHH"
    r9 = plans["9"].targets["citizenship"]
    assert (r9.values["6500"], r9.values["1000"]) == ("XX", "DDDE")
    assert r9.missing.reasons["6666"] == "not_applicable" and r9.missing.reasons["9999"] == "no_answer"


def test_round_3_country_of_birth(plans: dict[str, WavePlan]) -> None:
    assert rule(plans["3"], "country_of_birth") == ("table", "cntbrtha", "ess_country_codes")


@pytest.mark.parametrize("wave", ROUNDS)
def test_weights_and_design(plans: dict[str, WavePlan], wave: str) -> None:
    t = plans[wave].targets
    if int(wave) >= 9:
        assert (t["weight"].kind, t["weight"].source, t["weight"].range) == ("range", "anweight", (0, 1e9))
        assert (t["psu"].kind, t["psu"].expr) == ("expr", "concat(cntry, '-', str(psu))")
        assert (t["stratum"].kind, t["stratum"].expr) == ("expr", "concat(cntry, '-', str(stratum))")
    else:
        assert (t["weight"].kind, t["weight"].expr) == ("expr", "pspwght * pweight")
        assert t["psu"].kind == "not_asked" and t["stratum"].kind == "not_asked"
    assert (t["weight_design"].kind, t["weight_design"].source) == ("range", "dweight")


def test_round_9_weight_and_round_5_weight(plans: dict[str, WavePlan]) -> None:
    assert rule(plans["9"], "weight") == ("range", "anweight", None)
    assert rule(plans["5"], "weight") == ("expr", "pspwght * pweight", None)


@pytest.mark.parametrize("wave", ROUNDS)
def test_education_by_round(plans: dict[str, WavePlan], wave: str) -> None:
    t = plans[wave].targets
    if int(wave) <= 4:
        assert t["education_isced"].kind == "not_asked"
        assert rule(plans[wave], "education_level") == ("table", "edulvla", "ess_edulvla")
        assert t["education_level"].quality == "recoded"
        assert t["education_level"].values == {1: "low", 2: "low", 3: "medium", 4: "medium", 5: "high"}
        assert t["education_level"].explicit_missing[55] == "not_available"
    else:
        assert rule(plans[wave], "education_isced") == ("table", "edulvlb", "ess_edulvlb")
        assert t["education_level"].kind == "derived"


def test_round_2_education(plans: dict[str, WavePlan]) -> None:
    t = plans["2"].targets
    assert rule(plans["2"], "education_level") == ("table", "edulvla", "ess_edulvla")
    assert t["education_isced"].kind == "not_asked"
    assert "edulvla" in t["education_isced"].not_asked
    # edulvla's codes: five groups, 0 (not possible to harmonise into 5-level ISCED) and 55 (other) not available
    tp = t["education_level"]
    assert {c: tp.values[c] for c in range(1, 6)} == {1: "low", 2: "low", 3: "medium", 4: "medium", 5: "high"}
    assert (tp.explicit_missing[0], tp.explicit_missing[55]) == ("not_available", "not_available")


@pytest.mark.parametrize("wave", ROUNDS)
def test_region_by_round(plans: dict[str, WavePlan], wave: str) -> None:
    t = plans[wave].targets
    r = int(wave)
    if r <= 4:  # planned against the declared codebooks (the integrated files): no regional edition's nuts1-nuts3
        assert t["region_nuts"].kind == "not_asked" and "regionXX" in t["region_nuts"].not_asked
        assert t["city"].kind == "not_asked"
        # a file holding them (the ESS4 extract) is read by the rule: test_pipeline_real_files.py
        rule = t["region_nuts"]
        assert rule.alternative == 1
    else:
        var = "ess8_reg" if r == 8 else "region"
        # a regional unit outside the NUTS nomenclature (regunit 4: Ukraine, Israel, Russia) is no NUTS code
        assert (t["region_nuts"].kind, t["region_nuts"].expr) == (
            "expr", f"{var} if regunit in (1, 2, 3) else missing('not_available')")
        assert t["region_nuts"].explicit_missing == {"99999": "not_available"}
        assert t["city"].expr == f"coalesce(lookup('city_region_proxy', {var}), missing('not_applicable'))"
        assert t["city"].quality == "proxy"


@pytest.mark.parametrize("wave", ROUNDS)
def test_other_renames_and_gaps(plans: dict[str, WavePlan], wave: str) -> None:
    t = plans[wave].targets
    r = int(wave)
    # year of arrival: banded livecntr in rounds 1-4, livecnta (year) from round 5
    if r <= 4:
        assert t["year_of_arrival"].kind == "not_asked" and "livecntr" in t["year_of_arrival"].not_asked
    else:
        assert (t["year_of_arrival"].kind, t["year_of_arrival"].source) == ("range", "livecnta")
        assert t["year_of_arrival"].range[1] >= plans[wave].wave.year
    assert t["years_since_arrival"].kind == "derived"
    # ethnic minority: blgetmg rounds 1-9; feethngr (a different question) rounds 10-11
    if r <= 9:
        assert (t["ethnic_minority"].kind, t["ethnic_minority"].source) == ("map", "blgetmg")
    else:
        assert t["ethnic_minority"].kind == "not_asked" and "feethngr" in t["ethnic_minority"].not_asked
    # language at home: round 10's declared codebook (the Ukrainian team's release) marks the languages instead
    if r == 10:
        assert t["home_language"].kind == "expr" and "lnghomua" in (t["home_language"].expr or "")
    else:
        assert t["home_language"].source == ("lnghoma" if r <= 4 else "lnghom1")
        assert t["home_language"].table == "ess_language_codes"
    # contract: wrkctr in round 1 only (no 'no contract' code); employees only: a family business's worker (emplrel 3),
    # whom ESS asks too, is not applicable; an answer without the employment relation is kept
    contract = "wrkctr" if r == 1 else "wrkctra"
    assert (t["temporary_contract"].kind, t["temporary_contract"].expr) == (
        "expr", (f"missing('not_applicable') if pdwrk == 0 or coalesce(emplrel, 0) == 3 else ({contract} == 2 if "
                f"{contract} in ({'1, 2' if r == 1 else '1, 2, 3'}) else missing('not_available'))"))
    # the current main job's (labour_status's pdwrk): ESS asks emplrel, wrkctra and wkhtot of the last job too
    assert (t["self_employed"].expr, t["hours_worked"].expr) == (
        ("missing('not_applicable') if pdwrk == 0 else (emplrel == 2 if emplrel in (1, 2, 3) else "
        "missing('not_available'))"), "missing('not_applicable') if pdwrk == 0 else wkhtot")
    # income deciles from round 4
    if r <= 3:
        assert t["income_decile"].kind == "not_asked" and "hinctnt" in t["income_decile"].not_asked
    else:
        assert (t["income_decile"].source, t["income_decile"].range) == ("hinctnta", (1, 10))
    # attachment to the country from round 8 (a full round-7 release has no atchctr)
    if r <= 7:
        assert t["belonging_country"].kind == "not_asked"
    else:
        assert t["belonging_country"].source == "atchctr"
    # the same in every round
    for target, src in (("income_difficulty", "hincfel"), ("voted_national", "vote"), ("trust_parliament", "trstprl"),
                        ("life_satisfaction", "stflife"), ("self_rated_health", "health"),
                        ("attitude_immigration_economy", "imbgeco"), ("attitude_immigration_culture", "imueclt"),
                        ("attitude_immigration_overall", "imwbcnt"), ("urbanisation", "domicil"),
                        ("main_activity", "mnactic"), ("in_education", "edctn"),
                        ("discriminated_group", "dscrgrp"), ("born_in_country", "brncntr"),
                        ("citizen", "ctzcntr"), ("father_born_in_country", "facntr"),
                        ("mother_born_in_country", "mocntr")):
        assert t[target].source == src, (wave, target)
    assert t["discrimination_ethnic"].kind == "expr"
    assert t["labour_status"].expr == "'employed' if pdwrk == 1 else ('unemployed' if uempla == 1 else 'inactive')"


@pytest.mark.parametrize(("wave", "variable"), [("1", "inwyr"), ("2", "inwyr"), *((str(n), "inwyys") for n in range(3, 10)),
                                                ("10", "inwds"), ("11", "inwds")])
def test_the_year_is_the_interviews_else_the_rounds_first(plans: dict[str, WavePlan], wave: str, variable: str) -> None:
    """Years since arrival count to the interview (decision 66): each round reads its interview-date variable, and a
    file without it (an extract) takes the round's first fieldwork year as before, as an approximation."""
    plan = plans[wave]
    tp = plan.targets["year"]
    assert (tp.kind, tp.quality) == ("expr", "exact") and variable in tp.expr  # type: ignore[operator]
    fallback, = plan.wave.overrides["year"]["alternatives"]
    assert (fallback["constant"], fallback["quality"]) == (plan.wave.year, "approximate")


def test_round_10_ethnic_minority_is_not_asked(plans: dict[str, WavePlan]) -> None:
    tp = plans["10"].targets["ethnic_minority"]
    assert tp.kind == "not_asked"
    assert tp.not_asked.startswith("Rounds 10-11 replace blgetmg by feethngr")


def test_round_8_uses_the_base_rules_except_region_and_the_year(plans: dict[str, WavePlan]) -> None:
    assert set(plans["8"].wave.overrides) == {"region_nuts", "city", "year"}
    t = plans["8"].targets
    assert [t[x].source for x in ("country_of_birth", "citizenship", "father_country_of_birth",
                                  "mother_country_of_birth", "year_of_arrival", "ethnic_minority", "home_language",
                                  "education_isced", "income_decile", "belonging_country")] == [
        "cntbrthc", "ctzshipc", "fbrncntb", "mbrncntb", "livecnta", "blgetmg", "lnghom1", "edulvlb", "hinctnta",
        "atchctr"]


# --- file patterns ---------------------------------------------------------------------------------------


def distributed_names() -> dict[str, list[str]]:
    desc = load_descriptor(ROOT / "surveys" / "ess" / "survey.yaml")
    names = {w.id: [f.name for f in w.files] for w in desc.waves}
    # country files and other editions/formats of the same round
    for w, files in names.items():
        names[w] = files + [f"ESS{w}FR.sav", f"ESS{w}e01.dta", f"ESS{w}e01_1.zsav", f"ESS{w}DE.por"]
    return names


def test_every_wave_matches_its_own_files(plans: dict[str, WavePlan]) -> None:
    for wave, files in distributed_names().items():
        pats = plans[wave].wave.files
        for name in files:
            assert any(fnmatch.fnmatch(name.lower(), p.lower()) for p in pats), (wave, name)


def test_no_pattern_matches_another_waves_files(plans: dict[str, WavePlan]) -> None:
    names = distributed_names()
    clashes = [(w, p, other, n) for w, plan in plans.items() for p in plan.wave.files
               for other, files in names.items() if other != w for n in files
               if fnmatch.fnmatch(n.lower(), p.lower())]
    assert clashes == []


def test_round_10_self_completion_file_is_round_10() -> None:
    proj = load_project(ROOT, [ROOT / "mappings" / "ess.yaml"])
    hits = [w.wave for w in proj.crosswalks["ess"].waves
            if any(fnmatch.fnmatch("ess10sce03_1.sav", p.lower()) for p in w.files)]
    assert hits == ["10"]


@pytest.mark.parametrize(("wave", "meaning"), [("1", "CSHH"), ("2", "CSXX"), ("3", "CSXX")])
def test_cs_is_the_country_its_iso_code_named_at_the_round(plans: dict[str, WavePlan], wave: str, meaning: str) -> None:
    """ISO 3166-1 CS was Czechoslovakia until 1993 and Serbia and Montenegro in 2003-2006: round 1's lists use the
    former (its labels say so), rounds 2-3 the latter (the semantic audit found CS unmapped there)."""
    for target in ("country_of_birth", "citizenship", "father_country_of_birth", "mother_country_of_birth"):
        tp = plans[wave].targets[target]
        if tp.kind in ("map", "table"):
            assert tp.values["CS"] == meaning, (wave, target)


@pytest.mark.parametrize(("wave", "year"), [("10", 2020), ("10", 2021), ("10", 2022), ("11", 2023), ("11", 2024),
                                            ("11", 2025)])
def test_the_interview_year_of_every_date_convention(plans: dict[str, WavePlan], wave: str, year: int) -> None:
    """`inwds` is a date-time: seconds since 1582 as SPSS stores it, milliseconds since 1960 (Stata %tc), or, after
    a Stata user's conversion to %td, days since 1960 (an audit's ESS10 .dta: days read as seconds gave 2020 for
    every 2022 interview, 2 years short of every migrant's years since arrival)."""
    import datetime

    import duckdb

    from harmonise.compile.expr import Context, NameSQL, compile_expr

    c = compile_expr(plans[wave].targets["year"].expr or "", Context(  # type: ignore[arg-type]
        resolve=lambda name: NameSQL('"inwds"', "NULL", "number"), reasons=["not_available"], params={}, tables={}))
    day = datetime.datetime(year, 6, 30, 12)
    values = [(day - datetime.datetime(1582, 10, 14)).total_seconds(),
              (day - datetime.datetime(1960, 1, 1)).total_seconds() * 1000, (day - datetime.datetime(1960, 1, 1)).days]
    con = duckdb.connect()
    try:
        got = [con.execute(f"SELECT {c.value} FROM (SELECT ?::DOUBLE AS inwds)", [v]).fetchone()[0] for v in values]  # type: ignore[index]
    finally:
        con.close()
    assert got == [year, year, year]


def test_an_alternative_without_a_quality_has_its_rules(plans: dict[str, WavePlan]) -> None:
    """ESS8 PL's region comes from an alternative (`region`, not the integrated file's `ess8_reg`) that states no
    quality: lineage stored none (an audit of real-file variants). It has the rule's, exact."""
    from harmonise.spec.crosswalk import Rule
    from harmonise.spec.resolve import alternatives

    rule = next(w for w in load_project(ROOT).surveys["ess"].crosswalk.waves if w.wave == "8").overrides["region_nuts"]
    options = alternatives(Rule.model_validate(rule))
    assert [o.quality for o in options if isinstance(o, Rule)] == ["exact"] * 4
