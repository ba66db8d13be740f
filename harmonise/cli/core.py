"""Core commands: validate, build, query, fixtures, sql (argument parsing and rendering only)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harmonise import api
from harmonise.cli.base import (
    FORMAT,
    ISSUE_FORMAT,
    categories,
    context_root,
    file_options,
    format_rows,
    handled,
    main,
    outcome,
    progress_printer,
    render_issues,
    tally,
    terminal_safe,
)
from harmonise.errors import UsageError

if TYPE_CHECKING:
    from harmonise.demo import Cell, Comparison


@main.command()
@click.argument("mappings", nargs=-1, type=click.Path(path_type=Path))
@click.option("--data", "data", multiple=True, type=click.Path(path_type=Path),
              help="Folder or file of source data to check against (repeatable).")
@click.option("--encoding", default=None, help="Text encoding of the source files (e.g. latin1).")
@click.option("--format", "fmt", type=ISSUE_FORMAT, default="text", show_default=True,
              help="github: one GitHub Actions annotation per issue (file and line) on stdout.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Files harmonised in parallel (default: one per core and file when they total 64 MB or more).")
@file_options
@handled
def validate(mappings: tuple[Path, ...], data: tuple[Path, ...], encoding: str | None, fmt: str,
             jobs: int | None, survey: str | None, wave: str | None, country: str | None, city: str | None) -> None:
    """Check crosswalks against the schema, declared codebooks and (with --data) real files."""
    result = api.validate(context_root(), list(mappings), list(data), encoding=encoding, jobs=jobs,
                          progress=progress_printer(fmt == "text"),
                          files=api.FileOptions(survey, wave, country, city=city))
    if not result.ok:
        outcome(1)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        if result.issues:  # annotations must reach stdout, where GitHub Actions reads them
            click.echo(render_issues(result.issues, fmt), err=not result.ok and fmt == "text")
            if fmt == "text" and categories(result.issues):
                click.echo(categories(result.issues), err=not result.ok)
        rows = sum(o.rows for o in result.outcomes)
        stopped = sum(1 for o in result.outcomes if not o.rows and o.job.source is not None and o.job.source.meta.rows)
        extra = (f", {len(result.outcomes)} file(s), {rows:,} rows" if result.outcomes else "") + \
            (f" ({stopped} file(s) not read: their errors above stop them)" if stopped else "")
        click.echo(f"{'ok' if result.ok else 'FAILED'}: {tally(result.issues)}{extra}")
    if not result.ok:
        sys.exit(1)


@main.command()
@click.option("--data", "data", multiple=True, type=click.Path(path_type=Path),
              help="Folder or file of source data (repeatable).")
@click.option("--demo", is_flag=True, help="Build from generated synthetic files of every declared wave (cached) "
              "and end with a comparison of natives and the foreign-born.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("harmonised.duckdb"),
              show_default=True, help="Database file to (re)build atomically.")
@click.option("--encoding", default=None, help="Text encoding of the source files (e.g. latin1).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True,
              help="json: the build's result (files, rows, issues) on standard output, for programs.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Files harmonised in parallel (default: one per core and file when they total 64 MB or more).")
@click.option("--force", is_flag=True, help="Replace --db even if it is not a database harmonise built.")
@click.option("--full", is_flag=True, help="Harmonise every file again, reusing nothing of the previous build "
              "(by default a file whose bytes, compiled SQL and options are unchanged keeps its rows: <db>.cache/).")
@click.option("--design", "design", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sample-design file (e.g. an ESS SDDF: idno, cntry, psu, stratum) joined to its wave's "
                   "respondents as the crosswalk's `design` key says (repeatable).")
@file_options
@handled
def build(data: tuple[Path, ...], demo: bool, db: Path, encoding: str | None, fmt: str, jobs: int | None,
          force: bool, full: bool, survey: str | None, wave: str | None, country: str | None, city: str | None,
          design: tuple[Path, ...]) -> None:
    """Harmonise source files into a DuckDB database (atomic: failures leave the old one intact)."""
    if demo and data:
        raise click.UsageError("give either --data or --demo, not both")
    if not data and not demo:
        raise click.UsageError("give --data DIR (your source files) or --demo (generated fixtures)")
    given = [name for name, value in (("--survey", survey), ("--wave", wave), ("--country", country),
                                      ("--city", city), ("--design", design)) if value]
    if demo and given:  # they would assign every survey's generated files to one survey, wave or country
        raise click.UsageError(f"{', '.join(given)}: {'describe' if len(given) > 1 else 'describes'} the files of "
                               "--data; --demo builds the generated files of every survey as they are")
    root = context_root()
    show = progress_printer(fmt == "text")
    sources = api.demo_files(api.demo_data(root, progress=show)) if demo else list(data)
    result = api.build(root, sources, db, encoding=encoding, jobs=jobs, progress=show, synthetic=demo, force=force,
                       files=api.FileOptions(survey, wave, country, design, city=city), full=full)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    if sys.stderr.isatty():
        click.echo("", err=True)
    if demo:  # one line per survey: the comparison below is what a new user should see
        waves: dict[str, list[int]] = {}
        for o in result.outcomes:
            waves.setdefault(o.job.crosswalk.survey, []).append(o.rows)
        for name, rows in waves.items():
            click.echo(f"{name}: {len(rows)} wave(s), {sum(rows):,} synthetic rows")
    else:
        for o in result.outcomes:
            click.echo(f"{o.job.crosswalk.survey} wave {o.job.wave.wave}: {o.rows:,} rows from {terminal_safe(o.job.file_name)}")
    if result.issues:
        click.echo(render_issues(result.issues, "text"), err=True)
    if categories(result.issues):
        click.echo(categories(result.issues), err=True)
    reused = sum(o.reused for o in result.outcomes)
    kept = f"; {reused} of {len(result.outcomes)} files kept from the previous build" if reused else ""
    click.echo(f"built {db} ({sum(o.rows for o in result.outcomes):,} rows) in {result.seconds:.1f} s{kept}")
    if demo:
        from harmonise.demo import comparison

        found = comparison(db)
        if found is not None:
            click.echo("\n" + render_comparison(found, db))


def _percent(x: float | None) -> str:
    return f"{100 * x:.1f}" if x is not None else "-"


def _cell(c: Cell) -> str:
    if c.estimate is None:
        return f"{c.reliability} (n={c.n})"
    return f"{_percent(c.estimate)} [{_percent(c.ci_low)}, {_percent(c.ci_high)}]"


def render_comparison(c: Comparison, db: Path) -> str:
    """The demo's closing comparison: a table, what it leaves out, and the commands to run next."""
    native, other = c.native.replace("_", "-"), c.other.replace("_", "-")
    rows = [(r.survey, r.wave, r.country, _cell(r.native), _cell(r.other),
             f"{_percent(r.gap)} [{_percent(r.gap_low)}, {_percent(r.gap_high)}]" if r.gap is not None else "-",
             r.reliability) for r in c.rows]
    title = f"{c.label} {c.ages}, {native} vs {other}: % with 95% CI, latest wave of each survey"
    lines = [title + (" (SYNTHETIC demo data, not survey results)" if c.synthetic else ""),
             format_rows(["survey", "wave", "country", f"{native} %", f"{other} %", "gap (points)", "reliability"],
                         rows, "table")]
    for (survey, wave), group in sorted(c.one_group.items()):
        lines.append(f"{survey} {wave} samples {group.replace('_', '-')} people only: no gap to show "
                     "(its cities are in the compare --by city chart below)")
    if c.rule:
        lines.append(f"rule: {c.rule}")
    q, name = shlex.quote(str(db)), c.indicator
    lines += ["", "next:",
              f"  harmonise indicators --db {q} --indicator {name} --group {c.breakdown}",
              f"  harmonise compare --db {q} --indicator {name} --by city --out {name}_by_city.png",
              f"  harmonise codebook --db {q} --out codebook"]
    return "\n".join(lines)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("sql", nargs=-1, type=click.UNPROCESSED)
@click.option("-f", "--file", "sql_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="Read the SQL from this file ('-': standard input).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("harmonised.duckdb"),
              show_default=True, help="Built database to query (opened read-only).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="table escapes control characters; csv and json keep values exact.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop the query after this many seconds (exit 1).")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Print at most this many rows (a note on standard error says when rows were left out).")
@click.option("--memory-limit", default=None, help="DuckDB's memory limit for the query (default 2GB); beyond it the "
              "query stops (exit 2).")
@handled
def query(sql: tuple[str, ...], sql_file: Path | None, db: Path, fmt: str, timeout: float | None,
          max_rows: int | None, memory_limit: str | None) -> None:
    """Run read-only SQL on a built database: SQL as the argument ('-': standard input) or -f FILE.

    Rows are printed as DuckDB produces them; Ctrl-C stops the query (exit 130).
    """
    import duckdb

    from harmonise.cli.base import RowWriter, stdout_started

    text = _sql_text(sql, sql_file)
    writer = RowWriter("text" if fmt == "table" else fmt)
    try:
        try:
            _, cut = api.query_stream(db, text, writer.columns, writer.rows, timeout=timeout, max_rows=max_rows,
                                      memory_limit=memory_limit)
        except BaseException:
            if writer.started:
                stdout_started()
            raise
    except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException, duckdb.PermissionException,
            duckdb.NotImplementedException, duckdb.InvalidInputException, duckdb.ConversionException,
            duckdb.OutOfRangeException) as exc:  # the SQL is wrong, not allowed, or fails on the data
        raise UsageError(f"query failed: {str(exc).splitlines()[0]}") from None  # the SQL's fault: no usage banner
    writer.close()
    if cut:
        click.echo(f"note: stopped after {max_rows:,} row(s) (--max-rows); more rows were left out", err=True)
    statements = len(duckdb.extract_statements(text))  # it parsed: the query ran
    if statements > 1:
        click.echo(f"note: the SQL holds {statements} statements; the rows shown are the last one's", err=True)


def _sql_text(sql: tuple[str, ...], sql_file: Path | None) -> str:
    """The SQL of the query command: the argument(s), standard input ('-'), or the file of -f."""
    if sql_file is not None:
        if sql:
            raise click.UsageError("give the SQL either as an argument or with -f FILE, not both")
        if str(sql_file) == "-":
            return sys.stdin.read()
        try:
            return sql_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise click.UsageError(f"cannot read the SQL file {sql_file}: {reason}") from None
    if not sql:
        raise click.UsageError("give the SQL as an argument, '-' to read it from standard input, or -f FILE")
    if sql == ("-",):
        return sys.stdin.read()
    return " ".join(sql)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the files into (one sub-folder per survey).")
@click.option("--survey", default=None, help="Only this survey.")
@click.option("--wave", default=None, help="Only this wave.")
@click.option("--rows", type=click.IntRange(1, 5_000_000), default=None,
              help="Rows per file (default: the declared sample sizes of a few countries per wave, or of every "
                   "city a city survey samples).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of the random draws: the same seed writes byte-identical files.")
@click.option("--force", is_flag=True, help="Replace files in --out of the same names that harmonise did not write.")
@click.option("--editions", is_flag=True,
              help="Also write Stata editions of some waves' files (under <survey>/stata/: the same respondents, so "
                   "validate or build them apart from the primary files).")
@handled
def fixtures(out: Path, survey: str | None, wave: str | None, rows: int | None, seed: int, force: bool,
             editions: bool) -> None:
    """Write deterministic synthetic source files from the declared codebooks."""
    from harmonise.fixtures import generate

    for path in generate(context_root(), out, survey=survey, wave=wave, rows=rows, seed=seed, force=force,
                         editions=editions):
        click.echo(str(path))


@main.command()
@click.argument("survey")
@click.argument("wave")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Compile against this file's metadata instead of the declared codebook.")
@handled
def sql(survey: str, wave: str, data: Path | None) -> None:
    """Print the DuckDB SQL a crosswalk wave compiles to."""
    text, notes = api.compiled_sql(context_root(), survey, wave, data)
    click.echo(text)
    for line in notes:  # the query compiles where the file does not fit the wave: say so, beside it
        click.echo(line, err=True)

