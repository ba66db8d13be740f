"""checks.accounting: per-file findings from the harmonisation report, against reference implementations."""

from __future__ import annotations

from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from harmonise.checks.accounting import NONRESPONSE, ReportRow, empty_sources
from harmonise.spec.project import load_project
from harmonise.spec.resolve import WavePlan, resolve_wave
from tests.conftest import ROOT


@cache
def _plan() -> WavePlan:
    project = load_project(ROOT)
    assert project.schema is not None
    cw = project.crosswalks["ess"]
    return resolve_wave(cw, cw.wave("8"), project.schema, project.tables)


def _reference(rep: list[ReportRow], plan: WavePlan, rows: int) -> list[tuple[object, ...]]:
    """What empty_sources should find, target by target in the order they first appear, from all of its rows:
    ``(target, "empty")`` when its every code is '.', else ``(target, "no answer", reason counts)`` when no row of
    it has a value and every row's reason is a non-response."""
    out: list[tuple[object, ...]] = []
    for target in dict.fromkeys(r[0] for r in rep):
        tp = plan.targets.get(target)
        if not rows or tp is None or tp.kind not in ("map", "range", "table") or not tp.source:
            continue
        mine = [r for r in rep if r[0] == target]
        if all(code == "." for _, code, _, _, _ in mine):
            out.append((target, "empty"))
        elif all(value is None and reason in NONRESPONSE for _, _, value, reason, _ in mine):
            counts = {str(reason): sum(r[4] for r in mine if r[3] == reason) for reason in {r[3] for r in mine}}
            out.append((target, "no answer", tuple(sorted(counts.items()))))
    return out


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
