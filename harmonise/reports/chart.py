"""The comparison chart a report would carry: estimates with 95% CIs by cell and migrant group.

Drawn with matplotlib's object API (no pyplot state, Agg canvas). Suppressed cells get no point
and no interval, only the words "suppressed (n=…)"; low-reliability estimates are open markers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from matplotlib.figure import Figure

from harmonise.errors import InputError, UsageError
from harmonise.reports.estimate import Rule
from harmonise.reports.indicators import Estimates, indicators

COLOURS = ["#1b6ca8", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d5a97", "#2e4057", "#a05c34"]


@dataclass
class Chart:
    """What was drawn: plotted (cell, group, estimate) points and suppressed (cell, group, n) cells."""

    path: Path
    plotted: list[tuple[str, str, float]] = field(default_factory=list)
    suppressed: list[tuple[str, str, int]] = field(default_factory=list)
    figure: Figure | None = None


def draw(est: Estimates, indicator: str, by: Sequence[str], out: Path, *, label: str | None = None,
         unit: str = "share") -> Chart:
    """Draw ``indicator`` from ``est`` (one row per cell × group) into ``out`` (PNG, SVG or PDF)."""
    rows = [r for r in est.records() if r["indicator"] == indicator]
    if not rows:
        raise UsageError(f"no estimates for {indicator!r} in this grouping; nothing to draw")
    cells = sorted({" / ".join(str(r[c]) for c in by) or "all" for r in rows})
    groups = sorted({str(r["group"]) for r in rows})
    chart = Chart(out)
    height = 1.6 + 0.32 * len(cells) * max(1, len(groups)) ** 0.5
    fig = Figure(figsize=(8, height), layout="constrained")
    ax = fig.add_subplot()
    step = 0.8 / max(1, len(groups))
    scale = 100.0 if unit == "share" else 1.0
    for gi, g in enumerate(groups):
        colour = COLOURS[gi % len(COLOURS)]
        first = True
        for r in (r for r in rows if str(r["group"]) == g):
            cell = " / ".join(str(r[c]) for c in by) or "all"
            y = cells.index(cell) - 0.4 + step * (gi + 0.5)
            if r["reliability"] == "suppressed" or r["estimate"] is None:
                chart.suppressed.append((cell, g, int(r["n"])))  # type: ignore[call-overload]
                ax.annotate(f"{g}: suppressed (n={r['n']})", (0.01, y), xycoords=("axes fraction", "data"),
                            fontsize=7, color="#777777", va="center")
                continue
            e, lo, hi = (float(r[k]) * scale for k in ("estimate", "ci_low", "ci_high"))  # type: ignore[arg-type]
            ax.errorbar([e], [y], xerr=[[e - lo], [hi - e]], fmt="o", color=colour, capsize=2,
                        markerfacecolor="white" if r["reliability"] == "low" else colour,
                        label=g if first else None)
            first = False
            chart.plotted.append((cell, g, float(r["estimate"])))  # type: ignore[arg-type]
    ax.set_yticks(range(len(cells)), cells)
    ax.set_ylim(len(cells) - 0.5, -0.5)
    ax.set_xlabel(f"{label or indicator} ({'%' if unit == 'share' else 'mean'}, 95% CI)")
    ax.grid(axis="x", color="#dddddd")
    if chart.plotted:
        ax.legend(fontsize=8, title=str(rows[0]["breakdown"]), title_fontsize=8, loc="best")
    ages = rows[0]["ages"]
    fig.suptitle(f"{label or indicator}, ages {ages}", fontsize=11)
    fig.supxlabel(f"Weight: {est.weight}. Design: {'; '.join(sorted({str(r['design']) for r in rows}))}. "
                  f"Open markers: low reliability.\nRule: {est.rule.describe()}.", fontsize=6, x=0.01, ha="left")
    try:
        fig.savefig(out, dpi=150)
    except (OSError, ValueError) as exc:
        raise InputError(f"{out}: cannot write the chart ({exc})") from exc
    chart.figure = fig
    return chart


def compare(db: str | Path | duckdb.DuckDBPyConnection, indicator: str, out: Path, by: Sequence[str] = ("country",),
            group: str | None = "birthplace", *, weight: str | None = None, age: tuple[int, int] | None = None,
            rule: Rule | None = None) -> Chart:
    """Estimate ``indicator`` by ``by`` and ``group`` and draw the comparison chart into ``out``."""
    est = indicators(db, [indicator], by, group, weight=weight, age=age, rule=rule)
    d = est.definitions[indicator]
    return draw(est, indicator, by, out, label=d.label, unit=d.unit)

