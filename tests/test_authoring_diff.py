"""`harmonise diff`: changes between two crosswalk versions, per target and survey-wave."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest

from harmonise.authoring.diff import Change, DiffResult, render_text
from tests.conftest import ROOT, edit, keep_named, run, waves_of

OLD_URB = "    map: {1: city, 2: town_suburb, 3: town_suburb, 4: rural, 5: rural}\n"
NEW_URB = "    map: {1: city, 2: city, 3: town_suburb, 4: rural, 5: rural}\n"


@pytest.fixture()
def remapped(project: Path) -> Path:
    """ess.yaml with exactly one code remapped: domicil 2 (suburbs) becomes a city."""
    path = project / "mappings" / "ess.yaml"
    edit(path, OLD_URB, NEW_URB)
    return path


def _counted(remapped: Path, project: Path, data: Path) -> dict[str, Any]:
    """`harmonise diff` of the shipped ess.yaml against ``remapped`` with ``--data``, as JSON (it must succeed)."""
    code, out, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(remapped), "--data", str(data),
                         "--format", "json", project=project)
    assert (code, err) == (0, "")
    return json.loads(out)  # type: ignore[no-any-return]


def test_one_remapped_code_and_its_respondents(remapped: Path, project: Path, ess8: Path) -> None:
    data = _counted(remapped, project, ess8.parent)
    waves = waves_of("ess")
    assert data["changes"] == [{"target": "urbanisation", "wave": w, "what": "remapped", "old": "town_suburb",
                                "new": "city", "code": 2} for w in waves]
    df, _ = pyreadstat.read_sav(str(ess8), usecols=["domicil"], user_missing=True)
    suburbs = int((df["domicil"] == 2).sum())
    assert suburbs == 235
    assert data["respondents"] == [{"wave": "8", "target": "urbanisation", "changed": suburbs}]
    assert data["files"] == {"8": str(ess8)}
    assert data["uncounted"] == [w for w in waves if w != "8"]  # said, not left to be inferred from what is absent
    code, out, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(remapped), "--data", str(ess8.parent),
                         project=project)
    assert (code, err) == (0, "")
    assert out.splitlines()[-2:] == [
        f"(respondents counted on {ess8} for wave 8)",
        (f"(no respondents counted for wave(s) {', '.join(w for w in waves if w != '8')}: {ess8.parent} holds no file "
        "recognised as those waves — give a file of each, or check the files' round variable and names)")]
    result = DiffResult("ess", "a.yaml", "b.yaml", [Change(**c) for c in data["changes"]],
                        {("8", "urbanisation"): suburbs}, {"8": str(ess8)})
    lines = render_text(result).splitlines()
    assert lines[:3] == ["ess: a.yaml → b.yaml", "wave 1  urbanisation", "    code 2: remapped 'town_suburb' → 'city'"]
    assert lines[15:17] == ["wave 8  urbanisation  (235 respondent(s) change value)",
                            "    code 2: remapped 'town_suburb' → 'city'"]
    assert lines[-1] == f"(respondents counted on {ess8} for wave 8)"


def test_coverage_gained_lost_and_kind_changes(project: Path) -> None:
    path = project / "mappings" / "ess.yaml"
    old = path.with_name("old.yaml")
    old.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    edit(path, "  reason_for_migration:\n    not_asked: ESS does not ask why respondents came to the country.\n",
         "  reason_for_migration:\n    constant: other\n    quality: proxy\n")
    edit(path, "  trust_parliament:\n    source: trstprl\n    range: [0, 10]\n    quality: exact\n",
         "  trust_parliament:\n    not_asked: dropped\n")
    edit(path, "    range: [13, 120]\n    missing: {999: not_available}\n", "    range: [15, 120]\n    missing: {999: refused}\n")
    code, out, err = run("diff", str(old), str(path), "--format", "json", project=project)
    assert (code, err) == (0, "")
    w8 = [(c["target"], c["what"], c["old"], c["new"], c["code"]) for c in json.loads(out)["changes"] if c["wave"] == "8"]
    assert w8 == [("age", "range", [13, 120], [15, 120], None),
                  ("age", "missing_changed", "not_available", "refused", 999),
                  ("reason_for_migration", "gained", "not asked", "constant 'other'", None),
                  ("trust_parliament", "lost", "trstprl in [0, 10]", "not asked", None)]


def test_git_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "mappings").mkdir(parents=True)
    cw = repo / "mappings" / "ess.yaml"
    cw.write_text((ROOT / "mappings" / "ess.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "mappings/ess.yaml"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "one"], check=True)
    edit(cw, OLD_URB, NEW_URB)
    monkeypatch.chdir(repo)
    code, out, err = run("diff", "HEAD:mappings/ess.yaml", "mappings/ess.yaml")
    assert (code, err) == (0, "")
    assert out.splitlines()[:3] == ["ess: HEAD:mappings/ess.yaml → mappings/ess.yaml", "wave 1  urbanisation",
                                    "    code 2: remapped 'town_suburb' → 'city'"]
    code, out, err = run("diff", "HEAD:mappings/ess.yaml", "HEAD:mappings/ess.yaml")
    assert (code, out) == (0, "ess: no changes between HEAD:mappings/ess.yaml and HEAD:mappings/ess.yaml\n")
    code, _, err = run("diff", "nosuchrev:mappings/ess.yaml", "mappings/ess.yaml")
    assert code == 2 and err.startswith("error: nosuchrev:mappings/ess.yaml: git show failed: fatal: ")


def test_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("diff", str(tmp_path / "missing.yaml"), str(ROOT / "mappings" / "ess.yaml"))
    assert (code, err) == (2, (f"error: {tmp_path / 'missing.yaml'}: no such file (give a path, or REV:path for a git "
                              "revision such as HEAD~1:mappings/ess.yaml)\n"))
    code, _, err = run("diff", str(ROOT / "mappings" / "evs.yaml"), str(ROOT / "mappings" / "ess.yaml"))
    assert (code, err) == (2, "error: the versions map different surveys ('evs' and 'ess')\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("survey: ess\ntitle: x\nwaves: []\ntargets: {}\n", encoding="utf-8")
    code, _, err = run("diff", str(broken), str(ROOT / "mappings" / "ess.yaml"))
    assert code == 1
    assert err.splitlines() == [f"error: {broken}:3 waves: List should have at least 1 item after validation, not 0",
                                f"{broken} is not a valid crosswalk: 1 error(s)"]


@pytest.mark.parametrize("change,text", [
    (Change("sex", "1", "code_added", "refused", "other", 3), "code 3: added → 'other' (was missing reason 'refused')"),
    (Change("sex", "1", "code_added", None, "other", 3), "code 3: added → 'other'"),
    (Change("sex", "1", "code_removed", "other", "no_answer", 3),
     "code 3: removed (was 'other'; now missing reason 'no_answer')"),
    (Change("sex", "1", "code_removed", "other", None, "3"), "code '3': removed (was 'other'; now unmapped)"),
    (Change("age", "1", "range", [13, 120], [15, 120]), "range: [13, 120] → [15, 120]"),
    (Change("psu", "1", "gained", "not asked", "psu"), "coverage gained: not asked → psu"),
])
def test_change_text(change: Change, text: str) -> None:
    assert change.text() == text


def test_the_respondents_of_every_file_of_a_wave_are_counted(remapped: Path, project: Path) -> None:
    """A folder of country files counted the first file only (500 of 7,500 respondents for 15 city files)."""
    nordic = ROOT.parent / "shared" / "data" / "ess_real" / "ess9_nordic"
    if not nordic.is_dir():
        pytest.skip("../shared/data/ess_real not present")
    data = _counted(remapped, project, nordic)
    suburbs = sum(int((pyreadstat.read_sav(str(f), usecols=["domicil"])[0]["domicil"] == 2).sum())
                  for f in sorted(nordic.glob("*.sav")))
    assert len(list(nordic.glob("*.sav"))) == 3 and suburbs > 0
    assert data["respondents"] == [{"wave": "9", "target": "urbanisation", "changed": suburbs}]
    assert data["files"] == {"9": f"the 3 files under {nordic}"}


def test_every_data_option_is_counted(remapped: Path, project: Path, ess8: Path) -> None:
    """`diff --data A --data B` counted the respondents of B only (the option took one value; click kept the last)
    and said wave 8 of A had no file, where validate and build read every --data given."""
    nordic = ROOT.parent / "shared" / "data" / "ess_real" / "ess9_nordic"
    if not nordic.is_dir():
        pytest.skip("../shared/data/ess_real not present")
    code, out, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(remapped), "--data", str(ess8.parent),
                         "--data", str(nordic), "--format", "json", project=project)
    assert (code, err) == (0, "")
    data = json.loads(out)
    suburbs = sum(int((pyreadstat.read_sav(str(f), usecols=["domicil"])[0]["domicil"] == 2).sum())
                  for f in sorted(nordic.glob("*.sav")))
    assert data["respondents"] == [{"wave": "8", "target": "urbanisation", "changed": 235},
                                   {"wave": "9", "target": "urbanisation", "changed": suburbs}]
    assert data["files"] == {"8": str(ess8), "9": f"the 3 files under {nordic}"}
    assert data["uncounted"] == [w for w in waves_of("ess") if w not in ("8", "9")]
    code, out, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(remapped), "--data", str(ess8.parent),
                         "--data", str(nordic), project=project)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].endswith(f": {ess8.parent}, {nordic} hold no file recognised as those waves — give a "
                                         "file of each, or check the files' round variable and names)")


def test_a_file_is_counted_for_the_wave_its_content_makes_it_whatever_its_name(remapped: Path, project: Path,
                                                                                tmp_path: Path) -> None:
    """diff --data went by file names only: the multi-country extract ESS04_2008.dta (essround 4, a name no wave's
    pattern matches), which validate and build harmonise as round 4, was counted for no wave without a word, and a
    round-8 file named like round 9 was counted with round 9's rules."""
    extract = ROOT.parent / "shared" / "data" / "ess_real" / "ess4_extract" / "ESS04_2008.dta"
    if not extract.is_file():
        pytest.skip("../shared/data/ess_real not present")
    data = _counted(remapped, project, extract)
    suburbs = int((pyreadstat.read_dta(str(extract), usecols=["domicil"])[0]["domicil"] == 2).sum())
    assert suburbs == 5452
    assert data["respondents"] == [{"wave": "4", "target": "urbanisation", "changed": suburbs}]
    assert data["files"] == {"4": str(extract)}
    misnamed = tmp_path / "ESS9XX.sav"
    df = pd.DataFrame({"essround": [8.0] * 4, "cntry": ["FR"] * 4, "idno": [1.0, 2.0, 3.0, 4.0],
                       "domicil": [1.0, 2.0, 2.0, 4.0]})
    pyreadstat.write_sav(df, str(misnamed))
    data = _counted(remapped, project, misnamed)
    assert data["respondents"] == [{"wave": "8", "target": "urbanisation", "changed": 2}]
    assert data["files"] == {"8": str(misnamed)}


def test_a_git_revision_outside_a_repository_is_the_projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a folder outside any repository, `diff HEAD:mappings/ess.yaml …` said "not a git repository"
    though --project names one."""
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse"], check=False, capture_output=True).returncode != 0:
        pytest.skip("the project is not a git checkout")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    code, out, err = run("diff", "HEAD:mappings/ess.yaml", "HEAD:mappings/ess.yaml")
    assert (code, err) == (0, "")
    assert out == "ess: no changes between HEAD:mappings/ess.yaml and HEAD:mappings/ess.yaml\n"


def test_a_version_the_loader_refuses_a_value_of_is_not_diffed_as_if_the_value_were_absent() -> None:
    """`{01: male}` loads as a crosswalk without the code (the loader refuses it): diffing that version would
    report a remapping nobody wrote. Its paths name waves by id, as validate's do."""
    from harmonise.authoring.diff import parse_version
    from harmonise.errors import ValidationFailed

    text = (ROOT / "mappings" / "ties.yaml").read_text()
    text = text.replace("map: {1: male, 2: female}", "map: {01: male, 2: female}").replace("year: 2006", "year: 0x7D6")
    with pytest.raises(ValidationFailed) as raised:
        parse_version(text, "HEAD:mappings/ties.yaml")
    assert [(i.code, i.path) for i in raised.value.issues] == [("yaml-number-form", "waves[2007].year"),
                                                               ("yaml-number-form", "targets.sex.map.01")]


def test_a_file_whose_read_variables_differ_only_in_case_is_refused(project: Path, ess8: Path, tmp_path: Path) -> None:
    """Stata tells domicil from DOMICIL, DuckDB does not: counting the respondents a change moves would read one
    for the other."""
    new = project / "mappings" / "ess.yaml"
    edit(new, "    source: domicil\n" + OLD_URB, "    expr: \"'city' if domicil == 1 or DOMICIL == 1 else 'rural'\"\n")
    df, _ = pyreadstat.read_sav(str(ess8), usecols=["essround", "cntry", "idno", "domicil"], user_missing=True)
    df.insert(0, "DOMICIL", 1.0)
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_dta(df, str(data / "ESS8FR.dta"))
    code, _, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(new), "--data", str(data), project=project)
    assert code == 2 and (f"{data / 'ESS8FR.dta'}: variable domicil and variable DOMICIL, which the crosswalk reads, "
                          "would share one column name in DuckDB") in err, err


def test_a_changed_alternative_is_a_change(tmp_path: Path) -> None:
    """An alternative of a rule (what a file lacking the rule's variables is harmonised by) changed: `diff` said
    'no changes', and `--data` counted nothing, though a build stores other values for such files."""
    fi = ROOT.parent / "shared" / "data" / "ess_real" / "ess9_nordic" / "ESS9FI.sav"
    if not fi.is_file():
        pytest.skip("../shared/data/ess_real not present")
    text = (ROOT / "mappings" / "ess.yaml").read_text(encoding="utf-8")
    old = ('"coalesce(inwyys, 2018)", quality: exact, notes: "The interview\'s start year (inwyys), else the round\'s '
           'first fieldwork year, so that years since arrival count to the interview.", alternatives: [{constant: 2018,')
    assert text.count(old) == 1
    new = tmp_path / "ess.yaml"
    new.write_text(text.replace(old, old.replace("[{constant: 2018,", "[{constant: 2019,")), encoding="utf-8")
    code, out, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(new), "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["changes"] == [{"target": "year", "wave": "9", "what": "alternative 1",
                                           "old": {"constant": 2018, "quality": "approximate"},
                                           "new": {"constant": 2019, "quality": "approximate"}, "code": None}]
    df, meta = pyreadstat.read_sav(str(fi), user_missing=True)
    df = keep_named(df)  # the variables the crosswalk names (the others are read by no rule)
    df = df.drop(columns=["inwyys"])  # a file without the interview date: the alternative is in force
    pyreadstat.write_sav(df, str(tmp_path / "ESS9-extract.sav"),
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in df},
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in df})
    code, out, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(new), "--data",
                         str(tmp_path / "ESS9-extract.sav"), "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["respondents"] == [{"wave": "9", "target": "year", "changed": len(df)}]
    code, out, _ = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(new), "--data", str(fi), "--format", "json")
    assert code == 0
    assert json.loads(out)["respondents"] == [{"wave": "9", "target": "year", "changed": 0}]  # the rule itself
