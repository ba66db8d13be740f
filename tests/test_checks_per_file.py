"""What several data files' checks find alike is said once, naming the files and summing their rows
(harmonise/checks/per_file.py): a wave's 30 country files gave 30 near-identical lines that did not say which
file each was."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyreadstat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmonise.checks.per_file import DATA_FILE, grouped, of_file
from harmonise.errors import Issue
from harmonise.spec.project import load_project
from tests.conftest import ROOT, keep_named, run

UA = ROOT.parent / "shared" / "data" / "ess_real" / "ess10_ua" / "ESS10UAe2_0.sav"


def _note(rows: int, name: str, code: int = 3, path: str = "") -> Issue:
    issue = Issue(f"vote: the file declares code(s) {code} ({rows:,} rows) user-missing", code="declared-missing-value",
                  severity="note", file="mappings/ess.yaml", line=349, path="targets.voted_national", survey="ess",
                  wave="10", variable="vote", hint="give the codes a missing reason")
    return of_file(issue, name, path or f"data/{name}")


def test_findings_alike_but_for_their_rows_are_one_naming_the_files_and_summing_the_rows() -> None:
    out = grouped([_note(35, "ESS10GE.sav"), _note(1_036, "ESS10MD.sav"), _note(50, "ESS10UA.sav")], 3)
    assert [i.message for i in out] == [("in 3 files (ESS10GE.sav, ESS10MD.sav, ESS10UA.sav): vote: the file declares "
                                        "code(s) 3 (1,121 rows) user-missing")]
    assert out[0].extra == {"data_files": ["ESS10GE.sav", "ESS10MD.sav", "ESS10UA.sav"]}
    assert (out[0].file, out[0].line, out[0].hint) == ("mappings/ess.yaml", 349, "give the codes a missing reason")


def test_a_finding_of_another_code_stays_apart_and_names_its_file() -> None:
    out = grouped([_note(35, "ESS10GE.sav"), _note(36, "ESS10MD.sav", code=7), _note(50, "ESS10UA.sav")], 3)
    assert [i.message for i in out] == [
        "in 2 files (ESS10GE.sav, ESS10UA.sav): vote: the file declares code(s) 3 (85 rows) user-missing",
        "in ESS10MD.sav: vote: the file declares code(s) 7 (36 rows) user-missing"]


def test_one_files_finding_is_named_only_when_several_files_were_read() -> None:
    assert grouped([_note(35, "ESS10GE.sav")], 1)[0].message == "vote: the file declares code(s) 3 (35 rows) user-missing"
    assert grouped([_note(35, "ESS10GE.sav")], 2)[0].message == \
        "in ESS10GE.sav: vote: the file declares code(s) 3 (35 rows) user-missing"


def test_a_finding_naming_its_file_names_the_files_in_its_place_and_others_pass_unchanged() -> None:
    def lacking(name: str) -> Issue:
        return of_file(Issue(f"ess wave 11: data/{name}: 34 target(s) not available in this file", code="not-available",
                             severity="warning", survey="ess", wave="11"), name, f"data/{name}")

    static = Issue("a rule without data", code="compile")
    out = grouped([static, lacking("A.dta"), lacking("A.sav"), static], 2)
    assert [i.message for i in out] == ["a rule without data",
                                        "ess wave 11: 2 files (A.dta, A.sav): 34 target(s) not available in this file",
                                        "a rule without data"]


def test_a_files_two_findings_of_one_shape_are_not_joined_with_each_other() -> None:
    out = grouped([_note(3, "A.sav"), _note(4, "A.sav"), _note(5, "B.sav")], 2)
    assert [i.message for i in out] == [("in 2 files (A.sav, B.sav): vote: the file declares code(s) 3 (8 rows) "
                                        "user-missing"), "in A.sav: vote: the file declares code(s) 3 (4 rows) user-missing"]


def test_more_than_five_files_are_counted_not_listed() -> None:
    out = grouped([_note(10, f"ESS9{c}.sav") for c in ("AT", "BE", "CH", "CZ", "DE", "EE", "ES")], 7)
    assert out[0].message.startswith("in 7 files (ESS9AT.sav, ESS9BE.sav, ESS9CH.sav, ESS9CZ.sav, ESS9DE.sav and 2 "
                                     "more (--format json lists all)): vote: the file declares code(s) 3 (70 rows)")
    assert out[0].to_dict()["extra"]["data_files"] == [f"ESS9{c}.sav" for c in ("AT", "BE", "CH", "CZ", "DE", "EE", "ES")]


@given(st.lists(st.tuples(st.sampled_from(["A.sav", "B.sav", "C.dta", "D.sav"]), st.sampled_from([3, 7]),
                          st.integers(0, 2_000_000)), max_size=12))
def test_no_file_and_no_row_is_lost(found: list[tuple[str, int, int]]) -> None:
    """Every file stays named (or is the one file of a one-file run) and the rows of each code add up."""
    files = len({name for name, _, _ in found})
    out = grouped([_note(rows, name, code) for name, code, rows in found], files)
    for code in (3, 7):
        mine = [i for i in out if f"code(s) {code} " in i.message]
        total = sum(int(re.search(r"\(([\d,]+) rows\)", i.message).group(1).replace(",", "")) for i in mine)  # type: ignore[union-attr]
        assert total == sum(rows for _, c, rows in found if c == code)
        named = {n for i in mine for n in i.extra.get("data_files", [i.extra.get(DATA_FILE)])}  # type: ignore[union-attr]
        assert named == {name for name, c, _ in found if c == code}
        if files > 1:
            assert all(any(n in i.message for n in ("A.sav", "B.sav", "C.dta", "D.sav")) for i in mine)


@pytest.fixture(scope="module")
def three_countries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real ESS10 UA national release as three country files of one round (as a wave's country files are)."""
    if not UA.is_file():
        pytest.fail(f"the real ESS file is required at {UA} (../shared beside the repository)")
    df, meta = pyreadstat.read_sav(str(UA), user_missing=True)
    df = keep_named(df)  # the variables the crosswalk names (the others are read by no rule)
    folder = tmp_path_factory.mktemp("countries")
    for i, country in enumerate(("UA", "MD", "GE")):
        part = df.assign(cntry=country, idno=df["idno"] + i * 100_000).iloc[: len(df) - 400 * i]
        pyreadstat.write_sav(part, str(folder / f"ESS10{country}.sav"),
                             column_labels={k: v for k, v in meta.column_names_to_labels.items() if k in df},
                             variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in df},
                             missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in df})
    return folder


def test_a_rounds_country_files_say_what_they_share_once(three_countries: Path) -> None:
    code, out, err = run("validate", "--data", str(three_countries))
    assert code == 0, err
    lines = [line.split(" (e.g. respondent")[0] for line in (out + err).splitlines()
             if line.startswith(("warning:", "note:"))]
    files = "3 files (ESS10GE.sav, ESS10MD.sav, ESS10UA.sav)"
    assert lines == [
        (f"note: mappings/ess.yaml:{_line('voted_national:')} targets.voted_national: in {files}: vote: the file declares "
        f"code(s) 3 ({_vote_3(three_countries):,} rows) user-missing, but the rule maps them as values of "
        "voted_national: stored as values — if the file is right, give the codes a missing reason under the rule's "
        "missing: (a wave override); if the declaration is the file's slip, nothing to do"),
        # Ukrainians born in Moldova or Georgia, in the files made Moldova's and Georgia's: born abroad in the country
        (f"note: ess wave 10: born abroad, with the country of interview as country of birth in "
         f"{_born_in_own_country(three_countries)} of the {_judged(three_countries):,} row(s) it judges")]
    assert out.splitlines()[-1] == "ok: 0 error(s), 0 warning(s), 2 note(s), 3 file(s), 3,393 rows"


def _line(text: str) -> int:
    lines = (ROOT / "mappings" / "ess.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == text)


def _born_in_own_country(folder: Path) -> int:
    """Respondents born abroad (brncntr 2) whose country of birth is their file's country."""
    frames = [pyreadstat.read_sav(str(p), usecols=["cntry", "brncntr", "cntbrthd"])[0] for p in folder.glob("*.sav")]
    return sum(int(((f["brncntr"] == 2) & (f["cntbrthd"] == f["cntry"])).sum()) for f in frames)


def _judged(folder: Path) -> int:
    """The rows the statement judges: born in the country (it is true whatever the country of birth), or born
    abroad with a country of birth."""
    frames = [pyreadstat.read_sav(str(p), usecols=["brncntr", "cntbrthd"])[0] for p in folder.glob("*.sav")]
    return sum(int(((f["brncntr"] == 1) | ((f["brncntr"] == 2) & f["cntbrthd"].str.fullmatch("[A-Z]{2}"))).sum())
               for f in frames)


def _vote_3(folder: Path) -> int:
    return sum(int((pyreadstat.read_sav(str(p), usecols=["vote"], user_missing=True)[0]["vote"] == 3).sum())
               for p in folder.glob("*.sav"))


def test_a_files_header_findings_are_said_once_for_the_files_that_share_them(tmp_path: Path) -> None:
    """What a file's header says (its encoding guessed, its drift from the declared codebook) is one finding for the
    files that share it: two copies of the real ESS9 GB Stata 12 file (latin-1, no encoding recorded)."""
    source = ROOT.parent / "shared" / "data" / "ess_real" / "ess9_gb_dta" / "ESS9GB.dta"
    for name in ("ESS9GB.dta", "ESS9XX.dta"):
        shutil.copy(source, tmp_path / name)
    code, out, err = run("validate", "--data", str(tmp_path))
    assert code == 1  # the same respondents twice
    notes = [line for line in (out + err).splitlines() if "no usable text encoding" in line]
    assert notes == [("note: ess wave 9: 2 files (ESS9GB.dta, ESS9XX.dta): the file records no usable text encoding; "
                     "its texts were read as UTF-8 where valid, else Windows-1252 — pass --encoding to read them "
                     "otherwise")]


def test_findings_located_at_their_data_file_are_joined_at_none() -> None:
    def empty(name: str) -> Issue:
        return of_file(Issue("the file has no rows: ess wave 9 adds no respondents", code="no-rows", severity="warning",
                             file=f"data/{name}", survey="ess", wave="9"), name, f"data/{name}")

    alone = grouped([empty("A.sav")], 2)
    assert (alone[0].file, alone[0].message) == ("data/A.sav", "the file has no rows: ess wave 9 adds no respondents")
    both = grouped([empty("A.sav"), empty("B.sav")], 2)
    assert [(i.file, i.message) for i in both] == [
        (None, "in 2 files (A.sav, B.sav): the file has no rows: ess wave 9 adds no respondents")]


def test_files_no_wave_recognises_are_one_finding(tmp_path: Path, ess8: Path) -> None:
    """Three files that match no crosswalk wave alike: one warning naming them beside a file that is harmonised, one
    error naming them when nothing else is (exit 2)."""
    import pandas as pd

    for name in ("a.sav", "b.sav", "c.sav"):
        pyreadstat.write_sav(pd.DataFrame({"x": [1, 2], "y": [3, 4]}), str(tmp_path / name))
    code, out, err = run("validate", "--data", str(tmp_path))
    assert code == 2
    assert err.startswith("error: 3 files (a.sav, b.sav, c.sav): matches no crosswalk wave; looked for ess: ")
    assert str(tmp_path) not in err
    shutil.copy(ess8, tmp_path / "ESS8FR.sav")
    code, out, err = run("validate", "--data", str(tmp_path))
    assert code == 0, err
    unmatched = [line for line in (out + err).splitlines() if "matches no crosswalk wave" in line]
    assert len(unmatched) == 1 and unmatched[0].startswith("warning: 3 files (a.sav, b.sav, c.sav): matches no ")
    assert unmatched[0].endswith("; it is not harmonised — assign it with --survey S --wave W (and --country CC for a "
                                 "single-country file without a country variable, --city NAME for a one-city file "
                                 "without a city variable), or add a `content` or `files` entry for it to the "
                                 "survey's crosswalk")
    # the file names each survey's waves declare: the first four rounds' stems and the extensions, in the waves'
    # order (sorted, four patterns named ESS10 in four formats); every pattern in the JSON form
    assert "file names ESS1[!0-9]*, ESS2[!0-9]*, ESS3[!0-9]*, ESS4[!0-9]* … (.sav .zsav .dta .por) | " in unmatched[0]
    assert "(--format json lists every file name pattern)" in unmatched[0]
    code, out, _ = run("validate", "--data", str(tmp_path), "--format", "json")
    (issue,) = [i for i in json.loads(out)["issues"] if i["code"] == "unmatched-file"]
    patterns = issue["extra"]["file_patterns"]
    waves = load_project(ROOT).surveys["ess"].crosswalk.waves
    assert patterns["ess"] == list(dict.fromkeys(p for w in waves for p in w.files))
    assert len(patterns["ess"]) == 4 * len(waves) and "ESS11[!0-9]*.dta" in patterns["ess"]
    assert "ESS11" not in unmatched[0]


def test_digits_in_a_file_name_are_not_row_counts() -> None:
    def lacking(name: str, rows: int) -> Issue:
        return of_file(Issue(f"ess wave 9: data/{name}: no value in {rows:,} rows", code="content-missing",
                             severity="warning", survey="ess", wave="9"), name, f"data/{name}")

    out = grouped([lacking("2000 rows.sav", 10), lacking("3000 rows.sav", 5)], 2)
    assert [i.message for i in out] == ["ess wave 9: 2 files (2000 rows.sav, 3000 rows.sav): no value in 15 rows"]
