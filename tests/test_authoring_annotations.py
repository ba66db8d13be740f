"""`harmonise validate --format github`: GitHub Actions workflow-command annotations."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from harmonise.authoring.annotations import annotation, escape_data, escape_property
from harmonise.errors import Issue
from tests.conftest import ROOT, edit, line_of, run


def unescape(text: str) -> str:
    for code, ch in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, ch)
    return text


@given(st.text())
def test_escaping_round_trips_and_leaves_no_separators(text: str) -> None:
    data, prop = escape_data(text), escape_property(text)
    assert unescape(data) == text and unescape(prop) == text
    assert "\n" not in data and "\r" not in data
    assert not re.search(r"[\n\r,:]", prop)
    assert re.fullmatch(r"(?:[^%]|%25|%0D|%0A|%3A|%2C)*", prop)


def test_annotation_forms() -> None:
    err = Issue("bad: value, 100%\nsecond line", code="type", file="mappings/a,b:c.yaml", line=7, path="targets.sex")
    assert annotation(err) == ("::error file=mappings/a%2Cb%3Ac.yaml,line=7,title=harmonise type::"
                               "targets.sex: bad: value, 100%25%0Asecond line")
    warn = Issue("column is empty", code="empty-source", severity="warning", survey="ess", wave="8", hint="check it")
    assert annotation(warn) == "::warning title=harmonise empty-source::ess wave 8: column is empty — check it"
    nofile_line = Issue("x", file="mappings/ess.yaml")
    assert annotation(nofile_line) == "::error file=mappings/ess.yaml,title=harmonise error::x"


def test_validate_github_output_line_by_line(project: Path) -> None:
    odd = project / "mappings" / "odd,name:1.yaml"
    (project / "mappings" / "ess.yaml").rename(odd)
    edit(odd, "    source: gndr\n", "    so%rce: gndr\n")
    edit(odd, "    quality: approximate\n    notes: Respondent's own", "    quality: aproximate\n    notes: Respondent's own")
    key_line, quality_line = line_of(odd, "so%rce: gndr"), line_of(odd, "quality: aproximate")
    code, out, err = run("validate", str(odd), "--format", "github", project=project)
    assert code == 1 and err == ""
    assert out.splitlines() == [
        (f"::error file=mappings/odd%2Cname%3A1.yaml,line={quality_line},title=harmonise type::"
        "targets.urbanisation.quality: Input should be 'exact', 'recoded', 'approximate' or 'proxy' (got 'aproximate')"),
        (f"::error file=mappings/odd%2Cname%3A1.yaml,line={key_line},title=harmonise unknown-key::"
        "targets.sex.so%25rce: unknown key 'so%25rce' — did you mean 'source'?"),
        "FAILED: 2 error(s), 0 warning(s)",
    ]


def test_validate_github_output_when_all_is_well() -> None:
    code, out, err = run("validate", str(ROOT / "mappings" / "ties.yaml"), "--format", "github")
    assert (code, out, err) == (0, "ok: 0 error(s), 0 warning(s)\n", "")


def test_ci_examples_run_validate_with_github_format() -> None:
    workflow = (ROOT / "examples" / "ci" / "github-workflow.yml").read_text(encoding="utf-8")
    assert "harmonise validate --format github" in workflow
    # a validate without HARMONISE_SERVER=off starts a background server that runs the command again: on a CI
    # runner, a second validation of every crosswalk for nothing
    assert yaml.safe_load(workflow)["env"]["HARMONISE_SERVER"] == "off"
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "entry: harmonise validate" in hooks and "id: harmonise-validate" in hooks
