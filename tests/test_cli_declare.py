"""`harmonise declare`: a wave's declared codebook refreshed from real files (harmonise/authoring/declare.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyreadstat
from conftest import ROOT, run

from harmonise.authoring.declare import changes
from harmonise.spec.codebook import CodebookVariable
from harmonise.spec.project import load_codebook

CODEBOOK = "surveys/ess/codebook_8.yaml"
FRANCE = [(f"{CODEBOOK} from ESS8FR.sav: 1 variable(s) corrected, 70 in the files as declared, 0 kept as declared "
          "(in no file)"), "  name: width 12 → 9; format A12 → A9"]


def small_sav(path: Path) -> Path:
    """A round-8 file of three variables: gndr stored as text ('M', 'F'), brncntr with a new code and its missing
    codes declared as a range, agea as the declared codebook declares it."""
    df = pd.DataFrame({"gndr": ["M", "F", "F"], "brncntr": [1.0, 2.0, 6.0], "agea": [34.0, 999.0, 51.0]})
    pyreadstat.write_sav(
        df, str(path), column_labels={"gndr": "Gender", "brncntr": "Born in country",
                                      "agea": "Age of respondent, calculated"},
        variable_value_labels={"gndr": {"M": "Male", "F": "Female"},
                               "brncntr": {1: "Yes", 2: "No", 6: "Other", 7: "Refusal", 8: "Don't know",
                                           9: "No answer"},
                               "agea": {999: "Not available"}},
        missing_ranges={"brncntr": [{"lo": 7, "hi": 9}], "agea": [999]},
        variable_format={"gndr": "A1", "brncntr": "F1.0", "agea": "F4.0"},
        variable_measure={"gndr": "nominal", "brncntr": "nominal", "agea": "scale"})
    return path


def test_the_france_file_refreshes_the_round_8_codebook_on_standard_output(ess8: Path, tmp_path: Path) -> None:
    code, out, err = run("declare", "--survey", "ess", "--wave", "8", str(ess8))
    assert (code, err.splitlines()) == (0, FRANCE)
    written = tmp_path / "codebook_8.yaml"
    written.write_text(out, encoding="utf-8")
    refreshed, issues = load_codebook(written, tmp_path)
    base, _ = load_codebook(ROOT / CODEBOOK, ROOT)
    assert issues == [] and refreshed is not None and base is not None
    assert [v.name for v in refreshed.variables] == [v.name for v in base.variables]
    assert (refreshed.survey, refreshed.wave, refreshed.file, refreshed.notes) == ("ess", "8", base.file, base.notes)
    name = next(v for v in refreshed.variables if v.name == "name")
    assert (name.width, name.format, name.notes) == (9, "A9", "Seen in ESS8FR.sav.")
    assert out.splitlines()[0] == (ROOT / CODEBOOK).read_text(encoding="utf-8").splitlines()[0]  # its comment kept


def test_write_replaces_the_declared_codebook_and_the_project_still_validates(project: Path, ess8: Path) -> None:
    folder = project / "surveys" / "ess"
    listing = sorted(p.name for p in folder.iterdir())
    shown = run("declare", "--survey", "ess", "--wave", "8", str(ess8), project=project)[1]
    code, out, err = run("declare", "--survey", "ess", "--wave", "8", str(ess8), "--write", project=project)
    assert (code, out, err.splitlines()) == (0, "", [*FRANCE, (f"wrote {CODEBOOK}; check it: `harmonise validate`, "
                                                                "then `harmonise validate --data` on the files")])
    assert (project / CODEBOOK).read_text(encoding="utf-8") == shown
    assert sorted(p.name for p in folder.iterdir()) == listing  # no temporary file left beside it
    code, out, err = run("validate", project=project)
    assert (code, out.splitlines()[-1]) == (0, "ok: 0 error(s), 0 warning(s)"), err
    code, out, err = run("declare", "--survey", "ess", "--wave", "8", str(ess8), "--write", project=project)
    assert (code, out, err.splitlines()[-1]) == (0, "", f"{CODEBOOK}: unchanged")
    assert err.splitlines()[0] == (f"{CODEBOOK} from ESS8FR.sav: 0 variable(s) corrected, 71 in the files as "
                                   "declared, 0 kept as declared (in no file)")


def test_out_refuses_an_existing_file_and_never_writes_through_a_link(ess8: Path, tmp_path: Path) -> None:
    args = ("declare", "--survey", "ess", "--wave", "8", str(ess8), "--out")
    out = tmp_path / "cb.yaml"
    code, stdout, err = run(*args, str(out))
    assert (code, stdout, err.splitlines()[-1]) == (0, "", (f"wrote {out}; check it: `harmonise validate`, then "
                                                           "`harmonise validate --data` on the files"))
    assert load_codebook(out, tmp_path)[1] == []
    out.write_text("mine\n", encoding="utf-8")
    assert run(*args, str(out)) == (2, "", f"error: {out} exists; pass --force to overwrite it\n")
    assert out.read_text(encoding="utf-8") == "mine\n"
    assert run(*args, str(out), "--force")[0] == 0 and out.read_text(encoding="utf-8").startswith("# Declared")
    target, link = tmp_path / "target.yaml", tmp_path / "link.yaml"
    target.write_text("mine\n", encoding="utf-8")
    link.symlink_to(target)
    assert run(*args, str(link)) == (2, "", (f"error: {link} is a link (to {target}); pass --force to replace the "
                                            "link itself\n"))
    assert run(*args, str(link), "--force")[0] == 0
    assert not link.is_symlink() and target.read_text(encoding="utf-8") == "mine\n"
    assert load_codebook(link, tmp_path)[1] == []


def test_write_refuses_a_codebook_that_is_a_link(project: Path, ess8: Path, tmp_path: Path) -> None:
    codebook = project / CODEBOOK
    kept = tmp_path / "kept.yaml"
    codebook.rename(kept)
    codebook.symlink_to(kept)
    code, out, err = run("declare", "--survey", "ess", "--wave", "8", str(ess8), "--write", project=project)
    assert (code, out, err.splitlines()[-1]) == (2, "", (f"error: {codebook} is a link (to {kept}); write the codebook "
                                                        "with --out FILE instead"))
    assert codebook.is_symlink()


def test_write_and_out_together_or_force_alone_are_usage_errors(ess8: Path, tmp_path: Path) -> None:
    args = ("declare", "--survey", "ess", "--wave", "8", str(ess8))
    code, _, err = run(*args, "--write", "--out", str(tmp_path / "x.yaml"))
    assert code == 2 and err.splitlines()[-1] == ("Error: give --write (replace the declared codebook) or --out FILE "
                                                  "(write elsewhere), not both")
    code, _, err = run(*args, "--force")
    assert code == 2 and err.splitlines()[-1] == "Error: --force goes with --out FILE (it allows overwriting that file)"
    assert not (tmp_path / "x.yaml").exists()


def test_an_unknown_wave_or_survey_names_the_known_ones(ess8: Path) -> None:
    assert run("declare", "--survey", "ess", "--wave", "12", str(ess8)) == (
        2, "", "error: --wave 12: ess has no wave '12'; known: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11\n")
    assert run("declare", "--survey", "esss", "--wave", "8", str(ess8)) == (
        2, "", ("error: --survey esss: no crosswalk maps survey 'esss'; known: ess, eumidis, evs, ics, localmultidem, "
               "ties\n"))


def test_a_wave_without_a_declared_codebook_is_a_usage_error(project: Path, ess8: Path) -> None:
    (project / CODEBOOK).unlink()
    assert run("declare", "--survey", "ess", "--wave", "8", str(ess8), project=project) == (
        2, "", (f"error: ess wave 8 has no declared codebook ({CODEBOOK} does not exist); declare one first "
               "(`harmonise inspect FILE --format json` lists a file's variables)\n"))


def test_a_declared_codebook_that_does_not_load_fails_with_its_errors(project: Path, ess8: Path) -> None:
    codebook = project / CODEBOOK
    text = codebook.read_text(encoding="utf-8")
    codebook.write_text(text.replace("\nnames: seen\n", "\nnames: known\n"), encoding="utf-8")
    code, out, err = run("declare", "--survey", "ess", "--wave", "8", str(ess8), project=project)
    assert (code, out, err.splitlines()[-1]) == (1, "", f"{CODEBOOK} does not load; fix it first: 1 error(s)")
    assert err.splitlines()[0].startswith(f"error: {CODEBOOK}:7 names: ")


def test_a_file_that_cannot_be_read_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "ESS8XX.sav"
    bad.write_text("not a data file\n", encoding="utf-8")
    assert run("declare", "--survey", "ess", "--wave", "8", str(bad)) == (
        2, "", (f"error: {bad}: not a SAV file (unrecognised header bytes); check that the file is complete and has "
               "the right extension\n"))


def test_a_variable_stored_with_another_type_is_named_in_the_summary(tmp_path: Path) -> None:
    """A file storing gndr as text: the summary says so (type, codes), and so the changed missing declaration and the
    new code of brncntr; agea is as declared, the other variables of the codebook are kept as declared."""
    data = small_sav(tmp_path / "ESS8XX.sav")
    code, out, err = run("declare", "--survey", "ess", "--wave", "8", str(data))
    assert (code, err.splitlines()) == (0, [
        (f"{CODEBOOK} from ESS8XX.sav: 2 variable(s) corrected, 1 in the files as declared, 68 kept as declared "
         "(in no file)"),
        "  brncntr: 1 code added: 6; missing values 7, 8, 9 → range 7-9",
        ("  gndr: type numeric → string; 2 codes added: 'M', 'F'; 3 codes removed: 1, 2, 9; missing values 9 → "
         "none; width none → 1; format F1.0 → A1"),
        "  kept as declared: 68 variables (ess8_id, cntry, ess8_reg, regunit, nuts1 and 63 more)"])
    written = tmp_path / "codebook_8.yaml"
    written.write_text(out, encoding="utf-8")
    refreshed, issues = load_codebook(written, tmp_path)
    assert issues == [] and refreshed is not None
    gndr = next(v for v in refreshed.variables if v.name == "gndr")
    assert (gndr.type, gndr.width, gndr.labels, gndr.evidence) == ("string", 1, {"M": "Male", "F": "Female"}, "seen")


def test_a_file_holding_none_of_the_declared_variables_is_a_warning(tmp_path: Path) -> None:
    data = tmp_path / "other.sav"
    pyreadstat.write_sav(pd.DataFrame({"q1": [1.0, 2.0]}), str(data), column_labels={"q1": "Question one"})
    code, out, err = run("declare", "--survey", "ess", "--wave", "8", str(data))
    assert (code, err.splitlines()[:2]) == (0, [
        (f"warning: other.sav holds none of the 71 variables declared in {CODEBOOK}: is it a file of ess wave 8? (it "
        "changes nothing)"),
        (f"{CODEBOOK} from other.sav: 0 variable(s) corrected, 0 in the files as declared, 71 kept as declared (in no "
        "file)")])
    code, out, err = run("declare", "--survey", "ess", "--wave", "8", str(data), "--variables", "all")
    assert (code, err.splitlines()) == (0, [
        f"warning: other.sav holds none of the 71 variables declared in {CODEBOOK}: is it a file of ess wave 8?",
        (f"{CODEBOOK} from other.sav: 0 variable(s) corrected, 0 in the files as declared, 71 kept as declared (in no "
        "file), 1 added"),
        "  kept as declared: 71 variables (ess8_id, cntry, ess8_reg, regunit, nuts1 and 66 more)",
        "  added from the files: q1"])
    assert out.endswith("- name: q1\n  label: Question one\n  type: numeric\n  format: F8.2\n  notes: Seen in "
                        "other.sav.\n  evidence: seen\n")


def test_a_stata_file_gives_an_spss_codebook_label_texts_only(tmp_path: Path) -> None:
    data = tmp_path / "ESS8XX.dta"
    pyreadstat.write_dta(pd.DataFrame({"gndr": [1.0, 2.0]}), str(data), column_labels={"gndr": "Gender"},
                         variable_value_labels={"gndr": {1: "Male", 2: "Female, the respondent"}})
    code, _, err = run("declare", "--survey", "ess", "--wave", "8", str(data))
    assert (code, err.splitlines()[:3]) == (0, [
        (f"warning: ESS8XX.dta is a Stata file and {CODEBOOK} declares a sav file: it gives label texts only (storage "
        "and missing declarations stay as declared)"),
        (f"{CODEBOOK} from ESS8XX.dta: 1 variable(s) corrected, 0 in the files as declared, 70 kept as declared (in no "
        "file)"),
        "  gndr: 1 value label changed: 2"])


def test_changes_name_each_difference_of_a_declaration() -> None:
    old = CodebookVariable(name="v", label="Age", type="numeric", format="F2.0", labels={1: "a", 2: "b", 3: "c"},
                           missing={"range": (7, 9)})  # type: ignore[arg-type]
    new = CodebookVariable(name="v", label="Age in years", type="numeric", format="F3.0", measure="scale",
                           labels={1: "a", 2: "B", **{k: str(k) for k in range(10, 17)}},
                           missing={"values": [99], "extended": {"a": "Refusal"}})  # type: ignore[arg-type]
    assert changes(old, new).line() == (
        "v: 7 codes added: 10, 11, 12, 13, 14 and 2 more; 1 code removed: 3; 1 value label changed: 2; missing range "
        "7-9 → values 99 + extended a; label 'Age' → 'Age in years'; format F2.0 → F3.0; measure none → scale")
    assert changes(old, old).line() == "v: " and not changes(old, old).what + changes(old, old).details


def test_the_help_gives_every_option() -> None:
    code, out, _ = run("declare", "--help")
    assert code == 0 and " declare [OPTIONS] FILE...\n" in out.splitlines(keepends=True)[0]
    assert [o for o in ("--survey", "--wave", "--write", "--out", "--force", "--encoding", "--variables [declared|all]")
            if o not in out] == []
