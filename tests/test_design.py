"""`build --design FILE` (issue 19.5): a sample-design file (ESS SDDF shape) joined to its wave gives the
same standard errors as the psu and stratum of the integrated file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyreadstat
import pytest
from conftest import keep_named, run
from test_discover import FI, write_copy

pytestmark = pytest.mark.skipif(not FI.is_file(), reason="../shared/data/ess_real not present")
SES = "SELECT indicator, breakdown, \"group\", se, design FROM indicators WHERE se IS NOT NULL ORDER BY ALL"


def test_a_design_file_gives_the_standard_errors_of_the_integrated_psu_and_stratum(tmp_path: Path) -> None:
    real = pyreadstat.read_sav(str(FI), user_missing=True)
    data = tmp_path / "data"  # the copy: the variables the crosswalk names (the others are read by no rule)
    write_copy((keep_named(real[0]), real[1]), data / "ESS9FI.sav", drop=("psu", "stratum"))
    sddf = tmp_path / "ESS9_SDDF_FI.sav"
    pyreadstat.write_sav(real[0][["essround", "idno", "cntry", "psu", "stratum", "prob"]], str(sddf))
    dbs = {}
    for name, args in {"integrated": ["--data", str(FI.parent / "ESS9FI.sav")],
                       "without": ["--data", str(data)],
                       "design": ["--data", str(data), "--design", str(sddf)]}.items():
        dbs[name] = tmp_path / f"{name}.duckdb"
        code, _, err = run("build", *args, "--db", str(dbs[name]))
        assert code == 0, err
    ses = {name: duckdb.connect(str(db), read_only=True).execute(SES).fetchall() for name, db in dbs.items()}
    assert ses["design"] == ses["integrated"] and len(ses["design"]) > 50
    assert all(row[4].startswith("stratum/psu") for row in ses["design"])
    assert all(row[4].startswith("respondents as PSUs") for row in ses["without"])
    con = duckdb.connect(str(dbs["design"]), read_only=True)
    assert con.execute("SELECT count(*) FILTER (WHERE psu IS NULL), count(*) FROM respondents").fetchone() == (
        0, len(real[0]))
    assert con.execute("SELECT target, rule, file_name FROM lineage WHERE kind = 'design' ORDER BY 1").fetchall() == [
        ("psu", "design: concat(cntry, '-', str(psu))", sddf.name),
        ("stratum", "design: concat(cntry, '-', str(stratum))", sddf.name)]


def test_a_design_file_of_another_country_leaves_the_respondents_as_they_were(tmp_path: Path) -> None:
    real = pyreadstat.read_sav(str(FI), usecols=["essround", "idno", "cntry", "psu", "stratum"], user_missing=True)
    other = real[0][["essround", "idno", "cntry", "psu", "stratum"]].assign(cntry="NO")
    sddf = tmp_path / "ESS9_SDDF_NO.sav"
    pyreadstat.write_sav(other, str(sddf))
    code, _, err = run("build", "--data", str(FI), "--design", str(sddf), "--db", str(tmp_path / "h.duckdb"))
    assert code == 0, err
    n = len(real[0])
    assert (f"warning: ess wave 9: {sddf.name}: {n:,} of {n:,} respondents of ess wave 9 have no row in the design "
            "file; their psu, stratum stay as the data files give them") in err


def test_a_design_file_whose_read_variables_differ_only_in_case_is_refused(project: Path, tmp_path: Path) -> None:
    """Stata tells psu from PSU, DuckDB does not: a design expression reading both read one for the other."""
    from conftest import edit

    edit(project / "mappings" / "ess.yaml", "design: {psu: \"concat(cntry, '-', str(psu))\"",
         "design: {psu: \"concat(cntry, '-', str(psu), str(PSU))\"")
    real = pyreadstat.read_sav(str(FI), usecols=["essround", "idno", "cntry", "psu", "stratum"], user_missing=True)[0]
    sddf = tmp_path / "ESS9_SDDF_FI.dta"
    frame = real[["essround", "idno", "cntry", "psu", "stratum"]].copy()
    frame.insert(0, "PSU", 0.0)
    pyreadstat.write_dta(frame, str(sddf))
    code, _, err = run("build", "--data", str(FI), "--design", str(sddf), "--db", str(tmp_path / "h.duckdb"),
                       project=project)
    assert code == 2 and (f"{sddf}: variable psu and variable PSU, which the crosswalk reads, would share one column "
                          "name in DuckDB") in err, err


def test_a_design_file_of_another_wave_empty_or_contradicting_itself_is_said(tmp_path: Path) -> None:
    """Three design files that joined nothing, or something arbitrary, without a word (exit 0): one of round 8 for
    the round-9 file, one whose psu and stratum are empty, one giving 30 respondents a second row with another psu
    (which of the two the join took could not be told)."""
    real = pyreadstat.read_sav(str(FI), usecols=["essround", "idno", "cntry", "psu", "stratum"], user_missing=True)[0]
    n = len(real)
    files = {"round8": real.assign(essround=8.0), "empty": real.assign(psu=float("nan"), stratum=float("nan")),
             "twice": pd.concat([real, real.iloc[:30].assign(psu=999.0)])}
    said = {}
    for name, frame in files.items():
        sddf = tmp_path / name / f"ESS9_SDDF_{name}.sav"
        sddf.parent.mkdir()
        pyreadstat.write_sav(frame, str(sddf))
        db = tmp_path / name / "h.duckdb"
        code, _, err = run("build", "--data", str(FI), "--design", str(sddf), "--db", str(db))
        said[name] = (code, [line for line in err.splitlines() if sddf.name in line], db.exists())
    assert said["round8"] == (0, [
        ("warning: ess wave 8: ESS9_SDDF_round8.sav: a design file of ess wave 8, whose respondents this run has not "
        "harmonised: nothing joined — give the design file of the waves in --data, or the ess wave 8 files with it")], True)
    assert said["empty"] == (0, [
        (f"warning: ess wave 9: ESS9_SDDF_empty.sav: {n:,} of its {n:,} rows have no psu or stratum: those respondents "
        "keep the data files' values — check the design file's variables (empty, or other names)")], True)
    code, lines, built = said["twice"]
    assert (code, built, len(lines)) == (1, False, 1)
    assert lines[0].startswith(
        "error: ess wave 9: ESS9_SDDF_twice.sav: 30 respondent id(s) have several rows with different psu or stratum "
        "(e.g. FI-")
    assert lines[0].count("psu FI-999, stratum FI-") == 3  # each example's second row
    assert lines[0].endswith("): which one applies cannot be told — give each respondent one row in the design file "
                             "(check that it is the wave's file)")
