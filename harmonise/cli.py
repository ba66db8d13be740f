"""The `harmonise` command line: argument parsing and rendering only (see harmonise.api)."""

from __future__ import annotations

import csv
import io
import json
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from harmonise import __version__, api
from harmonise.errors import HarmoniseError, Issue, ValidationFailed

FORMAT = click.Choice(["text", "json"])


def _progress(enabled: bool) -> Callable[[str], None] | None:
    if not enabled or not sys.stderr.isatty():
        return None

    def show(msg: str) -> None:
        click.echo(f"\r{msg}\033[K", err=True, nl=False)

    return show


def render_issues(issues: list[Issue], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"ok": not any(i.severity == "error" for i in issues),
                           "issues": [i.to_dict() for i in issues]}, indent=2, default=str)
    lines = [f"{'warning' if i.severity == 'warning' else 'error'}: {i.format()}" for i in issues]
    return "\n".join(lines)


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into messages and exit codes; tracebacks only with --debug."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = ctx.find_root().params.get("debug", False)
        fmt = kwargs.get("fmt", "text")
        try:
            return fn(*args, **kwargs)
        except ValidationFailed as exc:
            if fmt == "json":
                click.echo(render_issues(exc.issues, "json"))
            else:
                text = render_issues(exc.issues, "text")
                if text:
                    click.echo(text, err=True)
                click.echo(str(exc), err=True)
            ctx.exit(1)
        except HarmoniseError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as exc:  # a bug: still no traceback without --debug
            if debug:
                traceback.print_exc()
            click.echo(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)",
                       err=True)
            ctx.exit(2)

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="harmonise")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project folder holding mappings/ and surveys/ (default: current folder).")
def main(debug: bool, project: Path | None) -> None:
    """Harmonise migrant-integration survey microdata into one DuckDB database."""


def _root() -> Path:
    return api.project_root(click.get_current_context().find_root().params.get("project"))


@main.command()
@click.argument("mappings", nargs=-1, type=click.Path(path_type=Path))
@click.option("--data", "data", multiple=True, type=click.Path(path_type=Path),
              help="Folder or file of source data to check against (repeatable).")
@click.option("--encoding", default=None, help="Text encoding of the source files (e.g. latin1).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True)
@handled
def validate(mappings: tuple[Path, ...], data: tuple[Path, ...], encoding: str | None, fmt: str) -> None:
    """Check crosswalks against the schema, declared codebooks and (with --data) real files."""
    result = api.validate(_root(), list(mappings), list(data), encoding=encoding, progress=_progress(fmt == "text"))
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        if result.issues:
            click.echo(render_issues(result.issues, "text"), err=not result.ok)
        rows = sum(o.rows for o in result.outcomes)
        extra = f", {len(result.outcomes)} file(s), {rows:,} rows" if result.outcomes else ""
        click.echo(f"{'ok' if result.ok else 'FAILED'}: {len(result.errors)} error(s), "
                   f"{len(result.issues) - len(result.errors)} warning(s){extra}")
    if not result.ok:
        sys.exit(1)


@main.command()
@click.option("--data", "data", multiple=True, type=click.Path(path_type=Path),
              help="Folder or file of source data (repeatable).")
@click.option("--demo", is_flag=True, help="Build from generated fixtures of every declared wave (cached).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("harmonised.duckdb"),
              show_default=True, help="Database file to (re)build atomically.")
@click.option("--encoding", default=None, help="Text encoding of the source files (e.g. latin1).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True)
@handled
def build(data: tuple[Path, ...], demo: bool, db: Path, encoding: str | None, fmt: str) -> None:
    """Harmonise source files into a DuckDB database (atomic: failures leave the old one intact)."""
    if demo and data:
        raise click.UsageError("give either --data or --demo, not both")
    if not data and not demo:
        raise click.UsageError("give --data DIR (your source files) or --demo (generated fixtures)")
    root = _root()
    sources = api.demo_files(api.demo_data(root)) if demo else list(data)
    result = api.build(root, sources, db, encoding=encoding, progress=_progress(fmt == "text"))
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    if sys.stderr.isatty():
        click.echo("", err=True)
    for o in result.outcomes:
        click.echo(f"{o.job.crosswalk.survey} wave {o.job.wave.wave}: {o.rows:,} rows from {o.job.path.name}")
    if result.issues:
        click.echo(render_issues(result.issues, "text"), err=True)
    click.echo(f"built {db} ({sum(o.rows for o in result.outcomes):,} rows) in {result.seconds:.1f} s")


@main.command()
@click.argument("sql")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("harmonised.duckdb"),
              show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@handled
def query(sql: str, db: Path, fmt: str) -> None:
    """Run read-only SQL on a built database."""
    import duckdb

    try:
        cols, rows = api.query(db, sql)
    except duckdb.Error as exc:
        raise click.UsageError(f"query failed: {str(exc).splitlines()[0]}") from None
    click.echo(format_rows(cols, rows, fmt))


def format_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(cols, r)) for r in rows], indent=2, default=str)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
        return buf.getvalue().rstrip("\n")
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join([line, sep, *body, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"])


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the files into (one sub-folder per survey).")
@click.option("--survey", default=None, help="Only this survey.")
@click.option("--wave", default=None, help="Only this wave.")
@click.option("--rows", type=click.IntRange(1, 5_000_000), default=None, help="Rows per file (default 600).")
@click.option("--seed", type=int, default=1, show_default=True)
@handled
def fixtures(out: Path, survey: str | None, wave: str | None, rows: int | None, seed: int) -> None:
    """Write deterministic synthetic source files from the declared codebooks."""
    from harmonise.fixtures import generate

    for path in generate(_root(), out, survey=survey, wave=wave, rows=rows, seed=seed):
        click.echo(str(path))


@main.command()
@click.argument("survey")
@click.argument("wave")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Compile against this file's metadata instead of the declared codebook.")
@handled
def sql(survey: str, wave: str, data: Path | None) -> None:
    """Print the DuckDB SQL a crosswalk wave compiles to."""
    click.echo(api.compiled_sql(_root(), survey, wave, data))


if __name__ == "__main__":  # pragma: no cover
    main()
