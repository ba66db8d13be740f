"""Files as researchers hold them (issue 17): recognition by content, several files per wave, files
given twice, files without key variables, relabelled codes and renamed variables — on copies of a
real ESS file written with pyreadstat (the originals are read in place, never copied into the repo)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyreadstat
import pytest
from conftest import ESS8_SAID, ROOT, folder_db, keep_named, read_in_chunks_from, run

from harmonise.discover import discover
from harmonise.errors import InputError, UsageError
from harmonise.recognition import Options
from harmonise.spec.project import load_project

REAL = ROOT.parent / "shared" / "data" / "ess_real"
FI = REAL / "ess9_nordic" / "ESS9FI.sav"
pytestmark = pytest.mark.skipif(not FI.is_file(), reason="../shared/data/ess_real not present")


@pytest.fixture(scope="module")
def finland() -> tuple[pd.DataFrame, Any]:
    """The Finnish file's variables that the ESS declarations name (conftest.keep_named) and its metadata: the
    copies are written by pyreadstat row by row, and the ~500 variables no declaration names were most of this
    module's time."""
    df, meta = pyreadstat.read_sav(str(FI), user_missing=True)
    return keep_named(df), meta


def write_copy(real: tuple[pd.DataFrame, Any], path: Path, *, drop: tuple[str, ...] = (),
               rename: dict[str, str] | None = None, relabel: dict[str, dict[Any, str]] | None = None) -> Path:
    """A copy of the real file with variables dropped, renamed or relabelled (metadata kept)."""
    df, m = real
    rename = rename or {}

    def keep(d: dict[str, Any]) -> dict[str, Any]:
        return {rename.get(k, k): v for k, v in d.items() if k not in drop}

    labels = keep(m.variable_value_labels)
    for var, changed in (relabel or {}).items():
        labels[var] = {**labels[var], **changed}
    path.parent.mkdir(parents=True, exist_ok=True)
    pyreadstat.write_sav(df.drop(columns=list(drop)).rename(columns=rename), str(path),
                         column_labels=keep(m.column_names_to_labels), variable_value_labels=labels,
                         missing_ranges=keep(m.missing_ranges), variable_measure=keep(m.variable_measure),
                         variable_format=keep(m.original_variable_types))
    return path


def test_a_subset_given_as_sav_and_dta_is_an_error_naming_both_files(tmp_path: Path,
                                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    db = tmp_path / "h.duckdb"
    shutil.copy(folder_db(tmp_path_factory, REAL / "ess11_subset_sav"), db)  # the sav edition built, once per run
    before = db.read_bytes()
    code, _, err = run("build", "--data", str(REAL / "ess11_subset_dta"), "--data", str(REAL / "ess11_subset_sav"),
                         "--db", str(db))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert ("targets.respondent_id: the same respondents in several files of ess wave 11: ESS11-subset.dta and "
            "ESS11-subset.sav — 1,684 respondent id(s) occur more than once, e.g. GB-50095 (2×)") in errors[0]
    assert db.read_bytes() == before  # the previous database is intact


def test_a_file_without_wave_country_and_ids_needs_the_options_that_supply_them(finland: tuple[pd.DataFrame, Any],
                                                                                  tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_copy(finland, data / "stripped.sav", drop=("essround", "idno", "cntry"))
    db = tmp_path / "h.duckdb"
    code, out, err = run("build", "--data", str(data), "--db", str(db))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {data / 'stripped.sav'}: matches no crosswalk wave; looked for ess: content "
                          "essround in 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11; file names")
    assert "assign it with --survey S --wave W (and --country CC" in err
    code, out, err = run("build", "--data", str(data), "--db", str(db), "--survey", "ess", "--wave", "9")
    assert (code, err) == (2, (f"error: {data / 'stripped.sav'}: has no country variable — pass --country CC "
                               "(ISO 3166-1 alpha-2) for a single-country file\n"))
    code, out, err = run("build", "--data", str(data), "--db", str(db), "--survey", "ess", "--wave", "9",
                         "--country", "fi")
    assert code == 0, err
    assert "the file lacks idno: respondent ids are made from the file name and the row number" in err
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT count(*), count(DISTINCT respondent_id), min(country), max(country), "
                       "count(psu), min(respondent_id) FROM respondents").fetchone()
    assert rows == (len(finland[0]), len(finland[0]), "FI", "FI", len(finland[0]), "stripped-1")
    assert con.execute("SELECT source_labels FROM lineage WHERE target = 'country'").fetchone() == (
        "cntry: supplied by --country FI",)


def test_options_naming_no_survey_wave_or_country_are_usage_errors(tmp_path: Path) -> None:
    project = load_project(ROOT)
    for opts, message in [(Options(wave="9"), "--wave needs --survey"),
                          (Options(survey="esss"), "--survey esss: no such survey"),
                          (Options(survey="ess", wave="12"), "--wave 12: ess has no such wave"),
                          (Options(country="XY"), "--country XY: not a country code")]:
        with pytest.raises(UsageError, match=message):
            discover(project, [FI], opts)
    with pytest.raises(InputError, match="no such file or folder"):
        discover(project, [tmp_path / "nowhere"])


def test_files_are_recognised_by_content_whatever_their_names(finland: tuple[pd.DataFrame, Any],
                                                              tmp_path: Path) -> None:
    project = load_project(ROOT)
    jobs, issues = discover(project, [REAL / "ess4_extract", REAL / "ess9_nordic"])
    assert [(j.crosswalk.survey, j.wave.wave, j.path.name) for j in jobs] == [
        ("ess", "4", "ESS04_2008.dta"), ("ess", "9", "ESS9FI.sav"), ("ess", "9", "ESS9NO.sav"), ("ess", "9", "ESS9SE.sav")]
    assert issues == []
    # a file named like round 8 whose rows say round 9 is round 9
    jobs, _ = discover(project, [write_copy(finland, tmp_path / "ESS8_misnamed.sav")])
    assert [j.wave.wave for j in jobs] == ["9"]


def test_relabelled_codes_contradicting_the_code_table_are_each_reported(finland: tuple[pd.DataFrame, Any],
                                                                         tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_copy(finland, data / "ESS9FI.sav", relabel={"cntry": {"FI": "Estonia"},
                                                       "cntbrthd": {"SE": "Norway", "EE": "Latvia"}})
    code, _, err = run("validate", "--data", str(data))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0].endswith("targets.country.table: the labels of cntry contradict the codes the rule maps: 'FI' is "
                              "labelled 'Estonia' (EE) but maps to FI (Finland) — the file's codes follow another "
                              "scheme than the code table: map them by code in the rule's map (a wave override), or "
                              "check that the file is the survey and wave it seems")
    assert ("overrides.country_of_birth.table: the labels of cntbrthd contradict the codes the rule maps: "
            "'EE' is labelled 'Latvia' (LV) but maps to EE (Estonia); 'SE' is labelled 'Norway' (NO) but maps to SE "
            "(Sweden)") in errors[1]


def test_codes_carrying_another_codes_declared_label_are_an_error_a_reworded_label_is_not(
        finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """A researcher's recode keeps data and labels consistent but no longer the declared codes: harmonised by the
    declared codes, 1,692 Polish respondents' sex came out swapped without a word (only a drift note)."""
    data = tmp_path / "data"
    write_copy(finland, data / "ESS9FI.sav", relabel={"gndr": {1.0: "Female", 2.0: "Male"},
                                                      "trstprl": {0.0: "Complete trust", 10.0: "No trust at all",
                                                                  77.0: "Don't know", 88.0: "Refusal"},
                                                      "stflife": {0.0: "Extremely dissatisfied!"}})
    code, out, err = run("validate", "--data", str(data))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert errors[0].endswith(
        "targets.sex.map: wave 9: the file's labels of gndr contradict the codes the rule for sex maps (written for "
        "surveys/ess/codebook_9.yaml): 1 is labelled 'Female', the declared label of 2, but maps to 'male', not "
        "'female'; 2 is labelled 'Male', the declared label of 1, but maps to 'female', not 'male' — the file's codes "
        "were recoded (by a researcher or a national release): map the file's own codes by their labels in a wave "
        "override of the rule (`harmonise adapt` drafts it; `harmonise inspect FILE` lists the "
        "labels), or harmonise the original release")
    # the swapped missing codes take the reasons their labels name (decision 102): 77 don't know, 88 refused
    assert ("targets.trust_parliament.range: wave 9: the file's labels of trstprl contradict the codes the rule for "
            "trust_parliament maps (written for surveys/ess/codebook_9.yaml): 0 is labelled 'Complete trust', the "
            "declared label of 10, but maps to 0, not 10; 10 is labelled 'No trust at all', the declared label of 0, "
            "but maps to 10, not 0 — ") in errors[1]
    assert not any("stflife" in line for line in errors)  # reworded, not another code's label: a drift note
    assert ("note: surveys/ess/codebook_9.yaml: drift in stflife: label of code 0 changed from 'Extremely "
            "dissatisfied' to 'Extremely dissatisfied!'") in out + err


def test_a_file_its_name_matches_that_holds_another_waves_rows_is_read_wave_by_wave(finland: tuple[pd.DataFrame, Any],
                                                                                    tmp_path: Path) -> None:
    """Rounds 9 and 10 interleaved match no wave by content; the name matched round 9 and every row was stored as
    round 9 without a word; then it was an error. Its rows are harmonised wave by wave now, with a note. Rows whose
    round is empty at first and another wave's later are found as the file is harmonised: rows of no known wave."""
    df, meta = finland
    mixed = df.assign(essround=[9.0 if i % 2 else 10.0 for i in range(len(df))])
    write_copy((mixed, meta), tmp_path / "a" / "ESS9FI.sav")
    code, out, err = run("validate", "--data", str(tmp_path / "a"))
    assert code == 0, err
    assert (f"note: ess: {tmp_path / 'a' / 'ESS9FI.sav'}: holds rows of ess waves 9 ({len(df) // 2:,} rows), 10 "
            f"({len(df) - len(df) // 2:,} rows) by its essround: each wave's rows are harmonised with that wave's "
            "rules") in out.splitlines()
    late = df.assign(essround=[float("nan")] * 100 + [9.0] * (len(df) - 101) + [10.0])
    write_copy((late, meta), tmp_path / "b" / "ESS9FI.sav")
    code, _, err = run("validate", "--data", str(tmp_path / "b"))
    assert code == 1
    assert err.startswith(f"error: ess: {tmp_path / 'b' / 'ESS9FI.sav'}: holds rows of ess waves 9 ({len(df) - 101:,} "
                          "rows), 10 (1 row) by its essround, and 100 row(s) without a value: rows of no known wave, "
                          "which no wave would store — ")


def test_one_renamed_variable_is_exactly_one_error_naming_the_wave_by_id(finland: tuple[pd.DataFrame, Any],
                                                                         tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_copy(finland, data / "ESS9FI.sav", rename={"gndr": "gender"})
    code, _, err = run("validate", "--data", str(data))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].endswith("targets.sex: wave 9: gndr is not in the file, but gender has its label ('Gender') and "
                              "codes: the variable seems renamed; sex would be stored as not available — add "
                              "`alternatives: [{source: gender}]` (or the expression with gender) to the rule in "
                              "waves[9].overrides, or rename the variable back")
    assert "waves.8" not in err


def test_a_dropped_variable_is_not_available_with_one_grouped_warning(finland: tuple[pd.DataFrame, Any],
                                                                      tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_copy(finland, data / "ESS9FI.sav", drop=("gndr", "region", "regunit"))
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [(f"warning: ess wave 9: {data / 'ESS9FI.sav'}: 3 target(s) not available in this file, which "
                         "lacks their variables: region_nuts (regunit and region, or region), city (region), sex (gndr); "
                         "they are stored as "
                         "missing (not_available) — expected for extracts and subsets; for a complete release, the "
                         "variable may be named differently in this edition: add it as an alternative of the rule")]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FILTER (WHERE sex_missing = 'not_available'), count(*) "
                       "FROM respondents").fetchone() == (len(finland[0]), len(finland[0]))
    assert con.execute("SELECT kind, rule FROM lineage WHERE target = 'sex'").fetchone() == (
        "absent", "not available in this file (it lacks gndr)")


def test_json_output_counts_the_findings_by_category() -> None:
    import json

    code, out, _ = run("validate", "--data", str(REAL / "ess11_subset_sav"), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["categories"] == {"drift": 1, "not-available": 1, "approximate-alternative": 1}
    assert [(i["severity"], i["code"], i["doc"]) for i in data["issues"]] == [
        ("note", "drift", "docs/issues.md#drift"), ("warning", "not-available", "docs/issues.md#not-available"),
        ("warning", "approximate-alternative", "docs/issues.md#approximate-alternative")]


def test_a_supplement_beside_its_main_file_is_skipped_with_a_note(finland: tuple[pd.DataFrame, Any],
                                                                   tmp_path: Path) -> None:
    """A country-specific supplement: the key variables and items the crosswalk does not read."""
    df = finland[0][["essround", "idno", "cntry"]].assign(fiextra=1.0)
    pyreadstat.write_sav(df, str(tmp_path / "ESS9_FI_supplement.sav"))
    project = load_project(ROOT)
    jobs, issues = discover(project, [FI, tmp_path / "ESS9_FI_supplement.sav"])
    assert [j.path.name for j in jobs] == ["ESS9FI.sav"]
    assert [(i.severity, i.code, i.message) for i in issues] == [
        ("note", "supplement-skipped", (f"{tmp_path / 'ESS9_FI_supplement.sav'}: holds only key variables and items "
                                        "the crosswalk does not read (a supplement to the ess wave 9 files); skipped"))]


@pytest.mark.parametrize("chunked", [False, True], ids=["read-whole", "read-in-chunks"])
def test_a_file_is_recognised_from_its_first_rows_and_every_row_is_checked(finland: tuple[pd.DataFrame, Any],
                                                                           tmp_path: Path, chunked: bool,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery reads a content variable from a file's first CONTENT_SAMPLE rows only; harmonising reads it
    with the rest — in a small file (read whole with its wave's other files) as in a long one (read in chunks:
    files of 1,000 rows or more here, not 10,000, so the Finnish file's 1,755 rows are read in chunks as 7 copies
    of them are as shipped).
    A later row of another wave makes the file one of several waves: the build starts again and reads the file
    wave by wave (it stopped with an error before); given --survey/--wave, such a row stops the build, naming it."""
    from harmonise.pipeline import batch
    from harmonise.recognition import CONTENT_SAMPLE

    read = read_in_chunks_from(monkeypatch, 1_000) if chunked else []
    df, meta = finland
    long = df.reset_index(drop=True)
    long["idno"] = range(1, len(long) + 1)
    assert (len(long) < batch.PREFETCH_MIN_ROWS) == (not chunked) and len(df) > CONTENT_SAMPLE
    first_other = len(long) - 99  # the last 100 rows say round 8
    long.loc[first_other - 1:, "essround"] = 8
    data = tmp_path / "data"
    write_copy((long, meta), data / "ESS9FI-mixed.sav")
    jobs, issues = discover(load_project(ROOT), [data, FI])
    assert issues == []
    assert [(j.path.name, j.wave.wave, j.sampled) for j in jobs] == [("ESS9FI-mixed.sav", "9", True),
                                                                       ("ESS9FI.sav", "9", True)]
    db = tmp_path / "h.duckdb"
    code, _out, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    assert (f"note: ess: {data / 'ESS9FI-mixed.sav'}: holds rows of ess waves 8 (100 rows), 9 ({first_other - 1:,} "
            "rows) by its essround: each wave's rows are harmonised with that wave's rules") in err.splitlines()
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT wave, count(*), min(source_row), max(source_row) FROM respondents "
                           "GROUP BY wave ORDER BY wave").fetchall() == [
            ("8", 100, first_other, len(long)), ("9", first_other - 1, 1, first_other - 1)]
    finally:
        con.close()
    # in chunks by forked readers: the file as round 9's until the rows of round 8 stop that run, then once for both
    assert read == ([("ESS9FI-mixed.sav", True)] * 2 if chunked else []), read
    # given --survey/--wave, the file is still checked row by row: its rows of round 8 are not stored as round 9
    db.unlink()
    code, _, err = run("build", "--data", str(data), "--survey", "ess", "--wave", "9", "--db", str(db))
    assert code == 1 and (f"essround = 8 at row {first_other:,}, but the essround values of its first "
                          f"{CONTENT_SAMPLE:,} rows are 9: rows of several waves, which would all be stored as ess "
                          "wave 9 (given by --survey/--wave)") in err
    assert not db.exists()
    assert read == ([("ESS9FI-mixed.sav", True)] * 3 if chunked else []), read


def test_a_cumulative_file_is_a_file_of_several_waves(tmp_path: Path, finland: tuple[pd.DataFrame, Any]) -> None:
    """A file whose first rows hold two rounds (a cumulative or data-wizard download, shuffled) "matched no
    crosswalk wave" (exit 2) and was told to use --survey/--wave, which stored every row as one round (an audit
    of real-file variants). Its rows are harmonised wave by wave now; given --survey/--wave, it is an error."""
    df, meta = finland
    mixed = pd.concat([df.head(40), df.head(40).assign(essround=8.0, idno=df["idno"].head(40) + 10**6)])
    mixed = mixed.sample(frac=1, random_state=1).reset_index(drop=True)
    data = tmp_path / "cumulative"
    data.mkdir()
    write_copy((mixed, meta), data / "ESS-cumulative.sav")
    code, out, err = run("validate", "--data", str(data))
    assert code == 0, out + err
    assert (f"note: ess: {data / 'ESS-cumulative.sav'}: holds rows of ess waves 8 (40 rows), 9 (40 rows) by its "
            "essround: each wave's rows are harmonised with that wave's rules") in out.splitlines()
    code, out, err = run("validate", "--data", str(data), "--survey", "ess", "--wave", "9")
    assert code == 1, out + err
    assert "it holds essround = 8, 9" in err and "rows of several waves, which would all be stored as one wave" in err


def test_a_file_name_that_is_not_utf8_text_is_named_as_an_input_error(tmp_path: Path) -> None:
    """A name unpacked from a Windows ZIP (latin-1 bytes): DuckDB refused to store it, with advice about rules."""
    import os

    from conftest import ESS8

    name = os.fsdecode(b"ESS8FR_donn\xe9es.sav")
    (tmp_path / name).symlink_to(ESS8)
    for args in (("validate", "--data", str(tmp_path)), ("scaffold", str(tmp_path / name), "--survey", "ess",
                                                          "--wave", "8", "--out", str(tmp_path / "draft.yaml"))):
        code, out, err = run(*args)
        assert (code, out) == (2, "")
        assert err.startswith(f"error: 1 file name(s) are not valid UTF-8 text: {tmp_path}/ESS8FR_donn\\xe9es.sav — "
                              "rename them")
    assert not (tmp_path / "draft.yaml").exists()


def test_a_required_targets_unknown_or_empty_code_is_named_not_left_to_pandera(finland: tuple[pd.DataFrame, Any],
                                                                               tmp_path: Path) -> None:
    """`country` has no missing reason: a code its table lacks ('UK', Eurostat's name for GB) was only pandera's
    "not_nullable failed on column country, e.g. <NA>", naming neither cntry nor the code."""
    df, meta = finland
    odd = df.assign(cntry=["UK"] * (len(df) - 2) + ["", ""])
    write_copy((odd, meta), tmp_path / "data" / "ESS9FI.sav")
    code, _, err = run("validate", "--data", str(tmp_path / "data"))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors[0].endswith(
        f"targets.country: source variable cntry: 2 codes have no mapping for target country: . (no value label) 2, "
        f"UK (no value label) {len(df) - 2:,} ({len(df):,} row(s) in all) — add the codes to the rule's map or missing")
    assert errors[1:] == [("error: ess wave 9: pandera check 'not_nullable' failed on column respondent_id: 2 case(s), "
                          f"e.g. <NA> (first at source row(s) {len(df) - 1} of ESS9FI.sav): respondent_id is required, but its rule (expr: concat(cntry, "
                          "'-', str(idno))) gave no value in those rows")]
    blank = df.assign(cntry=["FI"] * (len(df) - 2) + ["", ""])
    write_copy((blank, meta), tmp_path / "blank" / "ESS9FI.sav")
    code, _, err = run("validate", "--data", str(tmp_path / "blank"))
    assert code == 1
    assert ("targets.country: source variable cntry is empty (system-missing) in 2 row(s), but target country is "
            "required and has no missing reason — give those rows their cntry in the file") in err
    assert "failed on column country" not in err


def test_numbers_stored_as_text_and_codes_outside_a_range_say_so(finland: tuple[pd.DataFrame, Any],
                                                                tmp_path: Path) -> None:
    """gndr and pspwght written as text ("1", "2"): the codes were "not mapped" though the map holds them, and the
    weight's rule said "arithmetic '*' needs numbers" naming no variable; an age of 150 was "no mapping"."""
    df, m = finland

    def errors(frame: pd.DataFrame, text: tuple[str, ...], folder: str) -> list[str]:
        data = tmp_path / folder
        data.mkdir()
        kept = {k for k in frame.columns if k not in text}
        pyreadstat.write_sav(frame, str(data / "ESS9FI.sav"),
                             column_labels={k: v for k, v in m.column_names_to_labels.items() if k in frame.columns},
                             variable_value_labels={k: v for k, v in m.variable_value_labels.items() if k in kept},
                             missing_ranges={k: v for k, v in m.missing_ranges.items() if k in kept})
        code, _, err = run("validate", "--data", str(data))
        assert code == 1
        return [line.split(": ", 2)[2] for line in err.splitlines() if line.startswith("error:")]

    odd = df.assign(gndr=df["gndr"].map(lambda v: f"{v:.0f}"), agea=[150.0, 5.0, *df["agea"].iloc[2:]])
    assert errors(odd, ("gndr",), "a") == [
        ("source variable agea: 2 codes have no mapping for target age: 150 (no value label) 1, 5 (no value label) 1 "
        "(2 row(s) in all), outside the rule's range [13, 120] — give the codes a missing reason (the rule's "
        "`missing`), or widen the range if they are valid"),
        (f"source variable gndr: 2 codes have no mapping for target sex: 1 (no value label) "
        f"{(df['gndr'] == 1).sum():,}, 2 (no value label) {(df['gndr'] == 2).sum():,} ({len(df):,} row(s) in all): "
        "gndr holds text in this file and the rule maps numbers (the codes are the map's, written as text) — make "
        "gndr numeric in the file (Stata `destring`, SPSS `ALTER TYPE`), or map its text codes in a wave override")]
    weight = df.assign(pspwght=df["pspwght"].map(str)).drop(columns=["anweight"])  # the weight: pspwght × pweight
    assert errors(weight, ("pspwght",), "b") == [
        ("arithmetic '*' needs numbers: pspwght holds text (a file storing numbers as text needs them made numeric: "
         "Stata `destring`, SPSS `ALTER TYPE`)")]
    _, out, _ = run("validate", "--data", str(tmp_path / "b"))
    assert out.splitlines()[-1].endswith(", 1 file(s), 0 rows (1 file(s) not read: their errors above stop them)")


def test_a_folder_with_mac_companions_a_dead_link_or_a_file_named_twice(tmp_path: Path) -> None:
    """A Mac's ZIP unpacks `__MACOSX/` and `._NAME` companions (not data); a link whose file is gone was skipped
    without a word; a file named as itself and within its folder was read twice (a duplicate-id error)."""
    from conftest import ESS8

    data = tmp_path / "data"
    (data / "__MACOSX").mkdir(parents=True)
    (data / "ESS8FR.sav").symlink_to(ESS8)
    (data / "._ESS8FR.sav").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    (data / "__MACOSX" / "._ESS8FR.sav").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(data), "--data", str(data / "ESS8FR.sav"))
    assert (code, err) == (0, "")
    assert out.splitlines() == ESS8_SAID
    (data / "ESS8BE.sav").symlink_to(tmp_path / "gone.sav")
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(data))
    assert (code, out) == (2, "")
    assert err == (f"error: 1 data file(s) are links to files that are gone: {data / 'ESS8BE.sav'} — restore the files "
                   "they point to, or remove the links\n")


def test_an_approximate_alternative_and_a_variable_nobody_answered_are_warnings(finland: tuple[pd.DataFrame, Any],
                                                                                tmp_path: Path) -> None:
    """Without anweight and pspwght the weight was design × population weight with no word but in `lineage`;
    gndr = 9 (no answer) in every row gave no warning where an empty gndr did."""
    df, meta = finland
    write_copy((df.assign(gndr=9.0), meta), tmp_path / "data" / "ESS9FI.sav", drop=("anweight", "pspwght"))
    code, out, err = run("validate", "--data", str(tmp_path / "data"))
    assert (code, err) == (0, "")
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert sorted(warnings) == [
        (f"warning: ess wave 9: {tmp_path / 'data' / 'ESS9FI.sav'}: 1 target(s) harmonised by an approximate "
        "alternative of their rule, the file lacking what the rule reads: weight by alternative 2 (expr: dweight * "
        "pweight) — expected for early editions and subsets; use the complete edition for final figures (lineage "
        "says which rule each file used)"),
        (f"warning: mappings/ess.yaml:{_line('  sex:')} targets.sex: source variable gndr holds no answer in any "
        f"of its {len(df):,} rows (no_answer {len(df):,}): every sex is missing — check that the file is the complete "
        "release, and that its missing codes are the survey's")]


def _line(text: str) -> int:
    """The line of ``text`` in mappings/ess.yaml."""
    return next(i for i, line in enumerate((ROOT / "mappings" / "ess.yaml").read_text().splitlines(), 1)
                if line == text)


def test_country_given_for_a_file_with_its_own_country_variable_is_a_warning() -> None:
    """--country DE on the France file was ignored without a word (its cntry is used)."""
    from conftest import ESS8

    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(ESS8), "--country", "DE")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (f"warning: ess wave 8: {ESS8}: has its own country variable (cntry), whose values "
                                   "are used: --country DE is not — --country is for files without a country "
                                   "variable; drop it for this file")


def test_adapt_takes_the_country_its_error_asks_for(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """adapt said "pass --country CC" for a file without cntry, but had no such option."""
    path = write_copy(finland, tmp_path / "ESS9FI.sav", drop=("cntry",))
    code, _, err = run("adapt", str(path), "--like", "ess:9")
    assert code == 2 and "has no country variable — pass --country CC" in err
    code, out, err = run("adapt", str(path), "--like", "ess:9", "--country", "FI")
    assert code == 0, err
    assert out.startswith("ESS9FI.sav harmonises as it is with ess wave 9")


def test_a_wave_given_against_the_files_content_is_harmonised_with_a_warning() -> None:
    """--survey ess --wave 9 on a round-8 file built it as round 9 (2018) without a word."""
    from conftest import ESS8

    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(ESS8), "--survey", "ess", "--wave", "9")
    assert (code, err) == (0, "")
    assert (f"warning: ess wave 9: {ESS8}: assigned to ess wave 9 by --survey/--wave, but essround = 8 in its first 100 "
            "rows, where the wave's is 9: it is harmonised as the wave given — check the wave given; drop "
            "--survey/--wave to recognise the file by its content") in out.splitlines()
    code, out, _ = run("validate", "mappings/ess.yaml", "--data", str(ESS8), "--survey", "ess", "--wave", "8")
    assert code == 0 and "content-overridden" not in out and "assigned to" not in out


def test_a_round_no_wave_declares_is_said_to_be_declared_not_assigned(finland: tuple[pd.DataFrame, Any],
                                                                      tmp_path: Path) -> None:
    """A file of a round the crosswalk does not cover yet (essround = 12) was told to take --survey/--wave, which
    stores its rows as another round's; and adapt --like ess:9 said it harmonised as it is with round 9."""
    df, m = finland
    path = write_copy((df.assign(essround=12.0), m), tmp_path / "new" / "round12.sav")
    code, _, err = run("validate", "--data", str(path.parent))
    assert code == 2
    assert err.splitlines()[-1] == (
        "it holds ess's essround with a value no ess wave declares: if it is a wave the ess crosswalk does not cover "
        "yet (a new round), declare it there — a wave entry with `content: {essround: <its value>}` (copy the "
        "nearest wave's entry), then `harmonise validate --data FILE`; do not assign it to another wave with "
        "--wave, which would store its rows as that wave's")
    code, out, err = run("adapt", str(path), "--like", "ess:9")
    assert code == 1 and "harmonises as it is" not in out
    assert (f"error: ess wave 9: {path}: assigned to ess wave 9 by --like ess:9, but essround = 12 in its first 100 "
            "rows, where the wave's is 9: a build recognises files by their content and would not read it as that "
            "wave — if it is a file of another declared wave, adapt it --like that wave; if it is a wave "
            "mappings/ess.yaml does not declare yet (a new round), declare it there") in err


def test_a_declared_codebook_wrong_where_the_rule_and_the_file_agree_raises_no_contradiction(project: Path) -> None:
    """A declared codebook is a reference written from documentation: when it swaps two labels but the rule maps
    the codes as the file labels them, the file is right and nothing contradicts the rule."""
    from conftest import edit

    edit(project / "surveys" / "ess" / "codebook_9.yaml", "    1: Male\n    2: Female\n", "    1: Female\n    2: Male\n")
    code, out, err = run("validate", "--data", str(FI.parent), project=project)
    assert code == 0, err
    assert "label-contradiction" not in out + err
    assert "drift in gndr: label of code 1 changed from 'Female' to 'Male'" in out


def test_validate_says_what_a_build_says_of_zero_weights(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """`validate --data` said ok of a file weighted 0 throughout, which `build` warned about; a country weighted
    0 among weighted ones was said by neither."""
    df, meta = finland
    write_copy((df.assign(anweight=0.0), meta), tmp_path / "all" / "ESS9FI.sav")
    code, out, _ = run("validate", "--data", str(tmp_path / "all"))
    assert code == 0
    assert (f"warning: ess wave 9: weight is 0 in all {len(df):,} rows with a weight; weighted indicators of this "
            "survey-wave are suppressed (reason weights_all_zero: the weighted total is 0) — check the weight variable "
            "the crosswalk maps, or use --weight none") in out.splitlines()
    write_copy(finland, tmp_path / "one" / "ESS9FI.sav")
    write_copy((df.assign(anweight=0.0, cntry="SE", idno=df["idno"] + 10**6), meta), tmp_path / "one" / "ESS9SE.sav")
    code, out, _ = run("validate", "--data", str(tmp_path / "one"))
    assert code == 0
    assert (f"warning: ess wave 9: weight is 0 in all {len(df):,} rows of SE in ESS9SE.sav; those respondents count "
            "for nothing in the wave's weighted indicators — check the file's weight variable for them") in out.splitlines()


def test_a_file_whose_content_and_name_say_different_waves_is_a_warning(finland: tuple[pd.DataFrame, Any],
                                                                        tmp_path: Path) -> None:
    """Content wins, as before, but silently: a misnamed file, or one whose first rows are another wave's."""
    path = write_copy(finland, tmp_path / "data" / "ESS8FI.sav")
    code, out, err = run("validate", "--data", str(tmp_path / "data"))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"warning: ess wave 9: {path}: its content makes it ess wave 9, but its name matches the files of ess wave 8; "
        "it is harmonised as ess wave 9 (mappings/ess.yaml): content comes before file names — check the file: a "
        "misnamed file is harmless, but a file holding several waves is recognised by its first 100 rows; "
        "--survey ess --wave 8 harmonises it as ess wave 8 (in validate and build alike), whatever the content")


def test_sql_against_a_file_that_does_not_fit_says_so_beside_the_query(finland: tuple[pd.DataFrame, Any],
                                                                       tmp_path: Path) -> None:
    """`sql` compiled against any file without a word (a renamed variable, another survey's file)."""
    path = write_copy(finland, tmp_path / "ESS9FI.sav", drop=("gndr",))
    code, out, err = run("sql", "ess", "9", "--data", str(path))
    assert code == 0 and out.startswith(("WITH", "SELECT"))
    assert err.splitlines() == [
        "note: ESS9FI.sav lacks the variables of 1 target(s), stored as not available: sex",
        (f"note: the SQL above is the query for ESS9FI.sav as it is; `harmonise validate --data {path}` checks the "
        "file against ess wave 9")]
    code, _, err = run("sql", "ess", "9", "--data", str(FI))
    assert (code, err) == (0, "")


def test_adapt_drafts_the_map_of_a_file_whose_codes_were_recoded(finland: tuple[pd.DataFrame, Any],
                                                                 tmp_path: Path) -> None:
    """The error pointed at adapt, which had nothing to draft for recoded codes."""
    path = write_copy(finland, tmp_path / "ESS9FI.sav", relabel={"gndr": {1.0: "Female", 2.0: "Male"}})
    code, out, err = run("adapt", str(path), "--like", "ess:9")
    assert code == 0, err
    assert out.splitlines()[1:] == ["#   gndr: codes recoded in this file: 1 'Female', 2 'Male'",
                                    "      sex: {map: {1: female, 2: male}}"]
    assert err == f"standard output: pasted in, `validate --data {path}` passes\n"


def test_a_reversed_scale_is_an_error_until_a_wave_override_follows_the_files_labels(
        finland: tuple[pd.DataFrame, Any], project: Path, tmp_path: Path) -> None:
    """A researcher's reversed 0-10 scale is an error (decision 59), and `adapt` drafted nothing for a range rule;
    nor could the fix be written: a wave override mapping the codes as their labels say was still an error. Now
    `adapt` drafts the transform, and an override that follows the file's labels is a warning (decision 64)."""
    from conftest import edit, line_of

    from harmonise import connect

    df, meta = finland
    declared = meta.variable_value_labels["trstprl"]
    flipped = df.assign(trstprl=df["trstprl"].where(df["trstprl"] > 10, 10 - df["trstprl"]))
    path = write_copy((flipped, meta), tmp_path / "data" / "ESS9FI.sav",
                      relabel={"trstprl": {float(c): declared[float(10 - c)] for c in range(11)}})
    code, _, err = run("validate", "--data", str(path.parent), project=project)
    assert code == 1
    assert ("the file's labels of trstprl contradict the codes the rule for trust_parliament maps (written for "
            "surveys/ess/codebook_9.yaml): 0 is labelled 'Complete trust', the declared label of 10, but maps to "
            "0, not 10") in err
    code, out, err = run("adapt", str(path), "--like", "ess:9", project=project)
    assert code == 0, err
    assert out.splitlines()[-1] == '      trust_parliament: {transform: "10 - x"}'
    assert err == f"standard output: pasted in, `validate --data {path}` passes\n"

    crosswalk = project / "mappings" / "ess.yaml"
    anchor = 'psu and stratum in the integrated file."\n    overrides:\n'
    edit(crosswalk, anchor, anchor + '      trust_parliament: {transform: "10 - x"}\n')
    code, out, err = run("validate", "--data", str(path.parent), project=project)
    assert code == 0, err
    got = [line for line in out.splitlines() if "maps trstprl by this file's labels" in line]
    assert got == [
        (f"warning: mappings/ess.yaml:{line_of(crosswalk, 'trust_parliament: {transform')} waves[9].overrides."
        "trust_parliament.range: wave 9: the wave's rule for trust_parliament maps trstprl by this file's labels, "
        "which differ from surveys/ess/codebook_9.yaml's: 0 is labelled 'Complete trust', the declared label of "
        "10, and maps to 10; 1 is labelled '9', the declared label of 9, and maps to 9; 2 is labelled '8', "
        "the declared label of 8, and maps to 8; 3 is labelled '7', the declared label of 7, and maps to 7; "
        "4 is labelled '6', the declared label of 6, and maps to 6; 6 is labelled '4', the declared label of "
        "4, and maps to 4; and 4 more; the override applies to every file of wave 9 — a file of the wave with "
        "the declared codes (the original release) would be harmonised by the override too: keep such files out of "
        "this project, or recode the file back")]
    db = tmp_path / "h.duckdb"
    assert run("build", "--data", str(path.parent), "--db", str(db), project=project)[0] == 0
    stored = connect(db).execute("SELECT trust_parliament, count(*) FROM respondents GROUP BY 1 ORDER BY 1").fetchall()
    counts = df["trstprl"][df["trstprl"] <= 10].value_counts()
    assert [(v, n) for v, n in stored if v is not None] == [(float(v), int(counts[v])) for v in sorted(counts.index)]

    edit(crosswalk, 'trust_parliament: {transform: "10 - x"}', 'trust_parliament: {transform: "x * 1"}')
    code, _, err = run("validate", "--data", str(path.parent), project=project)
    assert code == 1 and "the file's labels of trstprl contradict" in err  # an override that does not follow them


def test_a_pandera_failure_names_the_rule_its_values_came_from(finland: tuple[pd.DataFrame, Any],
                                                               tmp_path: Path) -> None:
    """"pandera check 'in_range(…)' failed on column weight" named no source variable."""
    df, meta = finland
    negative = df.assign(pspwght=[-1.5, *df["pspwght"].iloc[1:]])  # without anweight: pspwght × pweight
    write_copy((negative, meta), tmp_path / "data" / "ESS9FI.sav", drop=("anweight",))
    code, _, err = run("validate", "--data", str(tmp_path / "data"))
    assert code == 1
    weight = -1.5 * df["pweight"].iloc[0]
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        (f"error: ess wave 9: pandera check 'in_range(0.0, 1000000000.0)' failed on column weight: 1 case(s), e.g. "
        f"{weight} (source rows 1 of ESS9FI.sav) (from its rule: expr: pspwght * pweight)")]


def test_a_linked_country_folder_is_read_and_a_loop_is_not_walked_twice(tmp_path: Path) -> None:
    """`data/no` a link to Norway's folder was skipped without a word (Path.rglob follows no linked folder): the
    build stored Finland only. A link back up (a loop) does not make files appear twice or hang."""
    from harmonise.discover import data_files

    nordic = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ess_real" / "ess9_nordic"
    (tmp_path / "data" / "fi").mkdir(parents=True)
    (tmp_path / "elsewhere" / "no").mkdir(parents=True)
    (tmp_path / "data" / "fi" / "ESS9FI.sav").symlink_to(nordic / "ESS9FI.sav")
    (tmp_path / "elsewhere" / "no" / "ESS9NO.sav").symlink_to(nordic / "ESS9NO.sav")
    (tmp_path / "data" / "no").symlink_to(tmp_path / "elsewhere" / "no", target_is_directory=True)
    (tmp_path / "data" / "fi" / "up").symlink_to(tmp_path / "data", target_is_directory=True)
    assert [p.relative_to(tmp_path / "data").as_posix() for p in data_files([tmp_path / "data"])] == [
        "fi/ESS9FI.sav", "no/ESS9NO.sav"]


def test_a_code_with_spaces_at_an_end_is_quoted_in_messages() -> None:
    """`cntry` ' PL' was shown as "code  PL": the space did not show (an audit of real-file variants)."""
    from harmonise.checks.accounting import _shown

    assert (_shown(" PL", {}), _shown("PL", {}), _shown("PL ", {"PL ": "Poland"})) == (
        "' PL' (no value label)", "PL (no value label)", "'PL ' ('Poland')")


def test_alpha_3_country_codes_are_said_to_be_alpha_3(tmp_path: Path, finland: tuple[pd.DataFrame, Any]) -> None:
    """`cntry` 'FIN' (a file recoded to ISO alpha-3) was an unmapped code told to be added to the map or missing
    (a required target has no missing reason): the message says what the codes are and how to recode them."""
    df, meta = finland
    write_copy((df.assign(cntry="FIN"), meta), tmp_path / "d" / "ESS9FI.sav")
    code, _, err = run("validate", "--data", str(tmp_path / "d"))
    assert code == 1
    assert ("has no mapping for target country: 1,755 row(s): they read as ISO 3166-1 alpha-3 codes (FIN), and the "
            "rule's table ess_country_codes maps its own codes — recode the variable in the file to the codes "
            "ess_country_codes maps") in err


def test_a_target_not_available_names_what_each_alternative_lacks(tmp_path: Path, finland: tuple[pd.DataFrame, Any]) -> None:
    """ESS9 FI without anweight and pweight: the warning named anweight only, although the alternatives would
    serve the file given pweight (an audit of real-file variants)."""
    df, meta = finland
    write_copy((df, meta), tmp_path / "d" / "ESS9FI.sav", drop=("anweight", "pweight"))
    code, out, _ = run("validate", "--data", str(tmp_path / "d"))
    assert code == 0
    assert "lacks their variables: weight (anweight, or pweight); they are stored as missing" in out


def test_a_country_that_is_several_cities_does_not_stand_in_for_the_city(fixtures_dir: Path, tmp_path: Path) -> None:
    """LOCALMULTIDEM reads the country from its city variable: a one-city file without it, given `--country ES` as
    the error asked, was stored as Barcelona (the first code that is ES), Madrid's respondents with Barcelona's city,
    region and ids, without a word."""
    (source,) = sorted((fixtures_dir / "localmultidem").glob("*.sav"))
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    madrid = df[df["city"] == "Mad"].drop(columns=["city"]).reset_index(drop=True)
    assert len(madrid) > 0
    data = tmp_path / "data"
    write_copy((madrid, meta), data / "LOCALMULTIDEM_Madrid.sav", drop=())
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--country", "ES", "--db", str(db))
    assert code == 1 and not db.exists()
    assert (f"error: localmultidem wave 2006: {data / 'LOCALMULTIDEM_Madrid.sav'}: --country ES stands for 2 codes of "
            "city (Bar, Mad), which city and region_nuts tell apart: the file's rows cannot be told apart by the "
            "country alone — give the file's city with --city NAME (a one-city file), or the file the variable itself, "
            "so that its rows are stored as the city they are") in err.splitlines()


def test_a_blank_second_citizenship_is_none_as_its_97_is(fixtures_dir: Path, tmp_path: Path) -> None:
    """LOCALMULTIDEM's second-mentioned citizenships (q7002 now, q802 at birth): SPSS files often leave an unused second
    mention blank instead of coding 97 (not applicable). Blank, citizen was missing for every single national whose
    first citizenship is another country's (False or NULL), and the citizenship share doubled."""
    (source,) = sorted((fixtures_dir / "localmultidem").glob("*.sav"))
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    rows = df.index[:400]
    marked, blank = df.copy(), df.copy()
    marked.loc[rows, ["q7002", "q802"]] = 97.0
    blank.loc[rows, ["q7002", "q802"]] = float("nan")
    got = []
    for name, frame in (("marked", marked), ("blank", blank)):
        write_copy((frame, meta), tmp_path / name / source.name)
        db = tmp_path / f"{name}.duckdb"
        code, _, err = run("build", "--data", str(tmp_path / name), "--db", str(db))
        assert code == 0, err
        con = duckdb.connect(str(db), read_only=True)
        try:
            got.append(con.execute("SELECT source_row, citizen, citizen_missing, citizenship, naturalised, "
                                   "naturalised_missing FROM respondents ORDER BY source_row").fetchall())
        finally:
            con.close()
    assert got[0] == got[1]
    assert sum(1 for r in got[1][:400] if r[1] is None) < 40  # the first citizenship decides for nearly all


@pytest.mark.parametrize("survey", ["ics", "localmultidem", "ties"])
def test_a_city_survey_file_without_its_interview_date_or_weight_is_harmonised_with_a_warning(
        fixtures_dir: Path, tmp_path: Path, survey: str) -> None:
    """The interview-date and weight variables of the city surveys are modelled, not seen: a real file without
    them was refused whole ("year is set by harmonise; it cannot be absent"), or built with no indicator at all.
    The rounds' first fieldwork year and (ICS) no weight are approximate alternatives, said in a warning."""
    dropped = {"ics": ("intdate", "weight"), "localmultidem": ("intyear",), "ties": ("int_year",)}[survey]
    year = {"ics": 2011, "localmultidem": 2004, "ties": 2006}[survey]
    (source,) = sorted((fixtures_dir / survey).glob("*.sav"))
    data = tmp_path / "data"
    write_copy(pyreadstat.read_sav(str(source), user_missing=True), data / source.name, drop=dropped)
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    warned = [line for line in err.splitlines() if "approximate alternative" in line]
    assert len(warned) == 1 and f"year by alternative 1 (constant {year})" in warned[0]
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT DISTINCT year FROM respondents").fetchall() == [(year,)]
        if survey == "ics":
            assert "weight by alternative 1 (constant 1)" in warned[0]
            assert con.execute("SELECT DISTINCT weight FROM respondents").fetchall() == [(1.0,)]
            assert con.execute("SELECT count(*) > 0 FROM indicators WHERE estimate IS NOT NULL").fetchall() == [(True,)]
    finally:
        con.close()


def test_a_year_rule_without_an_alternative_names_what_the_file_lacks(fixtures_dir: Path, project: Path,
                                                                      tmp_path: Path) -> None:
    text = (project / "mappings" / "ics.yaml").read_text(encoding="utf-8")
    start = text.index("    alternatives:\n      - constant: 2011")
    (project / "mappings" / "ics.yaml").write_text(text[:start] + text[text.index("  respondent_id:", start):],
                                                   encoding="utf-8")
    (source,) = sorted((fixtures_dir / "ics").glob("*.sav"))
    write_copy(pyreadstat.read_sav(str(source), user_missing=True), tmp_path / "data" / source.name, drop=("intdate",))
    code, out, err = run("validate", "--data", str(tmp_path / "data"), project=project)
    assert code == 1
    assert [line for line in (out + err).splitlines() if line.startswith("error:")] == [
        ("error: mappings/ics.yaml:29 targets.year: wave 2012: year is needed in every row, but its rule reads intdate, "
        "which the file lacks — give the rule an alternative for such files (a constant year of quality approximate, "
        "as the ESS rounds' year rules have), or a file with the variable")]


def test_a_code_labelled_as_a_missing_reason_is_missing_not_a_tables_country(fixtures_dir: Path, tmp_path: Path) -> None:
    """EU-MIDIS II's country lists: 99 "Don't know" declared missing was stored as Guyana (the reconstructed table's
    99); -1 "Don't know" labelled but not declared (a Stata file cannot declare codes) refused the file, though no
    rule maps -1. A code the file declares missing and labels with a reason is that reason over a table's value; one
    it only labels so is, outside the rule's values and range."""
    (source,) = sorted((fixtures_dir / "eumidis").glob("ZA6703*.sav"))
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    df.loc[:9, "IN08"] = 99.0
    df.loc[10:14, "PB15_1"] = -1.0
    labels = {**meta.variable_value_labels,
              "IN08": {**meta.variable_value_labels.get("IN08", {}), 99.0: "Don't know"},
              "PB15_1": {**meta.variable_value_labels.get("PB15_1", {}), -1.0: "Don't know"}}
    ranges = {**meta.missing_ranges, "IN08": [{"lo": 99.0, "hi": 99.0}]}
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_sav(df, str(data / source.name), column_labels=meta.column_names_to_labels,
                         variable_value_labels=labels, missing_ranges=ranges)
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT father_country_of_birth, father_country_of_birth_missing, count(*) FROM respondents "
                           "WHERE source_row <= 10 GROUP BY ALL").fetchall() == [(None, "dont_know", 10)]
        assert con.execute("SELECT trust_parliament, trust_parliament_missing, count(*) FROM respondents "
                           "WHERE source_row BETWEEN 11 AND 15 GROUP BY ALL").fetchall() == [(None, "dont_know", 5)]
    finally:
        con.close()


def test_a_renamed_country_variable_with_a_revised_list_is_still_seen_as_renamed(finland: tuple[pd.DataFrame, Any],
                                                                                tmp_path: Path) -> None:
    """ESS renames a country variable exactly when it revises its code list (cntbrthb → cntbrthc: a few codes added
    or dropped): requiring the same codes, the check never fired, and the file built with country of birth not
    available (an audit of ESS round-5 layouts)."""
    _df, meta = finland
    codes = dict(meta.variable_value_labels["cntbrthd"])
    revised = {k: v for k, v in list(codes.items())[3:]} | {"Q1": "New country one", "Q2": "New country two"}
    write_copy(finland, tmp_path / "data" / "ESS9FI.sav", rename={"cntbrthd": "cntbrthe"})
    df2, meta2 = pyreadstat.read_sav(str(tmp_path / "data" / "ESS9FI.sav"), user_missing=True)
    labels = {**meta2.variable_value_labels, "cntbrthe": revised}
    pyreadstat.write_sav(df2, str(tmp_path / "data" / "ESS9FI.sav"), column_labels=meta2.column_names_to_labels,
                         variable_value_labels=labels, missing_ranges=meta2.missing_ranges)
    code, _, err = run("validate", "--data", str(tmp_path / "data"))
    assert code == 1
    from harmonise.checks.renames import answer_codes
    from harmonise.readers import open_source
    from harmonise.spec.project import load_project

    # the answers' codes (not the declared missing ones, which a Stata edition labels as letters)
    ours = answer_codes(load_project(ROOT).declared_meta("ess", "9").get("cntbrthd"))  # type: ignore[arg-type]
    theirs = answer_codes(open_source(tmp_path / "data" / "ESS9FI.sav").meta.get("cntbrthe"))  # type: ignore[arg-type]
    assert {"Q1", "Q2"} <= theirs and len(ours) > 200
    shared, union = len(ours & theirs), len(ours | theirs)
    assert [line.split(".overrides.", 1)[1] for line in err.splitlines() if line.startswith("error:")] == [
        (f"country_of_birth: wave 9: cntbrthd is not in the file, but cntbrthe has its label ('Country of birth') and "
        f"nearly its codes ({shared} of {union}): the variable seems renamed; country_of_birth would be stored as not "
        "available — add `alternatives: [{source: cntbrthe}]` (or the expression with cntbrthe) to the rule in "
        "waves[9].overrides, or rename the variable back")]


def test_country_codes_as_labels_are_checked_against_the_table(fixtures_dir: Path, tmp_path: Path) -> None:
    """EU-MIDIS II's `country` numbers its countries by name, `country2` by code: a file whose `country` holds the
    code-ordered numbers, labelled with the codes ('DE'), was mapped by the name-ordered table (Germany stored as
    Czechia) with only a drift note; labels that are country codes (Eurostat's EL and UK too) are checked now."""
    from harmonise.spec.project import load_project

    table = load_project(ROOT).tables.code_map("eumidis_country_codes")
    assert table is not None
    names = table.normalised_map()
    (source,) = sorted((fixtures_dir / "eumidis").glob("ZA6703*.sav"))
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    for relabel, ok in (({c: {"GR": "EL", "GB": "UK"}.get(v, v) for c, v in names.items()}, True),
                        ({c: v for c, v in zip(names, sorted(names.values()))}, False)):
        labels = {**meta.variable_value_labels,
                  "country": {float(c): v for c, v in relabel.items() if isinstance(c, (int, float))}}
        data = tmp_path / ("ok" if ok else "bad")
        data.mkdir()
        pyreadstat.write_sav(df, str(data / source.name), column_labels=meta.column_names_to_labels,
                             variable_value_labels=labels, missing_ranges=meta.missing_ranges)
        code, out, err = run("validate", "--data", str(data))
        errors = [line for line in (out + err).splitlines() if line.startswith("error:")]
        if ok:
            assert (code, errors) == (0, [])
        else:
            assert code == 1 and len(errors) == 1 and "the labels of country contradict the codes the rule maps" in \
                errors[0] and re.search(r"1 is labelled '([A-Z]{2})' \(\1\) but maps to ", errors[0]), errors


def test_a_file_without_rows_whose_name_matches_no_wave_says_it_has_no_rows(finland: tuple[pd.DataFrame, Any],
                                                                            tmp_path: Path) -> None:
    """Found by the semantic fuzz audit: an extract of no rows under a name no pattern matches was said to hold
    "essround = nothing" beside every pattern looked for, which never said the file was empty."""
    df, meta = finland
    write_copy((df.head(0), meta), tmp_path / "data" / "extract.sav")
    code, _, err = run("validate", "--data", str(tmp_path / "data"))
    assert code == 2
    assert err.startswith(f"error: {tmp_path / 'data' / 'extract.sav'}: matches no crosswalk wave (it has no rows, so "
                          "its content cannot tell its wave, and its name matches no wave's files); looked for ess:")


def one_city(fixtures_dir: Path, survey: str, code: str, path: Path) -> tuple[Path, int]:
    """The rows of one city of ``survey``'s fixture file, written without the city variable (a one-city release)."""
    (source,) = sorted((fixtures_dir / survey).glob("*.sav"))
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    rows = df[df["city"] == code].drop(columns=["city"]).reset_index(drop=True)
    assert len(rows) > 0
    return write_copy((rows, meta), path, drop=()), len(rows)


def test_a_one_city_file_given_its_city_is_stored_as_the_complete_file_stores_that_city(
        fixtures_dir: Path, tmp_path: Path) -> None:
    """A TIES file of Amsterdam's respondents without the city variable lost the city, the region and the ids' city
    part (not_available), with no way to give them. `--city` (by name, any case) supplies the variable: the rows
    are those of the complete file's Amsterdam respondents, column for column."""
    path, n = one_city(fixtures_dir, "ties", "AMS", tmp_path / "d" / "TIES_2007_Amsterdam.sav")
    code, out, _ = run("validate", "--data", str(path.parent))
    assert code == 0
    assert (f"warning: ties wave 2007: {path}: 3 target(s) not available in this file, which lacks their variables: "
            "region_nuts (city), city (city), home_language (city); they are stored as missing (not_available) — "
            "if the file is one city's, give its city with --city NAME (its region and ids follow); otherwise "
            "expected for extracts and subsets") in out
    full, db = tmp_path / "full.duckdb", tmp_path / "ams.duckdb"
    assert run("build", "--data", str(fixtures_dir / "ties" / "TIES_2007.sav"), "--db", str(full))[0] == 0
    code, _, err = run("build", "--data", str(path.parent), "--city", "amsterdam", "--db", str(db))
    assert code == 0, err
    query = "SELECT * EXCLUDE (source_file, source_row) FROM respondents {} ORDER BY respondent_id"
    with duckdb.connect(str(full), read_only=True) as con:
        expected = con.execute(query.format("WHERE city = 'NL002C'")).fetchall()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(query.format("")).fetchall() == expected
        assert len(expected) == n
        assert con.execute("SELECT source_labels FROM lineage WHERE target = 'city'").fetchone() == (
            "city: supplied by --city NL002C",)
    # another city given is another build: the file's rows are not kept from the previous one
    assert run("build", "--data", str(path.parent), "--city", "ROT", "--db", str(db))[0] == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT DISTINCT city, region_nuts FROM respondents").fetchall() == [("NL003C", "NL33C")]


def test_city_names_the_country_a_survey_reads_from_its_city(fixtures_dir: Path, tmp_path: Path) -> None:
    """LOCALMULTIDEM reads the country from its city: a one-city file without it asked for --country, which cannot
    tell Madrid from Barcelona (`country-ambiguous`); the error names --city, which stores Madrid."""
    path, _ = one_city(fixtures_dir, "localmultidem", "Mad", tmp_path / "d" / "LOCALMULTIDEM_Madrid.sav")
    code, _, err = run("validate", "--data", str(path))
    assert (code, err) == (2, (f"error: {path}: has no country variable — pass --country CC (ISO 3166-1 alpha-2) for a "
                              "single-country file (or --city NAME for a one-city file of a survey whose country is "
                              "read from its city)\n"))
    code, _, err = run("validate", "--data", str(path), "--country", "ES")
    assert code == 1 and "--country ES stands for 2 codes of city (Bar, Mad)" in err
    assert "give the file's city with --city NAME (a one-city file)" in err
    db = tmp_path / "mad.duckdb"
    code, _, err = run("build", "--data", str(path), "--country", "es", "--city", "MAD", "--db", str(db))
    assert code == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT DISTINCT country, city, region_nuts FROM respondents").fetchall() == [
            ("ES", "ES001C", "ES300")]
    code, _, err = run("validate", "--data", str(path), "--country", "FR", "--city", "Madrid")
    assert (code, err) == (2, ("error: --city Madrid: Madrid is a city of ES, not of --country FR — give one of them, "
                              "or both of one country\n"))


def test_a_city_the_wave_did_not_sample_or_no_survey_knows_is_an_error(fixtures_dir: Path, tmp_path: Path) -> None:
    """--city Paris for a LOCALMULTIDEM file (Paris is ICS's and TIES's) cannot be stored; an unknown city is a
    usage error listing the cities."""
    path, _ = one_city(fixtures_dir, "localmultidem", "Bar", tmp_path / "d" / "LOCALMULTIDEM_Barcelona.sav")
    code, _, err = run("validate", "--data", str(path), "--city", "Paris")
    assert code == 1
    assert (f"error: localmultidem wave 2006: {path}: --city Paris is none of the cities localmultidem wave 2006 "
            "sampled (Barcelona (Bar), Budapest (Bud), Geneva (Gen), London (LON), Lyon (Lyo), Madrid (Mad), Milan "
            "(Mil), Oslo (Osl), Stockholm (Sto), Zurich (Zur), Turin (Tur)) — give the file's city by its name or by "
            "the code the wave's files hold for it (e.g. --city Barcelona), or leave this file out") in err
    code, _, err = run("validate", "--data", str(path), "--city", "Gotham")
    assert code == 2
    assert err.startswith("error: --city Gotham: no city of that name or code in the city rules of ics, "
                          "localmultidem, ties (cities: Antwerp (ANT), Brussels (BRU), Liège (LIE), ")
    code, _, err = run("validate", "--data", str(path), "--survey", "ess", "--wave", "9", "--city", "Barcelona")
    assert (code, err) == (2, ("error: --city Barcelona: no city of that name or code in the chosen crosswalks, whose "
                              "city is not read from a variable of their files — give a city by its name or by the "
                              "code its survey's files hold\n"))


def test_city_given_for_a_file_that_has_one_or_whose_city_is_its_region_is_a_warning(
        fixtures_dir: Path, ess8: Path) -> None:
    """--city is for one-city files without the variable: a file with its own, and an ESS file (its city is read
    from its region), are harmonised as they are, and the option is said to be unused."""
    ties = fixtures_dir / "ties" / "TIES_2007.sav"
    code, out, _ = run("validate", "--data", str(ties), "--data", str(ess8), "--city", "Zürich")
    assert code == 0
    assert (f"warning: ties wave 2007: {ties}: has its own city variable (city), whose values are used: --city Zürich "
            "is not — --city is for files without a city variable; drop it for this file") in out
    assert (f"warning: ess wave 8: {ess8}: the city of ess wave 8 is not read from a variable of its files: --city "
            "Zürich is not used — --city is for one-city files of a city survey released without the city variable; "
            "drop it for this file") in out


def test_cities_are_named_by_any_of_their_names_without_case_or_accents() -> None:
    from harmonise.supplied import named, wave_cities

    project = load_project(ROOT)
    cw = project.crosswalks["ties"]
    known = wave_cities(cw, cw.waves[0], project)
    assert known is not None and known.variable == "city"
    for text in ("Zurich", "zürich", "ZUR", "zur", "CH001C", " Zürich "):
        city = named(text, known.cities)
        assert city is not None and (city.code, city.source_code) == ("CH001C", "ZUR")
    assert named("Wien", known.cities).code == "AT001C"  # type: ignore[union-attr]  # the local name
    assert named("Bruxelles", known.cities).code == "BE001C"  # type: ignore[union-attr]  # one language's name
    assert named("Antwerp", known.cities).code == "BE002C"  # type: ignore[union-attr]  # the declared label
    assert named("Naples", known.cities) is None  # ICS's, not TIES's
    ess = project.crosswalks["ess"]
    assert wave_cities(ess, ess.waves[0], project) is None  # the city from the region


def test_country_given_for_several_files_is_said_and_regions_of_another_country_are_an_error(
        finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """Three Nordic country files without `cntry`, given `--country FI`, were all stored as Finland's without a word,
    although the Norwegian and Swedish files' NUTS regions said otherwise."""
    data = tmp_path / "d"
    write_copy(finland, data / "ESS9FI.sav", drop=("cntry",))
    for country in ("NO", "SE"):
        df, meta = pyreadstat.read_sav(str(REAL / "ess9_nordic" / f"ESS9{country}.sav"), user_missing=True)
        write_copy((keep_named(df), meta), data / f"ESS9{country}.sav", drop=("cntry",))
    code, out, err = run("validate", "--data", str(data), "--country", "FI")
    assert code == 1
    assert ("warning: --country FI stands for the country variable of 3 files (ESS9FI.sav, ESS9NO.sav, ESS9SE.sav): "
            "the rows of each are stored as FI's — check that they are all FI's files; give another country's files "
            "in a run of their own, with its --country") in err.splitlines()
    contradicted = [line for line in err.splitlines() if "stands for the file's country" in line]
    assert [line.split(": --country")[0] for line in contradicted] == ["error: ess wave 9: ESS9NO.sav",
                                                                      "error: ess wave 9: ESS9SE.sav"]
    assert contradicted[0].startswith("error: ess wave 9: ESS9NO.sav: --country FI stands for the file's country, "
                                      "but its regions lie in NO: NO01 (")
    assert contradicted[0].endswith("its rows would be stored as FI's — give each country's files in a run of their "
                                    "own with its --country (this file: --country NO), or give the files their "
                                    "country variable")
    code, out, err = run("validate", "--data", str(data / "ESS9FI.sav"), "--country", "FI")
    assert code == 0 and "supplied-to-several" not in out and "stands for" not in out + err


def test_city_given_for_several_files_is_said(fixtures_dir: Path, tmp_path: Path) -> None:
    """Two TIES files of Amsterdam and Rotterdam without the city variable, given `--city Amsterdam`, were both
    stored as Amsterdam without a word (their region comes from the city: nothing else tells them apart)."""
    for code_, name in (("AMS", "Amsterdam"), ("ROT", "Rotterdam")):
        one_city(fixtures_dir, "ties", code_, tmp_path / "d" / f"TIES_2007_{name}.sav")
    code, out, _ = run("validate", "--data", str(tmp_path / "d"), "--city", "Amsterdam")
    assert code == 0
    assert ("warning: --city Amsterdam stands for the city variable of 2 files (TIES_2007_Amsterdam.sav, "
            "TIES_2007_Rotterdam.sav): the rows of each are stored as Amsterdam's — check that they are all "
            "Amsterdam's files; give another city's files in a run of their own, with its --city") in out.splitlines()


def test_one_file_given_twice_without_ids_is_an_error(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """A file without `idno` and its copy under another name: the ids are made from the file name and row, so
    they differ, and the same 1,755 respondents were built twice (only the row-id warning said anything)."""
    path = write_copy(finland, tmp_path / "d" / "ESS9FI.sav", drop=("idno",))
    shutil.copy(path, path.with_name("ESS9FI_copy.sav"))
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(path.parent), "--db", str(db))
    assert code == 1 and not db.exists()
    assert (f"error: ess wave 9: the same respondents in several files of ess wave 9: ESS9FI.sav and ESS9FI_copy.sav "
            f"hold the same bytes — {len(finland[0]):,} respondents each, whose ids are made from the file name and row "
            "(the files have no id variable), so they would be stored as different respondents — give each file "
            "once") in err.splitlines()


def test_a_wave_given_against_the_files_name_is_said_when_the_file_has_no_round_variable(tmp_path: Path) -> None:
    """ESS8FR.sav without `essround`, given `--survey ess --wave 9`, was stored as round 9 without a word: its
    name, the one word it has on its round, matches round 8's files."""
    from conftest import ESS8

    df, meta = pyreadstat.read_sav(str(ESS8), user_missing=True)
    path = write_copy((keep_named(df), meta), tmp_path / "d" / "ESS8FR.sav", drop=("essround",))
    code, out, _ = run("validate", "--data", str(path), "--survey", "ess", "--wave", "9")
    assert code == 0
    assert (f"warning: ess wave 9: {path}: assigned to ess wave 9 by --survey/--wave, but its name matches the files "
            "of ess wave 8: it is harmonised as the wave given — check the wave given (the interview dates say which "
            "round a file is)") in out.splitlines()
    code, out, _ = run("validate", "--data", str(path), "--survey", "ess", "--wave", "8")
    assert code == 0 and "content-overridden" not in out and "assigned to" not in out


def test_ids_made_from_a_number_stored_as_text_with_decimals_are_said(finland: tuple[pd.DataFrame, Any],
                                                                      tmp_path: Path) -> None:
    """`idno` stored as the text '50095.0' gave ids like FI-50095.0 without a word: they match neither an edition
    storing idno as a number (FI-50095) nor a design file."""
    df, meta = finland
    text = df.assign(idno=[f"{v:.1f}" for v in df["idno"]])
    labels = {k: v for k, v in meta.variable_value_labels.items() if k != "idno"}
    path = tmp_path / "d" / "ESS9FI.sav"
    path.parent.mkdir()
    pyreadstat.write_sav(text, str(path), column_labels={k: v for k, v in meta.column_names_to_labels.items()
                                                         if k in text}, variable_value_labels=labels)
    code, out, _ = run("validate", "--data", str(path))
    first = min(f"FI-{v:.1f}" for v in df["idno"])
    assert code == 0
    assert (f"warning: ess wave 9: ESS9FI.sav: {len(df):,} respondent id(s) end in a whole number written with "
            f"decimals (e.g. {first}): the id variable is text made from a number; the ids are kept as the text is, "
            "and do not match those of an edition (or a design file) storing it as a number — store the id variable "
            "as a number, or as text without the decimals, in the file") in out.splitlines()
