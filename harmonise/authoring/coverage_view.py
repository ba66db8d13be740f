"""The target × survey-wave coverage matrix for the terminal, JSON and CSV.

The cells come from :func:`harmonise.spec.coverage.coverage` (one computation for the
command, the codebooks and the lineage table); this module only arranges and counts them.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

from harmonise.spec.coverage import Cell, coverage
from harmonise.spec.project import Project

SYMBOLS = {"exact": "e", "recoded": "r", "approximate": "a", "proxy": "p"}
DERIVED, AUTOMATIC, NOT_ASKED, UNFLAGGED = "d", "+", "·", "?"
LEGEND = ("e exact  r recoded  a approximate  p proxy  (quality of a mapped rule)   "
          "d derived from other targets  + set by harmonise  · not asked")


def symbol(cell: Cell) -> str:
    """One letter for a cell: quality of a mapped rule, or derived / automatic / not asked."""
    if cell.kind == "not_asked":
        return NOT_ASKED
    if cell.kind == "derived":
        return DERIVED
    if cell.kind == "automatic":
        return AUTOMATIC
    return SYMBOLS.get(cell.quality or "", UNFLAGGED)


@dataclass(frozen=True)
class Column:
    """One survey-wave with its totals."""

    survey: str
    wave: str
    mapped: int
    derived: int
    not_asked: int


@dataclass
class Matrix:
    """Targets (rows, schema order) × survey-waves (columns, crosswalk order)."""

    targets: list[str]
    columns: list[Column]
    cells: dict[tuple[str, str, str], Cell]

    def symbol(self, target: str, col: Column) -> str:
        return symbol(self.cells[(target, col.survey, col.wave)])


def matrix(project: Project, surveys: list[str] | None = None) -> Matrix:
    """The coverage matrix of the loaded project (optionally only some surveys)."""
    cells = [c for c in coverage(project) if not surveys or c.survey in surveys]
    assert project.schema is not None
    targets = [v.name for v in project.schema.variables]
    order: list[tuple[str, str]] = []
    for c in cells:
        if (c.survey, c.wave) not in order:
            order.append((c.survey, c.wave))
    columns = []
    for survey, wave in order:
        col = [c for c in cells if (c.survey, c.wave) == (survey, wave)]
        columns.append(Column(survey, wave,
                              mapped=sum(c.kind not in ("not_asked", "derived", "automatic") for c in col),
                              derived=sum(c.kind == "derived" for c in col),
                              not_asked=sum(c.kind == "not_asked" for c in col)))
    return Matrix(targets, columns, {(c.target, c.survey, c.wave): c for c in cells})


def render_text(m: Matrix) -> str:
    """Compact matrix: a header line of surveys, one of waves, one symbol per cell, totals, legend."""
    name_w = max([len(t) for t in m.targets] + [len("not asked")])
    widths = [max(len(c.wave), 3) + 1 for c in m.columns]
    for survey in dict.fromkeys(c.survey for c in m.columns):  # room for the survey name over its columns
        idx = [i for i, c in enumerate(m.columns) if c.survey == survey]
        widths[idx[-1]] += max(0, len(survey) + 1 - sum(widths[i] for i in idx))
    survey_line = wave_line = " " * (name_w + 2)
    groups: dict[str, int] = {}
    for col, w in zip(m.columns, widths):
        groups[col.survey] = groups.get(col.survey, 0) + w
        wave_line += col.wave.ljust(w)
    for survey, gw in groups.items():
        survey_line += survey.ljust(gw)
    lines = [survey_line.rstrip(), wave_line.rstrip()]
    for t in m.targets:
        row = "".join(m.symbol(t, c).ljust(w) for c, w in zip(m.columns, widths))
        lines.append(f"{t.ljust(name_w)}  {row}".rstrip())
    lines.append("")
    for label, attr in (("mapped", "mapped"), ("derived", "derived"), ("not asked", "not_asked")):
        row = "".join(str(getattr(c, attr)).ljust(w) for c, w in zip(m.columns, widths))
        lines.append(f"{label.ljust(name_w)}  {row}".rstrip())
    lines += ["", LEGEND]
    return "\n".join(lines)


def _cell_row(c: Cell) -> dict[str, object]:
    d = asdict(c)
    d["symbol"] = symbol(c)
    d["sources"] = " ".join(c.sources)
    return d


def render_json(m: Matrix) -> str:
    return json.dumps({"columns": [asdict(c) for c in m.columns],
                       "cells": [_cell_row(m.cells[(t, c.survey, c.wave)]) for t in m.targets for c in m.columns]},
                      indent=2)


def render_csv(m: Matrix) -> str:
    """Long form: one row per target × survey-wave."""
    buf = io.StringIO()
    fields = ["target", "survey", "wave", "symbol", "kind", "quality", "sources", "rule"]
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for t in m.targets:
        for c in m.columns:
            w.writerow(_cell_row(m.cells[(t, c.survey, c.wave)]))
    return buf.getvalue().rstrip("\n")
