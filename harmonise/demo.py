"""The comparison `harmonise build --demo` ends with, read from a built database.

One indicator (the employment rate) of the native-born against the foreign-born, by country in
the latest wave of each survey, with 95% CIs, the gap and reliability — straight from the stored
``indicators`` table, so it shows exactly what ``harmonise indicators`` gives. Surveys whose latest
wave samples one of the groups only (ICS: immigrants; TIES: the native-born second generation and
its comparison group) have no gap to show and are listed apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonise.reports.estimate import t_quantile

if TYPE_CHECKING:
    import duckdb

INDICATOR = "employment_rate"
BREAKDOWN = "birthplace"
# the stored estimates of one indicator and breakdown in the latest wave (by year) of each survey
LATEST_CELLS = '''
WITH latest AS (SELECT survey, wave FROM (SELECT survey, wave, max(year) AS year FROM respondents GROUP BY ALL)
                QUALIFY row_number() OVER (PARTITION BY survey ORDER BY year DESC, wave DESC) = 1)
SELECT survey, wave, country, "group", n, estimate, ci_low, ci_high, reliability, gap, gap_se, rule, df
FROM indicators JOIN latest USING (survey, wave)
WHERE indicator = ? AND breakdown = ? AND country <> 'all' AND "group" NOT IN ('all', 'unknown') ORDER BY survey, wave, country, "group"'''


@dataclass(frozen=True)
class Cell:
    """One group's estimate in one row (``estimate`` None when suppressed)."""

    n: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    reliability: str


@dataclass(frozen=True)
class Row:
    """One survey × wave × country: the native group, the other group, and the gap between them."""

    survey: str
    wave: str
    country: str
    native: Cell
    other: Cell
    gap: float | None
    gap_low: float | None
    gap_high: float | None

    @property
    def reliability(self) -> str:
        """The worse of the two cells' reliability."""
        order = ["ok", "low", "suppressed"]
        return max(self.native.reliability, self.other.reliability, key=lambda r: order.index(r) if r in order else 0)


@dataclass
class Comparison:
    """The demo's comparison: what is compared, the rows, and surveys sampling one group only."""

    indicator: str
    breakdown: str
    label: str
    ages: str
    native: str
    other: str
    rows: list[Row] = field(default_factory=list)
    one_group: dict[tuple[str, str], str] = field(default_factory=dict)  # (survey, wave) → its only group
    rule: str = ""
    synthetic: bool = False


def comparison(db: str | Path | duckdb.DuckDBPyConnection, indicator: str = INDICATOR,
               breakdown: str = BREAKDOWN) -> Comparison | None:
    """The comparison of ``indicator`` by ``breakdown`` in the latest wave of each survey of ``db`` (the
    latest year; of two waves with the same latest year, the greater wave name); None when the database
    stores no such indicator or breakdown."""
    from harmonise.store.connect import connect

    con = connect(db) if isinstance(db, (str, os.PathLike)) else db
    try:
        return _read(con, indicator, breakdown)
    finally:
        if con is not db:
            con.close()


def _read(con: duckdb.DuckDBPyConnection, indicator: str, breakdown: str) -> Comparison | None:
    import duckdb

    try:
        ind = _first(con, "SELECT label, age_low, age_high FROM indicator_definitions WHERE name = ?", [indicator])
        brk = _first(con, "SELECT native FROM indicator_breakdowns WHERE name = ?", [breakdown])
        synthetic = _first(con, "SELECT value FROM build_info WHERE key = 'synthetic'", [])
        cells = con.execute(LATEST_CELLS, [indicator, breakdown]).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):  # a database without the indicator tables
        return None
    if ind is None or brk is None:
        return None
    native = str(brk[0])
    others = sorted({str(c[3]) for c in cells} - {native})
    out = Comparison(indicator=indicator, breakdown=breakdown, label=str(ind[0]), ages=f"{ind[1]}-{ind[2]}",
                     native=native, other=others[0] if others else "",
                     rule=str(cells[0][11]) if cells else "", synthetic=bool(synthetic and synthetic[0] == "true"))
    by_place: dict[tuple[str, str, str], dict[str, tuple[Any, ...]]] = {}
    for c in cells:
        by_place.setdefault((str(c[0]), str(c[1]), str(c[2])), {})[str(c[3])] = c
    groups: dict[tuple[str, str], set[str]] = {}
    for (survey, wave, country), got in by_place.items():
        groups.setdefault((survey, wave), set()).update(got)
        if native in got and out.other in got:
            gap, se = _num(got[out.other][9]), _num(got[out.other][10])
            half = t_quantile(_num(got[out.other][12])) * se if gap is not None and se is not None else None
            out.rows.append(Row(survey, wave, country, _cell(got[native]), _cell(got[out.other]),
                                gap if half is not None else None,
                                gap - half if gap is not None and half is not None else None,
                                gap + half if gap is not None and half is not None else None))
    out.one_group = {k: next(iter(g)) for k, g in groups.items() if len(g) == 1}
    return out


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> tuple[Any, ...] | None:
    rows = con.execute(sql, params).fetchall()
    return tuple(rows[0]) if rows else None


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) else None


def _cell(row: tuple[Any, ...]) -> Cell:
    return Cell(int(row[4]), _num(row[5]), _num(row[6]), _num(row[7]), str(row[8]))
