"""The labels check of variables that expressions read (`harmonise/checks/labels.py`): a file whose labels say its
codes of such a variable are another code's (copies of the real ESS9 Finland file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
from conftest import ROOT, keep_named, line_of, run
from test_discover import FI, write_copy

from harmonise.authoring.adapt import paste

pytestmark = pytest.mark.skipif(not FI.is_file(), reason="../shared/data/ess_real not present")


@pytest.fixture(scope="module")
def finland() -> tuple[pd.DataFrame, Any]:
    """The Finnish file's variables that the ESS declarations name, and its metadata (as test_discover's)."""
    df, meta = pyreadstat.read_sav(str(FI), user_missing=True)
    return keep_named(df), meta


def test_swapped_codes_of_an_expressions_input_are_an_error_and_a_waves_override_a_warning(
        finland: tuple[pd.DataFrame, Any], tmp_path: Path, project: Path) -> None:
    """`uempla` (unemployed, looking for work: 0 'Not marked', 1 'Marked') with its labels swapped was read by the
    labour status expression as the declared codes: the marked respondents' answers taken as unmarked, without a
    word (the label check read map and range rules only). Now an error names the variable, the codes and the
    expression's target; where the wave overrides the expression (perhaps for this file), a warning."""
    data = tmp_path / "data"
    write_copy(finland, data / "ESS9FI.sav", relabel={"uempla": {0.0: "Marked", 1.0: "Not marked"}})
    code, out, err = run("validate", "--data", str(data))
    at = line_of(ROOT / "mappings" / "ess.yaml", "expr: \"'employed' if pdwrk == 1")
    assert code == 1
    assert [line for line in out.splitlines() + err.splitlines() if line.startswith("error:")] == [
        (f"error: mappings/ess.yaml:{at} targets.labour_status.expr: wave 9: the file's labels of uempla contradict "
        "the codes that the expression(s) for labour_status read (written for surveys/ess/codebook_9.yaml): 0 is "
        "labelled 'Marked', the declared label of 1; 1 is labelled 'Not marked', the declared label of 0 — the "
        "file's codes were recoded: recode the variable back to the declared codes in the file, or write a wave "
        "override of each expression with the file's codes (`harmonise inspect FILE` lists the labels)")]
    crosswalk = project / "mappings" / "ess.yaml"
    crosswalk.write_text(paste(crosswalk.read_text(encoding="utf-8"), "9", [
        ("labour_status: {expr: \"'employed' if pdwrk == 1 else ('unemployed' if uempla == 0 else 'inactive')\", "
        "quality: recoded}")]),
        encoding="utf-8")
    code, out, err = run("validate", "--data", str(data), project=project)
    assert code == 0, out + err
    at = line_of(project / "mappings" / "ess.yaml", "labour_status: {expr: \"'employed' if pdwrk == 1")
    assert [line for line in out.splitlines() + err.splitlines() if "uempla" in line and line.startswith("warning:")] == [
        (f"warning: mappings/ess.yaml:{at} waves[9].overrides.labour_status.expr: wave 9: the file's labels of uempla "
        "contradict the codes that the expression(s) for labour_status read (written for surveys/ess/codebook_9.yaml): "
        "0 is labelled 'Marked', the declared label of 1; 1 is labelled 'Not marked', the declared label of 0; the "
        "wave overrides them — a file of the wave with the declared codes would be read by the overrides too: keep "
        "such files out of this project, or recode the file back")]


def test_a_files_label_contradiction_and_the_errors_its_rows_hold_are_found_in_one_run(
        finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """A label contradiction stopped the file before its rows were harmonised ("1 file(s) not read: their errors
    above stop them"), so an unmapped code in its rows was found only once the labels were fixed. Such an error
    leaves the rules meaningful on the file: it is harmonised, and both errors come in one run."""
    df, meta = finland
    df = df.copy()
    df.loc[df.index[:25], "stflife"] = 11.0
    data = tmp_path / "data"
    write_copy((df, meta), data / "ESS9FI.sav", relabel={"gndr": {1.0: "Female", 2.0: "Male"}})
    code, out, err = run("validate", "--data", str(data))
    lines = out.splitlines() + err.splitlines()
    assert code == 1
    assert [line.split(": ", 2)[1] for line in lines if line.startswith("error:")] == [
        f"mappings/ess.yaml:{line_of(ROOT / 'mappings' / 'ess.yaml', '  sex:') + 2} targets.sex.map",
        f"mappings/ess.yaml:{line_of(ROOT / 'mappings' / 'ess.yaml', '  life_satisfaction:')} targets.life_satisfaction"]
    assert any("stflife code 11 (no value label) has no mapping for target life_satisfaction: 25 row(s)" in line
               for line in lines)
    assert "FAILED: 2 error(s), 0 warning(s), 1 note(s), 1 file(s), 1,755 rows" in lines  # no file "not read"
