"""``harmonise declare``: a wave's declared codebook refreshed from real files.

A declared codebook (``surveys/<survey>/codebook_<wave>.yaml``) is written from documentation; where a
real file differs, the real file is right. :func:`declare` reads the files' metadata and corrects the
declaration to them with :func:`harmonise.authoring.codebook_extract.refresh` (variables no file holds
keep their declaration), and says what changed: per variable whose declaration changed (storage type,
codes, value labels, missing declaration, label, width, format), compared with the declaration before.
Writing the result is the caller's (the command: standard output, the codebook itself, or another file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harmonise.authoring.codebook_extract import dump, family, refresh
from harmonise.errors import InputError, UsageError, ValidationFailed
from harmonise.spec.codebook import CodebookVariable, SourceCodebook
from harmonise.spec.project import load_codebook, load_project
from harmonise.spec.source import Code, SourceMeta, VarMeta, norm_code

SHOWN = 5  # items spelt out in a list of codes or names; the rest are counted
LINES = 20  # corrected variables given a line each in the summary; the rest are counted


@dataclass(frozen=True)
class Change:
    """A variable whose declaration the files changed: what changed in what it declares (``type numeric →
    string``, ``2 codes added: 5, 6``, the missing declaration, labels) and in its storage details (width,
    format, measure)."""

    variable: str
    what: tuple[str, ...]
    details: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.variable}: {'; '.join((*self.what, *self.details))}"


@dataclass
class Declared:
    """A refreshed declared codebook: its YAML, where it belongs, and how it differs from the one before."""

    survey: str
    wave: str
    path: Path  # the wave's declared codebook, which --write replaces
    name: str  # that path as the project names it (relative to the project folder)
    text: str  # the refreshed codebook as YAML
    before: str  # the codebook's text before
    files: list[str]  # the files read (names)
    corrected: list[Change] = field(default_factory=list)  # in a file, its declaration changed
    confirmed: list[str] = field(default_factory=list)  # in a file, declared as the files declare it
    kept: list[str] = field(default_factory=list)  # in no file: kept as declared
    added: list[str] = field(default_factory=list)  # in the files, not declared before (``every``)
    warnings: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return self.text == self.before

    def summary(self) -> list[str]:
        """What the refresh did, in a few lines: counts, then one line per corrected variable."""
        lines = [f"{self.name} from {listed(self.files, 'file')}: {len(self.corrected)} variable(s) corrected, "
                 f"{len(self.confirmed)} in the files as declared, {len(self.kept)} kept as declared (in no file)"
                 + (f", {len(self.added)} added" if self.added else "")]
        # one line per corrected variable; when they are many, those whose width, format or measure alone changed
        # are named together
        said = self.corrected if len(self.corrected) <= LINES else [c for c in self.corrected if c.what]
        lines += [f"  {c.line()}" for c in said[:LINES]]
        if len(said) > LINES:
            lines.append(f"  … and {len(said) - LINES} more so corrected (compare the output with {self.name})")
        details = [c.variable for c in self.corrected if c not in said]
        if details:
            lines.append(f"  width, format or measure only: {listed(details, 'variable')}")
        if self.kept:
            lines.append(f"  kept as declared: {listed(self.kept, 'variable')}")
        if self.added:
            lines.append(f"  added from the files: {listed(self.added, 'variable')}")
        return lines


def listed(items: Sequence[str], what: str, shown: int = SHOWN) -> str:
    """``2 files (a.sav, b.sav)`` or ``12 variables (a, b, c, d, e and 7 more)``; one item: ``a.sav``."""
    if len(items) == 1:
        return items[0]
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{len(items)} {what}s ({', '.join(items[:shown])}{more})"


def declare(root: Path, survey: str, wave: str, files: Sequence[Path], *, encoding: str | None = None,
            every: bool = False) -> Declared:
    """The declared codebook of ``survey`` ``wave`` refreshed from ``files`` (read with ``encoding``, else the
    wave's declared encoding, else the files' own). ``every``: also declare the files' variables the codebook
    lacks (by default only its own variables are declared). UsageError for an unknown survey or wave or a wave
    without a declared codebook, InputError for a file that cannot be read, ValidationFailed when the declared
    codebook does not load."""
    from harmonise.readers.files import open_source

    project = load_project(root)
    entry = project.surveys.get(survey)
    if entry is None:
        raise UsageError(f"--survey {survey}: no crosswalk maps survey '{survey}'; known: "
                         f"{', '.join(project.surveys) or 'none'}")
    try:
        w = entry.crosswalk.wave(wave)
    except KeyError:
        raise UsageError(f"--wave {wave}: {survey} has no wave '{wave}'; known: "
                         f"{', '.join(x.wave for x in entry.crosswalk.waves)}") from None
    name = entry.codebook_files.get(wave)
    if name is None:
        expected = f"surveys/{survey}/{w.codebook or f'codebook_{wave}.yaml'}"
        if (root / expected).is_file():  # the wave's crosswalk entry did not load, so the project names no codebook
            raise ValidationFailed(project.issues, f"{survey} wave {wave} does not load; fix it first")
        raise UsageError(f"{survey} wave {wave} has no declared codebook ({expected} does not exist); declare one "
                         f"first (`harmonise inspect FILE --format json` lists a file's variables)")
    path = root / name
    base, issues = load_codebook(path, root)
    if base is None:
        raise ValidationFailed(issues, f"{name} does not load; fix it first")
    metas: list[SourceMeta] = []
    seen: set[Path] = set()
    for f in files:
        if f.resolve() in seen:
            continue
        seen.add(f.resolve())
        if f.is_dir():
            raise UsageError(f"{f}: is a folder; name the data files (e.g. {f}/*.sav)")
        metas.append(open_source(f, encoding or w.encoding).meta)
    declared = {v.name: v for v in base.variables}
    warnings = []
    for meta in metas:
        if not declared.keys() & meta.variables.keys():
            warnings.append(f"{Path(meta.origin).name} holds none of the {len(declared)} variables declared in {name}: "
                            f"is it a file of {survey} wave {wave}?" + ("" if every else " (it changes nothing)"))
        elif family(meta.format) != family(base.format):
            warnings.append(f"{Path(meta.origin).name} is a {'Stata' if family(meta.format) == 'stata' else 'SPSS'} "
                            f"file and {name} declares a {base.format} file: it gives label texts only (storage and "
                            "missing declarations stay as declared)")
    own = [m for m in metas if family(m.format) == family(base.format)]
    held = {n for m in metas for n in m.variables}
    added = list(dict.fromkeys(n for m in own for n in m.variables if n not in declared)) if every else []
    try:
        doc = refresh(metas, survey=base.survey, wave=base.wave, file=base.file, fmt=base.format, base=base,
                      variables=[*declared, *added], notes=base.notes)
    except ValueError as exc:  # pydantic's ValidationError: merged metadata no declared codebook can hold
        raise InputError(f"the files' metadata do not make a valid declared codebook: {exc}") from None
    if "rows" not in doc and base.rows is not None:  # the rows of the file the codebook names, if no file read is it
        doc = {**{k: v for k, v in doc.items() if k not in ("notes", "variables")}, "rows": base.rows,
               **{k: v for k, v in doc.items() if k in ("notes", "variables")}}
    before = path.read_text(encoding="utf-8")
    result = Declared(survey, wave, path, name, dump(doc, comment(before, f"Declared source codebook: {survey} wave "
                                                                          f"{wave}")),
                      before, [Path(m.origin).name for m in metas], added=added, warnings=warnings)
    new = {v.name: v for v in SourceCodebook.model_validate(doc).variables}
    for var in base.variables:
        if var.name not in held:
            result.kept.append(var.name)
            continue
        change = changes(var, new[var.name])
        if change.what or change.details:
            result.corrected.append(change)
        else:
            result.confirmed.append(var.name)
    return result


def comment(text: str, default: str) -> str:
    """The comment lines a codebook's text opens with, for :func:`dump` (which writes the first ``# ``)."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return "\n# ".join(lines) if lines else default


def changes(old: CodebookVariable, new: CodebookVariable) -> Change:
    """What differs between two declarations of a variable, shortly: ``type numeric → string``, ``3 codes
    added: 1, 2, 3``, ``missing values 7, 8 → range 77-99``, then ``format F2.0 → F8.2``; notes and evidence
    are not compared."""
    a, b = old.to_meta(), new.to_meta()
    what = []
    if a.type != b.type:
        what.append(f"type {a.type} → {b.type}")
    gone = [shown(c) for c in a.labels if c not in b.labels]
    added = [shown(c) for c in b.labels if c not in a.labels]
    relabelled = [shown(c) for c in a.labels if c in b.labels and a.labels[c] != b.labels[c]]
    if added:
        what.append(counted(added, "code", "added"))
    if gone:
        what.append(counted(gone, "code", "removed"))
    if relabelled:
        what.append(counted(relabelled, "value label", "changed"))
    if missing(a) != missing(b):
        what.append(f"missing {missing(a)} → {missing(b)}")
    if a.label != b.label:
        what.append(f"label {a.label!r} → {b.label!r}" if len(a.label) + len(b.label) <= 80 else "label reworded")
    details = [f"{name} {x or 'none'} → {y or 'none'}"
               for name, x, y in (("width", a.width, b.width), ("format", a.format, b.format),
                                  ("measure", a.measure, b.measure)) if x != y]
    return Change(old.name, tuple(what), tuple(details))


def counted(items: Sequence[str], what: str, done: str) -> str:
    """``1 code added: 5`` or ``7 codes added: 1, 2, 3, 4, 5 and 2 more``."""
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return f"{len(items)} {what}{'s' if len(items) > 1 else ''} {done}: {', '.join(items[:SHOWN])}{more}"


def shown(code: Code) -> str:
    return repr(code) if isinstance(code, str) else str(norm_code(code))


def missing(vm: VarMeta) -> str:
    """A missing declaration in words: ``values 7, 8``, ``range 77-99``, ``extended a, b``, ``none``."""
    parts = [f"range {norm_code(lo)}-{norm_code(hi)}" for lo, hi in vm.missing_ranges]
    if vm.missing_values:
        parts.append("values " + ", ".join(shown(v) for v in vm.missing_values))
    if vm.extended:
        parts.append("extended " + ", ".join(sorted(vm.extended)))
    return " + ".join(parts) or "none"
