"""Analysis commands: indicators, compare, export (argument parsing and rendering only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harmonise.cli.base import format_rows, handled, json_dumps, main, replaceable
from harmonise.errors import UsageError
from harmonise.reports.estimate import LONELY_PSU, Rule
from harmonise.reports.indicators import BY_COLUMNS, WEIGHTS, Estimates

DB = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("harmonised.duckdb"),
                  show_default=True, help="Built database to read.")
RULE_OPTIONS = [("min_n", int, "Suppress when the unweighted n is below this."),
                ("min_n_eff", float, "Suppress when the Kish effective n is below this."),
                ("suppress_nonresponse", float, "Suppress when the item non-response share (0-1) exceeds this."),
                ("flag_n", int, "Flag low reliability when n is below this."),
                ("flag_cv", float, "Flag when the coefficient of variation exceeds this."),
                ("flag_rel_ci", float, "Flag when the 95% CI width relative to the estimate exceeds this."),
                ("flag_nonresponse", float, "Flag when the item non-response share (0-1) is this or more."),
                ("flag_df", int, "Flag when the design degrees of freedom (PSUs minus strata) are below this.")]


def estimation_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Weight, design, pooling, age band and suppression-rule options shared by `indicators` and `compare`."""
    defaults = Rule()
    for name, typ, text in reversed(RULE_OPTIONS):
        fn = click.option(f"--{name.replace('_', '-')}", name, type=typ, default=getattr(defaults, name),
                          show_default=True, help=text)(fn)
    fn = click.option("--age", default=None, metavar="FROM-TO",
                      help="Age band instead of each indicator's default, e.g. 25-54.")(fn)
    fn = click.option("--pool", is_flag=True, default=False,
                      help="Pool survey-waves into one estimate per cell (weights rescaled within each survey-wave "
                           "to its sample size; the source column names what was pooled). Default: never pooled, "
                           "one row per survey and wave.")(fn)
    fn = click.option("--lonely-psu", "lonely_psu", type=click.Choice(LONELY_PSU), default="adjust",
                      show_default=True, help="Variance of a stratum with one PSU, as R survey's lonely.psu: adjust "
                      "(centre at the grand mean), certainty or remove (no variance), collapse (merge with the "
                      "neighbouring stratum).")(fn)
    fn = click.option("--weight", type=click.Choice(WEIGHTS), default="weight", show_default=True,
                      help="weight (the analysis weight, ESS anweight; domain.md), weight_design (the design weight, "
                           "where a survey-wave has one; no margin over countries, which it would weight by sample size) or none "
                           "(unweighted), for every indicator.")(fn)
    return fn


def _rule(opts: dict[str, Any]) -> Rule:
    return Rule(**{name: opts.pop(name) for name, _, _ in RULE_OPTIONS})


def _age(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        lo, hi = (int(x) for x in text.split("-"))
    except ValueError:
        raise click.UsageError(f"--age {text!r}: write FROM-TO in years, e.g. 20-64") from None
    return lo, hi


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _one(option: str, values: tuple[str, ...]) -> str | None:
    """The one value of an option a query takes once (given twice, click kept the last without a word)."""
    if len(values) > 1:
        raise UsageError(f"{option} given {len(values)} times ({', '.join(values)}): a query takes one; run it once "
                         "for each")
    return values[0] if values else None


def _rounded(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value


def _designs(est: Estimates) -> str:
    """The rows' designs for a table's footer; several, each with the sources it is theirs of (a design reads
    ``kind; lonely PSUs: …``, so a list of them joined by commas did not say which row had which)."""
    design, source = est.columns.index("design"), est.columns.index("source")
    of: dict[str, set[str]] = {}
    for r in est.rows:
        of.setdefault(str(r[design]), set()).add(str(r[source]))
    if len(of) < 2:
        return next(iter(of), "-")
    return " | ".join(f"{d} ({', '.join(sorted(sources))})" for d, sources in sorted(of.items()))


def render(est: Estimates, fmt: str) -> str:
    """Estimates as a table (rounded; weight, design, pooling and rule in a footer), CSV or JSON (full
    precision, weight and rule in every row)."""
    if fmt == "json":
        return json_dumps({"weight": est.weight, "lonely_psu": est.lonely_psu, "pooling": est.pooling,
                           "rule": est.rule.describe(), "rows": est.records()})
    if fmt == "csv":
        return format_rows(est.columns, est.rows, "csv")
    keep = [i for i, c in enumerate(est.columns) if c not in ("weight", "rule", "design", "quality")]
    rows = [tuple(_rounded(r[i]) for i in keep) for r in est.rows]
    quality = sorted({str(r[est.columns.index("quality")]) for r in est.rows} - {"", "None"})
    return "\n".join([format_rows([est.columns[i] for i in keep], rows, "table"),
                      f"weight: {est.weight}; design: {_designs(est)}",
                      *([f"pooled: {est.pooling}"] if est.pooling else []),
                      *([f"quality: {' || '.join(quality)}"] if quality else []), f"rule: {est.rule.describe()}"])


@main.command()
@click.option("--indicator", "names", multiple=True, help="Indicator name (repeatable or comma-separated; default all).")
@click.option("--by", "by", multiple=True, help=f"Grouping column(s): {', '.join(BY_COLUMNS)} "
              "(repeatable or comma-separated; default survey,wave,country, with --pool country). Survey and wave "
              "always lead unless --pool; margins over the others are rows with the value 'all'.")
@click.option("--group", "groups", multiple=True, help="Migrant breakdown (declared in mappings/indicators.yaml), e.g. "
              "birthplace, origin_group, migrant_generation, citizenship_group; gaps are against its native group.")
@estimation_options
@DB
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="csv and json keep every column and digit, for programs.")
@handled
def indicators(names: tuple[str, ...], by: tuple[str, ...], groups: tuple[str, ...], age: str | None, weight: str,
               lonely_psu: str, pool: bool, db: Path, fmt: str, **rule: Any) -> None:
    """Weighted indicators with SEs, 95% CIs, reliability flags and gaps vs natives, per survey and wave."""
    from harmonise.reports.indicators import indicators as estimate

    est = estimate(db, _split(names) or None, _split(by) or None, _one("--group", groups), weight=weight, age=_age(age),
                   rule=_rule(rule), lonely_psu=lonely_psu, pool=pool)
    click.echo(render(est, fmt))
    if est.unestimated:  # a survey-wave without rows is not a zero: say which and why
        click.echo(f"note: no estimates for {len(est.unestimated)} survey-wave(s): " + "; ".join(est.unestimated),
                   err=True)


CHART_SUFFIXES = (".png", ".svg", ".pdf")


def _our_chart(path: Path) -> bool:
    """A chart harmonise drew: matplotlib names itself in every PNG, SVG (at their start) and PDF (in the
    document information at its end) it writes."""
    with path.open("rb") as fh:
        head = fh.read(4096)
        fh.seek(max(path.stat().st_size - 4096, 0))
        return b"matplotlib" in (head + fh.read()).lower()


@main.command()
@click.option("--indicator", "indicators", multiple=True, required=True, help="Indicator to draw.")
@click.option("--by", "by", multiple=True, help=f"Cells of the chart: {', '.join(BY_COLUMNS)} (default country).")
@click.option("--group", "groups", multiple=True, default=["birthplace"], show_default=True,
              help="Migrant breakdown drawn within each cell.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Image file to write (.png, .svg or .pdf).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists and is not a chart harmonise drew.")
@estimation_options
@DB
@handled
def compare(indicators: tuple[str, ...], by: tuple[str, ...], groups: tuple[str, ...], out: Path, force: bool,
            age: str | None, weight: str, lonely_psu: str, pool: bool, db: Path, **rule: Any) -> None:
    """Draw estimates with 95% CIs by cell and migrant group; suppressed cells are marked, not drawn."""
    from harmonise.reports.chart import compare as draw

    indicator, group = ",".join(indicators), _one("--group", groups) or "birthplace"
    if "," in indicator:
        raise UsageError(f"--indicator {indicator}: a chart draws one indicator; give one, or estimate several with "
                         "`harmonise indicators`")
    if out.suffix.lower() not in CHART_SUFFIXES:
        raise UsageError(f"--out {out}: a chart is written as {', '.join(CHART_SUFFIXES)} (by the file's extension)")
    replaceable(out, force, _our_chart)

    chart = draw(db, indicator, out, _split(by) or ["country"], group, weight=weight, age=_age(age), rule=_rule(rule),
                 lonely_psu=lonely_psu, pool=pool)
    click.echo(f"wrote {out}: {len(chart.plotted)} estimate(s), {len(chart.suppressed)} suppressed cell(s)")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "dta", "sav"]), required=True,
              help="parquet (partitioned by survey and wave), csv, dta (Stata) or sav (SPSS).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write into.")
@DB
@click.option("--force", is_flag=True, help="Replace files in --out of the same names that harmonise did not write.")
@handled
def export(fmt: str, out: Path, db: Path, force: bool) -> None:
    """Export the harmonised respondents with labels and missing reasons."""
    from harmonise.reports.export import export as write

    for path in write(db, out, fmt, force):
        click.echo(str(path))
