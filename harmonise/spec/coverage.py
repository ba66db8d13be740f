"""Coverage: what every crosswalk wave does for every target, from the declarations alone.

One cell per (target, survey, wave): the rule kind, its quality flag, the source
variables and the rule text. The ``coverage`` command, the codebooks and the
``lineage`` table all read it from here, so the matrix is computed one way.
"""

from __future__ import annotations

from dataclasses import dataclass

from harmonise.spec.project import Project
from harmonise.spec.resolve import TargetPlan, WavePlan, resolve_wave

# A target whose definition is an approximation whatever the source (schema contract).
ALWAYS_APPROXIMATE = frozenset({"labour_status"})


@dataclass(frozen=True)
class Cell:
    """One target in one survey-wave."""

    target: str
    survey: str
    wave: str
    kind: str  # map | range | table | expr | constant | not_asked | derived | automatic
    quality: str | None
    sources: tuple[str, ...]
    rule: str
    notes: str | None = None

    @property
    def measured(self) -> bool:
        """True when the wave provides this target (anything but ``not_asked``)."""
        return self.kind != "not_asked"


def quality_of(plan: TargetPlan) -> str | None:
    """The quality flag as published: the rule's own, raised to approximate where the schema says so."""
    if plan.target in ALWAYS_APPROXIMATE and plan.kind not in ("not_asked", "automatic"):
        return "approximate" if plan.quality in (None, "exact", "recoded") else plan.quality
    return plan.quality


def plan_sources(plan: TargetPlan) -> tuple[str, ...]:
    """Source variables one target plan reads."""
    if plan.kind in ("map", "range", "table") and plan.source:
        return (plan.source,)
    if plan.kind == "expr" and plan.expr:
        from harmonise.spec.expr import ExprError, referenced_names

        try:
            return tuple(referenced_names(plan.expr))
        except ExprError:
            return ()
    return ()


def wave_cells(plan: WavePlan) -> list[Cell]:
    """Cells of one resolved wave, in schema order."""
    return [Cell(name, plan.survey, plan.wave.wave, tp.kind, quality_of(tp), plan_sources(tp), tp.rule_text, tp.notes)
            for name, tp in plan.targets.items()]


def coverage(project: Project) -> list[Cell]:
    """Every cell of every crosswalk wave, resolved against the declared codebooks where present."""
    assert project.schema is not None, "coverage needs a loaded schema"
    cells: list[Cell] = []
    for survey in sorted(project.crosswalks):
        cw = project.crosswalks[survey]
        for wave in cw.waves:
            declared = project.declared_meta(survey, wave.wave)
            meta = declared.variables if declared else None
            cells.extend(wave_cells(resolve_wave(cw, wave, project.schema, project.tables, meta)))
    return cells
