"""How a Stata file's unlabelled missing letters are read (decision 97): by the crosswalk's convention (ESS: .a not
applicable, .b refusal, .c don't know, .d no answer), or in each variable's declared missing codes' order (.a its
lowest code), as the letters each variable holds show; an error when neither reading can hold them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest
from conftest import keep_named, run

ROWS = 40


def _ess9(path: Path, letters: dict[int, str], cntry: str = "GB", labelled: bool = False) -> None:
    """A synthetic ESS round-9 Stata file of :data:`ROWS` rows whose trust in parliament (trstprl, declared missing
    77 refusal, 88 don't know, 99 no answer in surveys/ess/codebook_9.yaml) holds ``letters`` (row → letter), the
    letters unlabelled unless ``labelled`` (ESS ERIC's own labels)."""
    trust: list[object] = [float(i % 11) for i in range(ROWS)]
    for row, letter in letters.items():
        trust[row] = letter
    df = pd.DataFrame({"idno": np.arange(1.0, ROWS + 1), "cntry": [cntry] * ROWS, "essround": [9.0] * ROWS,
                       "trstprl": pd.Series(trust, dtype=object)})
    labels = {"trstprl": {"a": "Not applicable", "b": "Refusal", "c": "Don't know", "d": "No answer"}} if labelled \
        else {}
    pyreadstat.write_dta(df, str(path), variable_value_labels=labels,
                         missing_user_values={"trstprl": sorted({*letters.values(), *labels.get("trstprl", {})})})


def _reasons(db: Path) -> dict[str, list[tuple[str, str, int]]]:
    """Per file: (source code, trust_parliament_missing, rows) of the trust rows with a Stata letter."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out: dict[str, list[tuple[str, str, int]]] = {}
        for name, code, reason, n in con.execute(
                "SELECT file_name, source_code, missing_reason, n FROM harmonisation_report WHERE target = "
                "'trust_parliament' AND source_code LIKE '._' ORDER BY ALL").fetchall():
            out.setdefault(name, []).append((code, reason, n))
        return out
    finally:
        con.close()


def _said(out: str) -> list[str]:
    """The lines about the file's missing letters (not the summary's count by category)."""
    return [line for line in out.splitlines() if re.search(r"letters-in-order|unlabelled-letters|missing letters", line)
            and not line.startswith("by category:")]


def test_unlabelled_letters_the_convention_can_hold_are_read_by_it_and_said_when_the_order_could_too(
        tmp_path: Path) -> None:
    """trstprl .b, .c and .d, unlabelled: the convention's refusal, don't know and no answer are codes trust has, and
    .d lies beyond trust's three declared missing codes, so the file does not letter them in order: read by the
    convention without a word. With .b and .c only, the order would read them too, as don't know and no answer: read
    by the convention, but said (`letters-ambiguous`): nothing in the file shows which it follows."""
    data = tmp_path / "data"
    data.mkdir()
    _ess9(data / "ESS9GB.dta", {0: "b", 1: "b", 2: "c", 3: "d"})
    code, out, err = run("build", "--data", str(data), "--db", str(tmp_path / "h.duckdb"))
    assert code == 0
    assert _said(out + err) == []
    assert _reasons(tmp_path / "h.duckdb") == {
        "ESS9GB.dta": [(".b", "refused", 2), (".c", "dont_know", 1), (".d", "no_answer", 1)]}
    path = data / "ESS9GB.dta"
    _ess9(path, {0: "b", 1: "b", 2: "c"})
    code, out, err = run("build", "--data", str(data), "--db", str(tmp_path / "h.duckdb"))
    assert code == 0
    assert _said(err) == [
        (f"warning: ess wave 9: {path}: its Stata missing letters carry no labels, and both the crosswalk's convention "
         "(.a not_applicable, .b refused, .c dont_know, .d no_answer) and each variable's declared missing codes in "
         "order (.a the lowest code) can read them; they give other reasons for 1 variable(s): trstprl .b (2 row(s)) "
         "refused by the convention, dont_know in order, .c (1 row(s)) dont_know by the convention, no_answer in order "
         "— read by the convention, which the file's letters do not show it follows — if the file letters each "
         "variable's missing codes in order (as files converted from SPSS do, and as the wave's other Stata files may "
         "show: `letters-in-order`), give the letters their reasons in the rules' `missing` (a wave override, e.g. "
         "{'.a': refused, '.b': dont_know, '.c': no_answer})")]
    assert _reasons(tmp_path / "h.duckdb") == {"ESS9GB.dta": [(".b", "refused", 2), (".c", "dont_know", 1)]}


def test_unlabelled_letters_in_each_variables_order_are_read_so_with_a_warning(tmp_path: Path) -> None:
    """trstprl .a (not applicable by the convention: trust has no such code) and .b, .c: every letter within its
    three declared missing codes, so the file letters them in order: .a 77 refusal, .b 88 don't know, .c 99 no
    answer. A file of the same wave with ESS ERIC's labelled letters, built with it, keeps its labels' reasons (its
    SQL differs, so the two are not harmonised as one batch through one reading); a rebuild keeps both files and
    says the warning again."""
    data = tmp_path / "data"
    data.mkdir()
    path = data / "ESS9GB.dta"
    _ess9(path, {0: "a", 1: "a", 2: "b", 3: "c", 4: "c", 5: "c"})
    _ess9(data / "ESS9FR.dta", {0: "a", 1: "b", 2: "b"}, cntry="FR", labelled=True)
    warning = (f"warning: ess wave 9: {path}: its Stata missing letters carry no labels and do not follow the "
               "crosswalk's convention (.a not_applicable, .b refused, .c dont_know, .d no_answer) for 1 variable(s): "
               "trstprl .a (2 row(s)) as not_applicable (its declared codes are dont_know, no_answer, refused); "
               "every variable read holds only letters within its declared missing codes, so the file letters each "
               "variable's missing codes in order (.a the lowest code), as files converted from SPSS by other tools "
               "do, and is read so: trstprl .a (2 row(s)) refused, .b (1 row(s)) dont_know, .c (3 row(s)) no_answer "
               "(its codes 77, 88, 99) — if the file letters otherwise, give the letters their reasons in the rules' "
               "`missing` (a wave override, e.g. {'.a': refused, '.b': dont_know, '.c': no_answer}), or harmonise "
               "the SPSS release")
    db = tmp_path / "h.duckdb"
    code, out, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0
    assert _said(out + err) == [warning]
    expected = {"ESS9GB.dta": [(".a", "refused", 2), (".b", "dont_know", 1), (".c", "no_answer", 3)],
                "ESS9FR.dta": [(".a", "not_applicable", 1), (".b", "refused", 2)]}
    assert _reasons(db) == expected
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM conservation WHERE NOT ok").fetchone() == (0,)
        assert con.execute("SELECT trust_parliament_missing, count(*) FROM respondents WHERE country = 'GB' AND "
                           "trust_parliament IS NULL GROUP BY 1 ORDER BY 1").fetchall() == [
            ("dont_know", 1), ("no_answer", 3), ("refused", 2)]
    finally:
        con.close()
    code, out, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0
    assert "; 2 of 2 files kept from the previous build" in out + err
    assert _said(out + err) == [warning]
    assert _reasons(db) == expected


def test_unlabelled_letters_neither_reading_can_hold_are_an_error_and_the_previous_database_stays(
        tmp_path: Path) -> None:
    """trstprl .a (not applicable: trust has no such code) and .d (beyond its three declared missing codes): the
    convention stores the refusals (or whatever .a is) as not applicable, the order gives .d no reason: the data
    would be wrong either way. Exit 1; a build over a previous database leaves it as it was."""
    data = tmp_path / "data"
    data.mkdir()
    path = data / "ESS9GB.dta"
    _ess9(path, {0: "b", 1: "c"})
    db = tmp_path / "h.duckdb"
    code, _, _ = run("build", "--data", str(data), "--db", str(db))
    assert code == 0
    before = db.read_bytes()
    _ess9(path, {0: "a", 1: "a", 2: "b", 3: "d"})
    error = (f"error: ess wave 9: {path}: its Stata missing letters carry no labels, and neither the crosswalk's "
             "convention (.a not_applicable, .b refused, .c dont_know, .d no_answer) nor each variable's declared "
             "missing codes in order (.a the lowest code) can read them: the convention gives 1 variable(s) reasons "
             "their declared codes cannot hold: trstprl .a (2 row(s)) as not_applicable (its declared codes are "
             "dont_know, no_answer, refused); the order cannot read 1 variable(s): trstprl .d (1 row(s)) beyond its "
             "3 declared missing code(s) — their reasons would be stored wrongly either way — give the letters their "
             "reasons in the rules' `missing` (a wave override, e.g. {'.a': refused, '.b': dont_know, '.c': "
             "no_answer}), or harmonise the SPSS release or a Stata file with labelled letters")
    code, out, err = run("validate", "--data", str(data))
    assert code == 1
    assert _said(out + err) == [error]
    code, out, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 1
    assert _said(out + err) == [error]
    assert db.read_bytes() == before
    shutil.rmtree(data)


CONVENTION = {"not applicable": "a", "refusal": "b", "don't know": "c", "no answer": "d"}


@pytest.mark.parametrize("lettering", ["in-order", "convention"])
def test_the_real_file_converted_to_stata_either_way_harmonises_as_the_spss_file(
        ess8: Path, fr_db: Path, tmp_path: Path, lettering: str) -> None:
    """The real ESS8 FR file written as a Stata file whose unlabelled letters stand for each variable's user-missing
    codes, in order (.a the lowest: what converters such as Stat/Transfer write) or by ESS ERIC's convention, gives
    every respondent the values and missing reasons of the SPSS file, column for column. Was: in order, the reasons
    of 20 variables' letters wrong (.a not applicable for trust's refusals); and the order counted codes the file
    does not declare missing (edulvlb 5555 'Other', which the rule makes not available): its refusals became not
    available."""
    df, meta = pyreadstat.read_sav(str(ess8), user_missing=True)
    df = keep_named(df)
    out, lettered = df.copy(), {}
    for c in df.columns:
        if meta.readstat_variable_types.get(c) == "string":
            continue
        labels = meta.variable_value_labels.get(c, {})
        codes = {*meta.missing_user_values.get(c, [])}
        for r in meta.missing_ranges.get(c, []):  # discrete missing values come as one-value ranges
            codes |= {v for v in {*labels, *df[c].dropna().unique()} if r["lo"] <= v <= r["hi"]}
        if lettering == "in-order":
            letter = {code: chr(ord("a") + i) for i, code in enumerate(sorted(codes))}
        else:
            letter = {code: x for code in codes if (x := CONVENTION.get(str(labels.get(code, "")).lower()))}
        if not letter:
            continue
        column = out[c].astype(object)
        for code, x in letter.items():
            column[df[c] == code] = x
        out[c], lettered[c] = column, sorted(set(letter.values()))
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_dta(out, str(data / "ESS8FR.dta"), version=15, missing_user_values=lettered,
                         column_labels={k: v for k, v in meta.column_names_to_labels.items() if k in out},
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items()  # (Stata: numbers)
                                                if k in out and not any(isinstance(x, str) for x in v)})
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    assert ("letters-in-order" in err) == (lettering == "in-order")
    # `harmonise sql --data` prints the SQL the build runs on the file (was: the convention's, either way)
    code, out, err = run("sql", "ess", "8", "--data", str(data / "ESS8FR.dta"))
    assert code == 0, err
    assert ("""CASE src."yrbrn#x" WHEN 'a' THEN 'refused'""" in out) == (lettering == "in-order")
    assert ("""CASE src."yrbrn#x" WHEN 'a' THEN 'not_applicable'""" in out) == (lettering == "convention")
    assert ("do not follow the crosswalk's convention" in err) == (lettering == "in-order")
    query = "SELECT * EXCLUDE (source_file) FROM respondents ORDER BY source_row"
    with duckdb.connect(str(fr_db), read_only=True) as con:
        want = con.execute(query).fetchall()
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.execute(query).fetchall()
    assert len(got) == len(want) == 2070 and got == want
