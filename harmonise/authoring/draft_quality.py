"""How a scaffolded draft compares with a shipped crosswalk wave on the same file: how often the shipped source is
among the draft's candidates (:func:`agreement`), and which settled rules are the shipped ones (:func:`precision`).
The tests measure ``scaffold`` on the real files with them (out of ``scaffold`` since the twenty-fifth session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harmonise.authoring.scaffold import Draft
from harmonise.spec.crosswalk import Crosswalk, Rule, Wave
from harmonise.spec.project import Project


def agreement(draft: Draft, project: Project, survey: str, wave: str, k: int = 1) -> tuple[int, int, list[str]]:
    """How often a shipped crosswalk's source is among the draft's top ``k`` candidates.

    Counts targets the shipped wave reads from source variables (not_asked, constant and
    derived targets have none); returns (hits, targets counted, targets missed).
    """
    from harmonise.spec.coverage import plan_sources
    from harmonise.spec.resolve import resolve_wave

    assert project.schema is not None
    cw = project.crosswalks[survey]
    plan = resolve_wave(cw, cw.wave(wave), project.schema, project.tables, draft.meta.variables)
    hits, total, missed = 0, 0, []
    for t in draft.targets:
        sources = plan_sources(plan.targets[t.variable.name]) if t.variable.name in plan.targets else ()
        if not sources:
            continue
        total += 1
        if any(c.name in sources for c in t.candidates[:k]):
            hits += 1
        else:
            missed.append(t.variable.name)
    return hits, total, missed


@dataclass
class Precision:
    """Settled rules of a draft compared with a shipped crosswalk wave on the same file."""

    targets: int = 0  # targets drafted
    settled: int = 0  # written without TODO
    correct: list[str] = field(default_factory=list)  # settled, same sources, kind and codes as shipped
    wrong: list[str] = field(default_factory=list)  # settled, differing from the shipped rule
    absent: list[str] = field(default_factory=list)  # targets whose shipped sources the file lacks
    absent_settled: list[str] = field(default_factory=list)  # ... of which the draft settled


def _signature(tp: Any) -> tuple[Any, ...]:
    from harmonise.spec.coverage import plan_sources

    values = tuple(sorted(((str(k), str(v)) for k, v in tp.values.items())))
    return (tp.kind, plan_sources(tp), values, tp.range, tp.expr, tp.constant, tp.transform)


def precision(draft: Draft, project: Project, survey: str, wave: str) -> Precision:
    """Compare every settled rule of ``draft`` with the shipped crosswalk's rule for ``wave`` on the draft's file.

    A settled rule is correct when it resolves to the same source variables, kind and codes (values,
    range, expression, constant) as the shipped rule. Targets whose shipped rule reads variables the
    file lacks cannot be compared; they are counted apart.
    """
    from harmonise.spec.coverage import plan_sources
    from harmonise.spec.resolve import resolve_wave

    assert project.schema is not None
    cw = project.crosswalks[survey]
    meta = draft.meta.variables
    shipped = resolve_wave(cw, cw.wave(wave), project.schema, project.tables, meta)
    rules = {t.variable.name: Rule.model_validate(t.rule) for t in draft.targets if t.todo is None}
    mine = resolve_wave(Crosswalk(survey=survey, title="draft", missing=draft.missing, targets=rules,
                                  waves=[Wave(wave="draft", year=draft.year or 2000, files=["x"])]),
                        Wave(wave="draft", year=draft.year or 2000, files=["x"]), project.schema, project.tables, meta)
    out = Precision(targets=len(draft.targets), settled=len(rules))
    for t in draft.targets:
        name = t.variable.name
        tp = shipped.targets.get(name)
        if tp is None:
            continue
        if tp.kind in ("absent", "row_id") or any(draft.meta.get(n) is None for n in plan_sources(tp)):
            out.absent.append(name)  # the file lacks every source (alternative) the shipped rule reads
            if name in rules:
                out.absent_settled.append(name)
        elif name in rules:
            (out.correct if _signature(mine.targets[name]) == _signature(tp) else out.wrong).append(name)
    return out
