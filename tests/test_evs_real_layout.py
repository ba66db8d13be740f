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
ROWS = [
    dict(studyno=4800, id_cocas=27600001, country=276, c_abrv="DE", year=2008, weight_g=1.2, v8=1, v9=2, v66=7,
         v211=2, v256=1, v268=3, v271=8, v302=2, v303=1968, age=40, v304=2, v305b=792, v306=2, v307b=792,
         v308=1990, v309=2, v310b=792, v311=2, v312b=792, v336=3, v337=1, v370a=6, v371b_N1=27601,
         v371b_N2=2760101, v371b_N3=276010101),
    dict(studyno=4800, id_cocas=27600002, country=276, c_abrv="DE", year=2008, weight_g=0.8, v8=4, v9=5, v66=-1,
         v211=-2, v256=4, v268=-1, v271=1, v302=1, v303=1950, age=58, v304=1, v305b=-3, v306=1, v307b=-3, v308=-3,
         v309=2, v310b=504, v311=1, v312b=-3, v336=6, v337=5, v370a=8, v371b_N1=27602, v371b_N2=2760201,
         v371b_N3=276020101),
    dict(studyno=4800, id_cocas=90900003, country=909, c_abrv="GB-NIR", year=2009, weight_g=1.0, v8=2, v9=3,
         v66=10, v211=4, v256=2, v268=10, v271=5, v302=1, v303=1985, age=24, v304=1, v305b=-3, v306=2, v307b=372,
         v308=2000, v309=2, v310b=372, v311=1, v312b=-3, v336=5, v337=8, v370a=2, v371b_N1=90923,
         v371b_N2=9092301, v371b_N3=909230101),
]
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
    code, out, err = run("build", "--data", str(za4800), "--db", str(db))
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
