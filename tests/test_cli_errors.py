"""Issue 2 bad-input acceptance: each case asserts the exit code and the message naming the spot."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import ROOT, edit, line_of, run, waves_of, write_ess_copy

USED = ['cntry', 'idno', 'ess8_reg', 'domicil', 'pspwght', 'pweight', 'dweight', 'gndr', 'agea', 'yrbrn', 'brncntr',
        'cntbrthc', 'ctzcntr', 'ctzshipc', 'facntr', 'mocntr', 'fbrncntb', 'mbrncntb', 'livecnta', 'blgetmg',
        'lnghom1', 'edulvlb', 'edctn', 'mnactic', 'pdwrk', 'uempla', 'emplrel', 'wrkctra', 'wkhtot', 'hinctnta',
        'hincfel', 'health', 'vote', 'trstprl', 'dscrgrp', 'dscrrce', 'dscrntn', 'dscretn', 'dscrlng', 'stflife',
        'atchctr', 'imbgeco', 'imueclt', 'imwbcnt']


def test_yaml_syntax_error_names_file_and_line(project: Path) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "    source: gndr\n", "    source: [gndr\n")
    code, _, err = run("validate", project=project)
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith("error: mappings/ess.yaml:")
    assert "YAML syntax error" in first


def test_unknown_key_gets_did_you_mean(project: Path) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "    source: gndr\n    map: {1: male, 2: female}\n", "    source: gndr\n    mapp: {1: male, 2: female}\n")
    line = line_of(cw, "mapp:")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert f"error: mappings/ess.yaml:{line} targets.sex.mapp: unknown key 'mapp' — did you mean 'map'?" in err


def test_all_errors_are_collected(project: Path) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "    map: {1: male, 2: female}\n", "    mapp: {1: male, 2: female}\n")
    edit(cw, "    source: hincfel\n", "    sauce: hincfel\n")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert "unknown key 'mapp'" in err and "unknown key 'sauce'" in err


def test_absent_source_variable(project: Path) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "    source: gndr\n", "    source: gender\n")
    line = line_of(cw, "source: gender")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert (f"error: mappings/ess.yaml:{line} targets.sex.source: wave 8: source variable 'gender' is not in "
            f"surveys/ess/codebook_8.yaml — did you mean 'gndr'?") in err


def test_target_code_typo_is_reported(project: Path) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "map: {1: male, 2: female}", "map: {1: male, 2: femal}")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert "code 2 maps to 'femal' is not a code of sex (did you mean 'female'?)" in err


def test_an_unquoted_yes_mapped_to_a_category_says_to_quote_it(project: Path) -> None:
    """YAML 1.1 reads `yes` as true: a category code written unquoted got no hint (an audit of the author's
    workflow)."""
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "map: {1: city, 2: town_suburb, 3: town_suburb, 4: rural, 5: rural}",
         "map: {1: yes, 2: town_suburb, 3: town_suburb, 4: rural, 5: rural}")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert ("code 1 maps to True is not a code of urbanisation (codes: city, town_suburb, rural) — quote it: YAML "
            "reads an unquoted yes, no, on, off, true or false as true/false") in err


def test_labelled_code_without_mapping_static(project: Path) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "map: {1: city, 2: town_suburb, 3: town_suburb, 4: rural, 5: rural}",
         "map: {1: city, 2: town_suburb, 3: town_suburb, 4: rural}")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert "source code 5 ('Farm or home in countryside') of domicil has no target code or missing reason" in err


def test_unmapped_observed_code_lists_code_label_count(project: Path, ess8: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()

    def mutate(df):  # type: ignore[no-untyped-def]
        df.loc[df.index[:3], "gndr"] = 3.0

    write_ess_copy(ess8, data / "ESS8FR_mod.sav", USED, mutate)
    code, _, err = run("validate", "--data", str(data), project=project)
    assert code == 1
    assert ("source variable gndr code 3 (no value label) has no mapping for target sex: 3 row(s)") in err
    line = line_of(project / "mappings" / "ess.yaml", "  sex:")
    assert f"mappings/ess.yaml:{line} targets.sex:" in err


def test_truncated_sav_exit_2_one_line(project: Path, ess8: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ESS8FR.sav").write_bytes(ess8.read_bytes()[:200_000])
    code, _, err = run("validate", "--data", str(data), project=project)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ") and "ESS8FR.sav" in err
    assert "Traceback" not in err


def test_wrong_magic_and_empty_file(project: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ESS8FR.sav").write_bytes(b"PK\x03\x04 not a sav file" * 10)
    code, _, err = run("validate", "--data", str(data), project=project)
    assert (code, err) == (2, (f"error: {data / 'ESS8FR.sav'}: not a SAV file but a ZIP archive (under a .sav name); "
                              "extract the file it holds and use that\n"))
    (data / "ESS8FR.sav").write_bytes(b"\x1f\x8b\x08\x00" + bytes(100))
    code, _, err = run("validate", "--data", str(data), project=project)
    assert (code, err) == (2, (f"error: {data / 'ESS8FR.sav'}: not a SAV file but a gzip-compressed file (under a .sav "
                              "name); extract the file it holds and use that\n"))
    (data / "ESS8FR.sav").write_bytes(b"hello world\n")
    code, _, err = run("validate", "--data", str(data), project=project)
    assert "not a SAV file (unrecognised header bytes)" in err
    (data / "ESS8FR.sav").write_bytes(b"")
    code, _, err = run("validate", "--data", str(data), project=project)
    assert code == 2
    assert "file is empty (0 bytes)" in err


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_failed_build_leaves_previous_database_byte_identical(project: Path, ess8: Path, tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(ess8.parent), "--db", str(db), project=project)
    assert code == 0, err
    before = _sha(db)
    data = tmp_path / "bad"
    data.mkdir()

    def mutate(df):  # type: ignore[no-untyped-def]
        df.loc[df.index[:2], "vote"] = 4.0

    write_ess_copy(ess8, data / "ESS8FR_bad.sav", USED, mutate)
    code, _, err = run("build", "--data", str(data), "--db", str(db), project=project)
    assert code == 1
    assert "source variable vote code 4 (no value label) has no mapping for target voted_national: 2 row(s)" in err
    assert "the previous database is unchanged" in err
    assert _sha(db) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("h.duckdb")) == [
        "h.duckdb", "h.duckdb.cache", "h.duckdb.lock"]


@pytest.mark.parametrize("expr, message", [
    ("read_csv('/etc/passwd')", "function 'read_csv' is not allowed"),
    ("getvariable('x')", "function 'getvariable' is not allowed"),
    ("__import__('os').system('true')", "only plain function calls are allowed"),
    ("gndr.__class__", "Attribute is not allowed in expressions"),
    ("open('/etc/passwd')", "function 'open' is not allowed"),
    ("[x for x in gndr]", "ListComp is not allowed in expressions"),
    ("gndr; ATTACH 'x'", "syntax error"),
])
def test_expression_escape_attempts_rejected_at_validate(project: Path, expr: str, message: str) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "    expr: \"concat(cntry, '-', str(idno))\"\n", f"    expr: \"{expr}\"\n")
    line = line_of(cw, "  respondent_id:")
    code, _, err = run("validate", project=project)
    assert code == 1
    assert message in err
    assert f"mappings/ess.yaml:{line + 1} targets.respondent_id.expr:" in err


def test_duplicate_key_and_alias_rejected(project: Path) -> None:
    cw = project / "mappings" / "ess.yaml"
    edit(cw, "  sex:\n    source: gndr\n", "  sex:\n    source: gndr\n    source: gndr\n")
    edit(cw, "  age:\n", "  age: &a\n")
    edit(cw, "  birth_year:\n    source: yrbrn\n    range: [1880, 2010]\n    quality: exact\n", "  birth_year: *a\n")
    code, _, err = run("validate", project=project)
    assert code == 1
    dup = line_of(cw, "  sex:") + 2
    assert f"mappings/ess.yaml:{dup} targets.sex.source: duplicate key 'source'" in err
    assert "aliases (*name) are not allowed" in err


def test_missing_project_and_bad_mapping_path_are_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("validate", project=tmp_path)
    assert code == 2 and "not a harmonise project" in err
    code, _, err = run("validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such crosswalk file" in err


def test_crosswalk_paths_that_are_not_crosswalks_are_all_named_and_a_repeated_one_is_read_once(project: Path) -> None:
    """`validate mappings/*.yaml` read schema.yaml, cities.yaml … as crosswalks (dozens of 'required key survey
    is missing'); `validate mappings` said 'no such crosswalk file'; only the first bad path was named; a
    crosswalk named twice (`mappings/*.yaml mappings/ties.yaml`) failed: 'survey 'ties' is already mapped by
    mappings/ties.yaml'."""
    m = project / "mappings"
    code, out, err = run("validate", str(m / "schema.yaml"), str(m / "tables" / "countries.yaml"), str(m),
                         str(m / "nope.yaml"), str(m / "ties.yaml"), project=project)
    assert (code, out) == (2, "")
    assert err == (f"error: {m / 'schema.yaml'}: is the project's schema.yaml, not a crosswalk; `harmonise validate` "
                   "with no path checks it with every crosswalk (name crosswalk files only)\n"
                   f"{m / 'tables' / 'countries.yaml'}: is a code table, not a crosswalk; `harmonise validate` with no "
                   "path checks it with every crosswalk (name crosswalk files only)\n"
                   f"{m}: is a folder, not a crosswalk file; name crosswalk files (e.g. mappings/ess.yaml), or no path "
                   "to validate every crosswalk of the project\n"
                   f"{m / 'nope.yaml'}: no such crosswalk file\n")
    code, out, err = run("validate", str(m / "ties.yaml"), str(m / "ties.yaml"), str(m / ".." / "mappings" / "ties.yaml"),
                         project=project)
    assert (code, out, err) == (0, "ok: 0 error(s), 0 warning(s)\n", "")


def test_a_base_rule_error_is_reported_once_naming_every_wave(project: Path) -> None:
    path = project / "mappings" / "ess.yaml"
    edit(path, "map: {1: male, 2: female}", "map: {1: male, 2: femal}")
    line = line_of(path, "2: femal}")
    code, out, err = run("validate", project=project)
    assert code == 1
    waves = ", ".join(waves_of("ess", project))
    assert err.splitlines() == [
        (f"error: mappings/ess.yaml:{line} targets.sex.map.2: waves {waves}: code 2 maps to 'femal' is not a code "
         "of sex (did you mean 'female'?)")]
    assert out == "FAILED: 1 error(s), 0 warning(s)\n"


def test_a_misspelt_key_in_a_wave_override_suggests_the_key(project: Path) -> None:
    path = project / "mappings" / "ess.yaml"
    edit(path, '"TP": TPTL}, quality: exact}', '"TP": TPTL}, qualty: exact}')
    code, out, err = run("validate", str(path), project=project)
    assert (code, out) == (1, "FAILED: 1 error(s), 0 warning(s)\n")
    assert err.splitlines() == [
        (f"error: mappings/ess.yaml:{line_of(path, 'qualty: exact')} waves[1].overrides.country_of_birth.qualty: "
        "unknown key 'qualty' — did you mean 'quality'?")]


def test_a_period_naming_an_unknown_wave_is_an_error_at_its_line(project: Path) -> None:
    path = project / "mappings" / "ess.yaml"
    edit(path, '  - waves: ["1", "2", "3"]\n', '  - waves: ["1", "2", "33"]\n')
    code, out, err = run("validate", project=project)
    # and round 3 loses the period's income rule, so its base rule reads a variable round 3 lacks
    assert (code, out) == (1, "FAILED: 2 error(s), 0 warning(s)\n")
    line = line_of(path, '"33"]')
    assert err.splitlines()[0] == (f"error: mappings/ess.yaml:{line} periods.1.waves.2: period names wave '33', "
                                   "which the crosswalk does not declare — did you mean '3'?")
    assert "targets.income_decile.source: wave 3: source variable 'hinctnta'" in err.splitlines()[1]


def test_an_unreadable_input_is_also_an_issue_on_stdout_in_json_and_github_formats(tmp_path: Path) -> None:
    """CI reading --format json or github got nothing on stdout for an exit-2 error (only text on stderr)."""
    import json

    (tmp_path / "ESS8FR.sav").write_bytes(b"$FL2" + bytes(100))
    code, out, err = run("validate", "--data", str(tmp_path), "--format", "json")
    assert code == 2 and err.startswith(f"error: {tmp_path / 'ESS8FR.sav'}: ")
    data = json.loads(out)
    assert data["ok"] is False
    assert [(i["code"], i["severity"], i["doc"]) for i in data["issues"]] == [("input", "error", "docs/issues.md#input")]
    assert data["issues"][0]["message"] == err[len("error: "):].rstrip("\n")
    code, out, _ = run("validate", "--data", str(tmp_path), "--format", "github")
    assert code == 2 and out.startswith("::error title=harmonise input::")
    code, out, _ = run("validate", "--data", str(tmp_path / "nowhere"), "--format", "json")
    assert code == 2 and json.loads(out)["issues"][0]["code"] == "input"


def test_a_database_of_another_layout_is_named_as_such_not_an_internal_error(fr_db: Path, tmp_path: Path) -> None:
    """A column or table missing (a database another version built) was "internal error: BinderException"; a
    missing age-band record put every respondent in age band "unknown" without a word."""
    import shutil

    import duckdb

    def older(name: str, change: str) -> Path:
        db = tmp_path / name
        shutil.copy(fr_db, db)
        con = duckdb.connect(str(db))
        con.execute(change)
        con.close()
        return db

    db = older("bands.duckdb", "DELETE FROM build_info WHERE key = 'indicator_age_bands'")
    code, out, err = run("indicators", "--db", str(db), "--indicator", "employment_rate", "--by", "age_band")
    assert (code, out) == (2, "")
    assert err == ("error: this database records no indicator age bands (build_info.indicator_age_bands): another "
                   "version of harmonise built it; rebuild it with this version of harmonise\n")
    db = older("column.duckdb", "ALTER TABLE respondents DROP COLUMN migrant_generation")
    code, _, err = run("compare", "--db", str(db), "--indicator", "employment_rate", "--group", "migrant_generation",
                       "--by", "sex", "--out", str(tmp_path / "c.png"))  # by sex: estimated (the stored table is by country)
    assert code == 2 and "internal error" not in err
    assert err.startswith(f"error: {db}: the database lacks what `compare` reads (")
    assert err.endswith("another version of harmonise built it, or harmonise did not; build it again with this "
                        "version (`harmonise build`)\n")


def test_output_read_by_a_closed_pipe_ends_quietly(fr_db: Path) -> None:
    """`harmonise query … | head` said "error: Broken pipe; check the path, free space and permissions"."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "harmonise", "query", "--db", str(fr_db), "SELECT * FROM respondents"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ,
                            "HARMONISE_SERVER": "off"})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=60), err) == (0, "")


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_a_failed_validation_read_by_a_closed_pipe_still_exits_1(project: Path, fmt: str) -> None:
    """`harmonise validate --format github | head` (or `2>&1 | head`) of a crosswalk with many errors exited 0:
    the closed pipe ended the command as a success, and CI passed a failed check."""
    import subprocess
    import sys

    edit(project / "mappings" / "ess.yaml", "survey: ess\n", "survey: ess\n" + "".join(f"bogus_{i}: 1\n"
                                                                                    for i in range(3000)))
    cmd = [sys.executable, "-m", "harmonise", "--project", str(project), "validate", "--format", fmt]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "HARMONISE_SERVER": "off"})
    assert proc.stdout is not None
    assert b"bogus_0" in proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 1


def test_an_error_raised_while_a_ctrl_c_is_handled_is_still_an_interruption() -> None:
    """A Ctrl-C while a build waited on a thread made closing its connection fail ("connection is busy"):
    that error hid the interruption, and the build ended in "internal error", exit 2, instead of 130."""
    import click
    from click.testing import CliRunner

    from harmonise.cli.base import handled

    @click.command()
    @handled
    def build() -> None:
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("Resource In Use Error: connection is busy with another call")

    res = CliRunner().invoke(build, [])
    assert (res.exit_code, res.stderr) == (130, "interrupted; a database being built was not replaced\n")


def test_a_zero_padded_code_is_an_error_not_an_octal_number(project: Path) -> None:
    """`01` was read as octal 1 (and `040` as 32) without a word: ISO numeric codes are often zero-padded."""
    path = project / "mappings" / "ess.yaml"
    edit(path, "    source: gndr\n    map: {1: male, 2: female}\n", "    source: gndr\n    map: {01: male, 2: female}\n")
    code, out, err = run("validate", str(path), project=project)
    assert (code, out) == (1, "FAILED: 1 error(s), 0 warning(s)\n")  # the rule is set aside: no follow-on error
    assert err.splitlines() == [
        (f"error: mappings/ess.yaml:{line_of(path, '{01: male')} targets.sex.map.01: '01' is a zero-padded number, "
        "read by YAML as the octal number 1 — write 1 for the number, or quote it for text: \"01\"")]


def test_a_missing_title_does_not_hide_the_other_errors_of_the_file(project: Path) -> None:
    """Only `required key 'title' is missing` was reported; the unknown target and missing reason were hidden."""
    path = project / "mappings" / "ess.yaml"
    edit(path, "title: European Social Survey\n", "")
    edit(path, "\ntargets:\n", "\ntargets:\n  sexx: {source: gndr, map: {1: male}, quality: exact}\n")
    edit(path, "    missing: {999: not_available}\n", "    missing: {999: not_availabel}\n")
    code, out, err = run("validate", str(path), project=project)
    assert (code, out) == (1, "FAILED: 3 error(s), 0 warning(s)\n")
    waves = ", ".join(waves_of("ess", project))
    assert err.splitlines() == [
        f"error: mappings/ess.yaml:{line_of(path, 'survey: ess')}: required key 'title' is missing",
        f"error: mappings/ess.yaml:{line_of(path, '  sexx:')} targets.sexx: unknown target 'sexx' — did you mean 'sex'?",
        (f"error: mappings/ess.yaml:{line_of(path, 'not_availabel')} targets.age.missing.999: waves {waves}: unknown "
        "missing reason 'not_availabel' for code 999 — use one of not_asked, not_applicable, refused, dont_know, "
        "no_answer, not_available, invalid, other_missing"),
        "by category: missing-key 1, unknown-reason 1, unknown-target 1"]


def _break_waves(path: Path) -> None:
    edit(path, '  - wave: "8"\n    year: 2016\n', '  - wave: "8"\n    year: "twenty"\n')
    edit(path, '  - wave: "7"\n', "  - wave: 7\n")
    edit(path, "      year_of_arrival: {range: [1900, 2020]}\n", "      year_of_arrival: [1900, 2020]\n")
    edit(path, "citizenship: {source: ctzshipd, table", "citizenship: {sorce: ctzshipd, table")
    edit(path, "map: {1: male, 2: female}", "map: {1: male, 2: femal}")


def test_wave_field_errors_do_not_hide_the_other_errors_and_name_waves_by_id(project: Path) -> None:
    """`year: "twenty"` in one wave was the only error reported; pydantic's errors named waves by list position
    (`waves.7.year`) where every other message names them by id (`waves[8]`)."""
    path = project / "mappings" / "ess.yaml"
    _break_waves(path)
    code, out, err = run("validate", str(path), project=project)
    assert (code, out) == (1, "FAILED: 5 error(s), 0 warning(s)\n")
    waves, year = ", ".join(waves_of("ess", project)), line_of(path, 'year: "twenty"')
    assert err.splitlines() == [
        (f"error: mappings/ess.yaml:{line_of(path, '- wave: 7')} waves[7].wave: Input should be a valid string "
        "(got 7) — quote it: \"7\" (YAML reads an unquoted 7 as a number)"),
        (f"error: mappings/ess.yaml:{year} waves[8].year: Input should be a valid integer, "
        "unable to parse string as an integer (got 'twenty')"),
        (f"error: mappings/ess.yaml:{line_of(path, 'year_of_arrival: [1900')} waves[9].overrides.year_of_arrival: "
        "Input should be a valid dictionary"),
        (f"error: mappings/ess.yaml:{line_of(path, '2: femal}')} targets.sex.map.2: waves {waves}: code 2 maps to "
        "'femal' is not a code of sex (did you mean 'female'?)"),  # every wave checked: the malformed ones too
        (f"error: mappings/ess.yaml:{line_of(path, 'sorce: ctzshipd')} waves[9].overrides.citizenship.sorce: unknown "
        "key 'sorce' — did you mean 'source'?"),
        "by category: type 3, bad-target-code 1, unknown-key 1"]


def test_json_and_github_formats_name_waves_by_id_as_the_text_does(project: Path) -> None:
    import json

    path = project / "mappings" / "ess.yaml"
    _break_waves(path)
    code, out, _ = run("validate", str(path), "--format", "json", project=project)
    assert code == 1
    found = [(i["code"], i["line"], i["path"]) for i in json.loads(out)["issues"]]
    assert found == [("type", line_of(path, "- wave: 7"), "waves[7].wave"),
                     ("type", line_of(path, 'year: "twenty"'), "waves[8].year"),
                     ("type", line_of(path, "year_of_arrival: [1900"), "waves[9].overrides.year_of_arrival"),
                     ("bad-target-code", line_of(path, "2: femal}"), "targets.sex.map.2"),
                     ("unknown-key", line_of(path, "sorce: ctzshipd"), "waves[9].overrides.citizenship.sorce")]
    code, out, _ = run("validate", str(path), "--format", "github", project=project)
    assert code == 1
    year = line_of(path, 'year: "twenty"')
    assert (f"::error file=mappings/ess.yaml,line={year},title=harmonise type::waves[8].year: Input should be a valid "
            "integer, unable to parse string as an integer (got 'twenty')") in out.splitlines()
    assert "waves.7" not in out and "waves.8" not in out


def test_a_wave_without_a_usable_id_is_set_aside_and_the_others_are_checked(project: Path) -> None:
    path = project / "mappings" / "ess.yaml"
    edit(path, '  - wave: "8"\n', '  - wave: "8 and a half"\n')
    edit(path, "map: {1: male, 2: female}", "map: {1: male, 2: femal}")
    code, out, err = run("validate", str(path), project=project)
    assert (code, out) == (1, "FAILED: 2 error(s), 0 warning(s)\n")
    others = ", ".join(w for w in waves_of("ess") if w != "8")
    lines = err.splitlines()
    assert lines[0].startswith(f"error: mappings/ess.yaml:{line_of(path, '8 and a half')} waves.7.wave: String should "
                               "match pattern")  # no id to name it by: its position
    assert lines[1] == (f"error: mappings/ess.yaml:{line_of(path, '2: femal}')} targets.sex.map.2: waves {others}: "
                        "code 2 maps to 'femal' is not a code of sex (did you mean 'female'?)")


def test_a_target_without_a_rule_is_one_error_naming_its_waves(project: Path) -> None:
    """A base rule renamed left its target without a rule in every wave: one error per wave, all at the same line
    (an audit of the author's workflow). One now, naming the waves."""
    path = project / "mappings" / "ess.yaml"
    edit(path, "  urbanisation:\n", "  urbanisatio:\n")
    code, _, err = run("validate", project=project)
    assert code == 1
    lines = [x for x in err.splitlines() if "has no rule" in x]
    waves = [w for w in waves_of("ess", project)]
    assert len(lines) == 1 and f"waves {', '.join(waves)}: target 'urbanisation' has no rule" in lines[0]


def test_unreadable_data_files_are_named_with_why_all_at_once_and_stop_the_build(ess8: Path, tmp_path: Path) -> None:
    """A truncated download beside a sound file was passed over as 'matches no crosswalk wave; it is not
    harmonised' (a warning: the build said `built`, exit 0, without its rows); alone it was 'matches no
    crosswalk wave' (exit 2) instead of why it cannot be read; and with --survey/--wave only the first of several
    unreadable files was named."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "ESS8FR.sav").symlink_to(ess8)
    (data / "download.sav").write_bytes(ess8.read_bytes()[:50_000])
    (data / "empty.sav").write_bytes(b"")
    (data / "renamed.dta").write_bytes(ess8.read_bytes()[:4096])
    why = (f"{data / 'download.sav'}: file is truncated or corrupt (Unable to read from file); download it again\n"
           f"{data / 'empty.sav'}: file is empty (0 bytes)\n"
           f"{data / 'renamed.dta'}: the content is a SAV file but the extension says DTA; rename it to .sav\n"
           "3 data file(s) cannot be read; replace them or leave them out of --data\n")
    db = tmp_path / "out.duckdb"
    code, out, err = run("build", "--data", str(data), "--db", str(db))
    assert (code, out, err) == (2, "", "error: " + why)
    assert not db.exists()
    code, out, err = run("validate", "--data", str(data), "--survey", "ess", "--wave", "8")
    assert (code, out, err) == (2, "", "error: " + why)
    code, out, err = run("validate", "--data", str(data / "empty.sav"))
    assert (code, out, err) == (2, "", f"error: {data / 'empty.sav'}: file is empty (0 bytes)\n")


def test_a_database_another_program_holds_open_for_writing_says_so(fr_db: Path, ess8: Path, tmp_path: Path) -> None:
    """A database open for writing in another program (a notebook's duckdb.connect) was "cannot open as a
    harmonise database (IO Error: Could not set lock …)", and `build` offered --force, as if harmonise had not
    built it."""
    import shutil
    import subprocess
    import sys

    db = tmp_path / "held.duckdb"
    shutil.copy(fr_db, db)
    holder = subprocess.Popen([sys.executable, "-c", ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); sys.stdin.read()"), str(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        held = (f"error: {db}: another program ({Path(sys.executable).resolve().name}, PID {holder.pid}) has it open "
                "for writing; close that program's connection to the file (or let it finish) and run again")
        assert run("query", "SELECT 1", "--db", str(db)) == (2, "", held + "\n")
        assert run("indicators", "--db", str(db), "--indicator", "employment_rate") == (2, "", held + "\n")
        before = db.read_bytes()
        code, out, err = run("build", "--data", str(ess8), "--db", str(db))
        assert (code, out, err) == (2, "", held + " (or choose another --db path)\n")
        assert db.read_bytes() == before
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def test_a_usage_error_click_finds_is_also_the_one_issue_on_stdout_in_json_and_github_formats(fr_db: Path) -> None:
    """`--format json` gave JSON for harmonise's own usage errors but an empty standard output for those click
    finds (a value out of range, an option missing, a misspelt option), which no JSON reader parses."""
    import json

    def issue(message: str) -> dict[str, str]:
        return {"ok": False, "issues": [{"message": message, "code": "usage", "severity": "error",
                                        "doc": "docs/issues.md#usage"}]}

    code, out, err = run("validate", "--format", "json", "--jobs", "0")
    assert (code, json.loads(out)) == (2, issue("Invalid value for '--jobs': 0 is not in the range x>=1."))
    assert err.endswith("Error: Invalid value for '--jobs': 0 is not in the range x>=1.\n")
    code, out, _ = run("build", "--format=json")
    assert (code, json.loads(out)) == (2, issue("give --data DIR (your source files) or --demo (generated fixtures)"))
    code, out, _ = run("query", "--db", str(fr_db), "--format", "json")
    assert (code, json.loads(out)) == (2, issue("give the SQL as an argument, '-' to read it from standard input, "
                                                "or -f FILE"))
    code, out, _ = run("validate", "--bogus", "--format", "github")
    assert (code, out) == (2, "::error title=harmonise usage::No such option '--bogus'. Did you mean '--jobs'?\n")
    code, out, _ = run("validate", "--format", "text", "--jobs", "0")
    assert (code, out) == (2, "")


def test_an_interrupted_command_that_builds_no_database_does_not_say_it_kept_one(monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    """Ctrl-C or SIGTERM stopping `validate` (or any command but build) said "a database being built was not
    replaced", of a database it never builds."""
    from harmonise import api
    from harmonise.cli import base

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "validate", stopped)
    assert run("validate") == (130, "", "interrupted\n")
    monkeypatch.setattr(base, "terminated", lambda: True)
    assert run("validate") == (143, "", "terminated\n")


def test_every_data_path_that_does_not_exist_is_named(ess8: Path, tmp_path: Path) -> None:
    """`--data a --data b` with both mistyped named only a (fix it, run again, learn of b)."""
    code, out, err = run("validate", "--data", str(tmp_path / "a"), "--data", str(ess8), "--data", str(tmp_path / "b"))
    assert (code, out, err) == (2, "", (f"error: {tmp_path / 'a'}: no such file or folder\n"
                                       f"{tmp_path / 'b'}: no such file or folder\n"))


def test_system_failures_and_bugs_are_also_the_one_issue_on_stdout_in_json_format(
        fr_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--format json` gave the issue on stdout for harmonise's own errors but nothing for a refusal of the
    system (a full disk), a database of another version, or a bug ('internal error')."""
    import json
    import shutil

    import duckdb

    from harmonise import api

    def issue(message: str, code: str) -> dict[str, object]:
        return {"ok": False, "issues": [{"message": message, "code": code, "severity": "error",
                                        "doc": f"docs/issues.md#{code}"}]}

    db = tmp_path / "older.duckdb"
    shutil.copy(fr_db, db)
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE respondents DROP COLUMN migrant_generation")
    con.execute("DELETE FROM build_info WHERE key = 'harmonise_code'")  # as another version built it
    con.close()
    code, out, err = run("indicators", "--db", str(db), "--indicator", "employment_rate", "--group",
                         "migrant_generation", "--format", "json")
    message = err.removeprefix("error: ").rstrip("\n")
    assert message.startswith(f"{db}: the database lacks what `indicators` reads (")
    assert (code, json.loads(out)) == (2, issue(message, "input"))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", "/data/h.duckdb")

    monkeypatch.setattr(api, "validate", full)
    code, out, err = run("validate", "--format", "json")
    text = "/data/h.duckdb: No space left on device; check the path, free space and permissions"
    assert (code, json.loads(out), err) == (2, issue(text, "input"), f"error: {text}\n")

    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("x")

    monkeypatch.setattr(api, "validate", bug)
    code, out, err = run("validate", "--format", "github")
    text = "KeyError: 'x' (re-run with --debug for the traceback)"
    assert (code, out, err) == (2, f"::error title=harmonise error::internal error: {text}\n", f"internal error: {text}\n")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_full_standard_output_is_one_message_not_a_traceback() -> None:
    """Standard output on a full disk (`> /dev/full`): the JSON issue written to standard output failed too."""
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "harmonise", "--project", str(ROOT), "validate", "--format",
                               "json"], check=False, stdout=full, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "HARMONISE_SERVER": "off"})
    assert (proc.returncode, proc.stderr) == (2, ("error: No space left on device; check the path, free space and "
                                                 "permissions\n"))
