"""`harmonise coverage`: the target × survey-wave matrix."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest

from harmonise.authoring.coverage_view import LEGEND, symbol
from harmonise.spec.coverage import Cell, coverage
from harmonise.spec.project import Project, load_project
from tests.conftest import ROOT, run, waves_of


@pytest.fixture(scope="module")
def proj() -> Project:
    return load_project(ROOT)


@pytest.fixture(scope="module")
def cells(proj: Project) -> list[Cell]:
    return coverage(proj)


@pytest.mark.parametrize("kind,quality,expected", [
    ("map", "exact", "e"), ("table", "recoded", "r"), ("expr", "approximate", "a"), ("range", "proxy", "p"),
    ("derived", "recoded", "d"), ("automatic", None, "+"), ("not_asked", None, "·"), ("map", None, "?"),
])
def test_symbols(kind: str, quality: str | None, expected: str) -> None:
    assert symbol(Cell("t", "s", "1", kind, quality, (), "")) == expected


def test_text_matrix(proj: Project, cells: list[Cell]) -> None:
    code, out, err = run("coverage", "--survey", "ess")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["ess"]
    rounds = waves_of("ess")
    assert lines[1].split() == rounds
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[2:2 + len(proj.schema.names)]}  # type: ignore[union-attr]
    assert list(rows) == proj.schema.names  # type: ignore[union-attr]
    assert rows["sex"] == ["e"] * len(rounds)
    assert rows["labour_status"] == ["a"] * len(rounds)
    assert rows["psu"] == ["·"] * 8 + ["e"] * (len(rounds) - 8)  # from round 9
    ess = [c for c in cells if c.survey == "ess"]
    for label, kinds in (("mapped", ("map", "range", "table", "expr", "constant")), ("derived", ("derived",)),
                         ("not asked", ("not_asked",))):
        line = next(ln for ln in lines if ln.startswith(label + " "))
        per_wave = Counter(c.wave for c in ess if c.kind in kinds)
        assert line[len(label):].split() == [str(per_wave[w]) for w in rounds]
    assert lines[-1] == LEGEND


def test_json_and_csv_carry_every_cell(proj: Project, cells: list[Cell]) -> None:
    code, out, _ = run("coverage", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert len(data["cells"]) == len(cells)
    assert {(c["target"], c["survey"], c["wave"], c["kind"], c["quality"]) for c in data["cells"]} == \
        {(c.target, c.survey, c.wave, c.kind, c.quality) for c in cells}
    waves = [(col["survey"], col["wave"]) for col in data["columns"]]
    assert waves == list(dict.fromkeys((c.survey, c.wave) for c in cells))
    for col in data["columns"]:
        mine = [c for c in cells if (c.survey, c.wave) == (col["survey"], col["wave"])]
        assert col["not_asked"] == sum(c.kind == "not_asked" for c in mine)
        assert col["mapped"] + col["derived"] + col["not_asked"] + sum(c.kind == "automatic" for c in mine) == \
            len(proj.schema.names)  # type: ignore[union-attr]
    code, out, _ = run("coverage", "--format", "csv", "--survey", "ties")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(proj.schema.names) * len(waves_of("ties"))  # type: ignore[union-attr]
    sex = next(r for r in rows if r["target"] == "sex")
    cell = next(c for c in cells if (c.target, c.survey) == ("sex", "ties"))
    assert sex == {"target": "sex", "survey": "ties", "wave": cell.wave, "symbol": symbol(cell), "kind": cell.kind,
                   "quality": cell.quality or "", "sources": " ".join(cell.sources), "rule": cell.rule}


def test_unknown_survey_is_a_usage_error() -> None:
    code, _, err = run("coverage", "--survey", "esss")
    assert (code, err) == (2, "error: unknown survey(s) esss; known: ess, eumidis, evs, ics, localmultidem, ties\n")
