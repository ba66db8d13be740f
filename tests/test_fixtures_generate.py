"""Issue 3: deterministic fixtures whose metadata match the declared codebooks; drift; demo build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run, waves_of

from harmonise import connect
from harmonise.checks import drift
from harmonise.fixtures.generate import _write_sav
from harmonise.readers import open_source
from harmonise.spec.project import load_project


def _declared_waves() -> list[tuple[str, str]]:
    p = load_project(ROOT)
    return sorted(k for k in p.codebooks if k[0] in p.crosswalks)


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files(fixtures_dir: Path, tmp_path: Path) -> None:
    code, _, err = run("fixtures", "--out", str(tmp_path), "--seed", "1", "--rows", "300", "--editions")
    assert code == 0, err
    first = sorted(p.relative_to(fixtures_dir) for p in fixtures_dir.rglob("*") if p.is_file())
    second = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert first == second and first
    for rel in first:
        assert (fixtures_dir / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_other_seed_differs(fixtures_dir: Path, tmp_path: Path) -> None:
    code, _, _ = run("fixtures", "--out", str(tmp_path), "--seed", "2", "--rows", "300", "--survey", "ess",
                     "--wave", waves_of("ess")[0])
    assert code == 0
    f = next((tmp_path / "ess").iterdir())
    assert f.read_bytes() != (fixtures_dir / "ess" / f.name).read_bytes()


@pytest.mark.parametrize("survey, wave", _declared_waves())
def test_fixture_metadata_matches_declared_codebook(fixtures_dir: Path, survey: str, wave: str) -> None:
    p = load_project(ROOT)
    cb = p.codebooks[(survey, wave)]
    path = fixtures_dir / survey / cb.file
    src = open_source(path, cb.encoding if cb.format == "dta" and cb.encoding else None)
    declared = p.declared_meta(survey, wave)
    assert declared is not None
    assert list(src.meta.variables) == [v.name for v in cb.variables]
    issues = drift.compare(declared, src.meta, set(declared.variables), survey, wave)
    assert [i.message for i in issues] == []
    assert src.meta.rows == 300


def test_declared_ess8_codebook_agrees_with_real_file(ess8: Path) -> None:
    p = load_project(ROOT)
    cw = p.crosswalks["ess"]
    from harmonise.spec.resolve import resolve_wave

    declared = p.codebooks[("ess", "8")].to_meta("surveys/ess/codebook_8.yaml")
    real = open_source(ess8).meta
    used = set(resolve_wave(cw, cw.wave("8"), p.schema, p.tables, real.variables).sources())  # type: ignore[arg-type]
    assert len(used) == 46  # inwyys (decision 66) and regunit (region_nuts of a NUTS unit only)
    issues = drift.compare(declared, real, used, "ess", "8")
    assert [i.message for i in issues if i.variable in used] == []


def _ess_copy(fixtures_dir: Path, dst: Path, change) -> Path:  # type: ignore[no-untyped-def]
    import pyreadstat

    p = load_project(ROOT)
    cb = p.codebooks[("ess", "8")]
    df, _ = pyreadstat.read_sav(str(fixtures_dir / "ess" / cb.file), user_missing=True)
    data = cb.model_dump(exclude_none=True)
    change(data)
    from harmonise.spec.codebook import SourceCodebook

    dst.mkdir(parents=True, exist_ok=True)
    _write_sav(SourceCodebook.model_validate(data), df, dst / cb.file)
    return dst


def _var(data: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(v for v in data["variables"] if v["name"] == name)


def test_altered_label_is_reported_as_exactly_that_drift(fixtures_dir: Path, tmp_path: Path) -> None:
    _ess_copy(fixtures_dir, tmp_path / "d", lambda d: _var(d, "gndr")["labels"].update({2: "Woman"}))
    code, out, _ = run("validate", "mappings/ess.yaml", "--data", str(tmp_path / "d"), "--format", "json")
    assert code == 0  # a label text changes nothing in the harmonised data: a note
    issues = [i for i in json.loads(out)["issues"] if i.get("code") == "drift"]
    assert [i["message"] for i in issues] == ["drift in gndr: label of code 2 changed from 'Female' to 'Woman'"]
    assert issues[0]["severity"] == "note"


def test_added_code_is_reported_as_exactly_that_drift(fixtures_dir: Path, tmp_path: Path) -> None:
    _ess_copy(fixtures_dir, tmp_path / "d", lambda d: _var(d, "gndr")["labels"].update({3: "Other"}))
    code, out, _ = run("validate", "mappings/ess.yaml", "--data", str(tmp_path / "d"), "--format", "json")
    assert code == 0  # no row holds code 3: a warning (a later file may), not an error
    issues = json.loads(out)["issues"]
    assert [(i["severity"], i["message"]) for i in issues if i.get("code") == "drift"] == [
        ("note", "drift in gndr: new code 3 ('Other')")]
    unused = [i for i in issues if i.get("code") == "unused-unmapped-code"]
    assert [(i["severity"], i["variable"]) for i in unused] == [("warning", "gndr")]
    assert "3 ('Other')" in unused[0]["message"]


def test_drift_in_an_unused_variable_is_one_note(fixtures_dir: Path, tmp_path: Path) -> None:
    _ess_copy(fixtures_dir, tmp_path / "d", lambda d: _var(d, "happy")["labels"].update({0: "Very unhappy"}))
    code, out, _ = run("validate", "mappings/ess.yaml", "--data", str(tmp_path / "d"), "--format", "json")
    assert code == 0
    issues = [i for i in json.loads(out)["issues"] if i.get("code") == "drift"]
    assert [(i["severity"], i["message"]) for i in issues] == [
        ("note", ("1 other variable(s) differ from surveys/ess/codebook_8.yaml (labels, codes or missing "
                  "declarations): happy"))]


def test_demo_build_holds_every_declared_wave(demo_db: Path) -> None:
    con = connect(demo_db)
    got = sorted(con.execute("SELECT DISTINCT survey, wave FROM respondents").fetchall())
    assert got == _declared_waves()
    assert con.execute("SELECT count(*) FROM harmonisation_report WHERE missing_reason = '__unmapped__'").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM validation_failures").fetchone() == (0,)


def test_stata_editions_extended_missing_and_latin1(fixtures_dir: Path) -> None:
    ess = next((fixtures_dir / "ess" / "stata").glob("*.dta"))
    src = open_source(ess)
    assert src.format == "dta"
    assert src.meta.variables["gndr"].extended == {"d": "No answer"}
    assert src.meta.variables["agea"].extended == {"d": "Not available"} or "agea" not in src.meta.variables
    evs = next((fixtures_dir / "evs" / "stata").glob("*.dta"))
    assert evs.read_bytes().startswith(b"<stata_dta><header><release>117</release>")
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(ess))
    assert (code, out.strip().splitlines()[-1]) == (0, "ok: 0 error(s), 0 warning(s), 1 file(s), 300 rows"), err


def test_latin1_stata_text_is_written_and_read_as_latin1(tmp_path: Path) -> None:
    import pandas as pd

    from harmonise.fixtures.generate import _write_dta_latin1
    from harmonise.spec.codebook import SourceCodebook

    cb = SourceCodebook.model_validate({
        "survey": "evs", "wave": "2008", "file": "x.dta", "format": "dta", "encoding": "latin-1", "names": "seen",
        "variables": [{"name": "reg", "label": "Région", "type": "string", "width": 20},
                      {"name": "q", "label": "Question", "type": "numeric", "labels": {1: "Très bien", 2: "Mal"}}]})
    path = tmp_path / "x.dta"
    _write_dta_latin1(cb, pd.DataFrame({"reg": ["Île-de-France", "Zürich"], "q": [1.0, 2.0]}), path)
    raw = path.read_bytes()
    assert "Île-de-France".encode("latin-1") in raw and "Île-de-France".encode() not in raw
    src = open_source(path)
    assert src.meta.variables["reg"].label == "Région"
    assert src.meta.variables["q"].labels == {1: "Très bien", 2: "Mal"}
    frame = next(src.chunks(["reg"]))
    assert frame["reg"].tolist() == ["Île-de-France", "Zürich"]


def test_the_files_written_by_default_validate_as_they_are(tmp_path: Path) -> None:
    """`harmonise fixtures` wrote Stata editions beside the primary files: validating its output found every
    respondent twice (duplicate-id errors). Editions are written on request, under <survey>/stata/."""
    code, out, err = run("fixtures", "--out", str(tmp_path), "--survey", "evs", "--rows", "60")
    assert code == 0, err
    assert not (tmp_path / "evs" / "stata").exists()
    code, out, err = run("validate", "mappings/evs.yaml", "--data", str(tmp_path))
    assert code == 0, err
    assert out.splitlines()[-1].startswith("ok: 0 error(s)")
    code, out, _ = run("fixtures", "--out", str(tmp_path / "e"), "--survey", "evs", "--rows", "60", "--editions")
    assert code == 0 and (tmp_path / "e" / "evs" / "stata").is_dir()


def test_the_second_generation_has_citizens_by_birth_and_after_birth_and_non_citizens(demo_db: Path) -> None:
    """Every native-born respondent was a citizen from birth, so TIES (whose respondents are all born in the
    country) had no naturalised citizen and no non-citizen, and its naturalisation figures were empty."""
    con = connect(demo_db)
    rows = dict(con.execute("SELECT concat_ws('/', citizen, naturalised), count(*) FROM respondents "
                            "WHERE survey = 'ties' AND born_in_country GROUP BY 1").fetchall())
    assert min(rows.get("true/true", 0), rows.get("true/false", 0), rows.get("false/false", 0)) > 0, rows
