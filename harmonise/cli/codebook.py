"""The ``codebook`` command: HTML, Markdown and DDI codebooks (argument parsing and rendering only)."""

from __future__ import annotations

from pathlib import Path

import click

from harmonise.cli.base import context_root, handled, main
from harmonise.reports.codebook_stats import MIN_CELL


@main.command()
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Built database: add frequencies, summaries and missing-reason counts per survey-wave.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("codebooks"),
              show_default=True, help="Folder to write html/, markdown/ and ddi/ into.")
@click.option("--min-cell", type=click.IntRange(min=1), default=MIN_CELL, show_default=True,
              help="Suppress frequency cells counted on fewer unweighted respondents than this.")
@click.option("--force", is_flag=True, help="Replace files in --out that harmonise did not write (never folders).")
@handled
def codebook(db: Path | None, out: Path, min_cell: int, force: bool) -> None:
    """Generate the codebooks from the declarations (and, with --db, a built database)."""
    from harmonise.reports.codebook import write_codebook  # jinja2 and the DDI writer: only for this command

    result = write_codebook(context_root(), out, db, min_cell, force)
    counts = ", ".join(f"{n} {fmt}" for fmt, n in result.files.items())
    extra = f"; removed {result.removed} stale file(s)" if result.removed else ""
    data = f" with frequencies from {db}" if result.with_data else " from the declarations"
    click.echo(f"wrote {out}{data}: {counts} file(s), {result.bytes / 1e6:.1f} MB{extra}")
