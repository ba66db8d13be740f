"""Commands for crosswalk authors and CI: inspect, scaffold, adapt, declare, schema, diff, coverage.

Argument parsing and rendering only; the work is done in :mod:`harmonise.authoring`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from harmonise.cli.base import FORMAT, context_root, handled, main, outcome, replaceable, terminal_safe, write_text
from harmonise.errors import Issue, UsageError, ValidationFailed

DATA_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@main.command()
@click.argument("file", type=DATA_FILE)
@click.option("--match", "patterns", multiple=True,
              help="Only variables whose name or label contains this text or matches this glob (repeatable).")
@click.option("--max-codes", type=click.IntRange(0, 100_000), default=20, show_default=True,
              help="Unlabelled values listed per variable (most frequent first); labelled and missing codes always, "
                   "but of a variable with more labels than this (country lists) only those that occur.")
@click.option("--no-data", is_flag=True, help="Metadata only: do not read the data for frequencies.")
@click.option("--encoding", default=None, help="Text encoding of the file (e.g. latin1).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True,
              help="json: every variable with all its labels, for programs.")
@handled
def inspect(file: Path, patterns: tuple[str, ...], max_codes: int, no_data: bool, encoding: str | None,
            fmt: str) -> None:
    """Every variable of a source file: label, type, value labels, missing declarations, frequencies."""
    from harmonise.authoring import inspect as insp
    from harmonise.spec.project import load_project

    # the crosswalks tell a file of several waves' rows (a cumulative file) by their round variable; inspect
    # describes any file, outside a project too (no crosswalk then)
    try:
        root: Path | None = context_root()
    except UsageError:
        root = None
    crosswalks = list(load_project(root).crosswalks.values()) if root is not None and not no_data else []
    report = insp.inspect_file(file, list(patterns), encoding=encoding, max_codes=max_codes, data=not no_data,
                               crosswalks=crosswalks)
    if patterns and not report.variables:
        raise UsageError(f"no variable of {file.name} matches {', '.join(patterns)}")
    click.echo(insp.render_json(report) if fmt == "json" else insp.render_text(report))
    warning = report.warning()
    if warning:  # a cumulative file: its frequencies count every wave's rows
        click.echo(terminal_safe(warning), err=True)


@main.command()
@click.argument("file", type=DATA_FILE)
@click.option("--survey", required=True, help="Survey name (lower case, as in mappings/<survey>.yaml).")
@click.option("--wave", required=True, help="Wave identifier (e.g. 8, 2017, II).")
@click.option("--year", type=click.IntRange(1980, 2035), default=None,
              help="First fieldwork year (otherwise a TODO line).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the draft here (default: standard output).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--no-aliases", is_flag=True,
              help="Rank by labels only (ignore mappings/aliases.yaml and the other crosswalks' names).")
@click.option("--no-crosswalk", is_flag=True,
              help="Ignore the survey's own crosswalk (by default a covered survey's rules are the starting point).")
@click.option("--encoding", default=None, help="Text encoding of the file (e.g. latin1).")
@handled
def scaffold(file: Path, survey: str, wave: str, year: int | None, out: Path | None, force: bool,
             no_aliases: bool, no_crosswalk: bool, encoding: str | None) -> None:
    """Draft a crosswalk for one wave of FILE; uncertain rules are marked TODO and fail validation."""
    from harmonise.authoring.scaffold import scaffold as make

    if out is not None and out.exists() and not out.is_symlink() and not force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    if out is not None:
        replaceable(out, force)  # a link is never written through (with --force the link itself is replaced)
    draft = make(context_root(), file, survey, wave, year=year, encoding=encoding, aliases=not no_aliases,
                 known=not no_crosswalk)
    text = draft.text()
    if draft.rounds:  # a cumulative file: which waves' codes the draft counted
        click.echo(terminal_safe(f"warning: {file}: {draft.rounds}"), err=True)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_text(out, text)
    where = str(out) if out else "standard output"
    click.echo(f"{where}: {len(draft.targets)} target(s), {draft.todos} TODO line(s) to resolve", err=True)


@main.command()
@click.argument("file", type=DATA_FILE)
@click.option("--like", required=True, metavar="SURVEY:WAVE",
              help="The covered wave the file is an edition, extract or release of (e.g. ess:9).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the block to this file (default: standard output).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists and is not a block `adapt` wrote.")
@click.option("--encoding", default=None, help="Text encoding of the file (e.g. latin1).")
@click.option("--country", default=None, metavar="CC",
              help="Country (ISO 3166-1 alpha-2) of a single-country file without a country variable.")
@click.option("--city", default=None, metavar="NAME",
              help="City of a one-city file of a city survey without a city variable (its name or the code the "
                   "survey's files hold).")
@handled
def adapt(file: Path, like: str, out: Path | None, force: bool, encoding: str | None, country: str | None,
          city: str | None) -> None:
    """Say whether FILE harmonises with a covered wave as it is; else write the override lines that
    make it harmonise (variables found under other names), checked by validating again with them."""
    from harmonise import api
    from harmonise.cli.base import render_issues

    if out is not None:  # never a crosswalk or a file of the user's: only a block adapt wrote, unless --force
        replaceable(out, force, _adapt_block)
    result = api.adapt(context_root(), file, like, encoding=encoding, country=country, city=city)
    if result.as_is.ok:
        if result.as_is.warnings:  # counted but not said, they were only found by validating the file again
            click.echo(render_issues(result.as_is.warnings, "text"), err=True)
        click.echo(f"{terminal_safe(file.name)} harmonises as it is with {result.survey} wave {result.wave} "
                   f"({len(result.as_is.warnings)} warning(s){' above' if result.as_is.warnings else ''}): "
                   "nothing to add")
        if out is not None and out.is_file() and not out.is_symlink() and _adapt_block(out):
            click.echo(f"{terminal_safe(str(out))}: a block an earlier run wrote, left as it was; the file does not "
                       "need it (delete it, and its lines where they were pasted)", err=True)
        return
    if result.after is None or not result.after.ok:
        outcome(1)
    if out is None:
        click.echo(result.block, nl=False)
    else:
        write_text(out, result.block)
    if result.after is None:
        click.echo(render_issues(result.as_is.errors, "text"), err=True)
        click.echo(f"{terminal_safe(file.name)}: no rule to adapt; the {len(result.as_is.errors)} error(s) above remain", err=True)
        raise SystemExit(1)
    if not result.after.ok:
        click.echo(render_issues(result.after.errors, "text"), err=True)
        click.echo(f"{terminal_safe(file.name)}: with the block pasted in, {len(result.after.errors)} error(s) remain", err=True)
        raise SystemExit(1)
    click.echo(f"{out or 'standard output'}: pasted in, `validate --data {terminal_safe(str(file))}` passes", err=True)


def _adapt_block(path: Path) -> bool:
    """A file `adapt --out` wrote: its first line says which file it adapts and where to paste it."""
    with path.open("rb") as fh:
        first = fh.readline(4096).decode("utf-8", "replace")
    return first.startswith("# ") and ": paste under waves[" in first


@main.command()
@click.argument("files", nargs=-1, required=True, type=DATA_FILE, metavar="FILE...")
@click.option("--survey", required=True, help="Survey of the declared codebook (as in mappings/<survey>.yaml).")
@click.option("--wave", required=True, help="Wave of the declared codebook (e.g. 8, 2017, II).")
@click.option("--write", "write", is_flag=True, help="Rewrite the declared codebook in place.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the codebook to this file (default: standard output).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--encoding", default=None, help="Text encoding of the files (e.g. latin1).")
@click.option("--variables", "variables", type=click.Choice(["declared", "all"]), default="declared",
              show_default=True, help="all: also declare the files' variables the codebook lacks.")
@handled
def declare(files: tuple[Path, ...], survey: str, wave: str, write: bool, out: Path | None, force: bool,
            encoding: str | None, variables: str) -> None:
    """Refresh a wave's declared codebook (surveys/<survey>/codebook_<wave>.yaml) from real files: where a file
    differs from the declaration, the file is right; variables no file holds keep their declaration."""
    from harmonise.authoring.declare import declare as refreshed

    if write and out is not None:
        raise click.UsageError("give --write (replace the declared codebook) or --out FILE (write elsewhere), not both")
    if force and out is None:
        raise click.UsageError("--force goes with --out FILE (it allows overwriting that file)")
    if out is not None:
        if out.exists() and not out.is_symlink() and not force:
            raise UsageError(f"{out} exists; pass --force to overwrite it")
        replaceable(out, force)  # a link is never written through (with --force the link itself is replaced)
    result = refreshed(context_root(), survey, wave, list(files), encoding=encoding, every=variables == "all")
    for warning in result.warnings:
        click.echo(terminal_safe(f"warning: {warning}"), err=True)
    for line in result.summary():
        click.echo(terminal_safe(line), err=True)
    if write:
        if result.path.is_symlink():
            raise UsageError(f"{result.name} is a link (to {os.readlink(result.path)}); write the codebook with "
                             "--out FILE instead")
        if result.unchanged:
            click.echo(f"{result.name}: unchanged", err=True)
            return
        write_text(result.path, result.text)
        where = result.name
    elif out is not None:
        write_text(out, result.text)
        where = str(out)
    else:
        click.echo(result.text, nl=False)
        return
    click.echo(terminal_safe(f"wrote {where}; check it: `harmonise validate`, then `harmonise validate --data` "
                             "on the files"), err=True)


@main.command()
@click.option("--json-schema", "json_schema", is_flag=True, required=True,
              help="Print the JSON Schema of crosswalk files (generated from the crosswalk model).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write it to this file.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists and is not a crosswalk schema.")
@click.option("--check", is_flag=True, help="Exit 1 if schemas/crosswalk.schema.json differs from the generated one.")
@handled
def schema(json_schema: bool, out: Path | None, force: bool, check: bool) -> None:
    """The JSON Schema that editors use to complete and check crosswalk keys."""
    del json_schema  # a required flag: the one kind of schema this command writes, named for clarity
    if check and out is not None:  # --check compares the committed file: --out would be silently ignored
        raise click.UsageError("give --check (compare schemas/crosswalk.schema.json) or --out FILE (write it), not both")
    from harmonise.authoring.jsonschema import SCHEMA_PATH, crosswalk_json_schema, render
    from harmonise.spec.project import load_schema

    root = context_root()
    target_schema, _, _ = load_schema(root)
    text = render(crosswalk_json_schema(target_schema))
    if check:
        committed = root / SCHEMA_PATH
        if not committed.is_file() or committed.read_text(encoding="utf-8") != text:
            raise ValidationFailed([Issue(f"{SCHEMA_PATH} is missing or out of date", file=str(SCHEMA_PATH),
                                          code="stale-schema",
                                          hint=f"run `harmonise schema --json-schema --out {SCHEMA_PATH}`")])
        click.echo(f"{SCHEMA_PATH} is up to date")
    elif out is not None:
        replaceable(out, force, lambda p: '"title": "Crosswalk"' in p.read_text(encoding="utf-8", errors="replace"))
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text(out, text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("old")
@click.argument("new")
@click.option("--data", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Folder or file of source data (repeatable): count the respondents whose value changes.")
@click.option("--encoding", default=None, help="Text encoding of the source files (e.g. latin1).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True,
              help="json: the changes per target and survey-wave, for programs.")
@handled
def diff(old: str, new: str, data: tuple[Path, ...], encoding: str | None, fmt: str) -> None:
    """Changes between two versions of a crosswalk (paths, or REV:path git revisions)."""
    from harmonise.authoring import diff as d

    result = d.diff(context_root(), old, new, data, encoding)
    click.echo(d.render_json(result) if fmt == "json" else d.render_text(result))


@main.command()
@click.option("--survey", "surveys", multiple=True, help="Only this survey (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True,
              help="json or csv: the matrix for programs and spreadsheets.")
@handled
def coverage(surveys: tuple[str, ...], fmt: str) -> None:
    """The target × survey-wave matrix: quality of each mapped cell, derived, or not asked."""
    from harmonise.authoring import coverage_view as cv
    from harmonise.spec.project import load_project

    project = load_project(context_root())
    if project.schema is None or not project.ok:
        raise ValidationFailed(project.issues, "the project does not load")
    unknown = sorted(set(surveys) - set(project.crosswalks))
    if unknown:
        raise UsageError(f"unknown survey(s) {', '.join(unknown)}; known: {', '.join(sorted(project.crosswalks))}")
    m = cv.matrix(project, list(surveys))
    click.echo({"json": cv.render_json, "csv": cv.render_csv}.get(fmt, cv.render_text)(m))
