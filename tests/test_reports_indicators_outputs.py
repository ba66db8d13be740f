"""Indicators: declarations, estimates against direct computations, suppression in every output."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest

from harmonise import connect, indicators
from harmonise.errors import Issue, UsageError, ValidationFailed
from harmonise.fixtures import generate
from harmonise.reports.estimate import Rule
from harmonise.reports.indicators import load_definitions
from harmonise.spec.project import load_schema
from tests.conftest import ROOT, built_once, edit, line_of, run, run_drawing
from tests.test_reports_estimate import NO_RULE, design_variance

ESTIMATE_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "cv", "gap", "gap_se")


@pytest.fixture(scope="session")
def e10_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ESS round 10 fixture data (stratified, clustered design with psu/stratum; cities), built once per run."""
    def make(folder: Path) -> None:
        generate(ROOT, folder / "data", survey="ess", wave="10", rows=400, seed=3)
        code, _, err = run("build", "--data", str(folder / "data"), "--db", str(folder / "e10.duckdb"))
        assert code == 0, err

    return built_once(tmp_path_factory, "e10_db", make) / "e10.duckdb"


def direct(frame: pd.DataFrame, dom: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Ratio estimate, linearised SE and z-scores of one domain, straight from the formulas."""
    w, dom = frame["w"].to_numpy(dtype=float), np.asarray(dom, dtype=bool)
    r = (w * y)[dom].sum() / w[dom].sum()
    z = np.where(dom, w * (y - r) / w[dom].sum(), 0.0)
    return r, float(np.sqrt(design_variance(z, frame))), z


def test_fr_employment_rate_equals_raw_file(fr_db: Path, ess8: Path) -> None:
    raw, _ = pyreadstat.read_sav(str(ess8), usecols=["idno", "agea", "pdwrk", "brncntr", "pspwght", "pweight"])
    raw["w"] = raw["pspwght"]
    raw["stratum_id"], raw["psu_id"] = "FR", raw["idno"].astype(str)  # no design information: own PSUs
    in_age = raw["agea"].between(20, 64).to_numpy()
    employed = (raw["pdwrk"] == 1).astype(float).to_numpy()
    est = indicators(fr_db, ["employment_rate"], by=["country"], group="birthplace")
    rows = {r["group"]: r for r in est.records()}
    zs = {}
    for group, code in (("native_born", 1), ("foreign_born", 2)):
        r, se, zs[group] = direct(raw, in_age & (raw["brncntr"] == code).to_numpy(), employed)
        assert rows[group]["estimate"] == pytest.approx(r, rel=1e-9)
        assert rows[group]["se"] == pytest.approx(se, rel=1e-9)
        assert rows[group]["n"] == int((in_age & (raw["brncntr"] == code)).sum())
        assert rows[group]["design"] == "respondents as PSUs; lonely PSUs: adjust" and rows[group]["weight"] == "weight"
    gap_se = np.sqrt(design_variance(zs["foreign_born"] - zs["native_born"], raw))
    assert rows["foreign_born"]["gap"] == pytest.approx(rows["foreign_born"]["estimate"] - rows["native_born"]["estimate"],
                                                       rel=1e-12)
    assert rows["foreign_born"]["gap_se"] == pytest.approx(gap_se, rel=1e-9)
    total = [r for r in indicators(fr_db, ["employment_rate"], by=["country"]).records() if r["country"] == "FR"]
    assert len(total) == 1 and round(total[0]["estimate"], 4) == 0.7091
    # `weight` is anweight = pspwght x pweight; pweight is constant within France, so ratios are equal
    con = connect(fr_db)
    assert con.execute("SELECT count(DISTINCT round(weight / nullif(weight_design, 0), 9)) FROM respondents "
                       "WHERE weight_design > 0").fetchone()[0] > 1  # weight is not the design weight
    con.close()


def test_nonresponse_to_the_variable_defining_the_population_counts(fr_db: Path, ess8: Path) -> None:
    # voted_national's population is the eligible voters, defined by the vote item itself: a refusal or
    # don't know (vote 7/8/9) stays in the population as item non-response instead of leaving it
    raw, _ = pyreadstat.read_sav(str(ess8), usecols=["agea", "vote"], user_missing=True)
    adult = raw[raw["agea"].between(18, 120)]
    answered, unanswered = int(adult["vote"].isin([1, 2]).sum()), int(adult["vote"].isin([7, 8, 9]).sum())
    assert unanswered == 67
    row = indicators(fr_db, ["voted_national"], by=["country"]).records()[-1]
    assert (row["n"], row["item_nonresponse"]) == (answered, pytest.approx(unanswered / (answered + unanswered)))
    con = connect(fr_db)  # the stored table agrees
    try:
        stored_row = con.execute("SELECT n, item_nonresponse FROM indicators WHERE indicator = 'voted_national' "
                                 "AND breakdown = 'total' AND country = 'FR'").fetchall()
    finally:
        con.close()
    assert stored_row == [(answered, pytest.approx(unanswered / (answered + unanswered)))]


def test_stratified_clustered_end_to_end(e10_db: Path) -> None:
    con = connect(e10_db)
    df = con.execute("SELECT * FROM respondents").df()
    con.close()
    df["w"] = df["weight"].astype(float)
    df["stratum_id"] = "ess|10|" + df["country"] + "|" + df["stratum"].fillna("")
    df["psu_id"] = ("p:" + df["psu"]).fillna("r:" + df["respondent_id"])
    assert df["psu"].notna().all()
    est = indicators(e10_db, ["employment_rate"], by=["country"], group="birthplace", rule=NO_RULE)
    est.rows = [r for r, rec in zip(est.rows, est.records())
                if rec["breakdown"] != "total" and rec["country"] != "all" and rec["group"] not in ("unknown", "all")]
    base = (df["age"].between(20, 64) & df["labour_status"].notna() & df["weight"].notna()).to_numpy()
    y = (df["labour_status"] == "employed").astype(float).to_numpy()
    birthplace = df["born_in_country"].map({True: "native_born", False: "foreign_born"})
    checked = 0
    for row in est.records():
        def domain(group: str, country: str = row["country"]) -> np.ndarray:
            return base & ((df["country"] == country) & (birthplace == group)).to_numpy(dtype=bool)

        r, se, z = direct(df, domain(row["group"]), y)
        assert row["n"] == domain(row["group"]).sum() and row["design"] == "stratum/psu; lonely PSUs: adjust"
        assert row["estimate"] == pytest.approx(r, rel=1e-9) and row["se"] == pytest.approx(se, rel=1e-9, abs=1e-12)
        if row["group"] == "foreign_born" and row["gap"] is not None:
            z_native = direct(df, domain("native_born"), y)[2]
            assert row["gap_se"] == pytest.approx(np.sqrt(design_variance(z - z_native, df)), rel=1e-9, abs=1e-12)
            checked += 1
    assert checked >= 1


def suppressed_keys(fr_db: Path) -> set[tuple[str, str]]:
    rows = indicators(fr_db, ["employment_rate"], by=["sex"], group="migrant_generation").records()
    keys = {(r["sex"], r["group"]) for r in rows if r["reliability"] == "suppressed"}
    assert keys and all(r[c] is None for r in rows if r["reliability"] == "suppressed" for c in ESTIMATE_COLUMNS)
    return keys


ARGS = ("indicators", "--indicator", "employment_rate", "--by", "sex", "--group", "migrant_generation")


def test_suppressed_cells_hidden_in_table(fr_db: Path) -> None:
    code, out, _ = run(*ARGS, "--db", str(fr_db))
    assert code == 0
    lines = out.splitlines()
    header, rule_line = lines[0], lines[1]
    spans = [(m, m + len(dash)) for m, dash in _dash_spans(rule_line)]
    names = [header[a:b].strip() for a, b in spans]
    seen = set()
    for line in lines[2:]:
        cells = dict(zip(names, (line[a:b].strip() for a, b in spans)))
        if cells.get("reliability") == "suppressed":
            seen.add((cells["sex"], cells["group"]))
            assert all(cells[c] == "" for c in ESTIMATE_COLUMNS)
    assert seen == suppressed_keys(fr_db)
    assert lines[-1].startswith("rule: suppress if n < 20 or n_eff < 30")


def _dash_spans(line: str) -> list[tuple[int, str]]:
    out, i = [], 0
    for part in line.split("  "):
        if part:
            out.append((i, part))
        i += len(part) + 2
    return out


def test_suppressed_cells_hidden_in_csv_and_json(fr_db: Path) -> None:
    code, out, _ = run(*ARGS, "--db", str(fr_db), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    sup = [r for r in rows if r["reliability"] == "suppressed"]
    assert {(r["sex"], r["group"]) for r in sup} == suppressed_keys(fr_db)
    assert all(r[c] == "" for r in sup for c in ESTIMATE_COLUMNS)
    assert {r["rule"] for r in rows} == {Rule().describe()}
    code, out, _ = run(*ARGS, "--db", str(fr_db), "--format", "json", "--min-n", "40")
    data = json.loads(out)
    assert data["rule"].startswith("suppress if n < 40 or") and data["weight"] == "weight"
    api = indicators(fr_db, ["employment_rate"], ["sex"], "migrant_generation", rule=Rule(min_n=40)).records()
    assert len(data["rows"]) == len(api)
    for got, exp in zip(data["rows"], api):  # tolerate last-bit differences of parallel sums
        assert got == {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in exp.items()}
    sup = [r for r in data["rows"] if r["reliability"] == "suppressed"]
    assert sup and all(r[c] is None for r in sup for c in ESTIMATE_COLUMNS)
    assert all(r["n"] >= 40 or r["reliability"] == "suppressed" for r in data["rows"])


def test_suppressed_cells_hidden_in_database_table(fr_db: Path) -> None:
    con = connect(fr_db)
    try:
        total, sup, shown = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE reliability = 'suppressed'), count(*) FILTER (WHERE reliability "
            "= 'suppressed' AND (estimate IS NOT NULL OR se IS NOT NULL OR ci_low IS NOT NULL OR ci_high IS NOT NULL "
            "OR cv IS NOT NULL OR gap IS NOT NULL OR gap_se IS NOT NULL)) FROM indicators").fetchone()
        small = con.execute("SELECT count(*) FROM indicators WHERE (n < 20 OR n_eff < 30) AND "
                            "reliability <> 'suppressed'").fetchone()[0]
        totals = con.execute("SELECT count(DISTINCT indicator) FROM indicators WHERE breakdown = 'total'").fetchone()[0]
    finally:
        con.close()
    assert sup > 0 and shown == 0 and small == 0
    assert totals == 17 and total > 17  # ESS asks neither permit type nor host-language proficiency


def test_suppressed_cells_hidden_in_chart(fr_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "chart.svg"
    code, text, err, (chart,) = run_drawing(monkeypatch, "compare", "--indicator", "employment_rate", "--by", "sex",
                                            "--group", "migrant_generation", "--out", str(out), "--db", str(fr_db))
    assert code == 0, err
    assert text.strip() == (f"wrote {out}: {len(chart.plotted)} estimate(s), {len(chart.suppressed)} suppressed cell(s)")
    assert out.read_text().startswith("<?xml")
    named = {(f"ESS 8 · {sex.capitalize()}", g) for sex, g in suppressed_keys(fr_db)}  # cells by name: codes labelled
    assert {(c, g) for c, g, _ in chart.suppressed} == named
    assert not {(c, g) for c, g, _ in chart.plotted} & named
    ax = chart.figure.axes[0]
    assert len(ax.containers) == len(chart.plotted)  # one error bar per shown estimate, none for suppressed
    texts = {t.get_text() for t in ax.texts}
    labels = {code: label for code, label in connect(fr_db).execute(
        "SELECT code, label FROM value_labels WHERE variable = 'migrant_generation'").fetchall()}
    labels["all"] = "All with a known group"  # the breakdown's total, over the respondents whose group is known
    assert all(f"{labels.get(g, g.capitalize())}: suppressed (n={n})" in texts for _, g, n in chart.suppressed)


def test_city_comparison_chart(e10_db: Path, tmp_path: Path) -> None:
    code, text, err = run("compare", "--indicator", "employment_rate", "--by", "city", "--group", "migrant_generation",
                          "--out", str(tmp_path / "c.png"), "--db", str(e10_db), "--min-n", "0", "--min-n-eff", "0")
    assert code == 0, err
    assert text.startswith(f"wrote {tmp_path / 'c.png'}: ") and (tmp_path / "c.png").stat().st_size > 1000


def test_age_band_grouping_and_override(fr_db: Path) -> None:
    rows = indicators(fr_db, ["tertiary_attainment"], by=["age_band"]).records()
    assert [r["age_band"] for r in rows] == ["25-34", "all"]  # the band, and the margin over age bands
    rows = indicators(fr_db, ["employment_rate"], by=["age_band"], age=(30, 49)).records()
    assert [(r["ages"], r["age_band"]) for r in rows] == [("30-49", "30-34"), ("30-49", "35-44"), ("30-49", "45-49"),
                                                          ("30-49", "all")]
    total = indicators(fr_db, ["employment_rate"], by=[], age=(30, 49)).records()[0]["n"]
    assert sum(r["n"] for r in rows[:3]) == rows[3]["n"] == total


@pytest.mark.parametrize(("args", "message"), [
    (("--indicator", "employment"), "error: unknown indicator(s) employment; known: employment_rate,"),
    (("--by", "nationality"), "error: cannot group by nationality; choose from survey, wave, country,"),
    (("--by", "sex,country", "--by", "sex"), "error: --by sex: given more than once; give each grouping column once\n"),
    (("--group", "origin"), "error: unknown breakdown 'origin'; choose from birthplace, origin_group,"),
    (("--group", ""), "error: unknown breakdown ''; choose from birthplace, origin_group,"),
    (("--min-n", "-1"), "error: suppression rule: min_n (--min-n) must be a finite number >= 0 (got -1)"),
    (("--min-n-eff", "nan"), "error: suppression rule: min_n_eff (--min-n-eff) must be a finite number >= 0 (got nan)"),
    (("--flag-cv", "inf"), "error: suppression rule: flag_cv (--flag-cv) must be a finite number >= 0 (got inf)"),
    (("--indicator", "citizenship_share", "--group", "citizenship_group"),
     "error: citizenship_share is not published by citizenship_group (not_by in mappings/indicators.yaml"),
])
def test_bad_arguments(fr_db: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = run("indicators", "--db", str(fr_db), *args)
    assert code == 2 and err.startswith(message)


@pytest.mark.parametrize(("option", "value", "choices"), [
    ("--lonely-psu", "fail", "'adjust', 'certainty', 'remove', 'collapse'"),
    ("--weight", "dweight", "'weight', 'weight_design', 'none'")])
def test_bad_design_options(fr_db: Path, option: str, value: str, choices: str) -> None:
    code, _, err = run("indicators", "--db", str(fr_db), option, value)
    assert code == 2 and f"Invalid value for '{option}': '{value}' is not one of {choices}." in err


def _definition_issues(project: Path, *edits: tuple[str, str]) -> list[Issue]:
    """The issues loading mappings/indicators.yaml reports after ``edits`` (old, new) to it (it must fail)."""
    path = project / "mappings" / "indicators.yaml"
    schema, _, _ = load_schema(project)
    for old, new in edits:
        edit(path, old, new)
    with pytest.raises(ValidationFailed) as info:
        load_definitions(project, schema)
    return info.value.issues


def test_invalid_declarations_are_located(project: Path) -> None:
    path = project / "mappings" / "indicators.yaml"
    issues = _definition_issues(project, ("outcome: \"labour_status == 'employed'\"", "outcome: \"labour_statu == 'employed'\""),
                                ("outcome: trust_parliament", "outcome: trust_parliament > 5"))
    assert [(i.file, i.line, i.path, i.message) for i in issues] == [
        ("mappings/indicators.yaml", line_of(path, "labour_statu =="), "indicators.employment_rate.outcome",
         "unknown variable 'labour_statu'"),
        ("mappings/indicators.yaml", line_of(path, "trust_parliament > 5"), "indicators.trust_parliament.outcome",
         "expression gives a boolean, expected number")]
    issues = _definition_issues(project, ("label: Activity rate", "lable: Activity rate"))
    assert (line_of(path, "lable:"), "indicators.activity_rate.lable", "unknown key 'lable'") in \
        {(i.line, i.path, i.message) for i in issues}


def test_database_without_definitions(tmp_path: Path) -> None:
    """A database of an older harmonise (respondents, no indicator definitions) is to be rebuilt; one harmonise did
    not build is said to be so (it was told to rebuild with this version: `indicators` and `compare`, exit 2)."""
    import duckdb

    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE respondents (survey VARCHAR)")
    con.close()
    with pytest.raises(UsageError, match="no indicator definitions of this version; rebuild it"):
        indicators(db)
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    said = (f"error: {other}: not a database harmonise built (no respondents table); build one with `harmonise build`, "
            "or pass the --db that it wrote\n")
    assert run("indicators", "--db", str(other))[::2] == (2, said)
    assert run("compare", "--db", str(other), "--indicator", "employment_rate", "--out",
               str(tmp_path / "c.png"))[::2] == (2, said)


def test_validate_checks_the_indicator_declarations(project: Path) -> None:
    """A mistake in mappings/indicators.yaml fails `harmonise validate` with file:line, not only the build."""

    path = project / "mappings" / "indicators.yaml"
    edit(path, "labour_status == 'employed'", "labour_status == 'employed' and nosuchvar")
    line = line_of(path, "nosuchvar")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert f"mappings/indicators.yaml:{line} indicators.employment_rate.outcome: unknown variable 'nosuchvar'" in err


def test_codes_in_indicator_declarations_are_checked(project: Path) -> None:
    """A misspelt code never matches and would give estimates of 0 with no gap: it fails validate instead."""
    path = project / "mappings" / "indicators.yaml"
    edit(path, "outcome: \"labour_status == 'employed'\"", "outcome: \"labour_status == 'employd'\"")
    edit(path, "voted_national != 'not_eligible'", "voted_national != 'noteligible'")
    edit(path, "native: native_born", "native: natve_born")
    edit(path, "migrant_generation, native: native_background}", "migrant_generation, native: native}")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert [line for line in err.splitlines() if "indicators.yaml" in line] == [
        (f"error: mappings/indicators.yaml:{line_of(path, 'employd')} indicators.employment_rate.outcome: comparison "
        "with labour_status: 'employd' is not a code of labour_status (did you mean 'employed'?)"),
        (f"error: mappings/indicators.yaml:{line_of(path, 'noteligible')} indicators.voted_national.population: "
        "comparison with voted_national: 'noteligible' is not a code of voted_national (did you mean 'not_eligible'?)"),
        (f"error: mappings/indicators.yaml:{line_of(path, 'natve_born')} breakdowns.birthplace.native: native group "
        "'natve_born' is not a group the expression gives (native_born, foreign_born) — did you mean 'native_born'?"),
        (f"error: mappings/indicators.yaml:{line_of(path, 'migrant_generation, native: native}')} "
        "breakdowns.migrant_generation.native: "
        "native group 'native' is not a group the expression gives (native_background, first_generation, "
        "generation_1_5, second_generation, generation_2_5, foreign_born_native_parents)")]


def test_every_indicator_uses_the_analysis_weight_by_default(fr_db: Path) -> None:
    """domain.md (corrected): ESS guidance is anweight for all analyses, education included; the design
    weight is an option. On ESS8 France the low-education share of the foreign-born is 32.6% with it."""
    def estimate(weight: str | None) -> dict[str, float]:
        kwargs = {"weight": weight} if weight else {}
        rows = indicators(fr_db, ["low_education"], ["country"], "birthplace", **kwargs).records()  # type: ignore[arg-type]
        return {str(r["group"]): float(r["estimate"]) for r in rows  # type: ignore[arg-type]
                if r["breakdown"] == "birthplace" and r["country"] == "FR" and r["group"] not in ("unknown", "all")}

    assert estimate(None) == estimate("weight")
    assert {g: round(e, 3) for g, e in estimate(None).items()} == {"foreign_born": 0.326, "native_born": 0.176}
    assert {g: round(e, 3) for g, e in estimate("weight_design").items()} == {"foreign_born": 0.233,
                                                                               "native_born": 0.122}
    con = connect(fr_db)
    try:
        weights = con.execute("SELECT DISTINCT weight FROM indicators").fetchall()
    finally:
        con.close()
    assert weights == [("weight",)]


def test_a_survey_wave_without_estimates_is_named_with_why(fr_db: Path) -> None:
    """`--age 110-120` printed an empty table and nothing else (exit 0): a missing survey-wave is not a zero."""
    code, _, err = run("indicators", "--db", str(fr_db), "--indicator", "employment_rate", "--age", "110-120")
    assert code == 0
    assert err == ("note: no estimates for 1 survey-wave(s): ess 8: none of its respondents is in the indicators' "
                   "populations (ages, the question asked)\n")
    code, _, err = run("indicators", "--db", str(fr_db), "--indicator", "employment_rate")
    assert (code, err) == (0, "")


def test_a_survey_wave_without_ages_is_named_with_that_reason(fr_db: Path, tmp_path: Path) -> None:
    """An extract without `agea` (ESS04_2008.dta): the note blamed the indicators' populations and the question."""
    db = tmp_path / "noage.duckdb"
    shutil.copy(fr_db, db)
    con = duckdb.connect(str(db))
    try:
        con.execute("UPDATE respondents SET age = NULL, age_missing = 'not_available'")
        (n,) = con.execute("SELECT count(*) FROM respondents").fetchone()  # type: ignore[misc]
    finally:
        con.close()
    code, _, err = run("indicators", "--db", str(db), "--indicator", "employment_rate", "--weight", "none")  # estimated
    assert code == 0
    assert err == (f"note: no estimates for 1 survey-wave(s): ess 8: none of its {n:,} respondents has an age (its files "
                   "lack the variable the crosswalk reads it from), and every indicator's population is an age band\n")


def test_the_design_weight_gives_no_margin_over_countries(small_demo_db: Path) -> None:
    """ESS dweight sums to each country's sample size: a margin over countries weighted them by it (an audit:
    0.8093 for the Nordic employment rate against 0.7964 with the analysis weight). Within a country, as before."""
    design = indicators(small_demo_db, ["employment_rate"], weight="weight_design").records()
    analysis = indicators(small_demo_db, ["employment_rate"]).records()
    countries = {r["country"] for r in design}
    assert len(countries) > 5 and "all" not in countries and countries < {r["country"] for r in analysis}
    assert "all" in {r["country"] for r in analysis}


def test_indicator_and_breakdown_names_are_plain_names(project: Path) -> None:
    """A name becomes a codebook page's file name: '../x' pointed `harmonise codebook` outside its folder (an
    internal error, after `validate` had said ok)."""
    path = project / "mappings" / "indicators.yaml"
    issues = _definition_issues(project, ("  employment_rate:\n", "  ../../pwned:\n"), ("  birthplace:\n", "  \"a'b\":\n"))
    assert [(i.line, i.path, i.code, i.message) for i in issues] == [
        (line_of(path, "  ../../pwned:"), "indicators.../../pwned", "indicator-name",
         "indicator name '../../pwned' is not a plain name"),
        (line_of(path, "  \"a'b\":"), "breakdowns.a'b", "indicator-name", "breakdown name \"a'b\" is not a plain name")]
    code, out, err = run("codebook", "--out", str(project / "cb"), project=project)
    assert code == 1 and "internal error" not in out + err and not (project / "pwned.html").exists()
    assert f"mappings/indicators.yaml:{line_of(path, '  ../../pwned:')} indicators.../../pwned: indicator name" in err


def test_pool_without_by_pools_by_country(fr_db: Path) -> None:
    """`indicators --pool` without --by grouped by the default survey,wave,country: with survey and wave as grouping
    columns nothing was pooled, yet the footer and JSON said the weights were pooled. Without --by a pooled query
    is by country (as `compare`'s default), the same rows as `--by country --pool`; in Python, by=None likewise."""
    code, out, err = run("indicators", "--db", str(fr_db), "--indicator", "trust_parliament", "--pool",
                         "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    code, out, err = run("indicators", "--db", str(fr_db), "--indicator", "trust_parliament", "--pool",
                         "--by", "country", "--format", "json")
    assert (code, err) == (0, "")
    assert data == json.loads(out)
    assert [(r["country"], r["source"]) for r in data["rows"]] == [("FR", "ess 8")]  # no margin over countries
    assert "survey" not in data["rows"][0] and data["pooling"] is not None
    assert indicators(fr_db, ["trust_parliament"], pool=True).records() == data["rows"]
    assert [(r["survey"], r["wave"], r["country"]) for r in indicators(fr_db, ["trust_parliament"]).records()] == [
        ("ess", "8", "FR"), ("ess", "8", "all")]


def test_a_breakdown_or_indicator_given_twice_is_refused(fr_db: Path, tmp_path: Path) -> None:
    """`indicators --group birthplace --group origin_group` showed origin_group alone (click kept the last value
    without a word), as did `compare` with --group or --indicator twice: a query takes one, and says so (exit 2)."""
    code, out, err = run("indicators", "--db", str(fr_db), "--indicator", "employment_rate", "--group", "birthplace",
                         "--group", "origin_group")
    assert (code, out, err) == (2, "", ("error: --group given 2 times (birthplace, origin_group): a query takes one; "
                                       "run it once for each\n"))
    chart = tmp_path / "c.png"
    code, out, err = run("compare", "--db", str(fr_db), "--indicator", "employment_rate", "--group", "origin_group",
                         "--group", "birthplace", "--out", str(chart))
    assert (code, out, err) == (2, "", ("error: --group given 2 times (origin_group, birthplace): a query takes one; "
                                       "run it once for each\n"))
    code, out, err = run("compare", "--db", str(fr_db), "--indicator", "employment_rate", "--indicator",
                         "trust_parliament", "--out", str(chart))
    assert (code, out, err) == (2, "", ("error: --indicator employment_rate,trust_parliament: a chart draws one "
                                       "indicator; give one, or estimate several with `harmonise indicators`\n"))
    assert not chart.exists()
    code, out, err = run("compare", "--db", str(fr_db), "--indicator", "employment_rate", "--out", str(chart))
    assert code == 0 and out.startswith(f"wrote {chart}: ")  # the default breakdown: birthplace


def test_a_tables_footer_names_the_sources_of_each_design(small_demo_db: Path) -> None:
    """The table's footer listed several designs joined by commas, though each reads `kind; lonely PSUs: …`, so
    it did not say which rows had which: now each design names its sources, as the rows (JSON) give them."""
    code, out, _ = run("indicators", "--db", str(small_demo_db), "--indicator", "employment_rate")
    assert code == 0
    code, text, _ = run("indicators", "--db", str(small_demo_db), "--indicator", "employment_rate", "--format", "json")
    of: dict[str, set[str]] = {}
    for r in json.loads(text)["rows"]:
        of.setdefault(r["design"], set()).add(r["source"])
    assert len(of) > 1  # the small demo's surveys: some with design PSUs, some without
    expected = " | ".join(f"{d} ({', '.join(sorted(s))})" for d, s in sorted(of.items()))
    assert f"\nweight: weight; design: {expected}\n" in out
