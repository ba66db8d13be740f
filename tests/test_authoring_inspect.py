"""`harmonise inspect`: metadata and observed frequencies of a source file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from harmonise.authoring.inspect import Frequency, inspect_file
from tests.conftest import run


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .sav with a labelled code, an unlabelled code, a declared missing code and system-missing."""
    path = tmp_path_factory.mktemp("inspect") / "small.sav"
    df = pd.DataFrame({"q1": [1, 1, 2, 3, 9, np.nan, 1], "name": ["a", "b", "", "a", "a", "c", "a"]})
    pyreadstat.write_sav(df, str(path), column_labels=["Do you agree?", "Respondent name"],
                         variable_value_labels={"q1": {1: "Yes", 2: "No", 9: "No answer"}},
                         missing_ranges={"q1": [9]})
    return path


@pytest.fixture(scope="module")
def stata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inspect") / "ext.dta"
    df = pd.DataFrame({"x": [1, 2, 5, "a", "b", 1]})
    df["x"] = df["x"].astype(object)
    pyreadstat.write_dta(df, str(path), missing_user_values={"x": ["a", "b"]},
                         variable_value_labels={"x": {1: "One", 2: "Two", "a": "Refusal"}})
    return path


def test_frequencies_keep_unlabelled_declared_and_system_missing(small: Path) -> None:
    rep = inspect_file(small)
    q1 = next(v for v in rep.variables if v.name == "q1")
    assert q1.label == "Do you agree?"
    assert q1.missing == {"values": [9]}
    assert q1.frequencies == [Frequency(1, 3, "Yes", "value"), Frequency(2, 1, "No", "value"),
                              Frequency(3, 1, None, "unlabelled"), Frequency(9, 1, "No answer", "declared_missing"),
                              Frequency(".", 1, None, "system_missing")]
    assert (q1.distinct, q1.minimum, q1.maximum) == (4, 1.0, 3.0)
    name = next(v for v in rep.variables if v.name == "name")
    assert name.frequencies == [Frequency(".", 1, None, "system_missing"), Frequency("a", 4, None, "unlabelled"),
                                Frequency("b", 1, None, "unlabelled"), Frequency("c", 1, None, "unlabelled")]


def test_stata_extended_missing_values_are_listed(stata: Path) -> None:
    (x,) = inspect_file(stata).variables
    assert x.frequencies == [Frequency(1, 2, "One", "value"), Frequency(2, 1, "Two", "value"),
                             Frequency(5, 1, None, "unlabelled"), Frequency(".a", 1, "Refusal", "extended_missing"),
                             Frequency(".b", 1, None, "extended_missing")]


def test_real_file_counts_match_pyreadstat(ess8: Path) -> None:
    rep = inspect_file(ess8, ["gndr", "domicil"])
    df, _ = pyreadstat.read_sav(str(ess8), usecols=["gndr", "domicil"], user_missing=True)
    by = {v.name: v for v in rep.variables}
    assert {f.code: f.count for f in by["gndr"].frequencies} == {1: 953, 2: 1117, 9: 0}
    domicil = {f.code: f.count for f in by["domicil"].frequencies if f.count}
    assert domicil == {int(k): int(n) for k, n in df["domicil"].value_counts().items()}
    assert by["domicil"].label == "Domicile, respondent's description"


def test_filters_by_name_glob_and_label_text(ess8: Path) -> None:
    assert [v.name for v in inspect_file(ess8, ["gndr?"], data=False).variables] == [f"gndr{i}" for i in range(2, 10)]
    assert [v.name for v in inspect_file(ess8, ["ESS8 REGION"], data=False).variables] == ["ess8_reg"]


def test_cli_text_and_json(small: Path) -> None:
    code, out, err = run("inspect", str(small), "--match", "q1")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"{small}: sav, 7 rows, 1 variable(s)"
    assert lines[2] == """q1  'Do you agree?'  (numeric, F8.2, unknown)  missing: {"values": [9]}"""
    assert lines[4:] == ["             1          3 'Yes'", "             2          1 'No'",
                         "             3          1 [unlabelled]", "             9          1 'No answer' [missing]",
                         "             .          1 [system missing]"]
    code, out, _ = run("inspect", str(small), "--format", "json")
    assert code == 0
    assert json.loads(out) == json.loads(json.dumps(inspect_file(small).to_dict(), default=str))


def test_cli_errors(small: Path, tmp_path: Path) -> None:
    code, _, err = run("inspect", str(small), "--match", "nothing-like-this")
    assert (code, err) == (2, "error: no variable of small.sav matches nothing-like-this\n")
    bad = tmp_path / "bad.sav"
    bad.write_bytes(b"not spss")
    code, _, err = run("inspect", str(bad))
    assert code == 2 and err.startswith(f"error: {bad}: not a SAV file")
