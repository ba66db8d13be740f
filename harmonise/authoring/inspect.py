"""What a source file holds, variable by variable: the first step of writing a crosswalk.

For every variable: label, storage type, format, value labels, missing declarations and the
observed frequencies — labelled codes, codes without a label, SPSS user-missing codes, Stata
extended missing values (``.a``–``.z``) and system-missing — so an author sees every code the
crosswalk will have to account for. Data are read through the project's reader
(:mod:`harmonise.readers.files`), only for the selected variables.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from harmonise.readers.files import EXT_SUFFIX, open_source
from harmonise.reports.text import visible
from harmonise.spec.source import Code, MissingDeclaration, VarMeta, norm_code

if TYPE_CHECKING:
    from harmonise.spec.crosswalk import Crosswalk

SYSMIS = "."


@dataclass
class Frequency:
    """One observed (or labelled but unobserved) code."""

    code: Code
    count: int
    label: str | None = None
    status: str = "value"  # value | unlabelled | declared_missing | extended_missing | system_missing


@dataclass
class VariableReport:
    name: str
    label: str
    type: str
    format: str | None
    measure: str | None
    value_labels: dict[str, str]
    missing: MissingDeclaration
    frequencies: list[Frequency] = field(default_factory=list)
    distinct: int = 0
    minimum: float | None = None
    maximum: float | None = None
    shown: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rounds:
    """A file of several waves' rows (a cumulative file): the survey, the variable that tells its waves apart
    (``essround``) and the rows per value of it (None: without a value)."""

    survey: str
    variable: str
    rows: dict[str | None, int]

    def text(self) -> str:
        from harmonise.rounds import rounds_text

        return rounds_text(self.variable, self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"survey": self.survey, "variable": self.variable,
                "rows": [{"value": v, "rows": n} for v, n in self.rows.items()]}


@dataclass
class FileReport:
    path: str
    format: str
    rows: int | None
    variables: list[VariableReport]
    rounds: Rounds | None = None  # the file holds several waves' rows: its frequencies count them all together

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "rows": self.rows,
                "variables": [v.to_dict() for v in self.variables],
                "rounds": self.rounds.to_dict() if self.rounds is not None else None}

    def warning(self) -> str | None:
        """What to say of a file of several waves' rows: its frequencies count every wave's rows together."""
        if self.rounds is None:
            return None
        return (f"warning: {visible(self.path)}: holds the rows of several {self.rounds.survey} waves, by its "
                f"{self.rounds.variable}: {self.rounds.text()}; the frequencies count every wave's rows together "
                "(the value labels and missing declarations are the file's, one set for all its waves); "
                f"`harmonise scaffold FILE --survey {self.rounds.survey} --wave W` drafts from wave W's rows only")


def matches(vm: VarMeta, patterns: list[str]) -> bool:
    """True when a pattern matches the name or label (case-insensitive; glob or substring)."""
    if not patterns:
        return True
    texts = (vm.name.lower(), vm.label.lower())
    for p in patterns:
        p = p.lower()
        if any(ch in p for ch in "*?["):
            if any(fnmatch.fnmatchcase(t, p) for t in texts):
                return True
        elif any(p in t for t in texts):
            return True
    return False


def _status(vm: VarMeta, code: Code) -> str:
    if vm.declared_missing(code):
        return "declared_missing"
    return "value" if code in vm.labels else "unlabelled"


def count_codes(vm: VarMeta, frame: pd.DataFrame) -> Counter[Code]:
    """Observed codes of one variable in one normalised chunk (``.`` system-missing, ``.a`` extended)."""
    counts: Counter[Code] = Counter()
    col = frame[vm.name]
    letters = frame.get(vm.name + EXT_SUFFIX)
    if letters is not None:
        for letter, n in letters.dropna().value_counts().items():
            counts[f".{letter}"] += int(n)
        col = col[letters.isna()]
    counts[SYSMIS] += int(col.isna().sum())
    for value, n in col.dropna().value_counts().items():
        counts[norm_code(value.item() if hasattr(value, "item") else value)] += int(n)
    if not counts[SYSMIS]:
        del counts[SYSMIS]
    return counts


def valid_values(vm: VarMeta, col: pd.Series) -> pd.Series:
    """Non-missing numeric values of a normalised column (declared missing values and ranges dropped)."""
    col = col.dropna()
    drop = col.isin([c for c in vm.missing_values if not isinstance(c, str)])
    for lo, hi in vm.missing_ranges:
        drop |= col.between(lo, hi)
    return col[~drop]


def frequencies(vm: VarMeta, counts: Counter[Code], max_codes: int) -> tuple[list[Frequency], int]:
    """Missing and extended codes always; labelled codes (only the observed ones when there are more than
    ``max_codes`` labels); other values the ``max_codes`` most frequent."""
    out: list[Frequency] = []
    labelled = set(vm.labels) if len(vm.labels) <= max_codes else {c for c in vm.labels if counts.get(c)}
    keep: set[Code] = labelled | set(vm.missing_values) | {SYSMIS}
    keep |= {c for c in counts if isinstance(c, str) and c.startswith(".")}
    keep |= {c for c in counts if vm.declared_missing(c)}
    others = [c for c, _ in counts.most_common() if c not in keep][:max_codes]
    for code in sorted(keep | set(others), key=lambda c: (isinstance(c, str), str(c) if isinstance(c, str) else c)):
        n = counts.get(code, 0)
        if code == SYSMIS:
            if n:
                out.append(Frequency(code, n, None, "system_missing"))
            continue
        if isinstance(code, str) and code.startswith(".") and len(code) == 2 and vm.type == "numeric":
            out.append(Frequency(code, n, vm.extended.get(code[1]) or None, "extended_missing"))
            continue
        out.append(Frequency(code, n, vm.labels.get(code), _status(vm, code)))
    return out, len([c for c in counts if c != SYSMIS])


def inspect_file(path: Path, patterns: list[str] | None = None, *, encoding: str | None = None,
                 max_codes: int = 20, data: bool = True, crosswalks: list[Crosswalk] | None = None) -> FileReport:
    """Describe ``path``'s variables (those matching ``patterns``), with frequencies unless ``data=False``.
    ``crosswalks``: those whose round variable (``essround``) tells a file of several waves' rows; the file's
    rows per value of it are counted in the same read (:attr:`FileReport.rounds`)."""
    from harmonise.rounds import round_variable, several_rounds, tally

    src = open_source(path, encoding=encoding)
    chosen = [vm for vm in src.meta.variables.values() if matches(vm, patterns or [])]
    counts: dict[str, Counter[Code]] = {vm.name: Counter() for vm in chosen}
    bounds: dict[str, list[float]] = {}
    told = next((vm.name for cw in crosswalks or [] if (vm := round_variable(cw, src.meta)) is not None), None)
    rounds: dict[str | None, int] = {}
    if data and chosen:
        names = [vm.name for vm in chosen]
        for chunk in src.chunks(names + ([told] if told is not None and told not in names else [])):
            if told is not None:
                tally(chunk[told], rounds)
            for vm in chosen:
                counts[vm.name].update(count_codes(vm, chunk))
                if vm.type == "numeric":
                    valid = valid_values(vm, chunk[vm.name])
                    if len(valid):
                        b = bounds.setdefault(vm.name, [float("inf"), float("-inf")])
                        b[0], b[1] = min(b[0], float(valid.min())), max(b[1], float(valid.max()))
    reports = []
    for vm in chosen:
        freqs, distinct = frequencies(vm, counts[vm.name], max_codes) if data else ([], 0)
        lo, hi = bounds.get(vm.name, [None, None])
        reports.append(VariableReport(
            vm.name, vm.label, vm.type, vm.format, vm.measure, {str(k): v for k, v in vm.labels.items()},
            vm.missing_declaration(), freqs, distinct, lo, hi,
            shown=sum(f.count > 0 and f.status != "system_missing" for f in freqs)))
    found = several_rounds(src.meta, crosswalks, rounds) if crosswalks and rounds else None
    return FileReport(str(path), src.format, src.meta.rows, reports,
                      Rounds(found[0].survey, found[1], found[2]) if found is not None else None)


def _code(code: Code) -> str:
    if isinstance(code, float):
        return f"{code:g}"
    return repr(code) if isinstance(code, str) and not code.startswith(".") else str(code)


def render_text(report: FileReport) -> str:
    """Human-readable listing: one block per variable."""
    lines = [(f"{visible(report.path)}: {report.format}, {report.rows if report.rows is not None else '?'} rows, "
             f"{len(report.variables)} variable(s)")]
    marks = {"unlabelled": " [unlabelled]", "declared_missing": " [missing]", "extended_missing": " [extended missing]",
             "system_missing": " [system missing]", "value": ""}
    for v in report.variables:
        info = ", ".join(x for x in (v.type, v.format, v.measure) if x)
        miss = json.dumps(v.missing, default=str) if v.missing else "none declared"
        lines += ["", f"{v.name}  {v.label!r}  ({info})  missing: {miss}"]
        if v.minimum is not None:
            lines.append(f"    {v.distinct} distinct value(s), valid min {v.minimum:g}, max {v.maximum:g}")
        for f in v.frequencies:
            label = f" {f.label!r}" if f.label else ""
            lines.append(f"    {_code(f.code):>10}  {f.count:>9,}{label}{marks[f.status]}")
        hidden = v.distinct - v.shown
        if hidden > 0:
            lines.append(f"    … {hidden} more unlabelled value(s) (raise --max-codes to list them)")
        listed = {str(f.code) for f in v.frequencies}
        unseen = sum(k not in listed for k in v.value_labels)
        if v.frequencies and unseen:
            lines.append(f"    … {unseen} more labelled code(s), none observed (see --format json for the labels)")
        elif not v.frequencies and v.value_labels:
            lines += [f"    {k:>10}  {lab!r}" for k, lab in v.value_labels.items()]
    return "\n".join(lines)


def render_json(report: FileReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str, ensure_ascii=False)
