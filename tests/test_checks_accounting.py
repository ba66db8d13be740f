"""checks.accounting: per-file findings from the harmonisation report, against reference implementations."""

from __future__ import annotations

from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from harmonise.checks.accounting import NONRESPONSE, ReportRow, empty_sources
from harmonise.errors import Issue
from harmonise.spec.project import load_project
from harmonise.spec.resolve import WavePlan, resolve_wave
from tests.conftest import ROOT


@cache
def _plan() -> WavePlan:
    project = load_project(ROOT)
    assert project.schema is not None
    cw = project.crosswalks["ess"]
    return resolve_wave(cw, cw.wave("8"), project.schema, project.tables)


def _reference(rep: list[ReportRow], plan: WavePlan, rows: int) -> list[Issue]:
    """empty_sources as it was written before its rows of answered targets were passed over: every row read."""
    codes: dict[str, set[str | None]] = {}
    reasons: dict[str, dict[str | None, int]] = {}
    for target, code, value, reason, n in rep:
        codes.setdefault(target, set()).add(code)
        counted = reasons.setdefault(target, {})
        counted[reason if value is None else None] = counted.get(reason if value is None else None, 0) + n
    out = []
    for target, seen in codes.items():
        tp = plan.targets.get(target)
        if not rows or tp is None or tp.kind not in ("map", "range", "table") or not tp.source:
            continue
        if seen == {"."}:
            out.append((target, "empty"))
        elif reasons[target] and set(reasons[target]) <= NONRESPONSE:
            out.append((target, "no answer", tuple(sorted(reasons[target].items(), key=lambda x: str(x[0])))))
    return out  # type: ignore[return-value]


TARGETS = ("sex", "born_in_country", "year_of_arrival", "migrant_generation", "no_such_target")
ROWS = st.tuples(st.sampled_from(TARGETS), st.sampled_from([".", "1", "2", "7777", None]),
                 st.sampled_from([None, "1", "female"]),
                 st.sampled_from([None, "refused", "dont_know", "no_answer", "not_applicable", "not_asked"]),
                 st.integers(1, 5))


@given(st.lists(ROWS, max_size=30), st.sampled_from([0, 12]))
def test_empty_sources_finds_what_reading_every_row_finds(rep: list[ReportRow], rows: int) -> None:
    """Rows of targets with an answer and a code other than '.' are passed over: the findings, their order and
    their counts are those of the reference, which reads every row."""
    plan = _plan()
    found = empty_sources(rep, plan, rows)
    want = _reference(rep, plan, rows)
    assert [(i.extra["yaml_path"], "empty" if "empty (system-missing)" in i.message else "no answer")
            for i in found] == [(plan.targets[w[0]].path, w[1]) for w in want]
    for issue, w in zip(found, want):
        if w[1] == "no answer":
            assert issue.message.split("(")[1].split(")")[0] == ", ".join(f"{r} {n:,}" for r, n in w[2])
