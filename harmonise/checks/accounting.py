"""Every source value accounted for: checks on a wave's harmonisation report, row counts and keys.

The pipeline counts every (target, source code → value | missing reason) of a file; these checks
turn what must not happen into issues: a code nobody mapped, a target that did not account for
every row, a header that promised more rows than were read, a respondent id used twice, a
harmonised value pandera refused. Issues carry ``extra['yaml_path']`` where a rule is at fault.
"""

from __future__ import annotations

from collections.abc import Sequence

from harmonise.errors import Issue
from harmonise.spec.resolve import WavePlan
from harmonise.spec.schema import UNMAPPED

ReportRow = tuple[str, str | None, str | None, str | None, int]  # target, source code, value, reason, n
Labels = dict[str, tuple[str, dict[str, str]]]  # target → (source variables, code text → source label)


def clip(value: object, limit: int = 60) -> str:
    """A value short enough for a message: long strings keep their start and say how long they were."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def unmapped_codes(rep: Sequence[ReportRow], plan: WavePlan, labels: Labels) -> list[Issue]:
    """One error per target and source code that reached no value and no missing reason."""
    out = []
    for target, code, _, reason, n in rep:
        tp = plan.targets[target]
        if reason != UNMAPPED or tp.kind == "derived":  # derived targets inherit their inputs' gaps
            continue
        srcvars, labs = labels.get(target, ("", {}))
        label = labs.get(code or "")
        lab = f" ('{label}')" if label else " (no value label)"
        out.append(Issue(
            f"source variable {srcvars} code {clip(code)}{lab} has no mapping for target {target}: {n:,} row(s)",
            code="unmapped-code", survey=plan.survey, wave=plan.wave.wave, variable=srcvars,
            path=".".join(map(str, tp.path)), hint="add the code to the rule's map or missing",
            extra={"yaml_path": tp.path, "source_code": code, "count": n}))
    return out


def empty_sources(rep: Sequence[ReportRow], plan: WavePlan, rows: int) -> list[Issue]:
    """A warning when a mapped source variable is system-missing in every row (an empty column, not an answer)."""
    codes: dict[str, set[str | None]] = {}
    for target, code, _, _, _ in rep:
        codes.setdefault(target, set()).add(code)
    out = []
    for target, seen in codes.items():
        tp = plan.targets.get(target)
        if rows and tp is not None and tp.kind in ("map", "range", "table") and tp.source and seen == {"."}:
            out.append(Issue(
                f"source variable {tp.source} is empty (system-missing) in all {rows:,} rows: every {target} is "
                f"{tp.missing.system}", code="empty-source", severity="warning", survey=plan.survey,
                wave=plan.wave.wave, variable=tp.source, path=".".join(map(str, tp.path)),
                hint="check that the file is the complete release", extra={"yaml_path": tp.path}))
    return out


def conservation(totals: Sequence[tuple[str, int]], plan: WavePlan, rows: int) -> list[Issue]:
    """An error for each target whose report does not account for every row read."""
    return [Issue(f"conservation failed for {t}: {rows} rows in, {n} accounted for", code="conservation",
                  survey=plan.survey, wave=plan.wave.wave) for t, n in totals if n != rows]


def row_count(declared: int | None, read: int, path: str, plan: WavePlan) -> list[Issue]:
    """An error when the file's header declares another number of rows than were read."""
    if declared is None or declared == read:
        return []
    return [Issue(f"{path}: header declares {declared:,} rows but {read:,} were read; the file may be truncated",
                  code="row-count", survey=plan.survey, wave=plan.wave.wave)]


def duplicate_ids(n: int, examples: Sequence[tuple[str, int]], plan: WavePlan) -> list[Issue]:
    """An error when respondent ids repeat within the wave (``n`` ids, some ``examples`` with counts)."""
    if not n:
        return []
    shown = ", ".join(f"{clip(rid)} ({k}×)" for rid, k in examples)
    path = plan.targets["respondent_id"].path
    return [Issue(f"respondent_id is not unique: {n:,} duplicated id(s), e.g. {shown}", code="duplicate-id",
                  survey=plan.survey, wave=plan.wave.wave, path="targets.respondent_id", extra={"yaml_path": path})]


def validation_failures(groups: Sequence[tuple[str, str, list[str], list[int], int]], plan: WavePlan) -> list[Issue]:
    """One error per (column, pandera check) with failures: ``groups`` holds column, check, failing
    values, example source rows and the number of cases."""
    out = []
    for col, check, values, rows, cases in groups:
        examples = ", ".join(sorted({clip(v) for v in values})[:5])
        shown = ", ".join(str(r) for r in sorted(rows)[:3])
        out.append(Issue(f"pandera check '{check}' failed on column {col}: {cases:,} case(s), e.g. {examples}"
                         + (f" (source rows {shown})" if shown else ""),
                         code="validation", survey=plan.survey, wave=plan.wave.wave, variable=col))
    return out
