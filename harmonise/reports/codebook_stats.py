"""Frequencies and summaries of a built database for the codebooks, with small-cell suppression.

Disclosure default (docs/domain.md): a cell counted on fewer than
``min_cell`` (20) unweighted respondents shows ``<20`` and no weighted share.
When exactly one cell of a table would be hidden, the next smallest is hidden
too, so the first cannot be recovered by subtracting the others from the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harmonise.compile.sqltext import quote_ident
from harmonise.spec.schema import Variable

if TYPE_CHECKING:
    import duckdb

MIN_CELL = 20
BINS = 10
CATEGORICAL = ("category", "boolean", "country", "language", "city")
NUMERIC = ("integer", "number")


@dataclass
class FreqRow:
    """One value (or missing reason) of a target in one survey-wave."""

    value: str | None
    reason: str | None
    n: int
    weighted: float | None
    suppressed: bool = False
    secondary: bool = False  # hidden only so that a lone suppressed cell cannot be recovered from the total

    @property
    def shown(self) -> str:
        return "" if self.suppressed else str(self.n)


@dataclass
class Summary:
    """Numeric summary over the valid values of one survey-wave (suppressed below the threshold)."""

    n: int
    mean: float | None
    weighted_mean: float | None
    sd: float | None
    p25: float | None
    median: float | None
    p75: float | None
    suppressed: bool = False
    n_hidden: bool = False  # the valid-values row was hidden as a second cell: its count here would give it away


@dataclass
class WaveStats:
    """What the database holds for one target in one survey-wave."""

    total: int
    rows: list[FreqRow] = field(default_factory=list)
    summary: Summary | None = None
    histogram: list[FreqRow] = field(default_factory=list)

    @property
    def values(self) -> list[FreqRow]:
        return [r for r in self.rows if r.reason is None]

    @property
    def missing(self) -> list[FreqRow]:
        return [r for r in self.rows if r.reason is not None]


Stats = dict[str, dict[tuple[str, str], WaveStats]]


def suppress(rows: list[FreqRow], min_cell: int) -> None:
    """Hide cells below ``min_cell``; if exactly one is hidden, hide the next smallest as well (marked
    ``secondary``: its count is not small, so it is shown as hidden, not as below ``min_cell``)."""
    hidden = [r for r in rows if r.n < min_cell]
    for r in hidden:
        r.suppressed = True
    if len(hidden) == 1:
        rest = sorted((r for r in rows if not r.suppressed), key=lambda r: (r.n, r.value or "", r.reason or ""))
        if rest:
            rest[0].suppressed = rest[0].secondary = True
    for r in rows:
        if r.suppressed:
            r.weighted = None


def _frequencies(con: duckdb.DuckDBPyConnection, var: Variable, listed: bool) -> list[tuple[object, ...]]:
    col = quote_ident(var.name)
    miss = quote_ident(var.missing_column) if var.has_missing_column else "NULL"
    value = f"CAST({col} AS VARCHAR)" if listed else "NULL"
    return con.execute(
        f"SELECT survey, wave, {value} AS v, {miss} AS m, count(*) AS n, sum(weight) AS w, "
        "sum(sum(weight)) OVER (PARTITION BY survey, wave) AS wt "
        f"FROM respondents GROUP BY 1, 2, 3, 4 ORDER BY survey, wave, m NULLS FIRST, v").fetchall()


def _summaries(con: duckdb.DuckDBPyConnection, var: Variable) -> dict[tuple[str, str], tuple[object, ...]]:
    col = quote_ident(var.name)
    rows = con.execute(
        f"SELECT survey, wave, count({col}), avg({col}), "
        f"sum(weight * {col}) FILTER (WHERE weight IS NOT NULL) / "
        f"nullif(sum(weight) FILTER (WHERE {col} IS NOT NULL), 0), stddev_samp({col}), "
        f"quantile_cont({col}, 0.25), median({col}), quantile_cont({col}, 0.75) "
        "FROM respondents GROUP BY survey, wave").fetchall()
    return {(str(r[0]), str(r[1])): r[2:] for r in rows}


def _histograms(con: duckdb.DuckDBPyConnection, var: Variable) -> dict[tuple[str, str], list[FreqRow]]:
    """Equal-width bins between the 5th and 95th percentiles (values beyond fall in the end bins)."""
    col = quote_ident(var.name)
    rows = con.execute(
        f"WITH b AS (SELECT survey, wave, quantile_cont({col}, 0.05) AS lo, quantile_cont({col}, 0.95) AS hi "
        f"FROM respondents WHERE {col} IS NOT NULL GROUP BY 1, 2) "
        f"SELECT r.survey, r.wave, b.lo, b.hi, coalesce(least(greatest(floor((r.{col} - b.lo) / "
        f"nullif(b.hi - b.lo, 0) * {BINS}), 0), {BINS - 1}), 0) AS bin, count(*) FROM respondents r "
        f"JOIN b USING (survey, wave) WHERE r.{col} IS NOT NULL GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 5").fetchall()
    out: dict[tuple[str, str], list[FreqRow]] = {}
    for survey, wave, lo, hi, b, n in rows:
        lo, hi, i = float(lo), float(hi), int(b)
        width = (hi - lo) / BINS
        a, z = lo + i * width, lo + (i + 1) * width
        if width == 0:
            label = f"{lo:.4g}"
        elif i == 0:
            label = f"≤ {z:.4g}"
        elif i == BINS - 1:
            label = f"≥ {a:.4g}"
        else:
            label = f"{a:.4g}–{z:.4g}"
        out.setdefault((str(survey), str(wave)), []).append(FreqRow(label, None, int(n), None))
    return out


def variable_stats(con: duckdb.DuckDBPyConnection, var: Variable, min_cell: int = MIN_CELL) -> dict[tuple[str, str], WaveStats]:
    """Frequencies (categorical targets), summaries (numeric ones) and missing reasons, per survey-wave."""
    listed = var.type in CATEGORICAL
    out: dict[tuple[str, str], WaveStats] = {}
    for survey, wave, v, m, n, w, wt in _frequencies(con, var, listed):
        ws = out.setdefault((str(survey), str(wave)), WaveStats(0))
        ws.total += int(n)  # type: ignore[call-overload]
        share = (100.0 * float(w) / float(wt)) if (w is not None and wt) else None  # type: ignore[arg-type]
        ws.rows.append(FreqRow(None if v is None else str(v), None if m is None else str(m), int(n), share))  # type: ignore[call-overload]
    if var.type in NUMERIC:
        for key, (n, mean, wmean, sd, p25, med, p75) in _summaries(con, var).items():
            f = [None if x is None else float(x) for x in (mean, wmean, sd, p25, med, p75)]  # type: ignore[arg-type]
            count = int(n)  # type: ignore[call-overload]
            out[key].summary = Summary(count, f[0], f[1], f[2], f[3], f[4], f[5], suppressed=count < min_cell)
        for key, bins in _histograms(con, var).items():
            suppress(bins, min_cell)
            out[key].histogram = bins
    for ws in out.values():
        suppress(ws.rows, min_cell)
        valid = next((r for r in ws.rows if r.value is None and r.reason is None), None)
        if ws.summary is not None and valid is not None and valid.secondary:
            # the valid values were hidden so that a small missing cell cannot be derived from the total: their
            # count in the summary, or the histogram's bins (which add up to it), would derive it again
            ws.summary.n_hidden = True
            ws.histogram = []
    return out


def database_stats(db: Path, variables: list[Variable], min_cell: int = MIN_CELL) -> Stats:
    """Statistics for every target variable found in the database at ``db`` (opened read-only)."""
    from harmonise.store.connect import connect

    con = connect(db)
    try:
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'respondents'").fetchall()}
        return {v.name: variable_stats(con, v, min_cell) for v in variables
                if v.name in have and v.name not in ("survey", "wave")}
    finally:
        con.close()
