"""Shared pieces of the command line: the root group, error handling, output formatting."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import traceback
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any

import click

from harmonise import __version__, api
from harmonise.errors import HarmoniseError, InputError, Issue, UsageError, ValidationFailed
from harmonise.procs import Terminated, terminable, terminated

FORMAT = click.Choice(["text", "json"])
ISSUE_FORMAT = click.Choice(["text", "json", "github"])  # github: workflow-command annotations


def progress_printer(enabled: bool) -> Callable[[str], None] | None:
    if not enabled or not sys.stderr.isatty():
        return None

    def show(msg: str) -> None:
        click.echo(f"\r{msg}\033[K", err=True, nl=False)

    return show


def render_issues(issues: list[Issue], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"ok": not any(i.severity == "error" for i in issues),
                           "issues": [i.to_dict() for i in issues]}, indent=2, default=str)
    if fmt == "github":
        from harmonise.authoring.annotations import github_annotations

        return github_annotations(issues)
    # one line per issue: a line break inside one (a value label read from a file) is written as \n: it
    # cannot start a line of its own (say, 'ok: 0 error(s)'); Issue.format is one line by design
    return "\n".join(terminal_safe(f"{i.severity}: {i.format()}") for i in issues)


def tally(issues: list[Issue]) -> str:
    """``1 error(s), 2 warning(s)`` (and ``, 3 note(s)`` when there are notes)."""
    n = {s: sum(i.severity == s for i in issues) for s in ("error", "warning", "note")}
    return f"{n['error']} error(s), {n['warning']} warning(s)" + (f", {n['note']} note(s)" if n["note"] else "")


def categories(issues: list[Issue]) -> str:
    """``by category: not-available 2, duplicate-id 1`` (the issues' codes, most frequent first); '' for fewer
    than two issues."""
    if len(issues) < 2:
        return ""
    by: dict[str, int] = {}
    for i in issues:
        by[i.code or "other"] = by.get(i.code or "other", 0) + 1
    return "by category: " + ", ".join(f"{c} {k}" for c, k in sorted(by.items(), key=lambda x: (-x[1], x[0])))


def file_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--survey``, ``--wave``, ``--country`` and ``--city``: what the user says of the data files."""
    fn = click.option("--city", default=None, metavar="NAME",
                      help="City of one-city files of a city survey without a city variable (its name, e.g. "
                           "Amsterdam, or the code the survey's files hold).")(fn)
    fn = click.option("--country", default=None, metavar="CC",
                      help="Country (ISO 3166-1 alpha-2) of single-country files without a country variable.")(fn)
    fn = click.option("--wave", default=None, help="Wave of every file in --data (with --survey), whatever "
                      "their names and content.")(fn)
    return click.option("--survey", default=None, help="Survey of every file in --data (a crosswalk's "
                        "`survey`).")(fn)


def replaceable(out: Path, force: bool, ours: Callable[[Path], bool] | None = None) -> None:
    """Raise a usage error unless ``out`` may be written: it does not exist, ``ours`` says harmonise wrote
    it, or ``force``. A link is never written through (with ``force`` the link itself is replaced)."""
    if out.is_symlink():
        if not force:
            raise UsageError(f"{out} is a link (to {os.readlink(out)}); pass --force to replace the link itself")
        out.unlink()
        return
    if out.exists() and not force and not (ours is not None and out.is_file() and ours(out)):
        raise UsageError(f"{out} exists and harmonise did not write it; pass --force to overwrite it")


_OUTCOME = "harmonise.outcome"
_STDOUT_STARTED = "harmonise.stdout-started"


def stdout_started() -> None:
    """Say that the command's result has started on standard output: an error after it is said on standard
    error only (in JSON, an error object after part of a list of rows would make neither a list nor an error)."""
    click.get_current_context().meta[_STDOUT_STARTED] = True


def outcome(code: int) -> None:
    """Say the exit code the command ends with, before printing what it found: output cut short by a closed
    pipe (`harmonise validate | head`) ends the command quietly with this code, not 0, so a failed check
    still fails the pipeline."""
    click.get_current_context().meta[_OUTCOME] = code


def write_text(out: Path, text: str) -> None:
    """Write ``text`` to ``out`` whole or not at all: into a temporary file beside it, renamed over it (a full
    disk or a Ctrl-C leaves the previous file, never a truncated one)."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:  # named by the file asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    finally:
        with contextlib.suppress(OSError):  # absent, or its folder is not one
            tmp.unlink()


def _interrupted(exc: BaseException) -> bool:
    """True for DuckDB's error when a SIGINT interrupted the running query (its InterruptException,
    or a RuntimeError 'Query interrupted' raised through a Python callback), and for any error raised
    while a Ctrl-C was being handled (closing a connection a thread still used, say)."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of exceptions being handled when this one was raised
        if seen is None:
            return False
        if isinstance(seen, KeyboardInterrupt) or type(seen).__name__ == "InterruptException" or \
                (isinstance(seen, RuntimeError) and str(seen).startswith("Query interrupted")):
            return True
        seen = seen.__context__
    return False


def _stopped(ctx: click.Context, exc: BaseException) -> None:
    """Exit as an interrupted command: 130 after Ctrl-C, 143 (128 + 15, as shells report it) after SIGTERM; a
    build says that the database it was building did not replace the previous one (the other commands build
    none: `validate` said so too)."""
    after = "; a database being built was not replaced" if ctx.info_name == "build" else ""
    if isinstance(exc, Terminated) or terminated():
        click.echo(f"terminated{after}", err=True)
        ctx.exit(143)
    click.echo(f"interrupted{after}", err=True)
    ctx.exit(130)


def duckdb_failure(exc: BaseException, db: object = None) -> str | None:
    """The message for a DuckDB error a user can cause (a damaged database file, a full disk, memory, a
    value out of range), or None for one that only a bug in harmonise causes (parser, binder, internal)."""
    duckdb = sys.modules.get("duckdb")  # imported only by commands that use it (see --help's import test)
    if duckdb is None or not isinstance(exc, duckdb.Error):
        return None
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    where = f"{db}: " if db else ""
    if "corrupt" in first.lower() or "checksum" in first.lower() or isinstance(exc, duckdb.SerializationException):
        return f"{where}the database file is damaged ({first}); build it again with `harmonise build`"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return f"{where}DuckDB ran out of memory ({first}); close other programs, or work on fewer rows"
    if isinstance(exc, duckdb.IOException):
        return f"{where}{first}; check the path, free space and permissions"
    if isinstance(exc, (duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException)):
        return f"{where}a value cannot be computed ({first})"
    return None


def older_database(exc: BaseException, db: object, command: str | None) -> str | None:
    """The message when a command that reads a built database (not `query`, whose SQL is the user's) finds
    a table or column missing: a database another version of harmonise built, or not one it built."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is None or not db or command == "query" or \
            not isinstance(exc, (duckdb.CatalogException, duckdb.BinderException)):
        return None
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return (f"{db}: the database lacks what `{command}` reads ({first}): another version of harmonise built it, or "
            "harmonise did not; build it again with this version (`harmonise build`)")


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into messages and exit codes; tracebacks only with --debug."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = ctx.find_root().params.get("debug", False)
        fmt = kwargs.get("fmt", "text")

        def machine(found: Issue) -> None:
            """A machine reading stdout (--format json or github) learns why too (CI annotations); not after part
            of a JSON list of rows (it would end in another document)."""
            if fmt in ("json", "github") and not ctx.meta.get(_STDOUT_STARTED):
                try:
                    click.echo(render_issues([found], fmt))
                except OSError:  # standard output itself failed (a full disk, a closed pipe): stderr says why
                    pass

        try:
            try:
                with terminable():
                    return fn(*args, **kwargs)
            except (click.exceptions.Exit, click.ClickException):
                raise
            except Exception as exc:  # after a SIGTERM, whatever failed failed because of it (DuckDB even
                if terminated():  # returns the handler's exception from a Python callback as its own error)
                    _stopped(ctx, exc)
                raise
        except ValidationFailed as exc:
            if fmt in ("json", "github"):
                click.echo(render_issues(exc.issues, fmt))
            else:
                text = render_issues(exc.issues, "text")
                if text:
                    click.echo(text, err=True)
                if categories(exc.issues):
                    click.echo(categories(exc.issues), err=True)
                click.echo(str(exc), err=True)
            ctx.exit(1)
        except HarmoniseError as exc:
            if debug:
                traceback.print_exc()
            machine(Issue(str(exc), code="input") if isinstance(exc, InputError) else
                    Issue(str(exc), code="usage") if isinstance(exc, UsageError) else Issue(str(exc), code="error"))
            click.echo(f"error: {message_safe(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except KeyboardInterrupt as exc:
            _stopped(ctx, exc)
        except BrokenPipeError:  # the reader of standard output stopped (`| head`): nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush would fail again
            ctx.exit(ctx.meta.get(_OUTCOME, 0))
        except OSError as exc:  # the system refused: disk full, permissions, a vanished file
            if debug:
                traceback.print_exc()
            where = f"{exc.filename}: " if exc.filename else ""
            text = f"{where}{exc.strerror or exc}; check the path, free space and permissions"
            machine(Issue(text, code="input"))
            click.echo(f"error: {message_safe(text)}", err=True)
            ctx.exit(2)
        except Exception as exc:  # noqa: BLE001 - a bug: still a message and exit 2, a traceback only with --debug
            if _interrupted(exc):  # SIGINT reached DuckDB mid-query (not Python): the same as Ctrl-C
                _stopped(ctx, exc)
            message = duckdb_failure(exc, kwargs.get("db")) or older_database(exc, kwargs.get("db"), ctx.info_name)
            if message is not None:
                if debug:
                    traceback.print_exc()
                machine(Issue(message, code="input"))
                click.echo(f"error: {message_safe(message)}", err=True)
                ctx.exit(2)
            if debug:
                traceback.print_exc()
            text = f"{type(exc).__name__}: {exc} (re-run with --debug for the traceback)"
            machine(Issue(f"internal error: {text}", code="error"))
            click.echo(f"internal error: {message_safe(text)}", err=True)
            ctx.exit(2)

    return wrapper


_ARGS = "harmonise.args"


def _format_asked(args: list[str]) -> str | None:
    """The value of the last ``--format`` in ``args`` (as click reads it: the last one given wins)."""
    found = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--format" and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--format="):
            found = arg.split("=", 1)[1]
    return found


class Commands(click.Group):
    """The root group: a usage error click finds (an option's value out of range, an option missing, two
    that exclude each other) is also the one issue on standard output under ``--format json`` or ``github``,
    as every other error is (:func:`handled`); standard output was empty, which no JSON reader can parse."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGS] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            fmt = _format_asked(ctx.meta.get(_ARGS, []))
            if fmt in ("json", "github"):
                click.echo(render_issues([Issue(exc.format_message(), code="usage")], fmt))
            raise


@click.group(cls=Commands)
@click.version_option(__version__, prog_name="harmonise")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project folder holding mappings/ and surveys/ (default: current folder).")
def main(debug: bool, project: Path | None) -> None:
    """Harmonise migrant-integration survey microdata into one DuckDB database."""


def context_root() -> Path:
    return api.project_root(click.get_current_context().find_root().params.get("project"))


def json_dumps(data: Any) -> str:
    """Strict JSON of rows or records, indented: NaN and infinities become null (JSON has no such
    numbers, and strict parsers reject Python's NaN/Infinity tokens), decimals numbers, dates and
    other types text."""
    return json.dumps(_finite(data), indent=2, default=str, allow_nan=False)


def _finite(data: Any) -> Any:
    if isinstance(data, (list, tuple)):
        return [_finite(x) for x in data]
    if isinstance(data, dict):  # MAP keys may be dates, decimals or NaN: JSON keys are text
        return {(k if isinstance(k, str) else "null" if k is None else str(k)): _finite(v) for k, v in data.items()}
    if isinstance(data, Decimal):  # DuckDB's DECIMAL (e.g. a literal 2.5): a JSON number, not text
        data = float(data)
    if isinstance(data, timedelta):  # an INTERVAL: ISO 8601, not Python's "-1 day, 22:30:00"
        return _duration(data)
    if isinstance(data, (bytes, bytearray, memoryview)):  # a BLOB: its bytes in hexadecimal, not "b'x'"
        return "0x" + bytes(data).hex()
    return None if isinstance(data, float) and not math.isfinite(data) else data


def _duration(span: timedelta) -> str:
    """An ISO 8601 duration: ``P3DT0S``, ``-PT5400S`` (days and seconds, as DuckDB's Python intervals hold them)."""
    sign = "-" if span < timedelta(0) else ""
    span = abs(span)
    days = f"{span.days}D" if span.days else ""
    return f"{sign}P{days}T{span.seconds + span.microseconds / 1e6:g}S"


def unique_names(cols: list[str]) -> list[str]:
    """Column names made distinct for JSON objects: a repeated name gets _1, _2 … (as DuckDB's own frames do)."""
    seen: set[str] = set()
    out = []
    for c in cols:
        name, k = c, 0
        while name in seen:
            k += 1
            name = f"{c}_{k}"
        seen.add(name)
        out.append(name)
    return out


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]}
_CONTROL.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})


_INLINE = {c: e for c, e in _CONTROL.items() if c not in (0x09, 0x0A)}


def message_safe(text: str) -> str:
    """Like :func:`terminal_safe`, keeping line breaks and tabs (messages may span lines)."""
    return text.translate(_INLINE)


def terminal_safe(text: str) -> str:
    """``text`` with control characters (escape sequences, newlines, C1 codes) written as visible escapes, so a
    label cannot move the cursor, recolour or retitle the terminal, or break a table row."""
    return text.translate(_CONTROL)


class RowWriter:
    """Rows written to standard output as they arrive: a text table (column widths from the first batch,
    control characters escaped), CSV (values byte-exact) or a JSON list of objects.

    JSON is held back until :data:`JSON_HELD` characters of it are waiting (or the rows end), so a query that
    fails within its first rows prints only the error's JSON (:func:`handled`), not the start of a list with
    the error's object after it; once part of the list is out, :attr:`started` says so and a failure leaves the
    list unterminated (invalid JSON, never a list that looks whole)."""

    JSON_HELD = 8 << 20

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.cols: list[str] = []
        self.widths: list[int] | None = None
        self.n = 0
        self.started = False  # something was written to standard output
        self._held: list[str] = []
        self._held_size = 0

    def _out(self, text: str) -> None:
        if self.fmt == "json":
            self._held.append(text)
            self._held_size += len(text)
            if self._held_size < self.JSON_HELD:
                return
            text, self._held, self._held_size = "".join(self._held), [], 0
        self.started = True
        click.echo(text, nl=False, color=True)  # color=True: never strip escape sequences from values (CSV, JSON)

    def columns(self, cols: list[str]) -> None:
        self.cols = cols
        if self.fmt == "csv":
            self._out(_csv_lines([cols]))

    def rows(self, rows: list[tuple[Any, ...]]) -> None:
        if self.fmt == "csv":
            self._out(_csv_lines(rows))
        elif self.fmt == "json":
            names = unique_names(self.cols)
            for r in rows:
                item = "\n".join("  " + ln for ln in json_dumps(dict(zip(names, r))).splitlines())
                self._out(("[\n" if self.n == 0 else ",\n") + item)
                self.n += 1
            return
        else:
            cells = _cells(rows)
            if self.widths is None:
                head = [terminal_safe(c) for c in self.cols]
                self.widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(head)]
                self._out("  ".join(c.ljust(w) for c, w in zip(head, self.widths)) + "\n"
                          + "  ".join("-" * w for w in self.widths) + "\n")
            self._out("".join("  ".join(v.ljust(w) for v, w in zip(r, self.widths)) + "\n" for r in cells))
        self.n += len(rows)

    def close(self) -> None:
        if self.fmt == "json":
            self._out("[]\n" if self.n == 0 else "\n]\n")
            if self._held:
                self.started = True
                click.echo("".join(self._held), nl=False, color=True)
                self._held, self._held_size = [], 0
        elif self.fmt == "text":
            if self.widths is None:
                self.rows([])
            self._out(f"({self.n} row{'s' if self.n != 1 else ''})\n")


def _cells(rows: list[tuple[Any, ...]]) -> list[list[str]]:
    return [[("" if v is None else terminal_safe(str(v))) for v in r] for r in rows]


def _csv_lines(rows: list[tuple[Any, ...]] | list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def format_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> str:
    if fmt == "json":
        names = unique_names(cols)
        return json_dumps([dict(zip(names, r)) for r in rows])
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
        return buf.getvalue().rstrip("\n")
    cells = _cells(rows)
    cols = [terminal_safe(c) for c in cols]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join([line, sep, *body, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"])
