"""EVS 2008 in the layout of the real ZA4800 file, as public scripts reading ZA4800_v4-0-0.sav/.dta show it
(surveys/evs/codebook_2008.yaml names each source): the birth and citizenship block is v304 citizen, v305b
citizenship, v306 born in the country, v307b country of birth, v308 year of arrival, v309/v310b and v311/v312b the
parents (no v305, v307, v310 or v312); v8 is happiness and v9 health; v256 is national pride; the regions
v371b_N1-N3 are numeric EVS codes labelled with region names, not NUTS strings; don't know and no answer are
declared missing. A hand-written file of that layout validates and builds, and every value is checked against
what pyreadstat reads from the file, decoded by this test's own code."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyreadstat
import pytest
from conftest import run

NEG = {-1: "don't know", -2: "no answer", -3: "not applicable", -4: "item not included", -5: "other missing"}
YES_NO = {1: "yes", 2: "no", **NEG}
COUNTRIES = {792: "Turkey", 372: "Ireland", 504: "Morocco", 276: "Germany"}
COLUMNS = ("studyno", "id_cocas", "country", "c_abrv", "year", "weight_g", "v8", "v9", "v66", "v211", "v256", "v268",
           "v271", "v302", "v303", "age", "v304", "v305b", "v306", "v307b", "v308", "v309", "v310b", "v311", "v312b",
           "v336", "v337", "v370a", "v371b_N1", "v371b_N2", "v371b_N3")
ROWS = [dict(zip(COLUMNS, values, strict=True)) for values in (
    (4800, 27600001, 276, "DE", 2008, 1.2, 1, 2, 7, 2, 1, 3, 8, 2, 1968, 40, 2, 792, 2, 792, 1990, 2, 792, 2, 792,
     3, 1, 6, 27601, 2760101, 276010101),
    (4800, 27600002, 276, "DE", 2008, 0.8, 4, 5, -1, -2, 4, -1, 1, 1, 1950, 58, 1, -3, 1, -3, -3, 2, 504, 1, -3,
     6, 5, 8, 27602, 2760201, 276020101),
    (4800, 90900003, 909, "GB-NIR", 2009, 1.0, 2, 3, 10, 4, 2, 10, 5, 1, 1985, 24, 1, -3, 2, 372, 2000, 2, 372, 1, -3,
     5, 8, 2, 90923, 9092301, 909230101),
)]
LABELS = {
    "country": {276: "Germany", 909: "Northern Ireland"},
    "v8": {1: "very happy", 2: "quite happy", 3: "not very happy", 4: "not at all happy", **NEG},
    "v9": {1: "very good", 2: "good", 3: "fair", 4: "poor", 5: "very poor", **NEG},
    "v256": {1: "very proud", 2: "quite proud", 3: "not very proud", 4: "not at all proud", **NEG},
    "v302": {1: "male", 2: "female", **NEG}, "v304": YES_NO, "v306": YES_NO, "v309": YES_NO, "v311": YES_NO,
    "v305b": {**COUNTRIES, **NEG}, "v307b": {**COUNTRIES, **NEG}, "v310b": {**COUNTRIES, **NEG},
    "v312b": {**COUNTRIES, **NEG}, "v303": NEG, "v308": NEG, "age": NEG, "v268": NEG, "v271": NEG,
    "v66": {1: "dissatisfied", 10: "satisfied", **NEG},
    "v211": {1: "a great deal", 2: "quite a lot", 3: "not very much", 4: "none at all", **NEG},
    "v336": {0: "pre-primary", 1: "primary", 2: "lower secondary", 3: "upper secondary", 4: "post-secondary",
             5: "first stage of tertiary", 6: "second stage of tertiary", **NEG},
    "v337": {1: "30 hours a week or more", 2: "less than 30 hours a week", 3: "self employed", 4: "military service",
             5: "retired/pensioned", 6: "housewife not otherwise employed", 7: "student", 8: "unemployed",
             9: "disabled", 10: "other", **NEG},
    "v370a": {1: "under 2,000", 2: "2,000-5,000", 3: "5,000-10,000", 4: "10,000-20,000", 5: "20,000-50,000",
              6: "50,000-100,000", 7: "100,000-500,000", 8: "500,000 and more", **NEG},
    "v371b_N1": {27601: "DE-1: Baden-Wuerttemberg", 27602: "DE-2: Bayern", 90923: "GB-NIR: Northern Ireland", **NEG},
    "v371b_N2": {2760101: "DE: Baden-Wuerttemberg - Stuttgart", 2760201: "DE: Bayern - Oberbayern",
                 9092301: "GB: Northern Ireland - Northern Ireland", **NEG},
    "v371b_N3": NEG,
}
DECLARED_MISSING = [v for v in LABELS if v not in ("country", "v370a", "v371b_N1", "v371b_N2", "v371b_N3")]


@pytest.fixture(scope="module")
def za4800(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("za4800")
    pyreadstat.write_sav(pd.DataFrame(ROWS), str(folder / "ZA4800_v4-0-0.sav"), variable_value_labels=LABELS,
                         missing_ranges={v: [{"lo": -2, "hi": -1}] for v in DECLARED_MISSING})
    return folder


def test_a_file_in_the_za4800_layout_validates(za4800: Path) -> None:
    code, out, err = run("validate", "--data", str(za4800))
    assert (code, err) == (0, ""), out
    assert out.splitlines()[-1].startswith("ok: 0 error(s), 0 warning(s)")


def test_a_file_in_the_za4800_layout_builds_with_values_read_independently(za4800: Path, tmp_path: Path) -> None:
    db = tmp_path / "evs08.duckdb"
    code, _out, err = run("build", "--data", str(za4800), "--db", str(db))
    assert code == 0, err
    raw, _ = pyreadstat.read_sav(str(za4800 / "ZA4800_v4-0-0.sav"), user_missing=True)
    iso = {792: "TR", 372: "IE", 504: "MA", 276: "DE"}
    want = []
    for r in raw.itertuples():
        want.append((
            str(int(r.id_cocas)), {276: "DE", 909: "GB"}[int(r.country)],
            {1: True, 2: False}[int(r.v306)], iso.get(int(r.v307b)),
            {1: True, 2: False}[int(r.v304)], iso.get(int(r.v305b)),
            r.v308 if r.v308 > 0 else None, iso.get(int(r.v310b)), iso.get(int(r.v312b)),
            {1: "very_good", 2: "good", 3: "fair", 4: "bad", 5: "very_bad"}[int(r.v9)],
            r.weight_g))
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = con.execute(
            "SELECT respondent_id, country, born_in_country, country_of_birth, citizen, citizenship, year_of_arrival,"
            " father_country_of_birth, mother_country_of_birth, self_rated_health, weight FROM respondents"
            " ORDER BY respondent_id").fetchall()
        other = con.execute(
            "SELECT DISTINCT belonging_country_missing, region_nuts_missing, city_missing FROM respondents").fetchall()
    finally:
        con.close()
    assert got == sorted(want)
    assert other == [("not_asked", "not_asked", "not_asked")]


EVS2017_MIXED_MODE = {-8.0: "follow-up non response", -9.0: "no follow-up", -10.0: "multiple answers Mail"}


def test_evs_2017s_mixed_mode_codes_take_their_reasons_from_the_files_labels(tmp_path: Path) -> None:
    """ZA7500 labels its mixed-mode codes -8 'follow-up non response', -9 'no follow-up', -10 'multiple answers
    Mail' (the crosswalk's survey-level no_answer, not_asked, invalid); no wording harmonise read, so a real file
    whose rows hold them was refused with "3 codes have no mapping" (an audit of EVS layouts)."""
    code, _, err = run("fixtures", "--out", str(tmp_path / "fx"), "--survey", "evs", "--rows", "200", "--seed", "3")
    assert code == 0, err
    (source,) = sorted((tmp_path / "fx").rglob("ZA7500*.sav"))
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    df.loc[[0, 1, 2], "v121"] = list(EVS2017_MIXED_MODE)
    labels = {**meta.variable_value_labels, "v121": {**meta.variable_value_labels.get("v121", {}), **EVS2017_MIXED_MODE}}
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_sav(df, str(data / source.name), column_labels=meta.column_names_to_labels,
                         variable_value_labels=labels, missing_ranges=meta.missing_ranges)
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT source_row, trust_parliament, trust_parliament_missing FROM respondents "
                           "WHERE source_row <= 3 ORDER BY source_row").fetchall() == [
            (1, None, "no_answer"), (2, None, "not_asked"), (3, None, "invalid")]
    finally:
        con.close()


def test_a_trend_file_of_the_study_is_not_called_a_new_round(fixtures_dir: Path, tmp_path: Path) -> None:
    """EVS's trend file (ZA7503) holds `studyno` 7503 and the integrated names (A001 …), none of the wave files'. The
    message said to declare a new round with `content: {studyno: 7503}`, which no rule of the crosswalk would serve;
    a file holding few of the variables the nearest wave reads is said to be another layout of the study."""
    (source,) = sorted((fixtures_dir / "evs").glob("ZA7500*.sav"))
    df, _ = pyreadstat.read_sav(str(source), user_missing=True)
    trend = df.rename(columns={c: f"A{i:03d}" for i, c in enumerate(df.columns) if c != "studyno"})
    (tmp_path / "trend").mkdir()
    pyreadstat.write_sav(trend.assign(studyno=7503.0), str(tmp_path / "trend" / "ZA7503_v3-0-0.sav"))
    code, _, err = run("validate", "--data", str(tmp_path / "trend"))
    assert code == 2
    assert err.splitlines()[-1] == (
        "it holds evs's studyno with a value no evs wave declares, but none of the variables the evs waves read: "
        "another file of the study with its own variable names (a trend or cumulative file), not a new round of the "
        "layouts the crosswalk maps — harmonise the wave files (ZA4800*, ZA7500*) or write a crosswalk for its layout "
        "(harmonise scaffold FILE)")
    keep = [c for c in df.columns if c in ("studyno", "country", "v225", "v226")]  # 3 of the variables 2017 reads
    (tmp_path / "few").mkdir()
    pyreadstat.write_sav(df[keep].assign(studyno=7503.0), str(tmp_path / "few" / "ZA7503_v3-0-0.sav"))
    code, _, err = run("validate", "--data", str(tmp_path / "few"))
    assert code == 2 and "but only 3 of the " in err and " variables the nearest evs wave (2017) reads: another file " in err
