"""A file whose content makes it one survey's wave and whose name matches another survey's files (the audit's
finding F3-1): content wins, as within one survey, but no longer silently — in `validate` and `build` alike, and
when validating the other survey's crosswalk alone, so that what a contributor validated is what a build uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, edit, run

FI = ROOT.parent / "shared" / "data" / "ess_real" / "ess9_nordic" / "ESS9FI.sav"
pytestmark = pytest.mark.skipif(not FI.is_file(), reason="../shared/data/ess_real not present")


def _crosswalk(project: Path, survey: str, title: str, file: str, key: dict[str, dict[str, str]]) -> None:
    """A crosswalk ``survey`` in the project copy (and its schema's survey list) whose one wave names ``file`` by
    name and declares no content (as `harmonise scaffold FILE --survey S` writes it): ``key`` maps the respondent
    id and country; every other target is not asked."""
    schema = yaml.safe_load((ROOT / "mappings" / "schema.yaml").read_text())
    targets: dict[str, object] = {var["name"]: {"not_asked": "not mapped in this test"} for var in schema["variables"]
                                  if not var.get("automatic") and not var.get("derived")}
    targets.update(key)
    crosswalk = {"survey": survey, "title": title, "waves": [{"wave": "1", "year": 2018, "files": [file]}],
                 "targets": targets}
    (project / "mappings" / f"{survey}.yaml").write_text(yaml.safe_dump(crosswalk, sort_keys=False))
    edit(project / "mappings" / "schema.yaml", "ties: The Integration of the European Second generation",
         f"ties: The Integration of the European Second generation, {survey}: {title}")


@pytest.fixture()
def newsurvey(project: Path) -> Path:
    """The project copy with a second crosswalk, `gbnew`, whose one wave names ESS9FI.sav as its file."""
    _crosswalk(project, "gbnew", "A new survey", "ESS9FI.sav",
               {"respondent_id": {"expr": "concat(cntry, '-', str(idno))", "quality": "exact"},
                "country": {"source": "cntry", "table": "ess_country_codes", "quality": "exact"}})
    return project


def test_validate_and_build_warn_when_the_name_matches_another_surveys_files(newsurvey: Path,
                                                                             tmp_path: Path) -> None:
    warning = (f"warning: ess wave 9: {FI}: its content makes it ess wave 9; its name matches the files of ess "
               "wave 9 and of gbnew wave 1; it is harmonised as ess wave 9 (mappings/ess.yaml): content comes before "
               "file names — check which crosswalk the file is for; --survey gbnew --wave 1 harmonises it as gbnew "
               "wave 1 (in validate and build alike), whatever the content")
    code, out, err = run("validate", "--data", str(FI), project=newsurvey)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == warning
    assert out.splitlines()[1:] == ["ok: 0 error(s), 1 warning(s), 1 file(s), 1,755 rows"]
    code, out, err = run("build", "--data", str(FI), "--db", str(tmp_path / "h.duckdb"), project=newsurvey)
    assert code == 0, err
    assert warning in err.splitlines()


def test_the_options_that_force_the_other_survey_silence_the_warning(newsurvey: Path) -> None:
    code, out, err = run("validate", "--data", str(FI), "--survey", "gbnew", "--wave", "1", project=newsurvey)
    assert (code, err) == (0, "")
    assert "name-content" not in out
    assert out.splitlines()[-1].startswith("ok: 0 error(s), 0 warning(s)")


def test_validating_one_crosswalk_says_a_build_recognises_the_file_as_another_surveys(newsurvey: Path) -> None:
    """`validate mappings/gbnew.yaml --data` checked the file as gbnew and said ok; a build then used ess wave 9."""
    code, out, err = run("validate", str(newsurvey / "mappings" / "gbnew.yaml"), "--data", str(FI),
                         project=newsurvey)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"warning: gbnew wave 1: {FI}: validated here as gbnew wave 1 (mappings/gbnew.yaml), but its content matches "
        "ess wave 9 (mappings/ess.yaml): a build with every crosswalk harmonises it as that wave — build it with "
        "--survey gbnew --wave 1 to harmonise it as validated here; validate without naming a crosswalk to check it "
        "as a build does")
    code, out, err = run("validate", str(newsurvey / "mappings" / "ess.yaml"), "--data", str(FI), project=newsurvey)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"warning: ess wave 9: {FI}: its content makes it ess wave 9; its name matches the files of ess wave 9 and "
        "of gbnew wave 1; it is harmonised as ess wave 9 (mappings/ess.yaml): content comes before file names — "
        "check which crosswalk the file is for; --survey gbnew --wave 1 harmonises it as gbnew wave 1 (in validate "
        "and build alike), whatever the content")


def test_a_file_of_one_survey_validated_with_its_own_crosswalk_has_no_warning() -> None:
    code, out, err = run("validate", str(ROOT / "mappings" / "ess.yaml"), "--data", str(FI))
    assert (code, err) == (0, "")
    assert "name-content" not in out


def test_validating_one_crosswalk_says_a_build_finds_the_file_named_by_two(project: Path, tmp_path: Path) -> None:
    """Two crosswalks naming the same file: each validated alone took it and said ok, and a build of both refused it
    as an ambiguous file. Validating one now says so."""
    import pandas as pd
    import pyreadstat

    key = {"respondent_id": {"expr": "str(id)", "quality": "exact"}, "country": {"expr": "'FI'", "quality": "exact"}}
    _crosswalk(project, "gbnew", "A new survey", "gbfile.sav", key)
    _crosswalk(project, "gbtwo", "Another survey", "gbfile.sav", key)
    data = tmp_path / "gbfile.sav"
    pyreadstat.write_sav(pd.DataFrame({"id": [1.0, 2.0, 3.0]}), str(data))
    code, out, err = run("validate", str(project / "mappings" / "gbnew.yaml"), "--data", str(data), project=project)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"warning: gbnew wave 1: {data}: validated here as gbnew wave 1 (mappings/gbnew.yaml), but its name matches the "
        "files of gbnew wave 1 (mappings/gbnew.yaml), gbtwo wave 1 (mappings/gbtwo.yaml): a build with every crosswalk "
        "harmonises it as none of them (ambiguous-file) — build it with --survey gbnew --wave 1 to harmonise it as "
        "validated here; validate without naming a crosswalk to check it as a build does")
    code, out, err = run("validate", "--data", str(data), project=project)
    assert (code, out) == (1, "FAILED: 1 error(s), 0 warning(s)\n")
    assert f"{data}: file name matches several waves (gbnew wave 1, gbtwo wave 1)" in err
