"""The comparison chart a report would carry: estimates with 95% CIs by cell and migrant group.

Drawn with matplotlib's object API (no pyplot state, Agg canvas). One row per cell (survey-wave
and the ``--by`` values, by name), one series per group, with a legend of its own handles (one
filled marker per series) above the plot, outside the data. Suppressed cells get no point and no
interval, only "suppressed (n=…)"; low-reliability estimates are open markers. A caption names
the surveys and waves, the weight, the design, the quality flags, the suppression rule in words
and, for a synthetic (demo) database, says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harmonise.errors import InputError, UsageError
from harmonise.reports.estimate import ALL, Rule
from harmonise.reports.indicators import SAMPLE_KEYS, UNKNOWN, Estimates, grouping, indicators

COLOURS = ["#1b6ca8", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d5a97", "#2e4057", "#a05c34"]
TITLE_WIDTH = 60  # characters of a title line: the legend takes the top right
WEIGHT_WORDS = {"weight": "analysis weight (ESS anweight, each survey's recommended weight)",
                "weight_design": "design weight", "none": "unweighted"}


@dataclass
class Labels:
    """Names for the codes a chart shows (read from the database; codes where it has none)."""

    surveys: dict[str, str] = field(default_factory=dict)
    values: dict[tuple[str, str], str] = field(default_factory=dict)  # (column, code) → name
    synthetic: bool = False

    def source(self, source: str) -> str:
        survey, _, wave = source.partition(" ")
        return f"{self.surveys.get(survey, survey.upper())} {wave}".strip()

    def value(self, column: str, code: object) -> str:
        if code in (ALL, UNKNOWN):
            return str(code).capitalize()
        if column == "survey":
            return self.surveys.get(str(code), str(code).upper())
        return self.values.get((column, str(code)), str(code))


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    try:
        return con.execute(sql).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException):  # an older database, or one without the table
        return []


def read_labels(db: str | Path | duckdb.DuckDBPyConnection) -> Labels:
    """Survey acronyms, country, city and NUTS names (lookup tables), code labels (``value_labels``) and the synthetic mark."""
    from harmonise.store.connect import connect

    con = connect(db) if not isinstance(db, duckdb.DuckDBPyConnection) else db
    try:
        labels = Labels({str(s): str(a) for s, a in _rows(con, "SELECT survey, acronym FROM survey_sampling")})
        labels.values.update({("country", str(c)): str(n) for c, n in _rows(con, "SELECT code, name FROM countries")})
        labels.values.update({("city", str(c)): str(n) for c, n in _rows(con, "SELECT code, name FROM cities")})
        labels.values.update({("region_nuts", str(c)): str(n) for c, n in _rows(
            con, "SELECT code, name FROM nuts_regions WHERE name IS NOT NULL")})
        labels.values.update({(str(v), str(c)): str(lab) for v, c, lab in _rows(
            con, "SELECT variable, code, label FROM value_labels WHERE NOT is_missing_reason")})
        synthetic = _rows(con, "SELECT value FROM build_info WHERE key = 'synthetic'")
        labels.synthetic = bool(synthetic) and str(synthetic[0][0]).strip().lower() == "true"
    finally:
        if con is not db:
            con.close()
    return labels


@dataclass
class Chart:
    """What was drawn: plotted (cell, group, estimate) points, suppressed (cell, group, n) cells, the
    series (labels of the groups with a point, in legend order) and the caption."""

    path: Path
    plotted: list[tuple[str, str, float]] = field(default_factory=list)
    suppressed: list[tuple[str, str, int]] = field(default_factory=list)
    series: list[str] = field(default_factory=list)
    caption: str = ""
    figure: Figure | None = None


def caption(est: Estimates, rows: list[dict[str, object]], labels: Labels) -> str:
    """Source, weight, design, quality flags, the suppression rule in words (and the synthetic-data notice)."""
    sources = sorted({s for r in rows for s in str(r["source"] or "").split(", ") if s},
                     key=lambda s: (s.partition(" ")[0], s.partition(" ")[2].zfill(8)))
    designs = sorted({str(r["design"]) for r in rows})
    quality = sorted({str(r["quality"]) for r in rows if r.get("quality")})
    parts = [f"Source: {', '.join(labels.source(s) for s in sources) or 'no respondents'}"
             + (f" ({est.pooling})" if est.pooling else ", each survey and wave estimated separately") + ".",
             f"Weight: {WEIGHT_WORDS.get(est.weight, est.weight)}. Design: {'; '.join(designs)}.",
             *([f"Quality: {' | '.join(quality)}."] if quality else []), est.rule.words()]
    if labels.synthetic:
        parts.insert(0, "SYNTHETIC DATA (demo build): generated from the declared codebooks, not survey responses.")
    return "\n".join(textwrap.fill(p, 150) for p in parts)


def draw(est: Estimates, indicator: str, by: Sequence[str], out: Path, *, label: str | None = None,
         unit: str = "share", labels: Labels | None = None) -> Chart:
    """Draw ``indicator`` from ``est`` (one row per cell × group) into ``out`` (PNG, SVG or PDF)."""
    # every text drawn is a label, a name or a number: a '$' in it is a dollar sign, not TeX math (mathtext
    # set 'a $5 and $10 b' in italics, and stopped the chart at a label holding '$\\frac{')
    with rc_context({"text.parse_math": False}):
        return _draw(est, indicator, by, out, label=label, unit=unit, labels=labels)


def _draw(est: Estimates, indicator: str, by: Sequence[str], out: Path, *, label: str | None,
          unit: str, labels: Labels | None) -> Chart:
    labels = labels or Labels()
    rows = [r for r in est.records() if r["indicator"] == indicator]
    if not rows:
        why = f" ({'; '.join(est.unestimated)})" if est.unestimated else ""
        raise UsageError(f"no estimates for {indicator!r} in this grouping{why}; nothing to draw")
    pooled = est.pooling is not None
    keys = list(by) if pooled else [c for c in grouping(by, False) if c not in SAMPLE_KEYS]
    if keys and not pooled:  # a survey-wave without the --by variable (ESS by city): its total, not an 'Unknown' twin
        known = {(r["survey"], r["wave"]) for r in rows if any(r[c] not in (ALL, UNKNOWN) for c in keys)}
        rows = [r for r in rows if (r["survey"], r["wave"]) in known or all(r[c] == ALL for c in keys)]

    def cell_of(r: dict[str, object]) -> str:
        head = [] if pooled else [labels.source(str(r["source"] or f"{r['survey']} {r['wave']}"))]
        return " · ".join(head + [labels.value(c, r[c]) for c in keys]) or "all"

    order = {cell_of(r): (str(r.get("survey")), str(r.get("wave")).zfill(8), *(str(r[c]) != ALL for c in keys),
                          *(labels.value(c, r[c]) for c in keys)) for r in rows}
    cells = sorted(order, key=lambda c: order[c])
    breakdown = next((str(r["breakdown"]) for r in rows if r["breakdown"] != "total"), "total")
    names = json.loads(est.breakdowns[breakdown].labels) if breakdown in est.breakdowns else {}
    groups = sorted({str(r["group"]) for r in rows}, key=lambda g: (g != ALL, g))
    names = {ALL: "All (total)" if breakdown == "total" else "All with a known group", UNKNOWN: "Unknown", **names}
    series = {g: textwrap.fill(names.get(g, g), 34) for g in groups}
    chart = Chart(out, caption=caption(est, rows, labels))
    height = 2.8 + 0.3 * len(cells) * max(1, len(groups)) ** 0.5 + 0.12 * chart.caption.count("\n")
    fig = Figure(figsize=(10, height), layout="constrained")
    ax = fig.add_subplot()
    step = 0.8 / max(1, len(groups))
    scale = 100.0 if unit == "share" else 1.0
    handles = []
    for gi, g in enumerate(groups):
        colour = COLOURS[gi % len(COLOURS)]
        if any(r["estimate"] is not None and str(r["group"]) == g for r in rows):  # a series drawn: its own handle
            handles.append(Line2D([], [], color=colour, marker="o", markerfacecolor=colour, linestyle="-",
                                  label=series[g]))
            chart.series.append(series[g])
        for r in (r for r in rows if str(r["group"]) == g):
            cell = cell_of(r)
            y = cells.index(cell) - 0.4 + step * (gi + 0.5)
            if r["reliability"] == "suppressed" or r["estimate"] is None:
                chart.suppressed.append((cell, g, int(r["n"])))  # type: ignore[call-overload]
                ax.annotate(f"{names.get(g, g)}: suppressed (n={r['n']})", (0.01, y),
                            xycoords=("axes fraction", "data"), fontsize=6.5, color="#666666", va="center")
                continue
            e, lo, hi = (float(r[k]) * scale for k in ("estimate", "ci_low", "ci_high"))  # type: ignore[arg-type]
            ax.errorbar([e], [y], xerr=[[e - lo], [hi - e]], fmt="o", color=colour, capsize=2,
                        markerfacecolor="white" if r["reliability"] == "low" else colour)
            chart.plotted.append((cell, g, float(r["estimate"])))  # type: ignore[arg-type]
    ax.set_yticks(range(len(cells)), cells, fontsize=8)
    ax.set_ylim(len(cells) - 0.5, -0.5)
    ax.set_xlabel("Percent, with 95% confidence interval" if unit == "share" else
                  "Mean, with 95% confidence interval")
    if unit == "share":
        ax.set_xlim(-2, 102)
    ax.grid(axis="x", color="#dddddd")
    title = est.breakdowns[breakdown].label if breakdown in est.breakdowns else "Total"
    fig.legend(handles=handles, loc="outside right upper", fontsize=7.5, frameon=False)
    heading = f"{label or indicator}, ages {rows[0]['ages']}" + (f", by {title[0].lower()}{title[1:]}"
                                                                if breakdown != "total" else "")
    # from the left, wrapped: centred, a long title ran into the legend at the top right
    fig.suptitle(textwrap.fill(heading, TITLE_WIDTH), fontsize=11, x=0.01, ha="left")
    fig.supxlabel(chart.caption, fontsize=5.5, x=0.01, ha="left", linespacing=1.3)
    tmp = Path(out).with_name(f".{Path(out).name}.tmp-{os.getpid()}")  # whole or not at all: renamed over ``out``
    try:
        fig.savefig(tmp, dpi=150, format=Path(out).suffix.lstrip(".").lower() or None)
        os.replace(tmp, out)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{out}: cannot write the chart ({why})") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    chart.figure = fig
    return chart


def compare(db: str | Path | duckdb.DuckDBPyConnection, indicator: str, out: Path, by: Sequence[str] = ("country",),
            group: str | None = "birthplace", *, weight: str = "weight", age: tuple[int, int] | None = None,
            rule: Rule | None = None, lonely_psu: str = "adjust", pool: bool = False) -> Chart:
    """Estimate ``indicator`` by ``by`` and ``group`` and draw the comparison chart into ``out``."""
    est = indicators(db, [indicator], by, group, weight=weight, age=age, rule=rule, lonely_psu=lonely_psu, pool=pool)
    d = est.definitions[indicator]
    return draw(est, indicator, by, out, label=d.label, unit=d.unit, labels=read_labels(db))
