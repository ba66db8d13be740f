"""The code-table models (harmonise/spec/codetables.py): reference rows and their aliases."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, edit, line_of

from harmonise.spec.project import load_tables


def test_shipped_tables_load_and_keep_their_aliases() -> None:
    tables, issues = load_tables(ROOT)
    assert issues == []
    rows = {r["code"]: r for r in tables.tables["countries"].rows}  # type: ignore[union-attr]
    assert rows["TR"]["aliases"] == ["Turkey"]
    assert "aliases" not in rows["FR"]
    assert rows["002"]["name"] == "Africa"


@pytest.mark.parametrize("bad", ['"Turkey"', "[Turkey, 3]", '[""]'])
def test_aliases_that_are_not_a_list_of_names_are_an_error_at_the_row(project: Path, bad: str) -> None:
    path = project / "mappings" / "tables" / "countries.yaml"
    edit(path, 'aliases: ["Turkey"]', f"aliases: {bad}")
    _, issues = load_tables(project)
    assert [(i.file, i.line, i.path, i.code) for i in issues] == [
        ("mappings/tables/countries.yaml", line_of(path, '{code: "TR"'), f"rows.{_row_index(path, 'TR')}", "type")]
    assert issues[0].message.startswith('aliases must be a list of names, e.g. aliases: ["Turkey"]; got ')


def _row_index(path: Path, code: str) -> int:
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("  - {code: ")]
    return next(i for i, line in enumerate(rows) if line.startswith(f'  - {{code: "{code}"'))
