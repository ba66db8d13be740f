"""docs/issues.md has one entry per issue code in harmonise/, and JSON output links each issue to its entry."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

from harmonise.errors import ISSUES_DOC, Issue
from tests.conftest import ROOT, edit, run

ENTRY = re.compile(r"^### ([a-z0-9-]+)$", re.MULTILINE)


def issue_codes() -> dict[str, list[str]]:
    """Every ``code="…"`` passed to a call in harmonise/ (Issue, or a helper that builds one), with where."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "harmonise").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "code":
                        assert isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str), (
                            f"{path.relative_to(ROOT)}:{node.lineno}: issue codes must be literal strings "
                            "so that docs/issues.md can be checked")
                        found.setdefault(kw.value.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    default = next(f.default for f in dataclasses.fields(Issue) if f.name == "code")
    found.setdefault(str(default), []).append("harmonise/errors.py (Issue's default)")
    return found


def entries() -> dict[str, str]:
    """Entry text per code heading of docs/issues.md."""
    text = (ROOT / ISSUES_DOC).read_text(encoding="utf-8")
    heads = list(ENTRY.finditer(text))
    return {m.group(1): text[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            for i, m in enumerate(heads)}


def test_every_issue_code_has_exactly_one_entry_with_meaning_and_fix() -> None:
    codes, docs = issue_codes(), entries()
    undocumented = {c: where for c, where in codes.items() if c not in docs}
    assert undocumented == {}, "add an entry (### code, **Meaning.** and **Fix.**) to docs/issues.md"
    assert sorted(set(docs) - set(codes)) == [], "docs/issues.md documents codes harmonise no longer emits"
    heads = ENTRY.findall((ROOT / ISSUES_DOC).read_text(encoding="utf-8"))
    assert len(heads) == len(set(heads)) == len(codes)
    for code, body in docs.items():
        assert "**Meaning.**" in body and "**Fix.**" in body, code


def test_to_dict_links_the_entry() -> None:
    issue = Issue("source variable gndr code 3 has no mapping", code="unmapped-code", variable="gndr")
    assert issue.to_dict() == {"message": "source variable gndr code 3 has no mapping", "code": "unmapped-code",
                               "severity": "error", "variable": "gndr", "doc": "docs/issues.md#unmapped-code"}
    assert Issue("x").to_dict()["doc"] == "docs/issues.md#error"


def test_json_output_links_every_issue_to_a_documented_entry(project: Path) -> None:
    edit(project / "mappings" / "ess.yaml", "source: gndr", "sorce: gndr")
    code, out, _ = run("validate", "--format", "json", project=project)
    assert code == 1
    issues = json.loads(out)["issues"]
    docs = entries()
    assert issues and all(i["doc"] == f"docs/issues.md#{i['code']}" and i["code"] in docs for i in issues)
    assert {i["code"] for i in issues} >= {"unknown-key"}


SEVERITY_MARK = re.compile(r"\*(error|warning|note)\b", re.IGNORECASE)


def emitted_severities() -> dict[str, set[str]]:
    """The severities each issue code is created with in harmonise/ (``severity=`` literal, or the default
    'error'; both branches of a conditional such as ``'error' if error else 'warning'``)."""
    default = next(f.default for f in dataclasses.fields(Issue) if f.name == "severity")
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "harmonise").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            kws = {kw.arg: kw.value for kw in node.keywords}
            code = kws.get("code")
            if not isinstance(code, ast.Constant) or not isinstance(code.value, str):
                continue
            value = kws.get("severity")
            sevs = {str(default)} if value is None else {
                n.value for n in ast.walk(value) if isinstance(n, ast.Constant) and n.value in ("error", "warning", "note")}
            assert sevs, f"{path.relative_to(ROOT)}:{node.lineno}: give the severity as a literal"
            found.setdefault(code.value, set()).update(sevs)
    return found


def test_every_entry_states_the_severity_its_code_is_emitted_with() -> None:
    """An entry opens with *Warning*, *Note* or *Error* (a second severity named in the same first line, e.g.
    drift's '*Note* (a *warning* when …)'); an entry without one is an error. A code emitted with another
    severity than its entry says would tell the reader a failing run passes, or the other way round."""
    wrong = {}
    for code, sevs in emitted_severities().items():
        first = entries()[code].strip().splitlines()[0]
        stated = {m.lower() for m in SEVERITY_MARK.findall(first)} if SEVERITY_MARK.match(first) else {"error"}
        if stated != sevs:
            wrong[code] = (sorted(stated), sorted(sevs))
    assert wrong == {}, "docs/issues.md states (first) another severity than harmonise emits (second)"


def test_unmatched_file_is_said_as_its_entry_says(tmp_path: Path, ess8: Path) -> None:
    """docs/issues.md#unmatched-file: a warning beside files that match; alone, an input error (exit 2, code
    `input` in JSON) — the entry said 'unmatched-file' error, which a JSON reader never saw."""
    import pandas as pd
    import pyreadstat

    pyreadstat.write_sav(pd.DataFrame({"a": [1.0, 2.0]}), str(tmp_path / "x.sav"))
    code, out, _ = run("validate", "--data", str(tmp_path / "x.sav"), "--format", "json")
    (issue,) = json.loads(out)["issues"]
    assert (code, issue["code"], issue["severity"]) == (2, "input", "error")
    assert "matches no crosswalk wave" in issue["message"]
    code, out, _ = run("validate", "--data", str(tmp_path / "x.sav"), "--data", str(ess8), "--format", "json")
    found = [(i["code"], i["severity"]) for i in json.loads(out)["issues"] if "x.sav" in i["message"]]
    assert (code, found) == (0, [("unmatched-file", "warning")])
    assert "code `input` in `--format json`" in " ".join(entries()["unmatched-file"].split())
