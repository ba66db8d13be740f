"""Codebooks in HTML, Markdown and DDI-Codebook 2.5, generated from the declarations (and a database).

``write_codebook(root, out)`` renders the :class:`~harmonise.reports.codebook_model.Codebook`
of the project at ``root`` into ``out/html/``, ``out/markdown/`` and ``out/ddi/``.
The output is deterministic (stable order, no timestamps, relative paths only), so the
codebook committed under ``codebooks/`` can be checked against the mappings byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jinja2

from harmonise.errors import UsageError
from harmonise.outdir import OutputFolder
from harmonise.reports.citation import cite
from harmonise.reports.codebook_build import SYNTHETIC_BANNER, Build, load_build
from harmonise.reports.codebook_indicators import rule_text, stored_indicators
from harmonise.reports.codebook_model import Codebook, build_codebook
from harmonise.reports.codebook_stats import MIN_CELL, Stats, WaveStats, database_stats
from harmonise.reports.ddi import harmonised_ddi, wave_ddi
from harmonise.reports.estimate import Rule
from harmonise.reports.text import md_code, md_text
from harmonise.spec.project import load_project
from harmonise.store.connect import connect, require_tables

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = ("html", "markdown", "ddi")
SUFFIXES = {"html": ".html", "markdown": ".md", "ddi": ".xml"}
FLAG_LETTERS = {"exact": "E", "recoded": "R", "approximate": "A", "proxy": "P", "derived": "D",
                "automatic": "·", "not_asked": "–", "absent": "?"}
CHART_ROWS = 15


@dataclass
class CodebookResult:
    """What ``write_codebook`` wrote."""

    out: Path
    files: dict[str, int]  # format → number of files
    bytes: int
    removed: int
    with_data: bool


SECONDARY = "*"  # a cell hidden only to protect a suppressed one


def disclosure_text(min_cell: int) -> str:
    return (f"Disclosure control: a cell counted on fewer than {min_cell} unweighted respondents is shown as "
            f"<{min_cell} without its weighted share; when only one cell of a table would be hidden, the next "
            f"smallest is hidden too, shown as {SECONDARY} (its count is not small), so the first cannot be "
            f"recovered from the total. Numeric summaries need at least {min_cell} valid values.")


def _num(x: object) -> str:
    if x is None:
        return "–"
    f = float(x)  # type: ignore[arg-type]
    return str(int(f)) if f.is_integer() else f"{f:.2f}"


def chart_bars(ws: WaveStats, labels: dict[str, str], reason_labels: dict[str, str]) -> list[dict[str, object]]:
    """Bars of the inline chart (a histogram for numeric targets): unweighted shares of all respondents,
    suppressed cells without a bar, at most CHART_ROWS rows."""
    rows = ws.histogram + ws.missing if ws.histogram else ws.rows
    if len(rows) > CHART_ROWS:
        keep = set(map(id, sorted(rows, key=lambda r: -r.n)[:CHART_ROWS]))
        rows = [r for r in rows if id(r) in keep]
    bars: list[dict[str, object]] = []
    for r in rows:
        if r.reason:
            label = f"missing: {reason_labels.get(r.reason, r.reason)}"
        elif r.value is None:
            label = "valid values"
        else:
            label = f"{r.value} {labels.get(r.value, '')}".strip()  # a code, or a histogram bin
        pct = None if r.suppressed or not ws.total else 100.0 * r.n / ws.total
        bars.append({"label": label, "pct": pct, "missing": r.reason is not None, "secondary": r.secondary})
    top = max((float(b["pct"]) for b in bars if b["pct"] is not None), default=0.0)  # type: ignore[arg-type]
    for b in bars:
        b["width"] = 200.0 * float(b["pct"]) / top if b["pct"] is not None and top else 0.0  # type: ignore[arg-type]
    return bars


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = _num
    env.filters["md"] = md_text
    env.filters["code"] = md_code
    return env


def render_codebook(cb: Codebook, stats: Stats | None = None, min_cell: int = MIN_CELL,
                    build: Build | None = None) -> dict[str, str]:
    """Every file of the codebook as {relative path: text}; ``build`` describes the database ``stats`` come from."""
    return {path: render() for path, render in sorted(_pages(cb, stats, min_cell, build).items())}


def codebook_paths(cb: Codebook) -> list[str]:
    """The relative paths :func:`render_codebook` writes for ``cb`` (with or without a database alike), known
    before anything is rendered: what stands in the way of writing them is refused first."""
    return sorted(_pages(cb, None, MIN_CELL, None))


def _pages(cb: Codebook, stats: Stats | None, min_cell: int, build: Build | None) -> dict[str, Callable[[], str]]:
    """Every file of the codebook as {relative path: what renders its text}."""
    env = _environment()
    loaded = build.waves if build is not None else {}
    cited = {w.key: cite(w.descriptor, w.wave_descriptor, f"{w.title} ({w.year})",
                         loaded[(w.survey, w.wave)].editions if (w.survey, w.wave) in loaded else None)
             for w in cb.waves}
    banner = SYNTHETIC_BANNER if build is not None and build.synthetic else ""
    rules = build.rules if build is not None and build.rules else []
    reason_labels = {r: label for r, label, _ in cb.reasons}
    labels = {t.var.name: t.value_labels for t in cb.targets}
    search = {t.var.name: " ".join([t.var.name, t.var.label, t.var.definition, cb.groups[t.var.group],
                                    *sorted({s for e in t.entries for s in e.cell.sources})]).lower()
              for t in cb.targets}
    absent = any(e.flag == "absent" for t in cb.targets for e in t.entries)  # in the legends only when shown
    letters = {f: letter for f, letter in FLAG_LETTERS.items() if absent or f != "absent"}
    common = {"cb": cb, "stats": stats, "min_cell": min_cell, "flag_letters": letters,
              "wave_titles": {w.key: w.title for w in cb.waves}, "reason_labels": reason_labels,
              "disclosure": disclosure_text(min_cell), "bars": chart_bars, "secondary": SECONDARY,
              "target_label": {t.var.name: t.var.label for t in cb.targets}, "build": build, "loaded": loaded,
              "cited": cited, "banner": banner, "rule_text": rule_text(Rule()), "stored_rules": rules,
              "params_of": {p.name: p for p in cb.params}}
    files: dict[str, Callable[[], str]] = {}

    def render(name: str, path: str, **ctx: object) -> None:
        files[path] = partial(lambda n, c: env.get_template(n).render({**common, **c}), name, ctx)

    render("index.html.j2", "html/index.html", up="", search_text=search)
    render("coverage.html.j2", "html/coverage.html", up="")
    for t in cb.targets:
        var_stats = stats.get(t.var.name, {}) if stats is not None else None
        ctx = {"t": t, "labels": labels[t.var.name], "stats": var_stats}
        render("variable.html.j2", f"html/variables/{t.var.name}.html", up="../", **ctx)
        render("variable.md.j2", f"markdown/{t.var.name}.md", **ctx)
    for w in cb.waves:
        render("survey.html.j2", f"html/surveys/{w.key}.html", up="../", w=w)
        files[f"ddi/{w.key}.xml"] = partial(wave_ddi, cb, w, cited[w.key], banner, loaded.get((w.survey, w.wave)))
    for tb in cb.tables:
        render("table.html.j2", f"html/tables/{tb.name}.html", up="../", tb=tb)
    for ind in cb.indicators:
        render("indicator.html.j2", f"html/indicators/{ind.name}.html", up="../", ind=ind)
        render("indicator.md.j2", f"markdown/indicators/{ind.name}.md", ind=ind)
    render("index.md.j2", "markdown/README.md")
    render("readme.md.j2", "README.md")
    files["ddi/harmonised.xml"] = partial(harmonised_ddi, cb, cited, banner)
    return files


def write_files(files: dict[str, str], out: Path, force: bool = False) -> int:
    """Write ``files`` under ``out`` through :class:`~harmonise.outdir.OutputFolder`: files harmonise did not
    write stop it (UsageError) unless ``force``; earlier generated files not written now are removed.
    Returns how many were removed."""
    folder = OutputFolder(out, force=force)
    with folder:
        folder.begin(files)
        for rel, text in files.items():
            folder.write_text(rel, text)
        return folder.finish(remove_stale=True)


def write_codebook(root: Path, out: Path, db: Path | None = None, min_cell: int = MIN_CELL,
                   force: bool = False) -> CodebookResult:
    """Generate the codebook of the project at ``root`` into ``out`` (with frequencies from ``db`` if given);
    ``force`` replaces files in ``out`` that harmonise did not write."""
    if min_cell < 1:
        raise UsageError(f"--min-cell must be at least 1, got {min_cell}")
    OutputFolder(out)  # a file or a dangling link as --out: refused before any work
    if db is not None:
        con = connect(db)  # fail fast (exit 2) on a missing or unreadable database, or one harmonise did not build
        try:
            require_tables(con, db, ("respondents",))
        finally:
            con.close()
    project = load_project(root)
    cb = build_codebook(project)
    OutputFolder(out, force=force).check(codebook_paths(cb))  # foreign files in the way: refused before rendering
    stats, build = None, None
    if db is not None and project.schema is not None:
        stats = database_stats(db, [t.var for t in cb.targets], min_cell)
        build = load_build(db)
        stored = stored_indicators(db, project.schema)
        if stored is not None:  # the indicators this database defines, which may differ from the declarations
            cb.indicators = stored
    files = render_codebook(cb, stats, min_cell, build)
    removed = write_files(files, out, force)
    counts = {fmt: sum(1 for p in files if p.startswith(fmt + "/")) for fmt in FORMATS}
    size = sum(len(t.encode("utf-8")) for t in files.values())
    return CodebookResult(out, counts, size, removed, stats is not None)
