"""A variable the crosswalk reads that a file holds under another name: an error, not an absence.

A target whose variables a file lacks is ``not_available`` there (an extract, a subset). But when
the file holds, under a name the declared codebook does not know, a variable with the absent one's
label and value labels, the variable was renamed: harmonising would silently lose data the file
has. One error per renamed variable, naming the new name and the alternative to add.
"""

from __future__ import annotations

from harmonise.checks.labels import plain
from harmonise.errors import Issue
from harmonise.spec.resolve import WavePlan, reason_of_label
from harmonise.spec.source import SourceMeta, VarMeta

SHARED = 0.9  # of the two variables' labelled codes together, the share both label: a revised list, not another


def answer_codes(vm: VarMeta) -> set[str]:
    """The labelled codes of ``vm`` that are answers: neither declared missing nor labelled with a missing reason (a
    Stata edition labels its letters, not the SPSS edition's 77, 88, 99, so those are left out on both sides)."""
    return {str(c) for c, label in vm.labels.items() if not vm.declared_missing(c) and reason_of_label(label) is None}


def _same(declared: VarMeta, found: VarMeta) -> bool:
    """Same label (normalised) and, where the declared variable has value labels, nearly the same labelled codes: at
    least :data:`SHARED` of them in both (ESS renames a country variable, cntbrthb → cntbrthc, exactly when it
    revises its list: a few codes added or dropped among some 250)."""
    if not declared.label or plain(declared.label) != plain(found.label or ""):
        return False
    if declared.type != found.type:
        return False
    ours, theirs = answer_codes(declared), answer_codes(found)
    if not ours:
        return True
    return len(ours & theirs) >= SHARED * len(ours | theirs)


def renamed_variables(plan: WavePlan, declared: SourceMeta, meta: SourceMeta) -> list[Issue]:
    """Errors for absent variables the file holds under another name (see the module docstring)."""
    known = {n.lower() for n in declared.variables}
    read = {n.lower() for n in plan.sources()}
    spare = [vm for vm in meta.variables.values() if vm.name.lower() not in known and vm.name.lower() not in read]
    by_variable: dict[str, list[str]] = {}
    paths: dict[str, tuple[str | int, ...]] = {}
    for target, tp in plan.targets.items():
        for name in tp.absent if tp.kind in ("absent", "row_id") else ():
            by_variable.setdefault(name, []).append(target)
            paths.setdefault(name, tp.path)
    out = []
    for name, targets in by_variable.items():
        dv = declared.get(name)
        if dv is None:
            continue
        twins = [vm for vm in spare if _same(dv, vm)]
        if len(twins) != 1:
            continue
        new = twins[0].name
        path = paths[name]
        ours, theirs = answer_codes(dv), answer_codes(twins[0])
        codes = "codes" if ours == theirs else f"nearly its codes ({len(ours & theirs)} of {len(ours | theirs)})"
        out.append(Issue(f"wave {plan.wave.wave}: {name} is not in the file, but {new} has its label "
                         f"('{dv.label}') and {codes}: the variable seems renamed; {', '.join(targets)} would be "
                         "stored as not available", code="renamed-variable", variable=name,
                         path=".".join(map(str, path)), extra={"yaml_path": path}, survey=plan.survey,
                         wave=plan.wave.wave,
                         hint=f"add `alternatives: [{{source: {new}}}]` (or the expression with {new}) to the rule "
                              f"in waves[{plan.wave.wave}].overrides, or rename the variable back"))
    return out
