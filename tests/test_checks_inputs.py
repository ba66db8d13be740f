"""Data the crosswalk accepts but the user must hear about: codes an expression read as values
outside their labelled range, missing weights, empty files (copies of the real ESS8 France file)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest

from tests.conftest import keep_named, line_of, run

CROSSWALK = Path(__file__).resolve().parent.parent / "mappings" / "ess.yaml"


def _write(df: pd.DataFrame, meta: Any, folder: Path) -> Path:
    folder.mkdir()
    pyreadstat.write_sav(df, str(folder / "ESS8FR.sav"), column_labels=_of(meta.column_names_to_labels, df),
                         variable_value_labels=_of(meta.variable_value_labels, df),
                         missing_ranges=_of(meta.missing_ranges, df))
    return folder


def _of(per_variable: dict[str, Any], df: pd.DataFrame) -> dict[str, Any]:
    """The entries of ``per_variable`` for the columns of ``df``."""
    return {k: v for k, v in per_variable.items() if k in df}


@pytest.fixture(scope="module")
def real(ess8: Path) -> tuple[pd.DataFrame, Any]:
    """The real ESS8 FR file's variables that the ESS declarations name (conftest.keep_named: 72 of its 539) and its
    metadata: what these tests check lies in named variables, and pyreadstat writes a copy row by row (a copy of
    all 539 took 0.31 s of CPU to write, of the 72 0.06 s, and the build read it all)."""
    df, meta = pyreadstat.read_sav(str(ess8), user_missing=True)
    return keep_named(df), meta


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def _built(df: pd.DataFrame, meta: Any, tmp_path: Path) -> tuple[Path, list[str]]:
    """``df`` written as ESS8FR.sav in ``tmp_path/data`` and built: the database and the build's warnings."""
    data = _write(df, meta, tmp_path / "data")
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    return db, _warnings(err)


def test_codes_outside_the_labelled_range_of_expression_inputs_are_reported(real: tuple[pd.DataFrame, Any],
                                                                          tmp_path: Path) -> None:
    df, meta = real[0].copy(), real[1]
    df.loc[df.index[:5], "pdwrk"] = 2.0  # labelled 0 "Not marked", 1 "Marked"
    df.loc[df.index[5:8], "uempla"] = 7.0
    rows = df.index[df["dscrgrp"] == 1][:4]
    df.loc[rows, "dscrrce"] = 5.0
    data = _write(df, meta, tmp_path / "data")
    code, _, err = run("build", "--data", str(data), "--db", str(tmp_path / "h.duckdb"))
    assert code == 0, err
    hint = "if the edition added it, check the expression"
    at = line_of(CROSSWALK, "'employed' if pdwrk == 1") - 1
    labour = f"warning: mappings/ess.yaml:{at} targets.labour_status: "
    assert _warnings(err) == [
        (f"warning: mappings/ess.yaml:{line_of(CROSSWALK, 'dscrgrp == 2 else') - 1} targets.discrimination_ethnic: "
        "expression input dscrrce has code(s) 5 (4 rows) outside its labelled codes 0–1; the expression for "
        "discrimination_ethnic read them as values — if a code means missing, give it a reason under the rule's "
        f"missing: (e.g. '5: invalid'); {hint}"),
        # read by two expressions (the current job's items too), said once
        (f"{labour}expression input pdwrk has code(s) 2 (5 rows) outside its labelled codes 0–1; the expressions for "
        "labour_status, self_employed, temporary_contract read them as values — if a code means missing, give it a "
        f"reason under the rule's missing: (e.g. '2: invalid'); {hint}"),
        (f"{labour}expression input uempla has code(s) 7 (3 rows) outside its labelled codes 0–1; the expression for "
        "labour_status read them as values — if a code means missing, give it a reason under the rule's missing: "
        f"(e.g. '7: invalid'); {hint}")]


def test_missing_weights_are_reported(real: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    df, meta = real[0].copy(), real[1]
    df.loc[df.index[2], "pspwght"] = np.nan
    df.loc[df.index[3], "pweight"] = np.nan
    data = _write(df, meta, tmp_path / "data")
    code, _, err = run("build", "--data", str(data), "--db", str(tmp_path / "h.duckdb"))
    assert code == 0, err
    assert _warnings(err) == [
        (f"warning: mappings/ess.yaml:{CROSSWALK.read_text(encoding='utf-8').splitlines().index('  weight:') + 1} targets.weight: weight is missing in 2 of "
        "2,070 rows (not_available 2); weighted indicators leave these respondents out — check the weight "
        "variables of the file")]


def test_a_file_without_rows_is_reported(real: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    df, meta = real
    data = _write(df.iloc[:0], meta, tmp_path / "data")
    code, _, err = run("build", "--data", str(data), "--db", str(tmp_path / "h.duckdb"))
    assert code == 0, err
    assert _warnings(err) == [(f"warning: {data / 'ESS8FR.sav'}: the file has no rows: ess wave 8 adds no respondents "
                              "— check that the file is the complete release")]


def test_upper_case_variable_names_harmonise_like_the_original(real: tuple[pd.DataFrame, Any], fr_db: Path,
                                                                tmp_path: Path) -> None:
    """Names that differ only in case resolve as the crosswalk's (their declared missing codes included)."""
    df, meta = real
    up = {c: c.upper() for c in df.columns}
    folder = tmp_path / "data"
    folder.mkdir()
    pyreadstat.write_sav(df.rename(columns=up), str(folder / "ESS8FR.sav"),
                         column_labels=[meta.column_names_to_labels[c] for c in df.columns],
                         variable_value_labels={up[k]: v for k, v in _of(meta.variable_value_labels, df).items()},
                         missing_ranges={up[k]: v for k, v in _of(meta.missing_ranges, df).items()})
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(folder), "--db", str(db))
    assert (code, _warnings(err)) == (0, []), err
    query = "SELECT * EXCLUDE (source_row) FROM respondents ORDER BY respondent_id"
    got, expected = (duckdb.connect(str(p), read_only=True).execute(query).df() for p in (db, fr_db))
    pd.testing.assert_frame_equal(got, expected)


def test_all_zero_weights_warn_at_build_and_name_why_cells_are_suppressed(real: tuple[pd.DataFrame, Any],
                                                                         tmp_path: Path) -> None:
    df, meta = real[0].copy(), real[1]
    df["pspwght"] = 0.0  # weight = pspwght * pweight
    db, warned = _built(df, meta, tmp_path)
    assert warned == [
        (f"warning: ess wave 8: weight is 0 in all {len(df):,} rows with a weight; weighted indicators of this "
         "survey-wave are suppressed (reason weights_all_zero: the weighted total is 0) — check the weight variable "
         "the crosswalk maps, or use --weight none")]
    code, out, err = run("indicators", "--db", str(db), "--indicator", "employment_rate", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert rows and all((r["reliability"], r["flags"].split("; ")[0]) == ("suppressed", "weights_all_zero")
                        for r in rows), [(r["reliability"], r["flags"]) for r in rows]


def test_some_zero_weights_warn_that_those_respondents_count_in_n_only(real: tuple[pd.DataFrame, Any],
                                                                      tmp_path: Path) -> None:
    """Ten respondents weighted 0 among weighted ones were left out of every weighted estimate without a word."""
    df, meta = real[0].copy(), real[1]
    df.loc[:9, "pspwght"] = 0.0  # weight = pspwght * pweight
    _, warned = _built(df, meta, tmp_path)
    assert warned == [
        (f"warning: ess wave 8: weight is 0 in 10 of {len(df):,} rows with a weight; those respondents count for "
         "nothing in the weighted indicators, though they count in each cell's unweighted n — check the weight "
         "variable for them: a design that gives some respondents weight 0 leaves them out on purpose; else it is a "
         "slip in the file")]
    code, out, err = run("validate", "--data", str(tmp_path / "data"))
    assert code == 0 and "weight is 0 in 10 of" in out, (out, err)


def test_codes_a_range_rule_stores_that_the_file_declares_missing_are_noted(real: tuple[pd.DataFrame, Any],
                                                                           tmp_path: Path) -> None:
    """Trust 0 and ages 90+ declared user-missing: stored as values (the rule's range holds them), and said — a
    range rule's report folded them into its valid range, so the declared-missing-value note never saw them."""
    import copy

    df, meta = real[0], copy.deepcopy(real[1])
    meta.missing_ranges = {**meta.missing_ranges, "trstprl": [{"lo": 0.0, "hi": 0.0}, {"lo": 77.0, "hi": 99.0}],
                           "agea": [{"lo": 90.0, "hi": 999.0}]}
    data = _write(df, meta, tmp_path / "data")
    zeros = int((df["trstprl"] == 0).sum())
    old = df["agea"][(df["agea"] >= 90) & (df["agea"] < 999)].value_counts().sort_index()
    assert zeros > 0 and len(old) > 5
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:") and "user-missing, but" in line]
    shown = ", ".join(f"{int(c)} ({n:,} row{'s' if n != 1 else ''})" for c, n in old.head(5).items())
    rest = int(old.iloc[5:].sum())
    assert [n.split(": ", 2)[2] for n in notes] == [
        (f"agea: the file declares code(s) {shown} and {len(old) - 5} more ({rest} row{'s' if rest != 1 else ''}; "
        "--format json lists all) "
        "user-missing, but the rule maps them as values of age: stored as values — if the file is right, give the "
        "codes a missing reason under the rule's missing: (a wave override); if the declaration is the file's slip, "
        "nothing to do"),
        (f"trstprl: the file declares code(s) 0 ({zeros:,} rows) user-missing, but the rule maps them as values of "
        "trust_parliament: stored as values — if the file is right, give the codes a missing reason under the "
        "rule's missing: (a wave override); if the declaration is the file's slip, nothing to do")]
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM respondents WHERE trust_parliament = 0").fetchall() == [(zeros,)]
        assert con.execute("SELECT source_code, target_value, n FROM harmonisation_report "
                           "WHERE target = 'trust_parliament' AND source_code = '0'").fetchall() == [("0", "*", zeros)]
        assert con.execute("SELECT bool_and(ok) FROM conservation").fetchall() == [(True,)]
    finally:
        con.close()


def _as_text(df: pd.DataFrame, meta: Any, column: str, form: str) -> tuple[pd.DataFrame, Any]:
    import copy

    out, m = df.copy(), copy.deepcopy(meta)
    out[column] = [form.format(v) for v in df[column]]
    m.variable_value_labels = {**m.variable_value_labels, column: {
        form.format(k): v for k, v in meta.variable_value_labels.get(column, {}).items()}}
    m.missing_ranges = {k: v for k, v in m.missing_ranges.items() if k != column}
    return out, m


@pytest.mark.parametrize("variant", ["decimals-as-text", "noise", "lower-case-iso", "encoded-iso", "eurostat"])
def test_an_unmapped_code_says_what_the_file_did_to_it(real: tuple[pd.DataFrame, Any], tmp_path: Path,
                                                        variant: str) -> None:
    """Codes a file wrote differently from the rule's were only "add the codes to the rule's map" (an audit of
    real-file variants): numbers as text with decimals, codes off by a rounding error, ISO codes in lower case,
    and a Stata `encode` of the country (numbers labelled with the codes)."""
    import copy

    df, meta = real[0].copy(), copy.deepcopy(real[1])
    if variant == "decimals-as-text":
        df, meta = _as_text(df, meta, "gndr", "{:.1f}")
        said = ("gndr holds text in this file and the rule maps numbers (the codes are the map's, written as text) — "
                "make gndr numeric in the file (Stata `destring`, SPSS `ALTER TYPE`), or map its text codes in a wave "
                "override")
    elif variant == "noise":
        df["gndr"] = df["gndr"] + 1e-12
        said = ("they differ from the rule's codes by a rounding error (1.000000000001 for 1) — round gndr in the file "
                "(Stata `replace gndr = round(gndr)`, SPSS `COMPUTE gndr = RND(gndr)`); a code that is not whole is not "
                "guessed")
    elif variant == "lower-case-iso":
        df["cntry"] = df["cntry"].str.lower()
        meta.variable_value_labels = {**meta.variable_value_labels, "cntry": {"fr": "France"}}
        said = ("they read as ISO codes in lower case (fr), and the rule's table ess_country_codes maps them in upper "
                "case — upper-case the variable in the file (Stata `replace cntry = upper(cntry)`, SPSS "
                "`COMPUTE cntry = UPCASE(cntry)`), or map these codes in a wave override")
    elif variant == "eurostat":  # found by the semantic fuzz audit: only "add the codes to the rule's map"
        df["cntry"] = ["EL" if i % 2 else "UK" for i in range(len(df))]
        meta.variable_value_labels = {**meta.variable_value_labels, "cntry": {"EL": "Greece", "UK": "United Kingdom"}}
        said = ("they are Eurostat's country codes (EL for GR, UK for GB), and the rule's table ess_country_codes maps "
                "ISO 3166-1 codes — recode the variable in the file (EL → GR, UK → GB), or map these codes in a wave "
                "override")
    else:
        df["cntry"] = 12.0
        meta.variable_value_labels = {**meta.variable_value_labels, "cntry": {12.0: "FR"}}
        said = ("they are numbers whose value labels are codes (12 labelled 'FR'), as a Stata `encode` of the text "
                "variable writes them — store the labels as the values (Stata `decode cntry, generate(…)`), or map "
                "these numbers in a wave override")
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_sav(df, str(data / "ESS8FR.sav"), column_labels=_of(meta.column_names_to_labels, df),
                         variable_value_labels=_of(meta.variable_value_labels, df),
                         missing_ranges=_of(meta.missing_ranges, df))
    code, out, err = run("validate", "--data", str(data))
    assert code == 1
    errors = [line for line in (out + err).splitlines() if line.startswith("error:") and "no mapping" in line]
    assert len(errors) == 1 and errors[0].endswith(": " + said), out + err


def test_a_code_the_file_declares_missing_and_labels_as_a_reason_is_that_reason(real: tuple[pd.DataFrame, Any],
                                                                                 tmp_path: Path) -> None:
    """Both the declaration and the label say missing (ICS hours 97 'Not applicable', TIES 98 "Don't know"): the
    code takes the label's reason, even inside a range rule's range (stored as 97 hours before); a label naming two
    reasons ('Refusal / no answer') is no one reason, and the unmapped code's message says what the file declares."""
    import copy

    df, meta = real[0].copy(), copy.deepcopy(real[1])
    df.loc[:4, "trstprl"] = 5.0  # inside trust's range [0, 10]
    df.loc[:2, "gndr"] = 5.0
    meta.variable_value_labels = {**meta.variable_value_labels,
                                  "trstprl": {**meta.variable_value_labels["trstprl"], 5.0: "Don't know"},
                                  "gndr": {**meta.variable_value_labels["gndr"], 5.0: "Refusal / no answer"}}
    meta.missing_ranges = {**meta.missing_ranges, "trstprl": [{"lo": 77.0, "hi": 99.0}, {"lo": 5.0, "hi": 5.0}],
                           "gndr": [*meta.missing_ranges.get("gndr", []), {"lo": 5.0, "hi": 5.0}]}
    data = _write(df, meta, tmp_path / "data")
    code, out, err = run("validate", "--data", str(data))
    assert code == 1
    errors = [line for line in (out + err).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].endswith(
        "source variable gndr code 5 ('Refusal / no answer') has no mapping for target sex: 3 row(s): gndr declares it "
        "user-missing, but a label such as 'Refusal / no answer' names no one missing reason — give the codes their "
        "reason in the survey's `missing: codes:` (every rule reading such codes) or in this rule's `missing`"), errors
    df.loc[:2, "gndr"] = real[0].loc[:2, "gndr"]
    data = _write(df, meta, tmp_path / "fixed")
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FILTER (trust_parliament_missing = 'dont_know'), count(*) FILTER "
                           "(trust_parliament = 5) FROM respondents").fetchall() == [
            (int(df["trstprl"].isin([5.0, 88.0]).sum()), 0)]  # every 5 of the file, as its declaration says
    finally:
        con.close()


def test_a_labelled_category_past_a_counts_values_is_said_when_an_expression_reads_it(fixtures_dir: Path,
                                                                                     tmp_path: Path) -> None:
    """EU-MIDIS I's years of full-time education (BG10) are banded by an expression. A file labelling a code past
    the years, 97 'Still in full-time education', had it read as 97 years, 'high', without a word. Now a warning
    names the code, its label and rows; a labelled end of the years (0 'No full-time education', beside 1) is not
    said."""
    df, meta = pyreadstat.read_sav(str(fixtures_dir / "eumidis" / "EU-MIDIS_I_2008.sav"), user_missing=True)
    # the fixture generator wrote the fieldwork year, 2008, as every respondent's years of education ('high')
    assert set(df["BG10"]) <= {*map(float, range(31)), 98.0, 99.0} and df["BG10"].nunique() > 20
    years = df.index[df["BG10"] < 90]
    df.loc[years[:6], "BG10"] = 97.0
    df.loc[years[6:9], "BG10"] = 0.0
    labels = {**meta.variable_value_labels,
              "BG10": {0.0: "No full-time education", 97.0: "Still in full-time education",
                       **meta.variable_value_labels["BG10"]}}
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_sav(df, str(data / "EU-MIDIS_I_2008.sav"), column_labels=meta.column_labels,
                         variable_value_labels=labels, missing_ranges=meta.missing_ranges)
    code, out, err = run("validate", "--data", str(data))
    assert code == 0, out + err
    at = line_of(Path(CROSSWALK.parent / "eumidis.yaml"), "expr: \"'low' if BG10 <= 9") - 1
    plain = df.loc[~df["BG10"].isin([0, 97, 98, 99]), "BG10"]  # the years the file does not label
    assert _warnings(out) == [
        (f"warning: mappings/eumidis.yaml:{at} waves[I].overrides.education_level: expression input BG10 has "
        f"labelled code(s) 97 'Still in full-time education' (6 rows) apart from its unlabelled values "
        f"{plain.min():g}–{plain.max():g}; the expression for "
        "education_level read them as numbers — if such a code is a category rather than a number of BG10's "
        "scale, handle it in the expression (e.g. `... if BG10 != 97 else ...`) or give it a reason under the "
        "rule's missing:")]


def test_an_expressions_empty_input_and_its_new_category_are_said(real: tuple[pd.DataFrame, Any],
                                                                  tmp_path: Path) -> None:
    """Found by the semantic fuzz audit: `pdwrk` empty in every row left every labour status missing or inferred
    from the other inputs without a word (the `empty-source` warning read map and range rules only), and a new
    category `pdwrk` 2 'Other' (40 rows) was read by the labour-status expression as "not in paid work"."""
    df, meta = real[0].copy(), real[1]
    at = line_of(CROSSWALK, "'employed' if pdwrk == 1") - 1
    empty = df.assign(pdwrk=np.nan)
    (tmp_path / "empty").mkdir()
    _, warnings = _built(empty, meta, tmp_path / "empty")
    assert warnings == [
        (f"warning: mappings/ess.yaml:{at} targets.labour_status: source variable pdwrk is empty (system-missing) in "
        f"all {len(df):,} rows; the expression(s) for labour_status, self_employed, temporary_contract read it as missing "
        "there — check that the file "
        "is the complete release")]
    rows = df.index[df["pdwrk"] == 1][:40]
    df.loc[rows, "pdwrk"] = 2.0
    labels = meta.variable_value_labels["pdwrk"]  # the module's real metadata: restored below
    meta.variable_value_labels["pdwrk"] = {**labels, 2.0: "Other"}
    (tmp_path / "new").mkdir()
    try:
        _, warnings = _built(df, meta, tmp_path / "new")
    finally:
        meta.variable_value_labels["pdwrk"] = labels
    assert warnings == [
        (f"warning: mappings/ess.yaml:{at} targets.labour_status: expression input pdwrk has code(s) 2 'Other' (40 "
        "rows) that surveys/ess/codebook_8.yaml does not have; the expressions for labour_status, self_employed, "
        "temporary_contract, written for its codes, read them as values — check what the expression makes of them (harmonise inspect FILE lists the "
        "labels): handle them in a wave override of the expression, or give them a reason under the rule's missing:")]


def test_design_weights_zero_or_missing_and_analysis_weights_missing_are_warned(real: tuple[pd.DataFrame, Any],
                                                                               tmp_path: Path) -> None:
    """The design weight (`--weight weight_design`) was never checked: zero or missing for some respondents, they
    were left out of every estimate weighted by it without a word (the estimator reads rows with a weight)."""
    df, meta = real[0].copy(), real[1]
    df.loc[:2, "dweight"] = 0.0
    df.loc[3:9, "dweight"] = float("nan")  # system-missing
    df.loc[10:14, "pspwght"] = float("nan")  # weight = pspwght * pweight
    db, warned = _built(df, meta, tmp_path)
    n, lines = len(df), CROSSWALK.read_text(encoding="utf-8").splitlines()
    assert warned == [
        (f"warning: mappings/ess.yaml:{lines.index('  weight:') + 1} targets.weight: weight is missing in 5 of {n:,} "
         "rows (not_available 5); weighted indicators leave these respondents out — check the weight variables of "
         "the file"),
        (f"warning: mappings/ess.yaml:{lines.index('  weight_design:') + 1} targets.weight_design: weight_design is "
         f"missing in 7 of {n:,} rows (not_available 7); indicators weighted by it (--weight weight_design) leave "
         "these respondents out — check the weight variables of the file"),
        (f"warning: ess wave 8: weight_design is 0 in 3 of {n - 7:,} rows with a weight; those respondents count for "
         "nothing in the indicators weighted by it (--weight weight_design), though they count in each cell's "
         "unweighted n — check the weight variable for them: a design that gives some respondents weight 0 leaves "
         "them out on purpose; else it is a slip in the file")]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FILTER (weight IS NULL), count(*) FILTER (weight_design IS NULL) "
                           "FROM respondents").fetchone() == (5, 7)


def test_a_weight_the_file_lacks_is_said_once_as_not_available(real: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """An extract without `dweight`: the design weight is not available (one warning), not also "missing in every
    row" (the per-row warning is for files that hold the weight)."""
    df, meta = real[0].drop(columns=["dweight"]), real[1]
    data = _write(df, meta, tmp_path / "data")
    code, out, _ = run("validate", "--data", str(data))
    assert code == 0
    assert [w.split(" — ")[0] for w in _warnings(out)] == [
        (f"warning: ess wave 8: {data / 'ESS8FR.sav'}: 1 target(s) not available in this file, which lacks their "
        "variables: weight_design (dweight); they are stored as missing (not_available)")]


def test_a_weight_no_rule_maps_is_the_unmapped_errors_not_a_missing_weight(real: tuple[pd.DataFrame, Any],
                                                                          tmp_path: Path) -> None:
    """A design weight of inf in 5 rows: the missing-weight warning counted them under the internal reason
    '__unmapped__'; the unmapped-code error names the code, and the warning leaves them to it."""
    df, meta = real[0].copy(), real[1]
    df.loc[:4, "dweight"] = float("inf")
    code, out, err = run("validate", "--data", str(_write(df, meta, tmp_path / "data")))
    assert code == 1
    assert "__unmapped__" not in out + err and "weight_design is missing in" not in out + err
    assert "targets.weight_design: source variable dweight code inf (no value label) has no mapping" in err


def test_derived_values_the_inputs_contradict_are_said(real: tuple[pd.DataFrame, Any], ess8: Path,
                                                       tmp_path: Path) -> None:
    """A year of arrival after the interview, or before the year of birth, made years since arrival and age at
    arrival `invalid` (the schema's derivations say so) without a word: only the missing-reason counts showed it.
    A note (the values are stored as they should be); the real file holds one such respondent already."""
    said = "note: ess wave 8: derived values stored as invalid where their inputs contradict each other: "
    hint = ("; in ESS8FR.sav — check those rows' values in the file (a year of arrival after the interview or before "
            "the year of birth); the derivations are in mappings/schema.yaml")
    code, out, _ = run("validate", "--data", str(ess8))
    assert code == 0 and [line for line in out.splitlines() if "contradict" in line] == [
        f"{said}age_at_arrival in 1 row (from year_of_arrival, birth_year){hint}"]
    df, meta = real[0].copy(), real[1]
    abroad = df.index[(df["livecnta"] >= 1950) & (df["livecnta"] <= 2010)]
    df.loc[abroad[:3], "livecnta"] = 2017.0  # after the interview for those interviewed in 2016
    df.loc[abroad[3:6], "livecnta"] = df.loc[abroad[3:6], "yrbrn"] - 10
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(_write(df, meta, tmp_path / "data")), "--db", str(db))
    assert code == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        after, before = con.execute("SELECT count(*) FILTER (year_of_arrival > year), "
                                    "count(*) FILTER (year_of_arrival < birth_year) FROM respondents").fetchone()
    assert (after, before) == (3, 4)
    assert [line for line in err.splitlines() if "contradict" in line] == [
        (f"{said}years_since_arrival in 3 rows (from year_of_arrival, year); age_at_arrival in 4 rows (from "
        f"year_of_arrival, birth_year){hint}")]


def test_rows_a_consistency_statement_contradicts_are_a_note_when_few_and_a_warning_when_many(
        real: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """An age and a year of birth ten years apart were stored without a word. The schema's statement
    (`age_agrees_with_birth_year`) judges every row holding the three values: 12 rows of 2,065 (0.6%) are the
    file's slips, a note; every row is a rule reading the wrong variable, a warning. The values stay the file's."""
    df, meta = real[0].copy(), real[1]
    aged = df.index[(df["agea"] < 900) & (df["yrbrn"] < 7000)]
    df.loc[aged[:12], "agea"] = df.loc[aged[:12], "agea"] + 10
    code, out, _ = run("validate", "--data", str(_write(df, meta, tmp_path / "few")))
    said = [line for line in out.splitlines() if "age_agrees_with_birth_year" in line]
    (first,) = df.loc[aged[:1], "idno"]
    assert code == 0 and said == [
        (f"note: ess wave 8: age and year of birth more than two years apart in 12 of the {len(aged):,} row(s) it "
        f"judges (e.g. respondent FR-{int(first)}): age_agrees_with_birth_year (abs(year - birth_year - age) <= 2) "
        "is false there; in ESS8FR.sav — the values are stored as the file has them; check those rows in the file, "
        "and if most rows are said, the rules of year, birth_year, age (a variable read from the wrong source, or "
        "its codes); the statement is in mappings/schema.yaml")]
    df.loc[aged, "agea"] = df.loc[aged, "agea"] + 5
    (tmp_path / "many").mkdir()
    db, warnings = _built(df, meta, tmp_path / "many")
    assert [w.split(" (e.g.")[0] for w in warnings if "age_agrees_with_birth_year" in w] == [
        (f"warning: ess wave 8: age and year of birth more than two years apart in {len(aged):,} of the "
        f"{len(aged):,} row(s) it judges")]
    with duckdb.connect(str(db), read_only=True) as con:  # stored as the file has them
        assert con.execute("SELECT sum(age) FROM respondents").fetchone() == (int(df.loc[aged, "agea"].sum()),)


def test_values_with_decimals_in_a_variable_of_whole_numbers_are_said(real: tuple[pd.DataFrame, Any], ess8: Path,
                                                                     tmp_path: Path) -> None:
    """trstprl 5.5 on the 0-10 trust scale (SPSS format F2.0) was stored as 5.5 without a word; a fractional
    category (gndr 1.5) is an unmapped code already, and a whole-number range (agea 40.5) fails pandera."""
    df, meta = real[0].copy(), real[1]
    answered = df.index[df["trstprl"] <= 10]
    df.loc[answered[:3], "trstprl"] = 5.5
    df.loc[answered[3:4], "trstprl"] = 0.25
    (tmp_path / "data").mkdir()
    pyreadstat.write_sav(df, str(tmp_path / "data" / "ESS8FR.sav"), column_labels=meta.column_names_to_labels,
                         variable_value_labels=meta.variable_value_labels, missing_ranges=meta.missing_ranges,
                         variable_format={c: f for c, f in meta.original_variable_types.items() if c in df})
    code, out, _ = run("validate", "--data", str(tmp_path / "data"))
    assert code == 0
    at = line_of(CROSSWALK, "  trust_parliament:")
    assert [w for w in _warnings(out) if "decimals" in w] == [
        (f"warning: mappings/ess.yaml:{at} targets.trust_parliament: trstprl: 4 value(s) with decimals in a variable "
         "of whole numbers (its format F2.0): 5.5 (3 rows), 0.25 (1 row); stored as trust_parliament as they are, the "
         "rule's range allowing them — check those rows in the file (a mean, an imputation or a slip, not an answer "
         "of the scale); give them a reason under the rule's missing: if they are not answers")]
    code, out, _ = run("validate", "--data", str(ess8))  # the real file: whole numbers, F2.0
    assert code == 0 and "decimals" not in out


def test_a_year_stored_as_a_date_is_said_to_be_a_date(real: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """`inwyys` written with the SPSS format DATE11 (seconds since 14 October 1582): the rule reading a year stored
    13,684,118,400 and pandera's range check named only the number."""
    df, meta = real[0].copy(), real[1]
    origin = datetime.datetime(1582, 10, 14)
    df["inwyys"] = [(datetime.datetime(int(y), 6, 1) - origin).total_seconds() for y in df["inwyys"]]
    (tmp_path / "data").mkdir()
    pyreadstat.write_sav(df, str(tmp_path / "data" / "ESS8FR.sav"), column_labels=meta.column_names_to_labels,
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k != "inwyys"},
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k != "inwyys"},
                         variable_format={"inwyys": "DATE11"})
    code, _, err = run("validate", "--data", str(tmp_path / "data"))
    assert code == 1
    (line,) = [line for line in err.splitlines() if "failed on column year:" in line]
    assert line.endswith("(from its rule: expr: coalesce(inwyys, 2016)); the file stores inwyys (DATE11) as a date: "
                         "its numbers are seconds (SPSS) or days (Stata) since the format's origin, not what the rule "
                         "reads — read the variable's year (or number) in the file, or a variable that holds it, in a "
                         "wave override of the rule")
