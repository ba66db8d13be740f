"""Issue 17 acceptance: every given real ESS folder validates and builds with the shipped crosswalks,
and the database's figures equal those computed from the raw files with pyreadstat alone."""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest
from conftest import ROOT, folder_db, keep_named, run

from harmonise.discover import data_files
from harmonise.spec.project import load_project
from harmonise.spec.resolve import reason_of_label

SHARED = ROOT.parent / "shared" / "data"
FOLDERS = sorted(p for p in (SHARED / "ess_real").glob("*") if p.is_dir()) + [SHARED / "ess8_fr"]
pytestmark = pytest.mark.skipif(not (SHARED / "ess_real").is_dir(), reason="../shared/data/ess_real not present")
TOLERANCE = 5e-4


def _raw(path: Path) -> pd.DataFrame:
    """The raw file as pyreadstat reads it (declared missing values are NaN)."""
    read = pyreadstat.read_dta if path.suffix.lower() == ".dta" else pyreadstat.read_sav
    kw: dict[str, Any] = {"encoding": "latin1"} if path.suffix.lower() == ".dta" else {}
    try:
        df, _ = read(str(path))
    except pyreadstat.ReadstatError:
        df, _ = read(str(path), **kw)
    df.columns = [c.lower() for c in df.columns]
    return df


def _share(flag: pd.Series, w: pd.Series) -> float:
    return float((flag * w).sum() / w.sum())


def raw_figures(df: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per country, from the raw file alone: weighted share born abroad, employment rate 20-64, weighted
    mean trust in parliament (18+), unweighted share female; only what the file has variables for."""
    out: dict[tuple[str, str], float] = {}
    wname = "pspwght" if "pspwght" in df else "dweight" if "dweight" in df else None
    for country, g in df.groupby("cntry"):
        c = str(country).strip()
        w = g[wname] if wname else pd.Series(1.0, index=g.index)
        if "brncntr" in g:
            ok = g.brncntr.isin([1, 2]) & w.notna()
            out[(c, "born_abroad")] = _share(g.brncntr[ok] == 2, w[ok])
        if "pdwrk" in g and "agea" in g:
            ok = g.agea.between(20, 64) & g.pdwrk.isin([0, 1]) & w.notna()
            out[(c, "employed_20_64")] = _share(g.pdwrk[ok] == 1, w[ok])
        if "trstprl" in g:
            ok = g.trstprl.between(0, 10) & w.notna() & (g.agea.between(18, 120) if "agea" in g else True)
            out[(c, "trust_parliament")] = float((g.trstprl[ok] * w[ok]).sum() / w[ok].sum())
        if "gndr" in g:
            ok = g.gndr.isin([1, 2])
            out[(c, "female")] = float((g.gndr[ok] == 2).mean())
    return out


DB_FIGURES = {
    "born_abroad": "sum(weight * (NOT born_in_country)::INT) / sum(weight) FILTER (WHERE true) "
                   "FROM respondents WHERE born_in_country IS NOT NULL AND weight IS NOT NULL",
    "employed_20_64": "sum(weight * (labour_status = 'employed')::INT) / sum(weight) FROM respondents "
                      "WHERE age BETWEEN 20 AND 64 AND labour_status IS NOT NULL AND weight IS NOT NULL",
    "trust_parliament": "sum(weight * trust_parliament) / sum(weight) FROM respondents "
                        "WHERE trust_parliament IS NOT NULL AND weight IS NOT NULL",
    "female": "avg((sex = 'female')::INT) FROM respondents WHERE sex IS NOT NULL",
}


def db_figure(con: duckdb.DuckDBPyConnection, country: str, name: str, adults: bool) -> float:
    """The database's figure for ``country``; ``adults``: trust among those aged 18 or more (the file has ages)."""
    select, _, rest = DB_FIGURES[name].partition(" FROM respondents")
    sql = f"SELECT {select} FROM respondents{rest} AND country = ?{' AND age >= 18' if adults else ''}"
    return float(con.execute(sql, [country]).fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_folder_builds_every_row_and_figures_equal_the_raw_files(folder: Path, request: pytest.FixtureRequest) -> None:
    if folder == SHARED / "ess8_fr":  # the same `build --data <folder>` as the run's shared fr_db: not twice
        db = request.getfixturevalue("fr_db")
    else:  # built once per run: test_discover.py starts from the ess11_subset_sav database too
        db = folder_db(request.getfixturevalue("tmp_path_factory"), folder)
    files = data_files([folder])
    raws = {f.name: _raw(f) for f in files}
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = dict(con.execute("SELECT source_file || ' ' || country, count(*) FROM respondents GROUP BY 1")
                      .fetchall())
        assert stored == {f"{name} {c.strip()}": n for name, df in raws.items()
                          for c, n in df.cntry.value_counts().items()}
        assert con.execute("SELECT count(DISTINCT wave), count(*) FROM sources").fetchone() == (1, len(files))
        assert con.execute("SELECT count(*) FROM harmonisation_report WHERE missing_reason = '__unmapped__'"
                           ).fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM conservation WHERE NOT ok").fetchone() == (0,)
        for df in raws.values():
            figures = raw_figures(df)
            assert bool(figures) == bool({"brncntr", "pdwrk", "trstprl", "gndr"} & set(df.columns))
            for (country, name), expected in figures.items():
                if np.isnan(expected):
                    continue
                got = db_figure(con, country, name, adults=name == "trust_parliament" and "agea" in df)
                assert got == pytest.approx(expected, abs=TOLERANCE), (folder.name, country, name)
    finally:
        con.close()


@cache
def validated(folder: str) -> tuple[int, str, str]:
    """`validate --data` of a real folder, run once per module for the tests that read its output."""
    return run("validate", "--data", str(SHARED / "ess_real" / folder))


@pytest.mark.parametrize("folder", ["ess9_gb_dta", "ess4_extract"])
def test_validate_recognises_the_file_by_content_and_names_the_encoding_it_guessed(folder: str) -> None:
    code, out, err = validated(folder)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].startswith("ok: 0 error(s), ")
    guessed = "the file records no usable text encoding; its texts were read as UTF-8 where valid, else Windows-1252"
    assert (guessed in out) == (folder == "ess9_gb_dta")


def test_a_list_a_message_cuts_short_is_whole_in_the_json_form() -> None:
    """The extract lacks 29 targets' variables: the warning names 12 "and 17 more", and said nowhere which; the
    message points to the JSON form, whose `extra` holds each target and the variables it lacks."""
    code, out, _ = validated("ess4_extract")
    assert code == 0
    (line,) = [line for line in out.splitlines() if "not available in this file" in line]
    assert " and 17 more (--format json lists all); they are stored as missing (not_available)" in line
    code, out, _ = run("validate", "--data", str(SHARED / "ess_real" / "ess4_extract"), "--format", "json")
    (issue,) = [i for i in json.loads(out)["issues"] if i["code"] == "not-available"]
    targets = issue["extra"]["targets"]
    assert len(targets) == 29 and targets["sex"] == ["gndr"] and targets["age"] == ["agea"]
    assert all(f"{t} (" in line for t in list(targets)[:12]) and not any(f" {t} (" in line for t in list(targets)[12:])
    (absent,) = [i for i in json.loads(out)["issues"] if i["code"] == "drift" and "are not in the file" in i["message"]]
    assert len(absent["extra"]["variables"]) == int(absent["message"].split(" variable(s)")[0]) > 8
    assert f" and {len(absent['extra']['variables']) - 8} more (--format json lists all)" in absent["message"]


def test_a_regional_edition_of_round_4_gives_its_nuts_codes_and_city_proxies(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The ESS4 extract carries NUTS1-NUTS3 (NUTS 2008, a regional edition's): region_nuts was `not_asked` for all
    56,752 rows, since the integrated files of rounds 1-4 have country-specific regions only. Each row now has the
    finest code the file gives, none where it gives none (Russia, Ukraine, Israel), and the city proxies of round 5
    on (London's UKI, Riga's LV006 …); a file without the variables keeps `not_asked`."""
    path = SHARED / "ess_real" / "ess4_extract" / "ESS04_2008.dta"
    raw = pyreadstat.read_dta(str(path), usecols=["NUTS1", "NUTS2", "NUTS3"])[0].replace("", None)
    finest = raw["NUTS3"].fillna(raw["NUTS2"]).fillna(raw["NUTS1"])
    con = duckdb.connect(str(folder_db(tmp_path_factory, path.parent)), read_only=True)
    try:
        got = con.execute("SELECT region_nuts, region_nuts_missing, city FROM respondents ORDER BY source_row").df()
    finally:
        con.close()
    assert got["region_nuts"].where(got["region_nuts"].notna(), None).tolist() == \
        finest.where(finest.notna(), None).tolist()
    assert got.loc[finest.isna(), "region_nuts_missing"].unique().tolist() == ["not_available"]
    assert int(finest.notna().sum()) == 49_783 and got["region_nuts_missing"].ne("not_asked").all()
    cities = finest.map(dict(load_project(ROOT).tables.lookups()["city_region_proxy"]))
    assert got["city"].where(got["city"].notna(), None).tolist() == cities.where(cities.notna(), None).tolist()
    assert got["city"].value_counts().to_dict() == {"LV001C": 658, "SE001C": 334, "BG001C": 282, "ES001C": 273,
                                                    "CZ001C": 212, "UK001K": 206}


def test_a_temporary_contract_is_an_employees(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ESS asks the contract question of employees and of those working for their family's business (emplrel 3),
    who are not employees: ESS6 IE's 59 were counted in the temporary contract share's employees (Eurostat's and
    domain.md's denominator). Theirs is not applicable now; an employee's is the file's answer, and so is an answer
    given without the employment relation (refused, don't know: 21 in ESS9 NO, 3 of them in paid work)."""
    def contracts(folder: str, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        path = SHARED / "ess_real" / folder / name
        raw = pyreadstat.read_sav(str(path), usecols=["emplrel", "wrkctra", "pdwrk", "wkhtot"], user_missing=True)[0]
        with duckdb.connect(str(folder_db(tmp_path_factory, path.parent)), read_only=True) as con:
            return raw, con.execute("SELECT * FROM respondents WHERE source_file = ? ORDER BY source_row", [name]).df()

    raw, got = contracts("ess6_ie", "ESS6IE.sav")
    family, employee, working = raw["emplrel"] == 3, raw["emplrel"] == 1, raw["pdwrk"] == 1
    assert int(family.sum()) == 59 and set(got.loc[family, "temporary_contract_missing"]) == {"not_applicable"}
    answered = employee & working & raw["wrkctra"].isin([1, 2, 3])
    assert got.loc[answered, "temporary_contract"].tolist() == (raw.loc[answered, "wrkctra"] == 2).tolist()
    raw, got = contracts("ess9_nordic", "ESS9NO.sav")
    unknown = raw["emplrel"].isin([7, 8, 9]) & raw["wrkctra"].isin([1, 2, 3]) & (raw["pdwrk"] == 1)
    assert int(unknown.sum()) == 3
    assert got.loc[unknown, "temporary_contract"].tolist() == (raw.loc[unknown, "wrkctra"] == 2).tolist()


def test_the_current_jobs_items_are_not_the_last_jobs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ESS asks the employment relation, the contract and the hours of the current or last job: 1,263 of ESS6
    IE's respondents not in paid work (pdwrk, as labour_status reads it) had a self_employed value, and 1,260
    usual hours, their last job's, where every other survey's rule gives not applicable. They are not applicable
    now; those in paid work keep the file's answers."""
    path = SHARED / "ess_real" / "ess6_ie" / "ESS6IE.sav"
    raw = pyreadstat.read_sav(str(path), usecols=["emplrel", "wrkctra", "pdwrk", "wkhtot"], user_missing=True)[0]
    with duckdb.connect(str(folder_db(tmp_path_factory, path.parent)), read_only=True) as con:
        got = con.execute("SELECT * FROM respondents ORDER BY source_row").df()
    idle = raw["pdwrk"] == 0
    assert (int((idle & raw["emplrel"].isin([1, 2, 3])).sum()), int((idle & raw["wkhtot"].between(0, 168)).sum())) \
        == (1263, 1260)
    for name in ("self_employed", "temporary_contract", "hours_worked"):
        assert set(got.loc[idle, name + "_missing"]) == {"not_applicable"}, name
    assert set(got.loc[idle, "labour_status"]) == {"inactive", "unemployed"}
    working = (raw["pdwrk"] == 1) & raw["emplrel"].isin([1, 2, 3])
    assert got.loc[working, "self_employed"].tolist() == (raw.loc[working, "emplrel"] == 2).tolist()
    hours = (raw["pdwrk"] == 1) & raw["wkhtot"].between(0, 168)
    assert got.loc[hours, "hours_worked"].tolist() == raw.loc[hours, "wkhtot"].tolist()


@pytest.mark.parametrize(("dropped", "used"), [(("pdwrk", "uempla"), "mnactic"), (("pdwrk", "uempla", "mnactic"), "")])
def test_an_extract_without_the_labour_items_reads_the_main_activity_then_the_last_job(
        tmp_path: Path, dropped: tuple[str, ...], used: str) -> None:
    """An extract without pdwrk (and uempla) had no labour status, where the main activity could give the city
    surveys' approximation; its job items then read the current or last job. Now: labour status from mnactic, the
    job items not applicable where it is not paid work; without mnactic too, the job items as ESS asks them."""
    path = SHARED / "ess8_fr" / "ESS8FR.sav"
    df, meta = pyreadstat.read_sav(str(path), user_missing=True)
    raw = df.copy()
    df = df.drop(columns=list(dropped))
    kept = {c: meta.column_names_to_labels[c] for c in df.columns}
    pyreadstat.write_sav(df, str(tmp_path / "ESS8FR.sav"), column_labels=kept,
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in kept},
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in kept})
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(tmp_path / "ESS8FR.sav"), "--db", str(db))
    assert code == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.execute("SELECT * FROM respondents ORDER BY source_row").df()
        paths = dict(con.execute("SELECT target, crosswalk_path FROM lineage WHERE target IN ('labour_status', "
                                 "'self_employed', 'hours_worked')").fetchall())
    working = raw["mnactic"] == 1
    answered = working & raw["emplrel"].isin([1, 2, 3])
    if used:
        assert paths == {"labour_status": "targets.labour_status.alternatives.0",
                         "self_employed": "targets.self_employed.alternatives.0",
                         "hours_worked": "targets.hours_worked.alternatives.0"}
        assert (got.loc[working, "labour_status"] == "employed").all()
        assert (got.loc[raw["mnactic"] == 3, "labour_status"] == "unemployed").all()
        assert set(got.loc[raw["mnactic"].isin([2, 4, 5, 6, 7, 8, 9]), "self_employed_missing"]) == {"not_applicable"}
        assert got.loc[answered, "self_employed"].tolist() == (raw.loc[answered, "emplrel"] == 2).tolist()
    else:
        assert set(got["labour_status_missing"]) == {"not_available"}
        assert paths["self_employed"] == "targets.self_employed.alternatives.1"
        everyone = raw["emplrel"].isin([1, 2, 3])
        assert got.loc[everyone, "self_employed"].tolist() == (raw.loc[everyone, "emplrel"] == 2).tolist()


def test_the_ukrainian_release_gives_its_home_language_as_markers(tmp_path_factory: pytest.TempPathFactory,
                                                                  tmp_path: Path) -> None:
    """ESS10 UA (the national team's release) leaves lnghom1 blank in every row and marks Ukrainian, Russian,
    other, refusal and don't know instead: all 1,531 rows had home_language not available. One language marked
    is that language, two or more MUL, 'other' alone not available; a round-10 file without the markers (as ESS
    ERIC releases it) reads lnghom1."""
    path = SHARED / "ess_real" / "ess10_ua" / "ESS10UAe2_0.sav"
    marks = ["lnghomua", "lnghomru", "lnghomoth", "lnghomref", "lnghomdk"]
    raw = pyreadstat.read_sav(str(path), usecols=["lnghom1", *marks])[0]
    assert set(raw["lnghom1"]) == {""}
    with duckdb.connect(str(folder_db(tmp_path_factory, path.parent)), read_only=True) as con:
        got = con.execute("SELECT home_language, home_language_missing FROM respondents ORDER BY source_row").df()
    ua, ru, oth, ref, dk = (raw[m] == 1 for m in marks)
    several = (ua.astype(int) + ru.astype(int) + oth.astype(int)) >= 2
    expected = np.select([ref, dk, several, ua, ru], ["refused", "dont_know", "MUL", "UKR", "RUS"], "not_available")
    stored = got["home_language"].fillna(got["home_language_missing"]).to_numpy()
    assert stored.tolist() == expected.tolist()
    assert pd.Series(stored).value_counts().to_dict() == {"UKR": 777, "RUS": 516, "MUL": 208, "not_available": 26,
                                                          "dont_know": 2, "refused": 2}
    df, meta = pyreadstat.read_sav(str(path), usecols=["idno", "cntry", "essround", "lnghom1"])
    df["lnghom1"] = ["RUS", "UKR", "777"] * 510 + ["HUN"]
    pyreadstat.write_sav(df, str(tmp_path / "ESS10UA.sav"), column_labels=meta.column_labels,
                         variable_value_labels=meta.variable_value_labels, missing_ranges=meta.missing_ranges)
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(tmp_path / "ESS10UA.sav"), "--db", str(db))
    assert code == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT home_language, home_language_missing, count(*) FROM respondents GROUP BY ALL "
                           "ORDER BY 1 NULLS LAST").fetchall() == [("HUN", None, 1), ("RUS", None, 510),
                                                                    ("UKR", None, 510), (None, "refused", 510)]
        assert con.execute("SELECT DISTINCT kind, source_variables, crosswalk_path FROM lineage WHERE target = 'home_language'"
                           ).fetchall() == [("table", "lnghom1", "waves[10].overrides.home_language.alternatives.0")]


def test_a_drifted_variables_codes_cut_short_are_whole_in_the_json_form() -> None:
    """The Polish file of ESS9 edition 1.2 labels only Poland's regions of the 78 the integrated file declares: the
    note names five "and 73 more", and the JSON form holds each code with its declared label."""
    folder = SHARED / "ess_real" / "ess9_pl_e12"
    code, out, _ = validated("ess9_pl_e12")
    assert code == 0
    (line,) = [line for line in out.splitlines() if "drift in region:" in line]
    code, out, _ = run("validate", "--data", str(folder), "--format", "json")
    (issue,) = [i for i in json.loads(out)["issues"] if i["code"] == "drift" and i.get("variable") == "region"]
    gone = issue["extra"]["codes_not_labelled"]
    _, meta = pyreadstat.read_sav(str(folder / "ESS9PL.sav"), metadataonly=True)
    declared = load_project(ROOT).codebooks[("ess", "9")].to_meta("").variables["region"].labels
    assert {g["code"] for g in gone} == set(declared) - set(meta.variable_value_labels["region"])
    assert all(declared[g["code"]] == g["label"] for g in gone)
    assert f" and {len(gone) - 5} more (--format json lists all) not labelled in the file" in line
    assert all(f"'{g['code']}' (" in line for g in gone[:5]) and not any(f"'{g['code']}' (" in line for g in gone[5:])


def test_unlabelled_stata_letters_in_each_variables_order_are_read_so_with_a_warning(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The real ESS4 extract letters each variable's missing codes in order (.a its refusal, .b don't know, .c no
    answer), without labels: read by ESS ERIC's convention (.a not applicable) all 12,290 letter cells of trust,
    income and urbanisation got the wrong reason (5,939 income refusals not applicable, out of the population),
    with only a warning (decision 65). The .a of variables without a not-applicable code contradicts the
    convention, and no variable read holds a letter beyond its declared missing codes: the file is read in order,
    and said so (decision 97). The expected reasons are computed from the file and the declared codebook: letter i
    of a variable is its i-th declared missing code, by value. A file with labelled letters (the real ESS9 GB .dta)
    is read by its labels, its `.d` 'Not available' of agea as not_available."""
    code, out, _ = validated("ess4_extract")
    assert code == 0
    path = SHARED / "ess_real" / "ess4_extract" / "ESS04_2008.dta"
    assert [line for line in out.splitlines() if "letters carry no labels" in line] == [
        (f"warning: ess wave 4: {path}: its Stata missing letters carry no labels and do not follow the crosswalk's "
         "convention (.a not_applicable, .b refused, .c dont_know, .d no_answer) for 3 variable(s): domicil .a (7 "
         "row(s)) as not_applicable (its declared codes are dont_know, no_answer, refused); hinctnta .a (5,939 "
         "row(s)) as not_applicable (its declared codes are dont_know, no_answer, refused); trstprl .a (42 row(s)) as "
         "not_applicable (its declared codes are dont_know, no_answer, refused); every variable read holds only "
         "letters within its declared missing codes, so the file letters each variable's missing codes in order (.a "
         "the lowest code), as files converted from SPSS by other tools do, and is read so: domicil .a (7 row(s)) "
         "refused, .b (47 row(s)) dont_know, .c (214 row(s)) no_answer (its codes 7, 8, 9); hinctnta .a (5,939 "
         "row(s)) refused, .b (4,203 row(s)) dont_know, .c (235 row(s)) no_answer (its codes 77, 88, 99); trstprl .a "
         "(42 row(s)) refused, .b (1,573 row(s)) dont_know, .c (30 row(s)) no_answer (its codes 77, 88, 99) — if the "
         "file letters otherwise, give the letters their reasons in the rules' `missing` (a wave override, e.g. "
         "{'.a': refused, '.b': dont_know, '.c': no_answer}), or harmonise the SPSS release")]
    assert "unlabelled-letters" not in out
    sources = {"trust_parliament": "trstprl", "income_decile": "hinctnta", "urbanisation": "domicil"}
    lettered, _ = pyreadstat.read_dta(str(path), user_missing=True, usecols=list(sources.values()))
    plain, _ = pyreadstat.read_dta(str(path), usecols=list(sources.values()))  # letters and `.` are NaN
    declared = load_project(ROOT).codebooks[("ess", "4")].to_meta("").variables
    expected: dict[str, dict[str, int]] = {}
    for target, var in sources.items():
        order = [reason_of_label(declared[var].labels[c]) for c in sorted(declared[var].missing_values)]
        held = lettered[var][lettered[var].map(lambda v: isinstance(v, str))].value_counts()
        expected[target] = {str(order[ord(x) - ord("a")]): int(n) for x, n in held.items()}
        # system missing from the plain read: with user_missing pyreadstat gives some `.` a garbage number
        if system := int(plain[var].isna().sum()) - int(held.sum()):
            expected[target]["not_available"] = system
    assert expected["trust_parliament"] == {"refused": 42, "dont_know": 1573, "no_answer": 30}  # the helper's audit
    assert sum(n for e in expected.values() for r, n in e.items() if r != "not_available") == 12_290
    db = folder_db(tmp_path_factory, SHARED / "ess_real" / "ess4_extract")
    con = duckdb.connect(str(db), read_only=True)
    try:
        for target in sources:
            assert dict(con.execute(f"SELECT {target}_missing, count(*) FROM respondents WHERE {target} IS NULL "
                                    "GROUP BY 1").fetchall()) == expected[target], target
    finally:
        con.close()
    code, out, _ = validated("ess9_gb_dta")
    assert code == 0 and "letters carry no labels" not in out and "letters-in-order" not in out
    assert "unread-letter-labels" not in out  # its letters' labels ('Refusal', 'Not available', …) are all read
    db = folder_db(tmp_path_factory, SHARED / "ess_real" / "ess9_gb_dta")  # `build --data <folder>`, once per run
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT age_missing, count(*) FROM respondents WHERE age IS NULL GROUP BY 1").fetchall() == \
            [("not_available", 16)]
        # every letter is read by its label where the file labels it, else by the convention: as before
        letters = con.execute("SELECT source_code, source_label, missing_reason FROM harmonisation_report "
                              "WHERE source_code LIKE '._'").fetchall()
        convention = {"a": "not_applicable", "b": "refused", "c": "dont_know", "d": "no_answer"}
        assert letters and all(reason == (reason_of_label(label) if label else convention[code[1]])
                               for code, label, reason in letters)
    finally:
        con.close()


def test_years_since_arrival_count_to_the_interview_in_spss_and_stata_dates(tmp_path: Path,
                                                                           tmp_path_factory: pytest.TempPathFactory
                                                                           ) -> None:
    """ESS10 UA was interviewed in 2022, two years after the round's first fieldwork year: years since arrival
    were 2 short for all 91 migrants (decision 66). The year comes from inwds, an SPSS date-time (seconds since
    1582) or a Stata %tc (milliseconds since 1960); without it, the round's first year."""
    source = SHARED / "ess_real" / "ess10_ua"
    df, meta = pyreadstat.read_sav(str(source / "ESS10UAe2_0.sav"))
    df = keep_named(df)  # the variables the crosswalk names (the others are read by no rule)
    df.loc[:9, "inwds"] = pd.NaT  # ten interviews without a date
    labels = {k: {c: str(t)[:80] for c, t in v.items()} for k, v in meta.variable_value_labels.items()
              if k in df and all(isinstance(c, (int, float)) for c in v)}
    (tmp_path / "dta").mkdir()
    pyreadstat.write_dta(df, str(tmp_path / "dta" / "ESS10UA.dta"), version=15, variable_value_labels=labels,
                         column_labels={k: (v or "")[:80] for k, v in meta.column_names_to_labels.items() if k in df})
    for folder, years in ((source, [(2022, 1531, 91)]), (tmp_path / "dta", [(2020, 10, 0), (2022, 1521, 91)])):
        if folder == source:  # the run's build of the real folder (test_folder_builds_every_row_… reads it too)
            db = folder_db(tmp_path_factory, source)
        else:
            db = tmp_path / f"{folder.name}.duckdb"
            code, _, err = run("build", "--data", str(folder), "--db", str(db))
            assert code == 0, err
        con = duckdb.connect(str(db), read_only=True)
        try:
            assert con.execute("SELECT year, count(*), count(years_since_arrival) FROM respondents GROUP BY 1 "
                               "ORDER BY 1").fetchall() == years
            assert con.execute("SELECT count(*) FROM respondents WHERE years_since_arrival <> year - "
                               "year_of_arrival").fetchone() == (0,)
        finally:
            con.close()


def test_a_regional_unit_outside_the_nuts_nomenclature_is_no_nuts_code(tmp_path_factory: pytest.TempPathFactory
                                                                       ) -> None:
    """ESS10 UA releases regions as regunit 4, 'Regional unit not part of the NUTS nomenclature': its codes
    (UA04, UA13, …) were stored as NUTS codes, quality exact (the ESS semantic audit); they are not available."""
    for folder, expected in (("ess10_ua", [(None, "not_available", 1531)]), ("ess9_nordic", None)):
        db = folder_db(tmp_path_factory, SHARED / "ess_real" / folder)  # `build --data <folder>`, once per run
        con = duckdb.connect(str(db), read_only=True)
        try:
            got = con.execute("SELECT region_nuts, region_nuts_missing, count(*) FROM respondents GROUP BY ALL "
                              "ORDER BY ALL").fetchall()
            if expected is not None:
                assert got == expected
            else:  # NUTS level 2 and 3 units: their codes, as before
                assert all(code is not None and reason is None for code, reason, _ in got)
                assert sum(n for *_, n in got) == 4700
        finally:
            con.close()


def test_a_stata_td_interview_date_and_a_file_without_regunit(tmp_path: Path) -> None:
    """Two variants of the real ESS10 UA file a researcher may hold (an audit of real-file variants): `inwds`
    converted to a Stata %td date (days since 1960, read as SPSS seconds: 2020 for every 2022 interview), and
    an extract without `regunit` (its oblast codes were stored as NUTS codes: Ukraine is outside the NUTS
    nomenclature, so they are not available; a NUTS country's extract keeps its codes)."""
    source = SHARED / "ess_real" / "ess10_ua" / "ESS10UAe2_0.sav"
    df, meta = pyreadstat.read_sav(str(source))
    df = keep_named(df)  # the variables the crosswalk names (the others are read by no rule)
    df["inwds"] = df["inwds"].dt.date  # a %td date
    df = df.drop(columns=["regunit"])
    labels = {k: {c: str(t)[:80] for c, t in v.items()} for k, v in meta.variable_value_labels.items()
              if k in df.columns and all(isinstance(c, (int, float)) for c in v)}
    (tmp_path / "dta").mkdir()
    pyreadstat.write_dta(df, str(tmp_path / "dta" / "ESS10UA.dta"), version=15, variable_value_labels=labels,
                         column_labels={k: (v or "")[:80] for k, v in meta.column_names_to_labels.items() if k in df})
    db = tmp_path / "ua.duckdb"
    code, _, err = run("build", "--data", str(tmp_path / "dta"), "--db", str(db))
    assert code == 0, err
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT year, count(*), count(years_since_arrival) FROM respondents GROUP BY 1").fetchall() \
            == [(2022, 1531, 91)]
        assert con.execute("SELECT region_nuts, region_nuts_missing, count(*) FROM respondents GROUP BY ALL").fetchall() \
            == [(None, "not_available", 1531)]
    finally:
        con.close()
    nordic, nmeta = pyreadstat.read_sav(str(next((SHARED / "ess_real" / "ess9_nordic").glob("*FI*"))))
    nordic = keep_named(nordic)
    (tmp_path / "fi").mkdir()
    pyreadstat.write_sav(nordic.drop(columns=["regunit"]), str(tmp_path / "fi" / "ESS9FI.sav"),
                         variable_value_labels={k: v for k, v in nmeta.variable_value_labels.items() if k != "regunit"})
    db = tmp_path / "fi.duckdb"
    code, _, err = run("build", "--data", str(tmp_path / "fi"), "--db", str(db))
    assert code == 0, err
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(region_nuts), min(region_nuts) LIKE 'FI%' FROM respondents"
                           ).fetchone() == (len(nordic), len(nordic), True)
    finally:
        con.close()


@pytest.mark.parametrize("written", ["00001002", "1002.0"])
def test_the_same_respondents_with_ids_written_differently_are_caught(tmp_path: Path, written: str) -> None:
    """ESS8 PL beside a copy whose idno is text ('00001002' or '1002.0' for 1002): the ids differed (PL-1002 and
    PL-00001002), so the 1,694 respondents were stored twice without a word (an audit of real-file variants)."""
    source = next((SHARED / "ess_real" / "ess8_pl").glob("*.sav"))
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    df = keep_named(df)  # the copy: the variables the crosswalk names (the others are read by no rule)
    df["idno"] = [(f"{int(v):08d}" if written.startswith("0") else f"{int(v)}.0") for v in df["idno"]]
    folder = tmp_path / "pl"
    folder.mkdir()
    (folder / source.name).symlink_to(source)
    pyreadstat.write_sav(df, str(folder / "ESS8PL-copy.sav"),
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items()
                                                if k != "idno" and k in df},
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in df})
    code, out, err = run("validate", "--data", str(folder))
    assert code == 1, out + err
    assert f"their ids written differently: ESS8PL-copy.sav and {source.name} — {len(df):,} respondent id(s)" in err, err


def test_a_country_files_approximation_flags_its_own_rows(tmp_path: Path) -> None:
    """ESS9 PL edition 1.2 has no anweight (weight from dweight × pweight, approximate): its rows and the margin
    over countries are flagged, the Nordic countries' rows of the same round are not (they were: the flags came
    from any one file of the survey-wave)."""
    from harmonise import indicators

    db = tmp_path / "r9.duckdb"
    real = SHARED / "ess_real"
    code, _, err = run("build", "--data", str(real / "ess9_nordic"), "--data", str(real / "ess9_pl_e12"), "--db", str(db))
    assert code == 0, err
    got = {r["country"]: r["quality"] for r in indicators(db, ["trust_parliament"]).records()}
    assert got == {"FI": "", "NO": "", "SE": "", "PL": "approximate: weight", "all": "approximate: weight"}


def test_a_sample_design_file_among_the_data_says_to_give_it_with_design(tmp_path: Path) -> None:
    """An ESS8 sample-design file beside the data was skipped as a supplement (a note): its psu and stratum were
    silently not attached. It is a warning naming --design now."""
    source = next((SHARED / "ess_real" / "ess8_pl").glob("*.sav"))
    df, _ = pyreadstat.read_sav(str(source), usecols=["idno", "cntry", "essround"])
    folder = tmp_path / "pl"
    folder.mkdir()
    (folder / source.name).symlink_to(source)
    df["stratum"], df["psu"] = (df["idno"] % 17).astype(float), (df["idno"] // 10).astype(float)
    pyreadstat.write_sav(df, str(folder / "ESS8_SDDF_PL.sav"))
    code, out, err = run("validate", "--data", str(folder))
    assert code == 0, err
    assert (f"{folder / 'ESS8_SDDF_PL.sav'}: a sample-design file of ess wave 8 (it holds psu, stratum and no item "
            "the crosswalk reads); not read as data, so its design is not attached") in out
    assert f"give it with --design {folder / 'ESS8_SDDF_PL.sav'}" in out


def test_files_of_one_name_in_two_folders_are_told_apart(tmp_path: Path) -> None:
    """Portal subsets of two countries saved under one name in two folders were one file in provenance: their
    rows, reports and conservation shared a file name, and a rebuild kept or dropped their rows together. They
    are named by their paths from the folder they share now; a rebuild after one changes keeps the other."""
    nordic = SHARED / "ess_real" / "ess9_nordic"
    for country in ("FI", "NO"):
        (tmp_path / "data" / country).mkdir(parents=True)
        shutil.copy(nordic / f"ESS9{country}.sav", tmp_path / "data" / country / "ESS9-subset.sav")
    db = tmp_path / "n.duckdb"
    assert run("build", "--data", str(tmp_path / "data"), "--db", str(db))[0] == 0
    query = ("SELECT source_file, country, count(*) FROM respondents GROUP BY ALL ORDER BY ALL",
             "SELECT DISTINCT file_name FROM conservation ORDER BY ALL")
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(query[0]).fetchall()
        assert [(f, c) for f, c, _ in rows] == [("FI/ESS9-subset.sav", "FI"), ("NO/ESS9-subset.sav", "NO")]
        assert con.execute(query[1]).fetchall() == [("FI/ESS9-subset.sav",), ("NO/ESS9-subset.sav",)]
    finally:
        con.close()
    shutil.copy(nordic / "ESS9SE.sav", tmp_path / "data" / "NO" / "ESS9-subset.sav")  # Norway's replaced by Sweden's
    code, out, err = run("build", "--data", str(tmp_path / "data"), "--db", str(db))
    assert code == 0, err
    assert "1 of 2 files kept" in out + err
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert [(f, c) for f, c, _ in con.execute(query[0]).fetchall()] == [("FI/ESS9-subset.sav", "FI"),
                                                                          ("NO/ESS9-subset.sav", "SE")]
    finally:
        con.close()


def test_a_variable_stored_as_text_against_the_declared_codebook_is_said_so(tmp_path: Path) -> None:
    """ESS10 UA with `inwds` stored as text crashed with a DuckDB binder error ("internal error", exit 2); the
    rule's error now names the file's type against the declared codebook's (an audit of real-file variants)."""
    df, meta = pyreadstat.read_sav(str(SHARED / "ess_real" / "ess10_ua" / "ESS10UAe2_0.sav"))
    df = keep_named(df)  # the variables the crosswalk names (the others are read by no rule)
    df["inwds"] = df["inwds"].astype(str)
    (tmp_path / "ua").mkdir()
    pyreadstat.write_sav(df, str(tmp_path / "ua" / "ESS10UA.sav"),
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in df})
    code, out, err = run("validate", "--data", str(tmp_path / "ua"))
    assert code == 1 and "internal error" not in out + err
    assert "waves[10].overrides.year: cannot compare text with a number: inwds is text" in out + err
    assert ("this file stores inwds as text, declared a number — a file that differs from the declared codebook "
            "(surveys/ess/codebook_10.yaml)") in out + err


def test_codes_the_file_declares_missing_but_the_rule_maps_as_values_are_noted() -> None:
    """ESS10 UA's national release declares vote 3 ('Not eligible to vote') user-missing; the crosswalk maps it to
    not_eligible. Stored as a value, with a note saying the file's declaration and the crosswalk differ (an audit
    found a file declaring trust 0 missing stored as values with no word)."""
    code, out, err = run("validate", "--data", str(SHARED / "ess_real" / "ess10_ua"))
    assert code == 0, err
    assert ("targets.voted_national: vote: the file declares code(s) 3 (50 rows) user-missing, but the rule maps "
            "them as values of voted_national: stored as values") in out


def test_an_unlabelled_letter_neither_the_convention_nor_the_order_can_read_is_an_error(tmp_path: Path) -> None:
    """The real ESS9 GB .dta letters agea's 999 'Not available' as .d, labelled; rewritten without the letters'
    labels (as tools other than Stata write them), .d is read by the convention as no answer, where the SPSS
    release's 999 is not available by the age rule's own `missing` (its one declared missing code); read in order
    .d would be a fourth code agea does not have. Either reading stores 16 ages with a wrong reason: an error (a
    warning before decision 97, the rows stored as no answer), nothing harmonised."""
    df, meta = pyreadstat.read_dta(str(SHARED / "ess_real" / "ess9_gb_dta" / "ESS9GB.dta"), encoding="latin1",
                                   user_missing=True, usecols=["idno", "cntry", "essround", "agea", "anweight"])
    df["agea"] = df["agea"].map(lambda x: x if isinstance(x, str) else float(x)).astype(object)
    assert (df["agea"] == "d").sum() == 16 and meta.missing_user_values["agea"] == ["d"]
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_dta(df, str(data / "ESS9GB.dta"), missing_user_values={"agea": ["d"]})
    code, out, err = run("validate", "--data", str(data))
    assert code == 1
    assert [line for line in (out + err).splitlines() if "letters carry no labels" in line] == [
        (f"error: ess wave 9: {data / 'ESS9GB.dta'}: its Stata missing letters carry no labels, and neither the "
         "crosswalk's convention (.a not_applicable, .b refused, .c dont_know, .d no_answer) nor each variable's "
         "declared missing codes in order (.a the lowest code) can read them: the convention gives 1 variable(s) "
         "reasons their declared codes cannot hold: agea .d (16 row(s)) as no_answer (its declared codes are "
         "not_available); the order cannot read 1 variable(s): agea .d (16 row(s)) beyond its 1 declared missing "
         "code(s) — their reasons would be stored wrongly either way — give the letters their reasons in the rules' "
         "`missing` (a wave override, e.g. {'.a': refused, '.b': dont_know, '.c': no_answer}), or harmonise the "
         "SPSS release or a Stata file with labelled letters")]


def test_rows_without_a_round_in_a_file_of_one_round_are_stored_as_its_round_and_said(tmp_path: Path) -> None:
    """The real ESS9 PL early edition with `essround` emptied in 10 rows (found by an audit of real-file variants):
    the rows were stored as round 9 without a word. They still are (the file's other rows and its name say round 9),
    with a warning naming the variable and the rows — in a rebuild that keeps the file as in the full build."""
    source = SHARED / "ess_real" / "ess9_pl_e12" / "ESS9PL.sav"
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    df = keep_named(df)  # the variables the crosswalk names (the others are read by no rule)
    df.loc[df.index[:10], "essround"] = np.nan
    (tmp_path / "pl").mkdir()
    pyreadstat.write_sav(df, str(tmp_path / "pl" / "ESS9PL.sav"),
                         column_labels={k: v for k, v in meta.column_names_to_labels.items() if k in df},
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in df},
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in df})
    path = tmp_path / "pl" / "ESS9PL.sav"
    expected = (f"warning: ess wave 9: {path}: essround has no value in 10 of its {len(df):,} rows; they are stored as "
                "ess wave 9, as the file's wave — if some are another wave's rows, give them that wave's essround (a "
                "file of several waves is read wave by wave)")
    db = tmp_path / "pl.duckdb"
    for args in (("validate",), ("build", "--db", str(db)), ("build", "--db", str(db))):  # the last keeps the file
        code, out, err = run(*args, "--data", str(tmp_path / "pl"))
        assert code == 0, err
        assert [line for line in (out + err).splitlines() if "essround has no value" in line] == [expected]
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT wave, count(*) FROM respondents GROUP BY ALL").fetchall() == [("9", len(df))]
    finally:
        con.close()
