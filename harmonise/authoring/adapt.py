"""``harmonise adapt``: what a covered wave's crosswalk needs to read a new edition, extract or release.

The file is harmonised as the wave (``--like SURVEY:WAVE``) would harmonise it. When it does
without errors, there is nothing to write. Otherwise every variable a rule reads that the file
lacks is looked for: by name (another case), then by label (the declared variable's label, and its
labelled codes where it has some). A variable found under another name becomes an ``alternatives``
entry of the rule — lines to paste under the wave's ``overrides`` — and a variable found nowhere
stays ``not_available`` (nothing to write). Candidates whose labels or codes only resemble the
declared variable's are written as ``TODO`` (which ``validate`` refuses until an author decides). A map
rule whose codes the file recoded (a code labelled with another code's declared label) gets its map with
those codes mapped as their labels say (a ``TODO`` when a missing code moved).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from harmonise.authoring.flowyaml import flow
from harmonise.checks.labels import moved_in_wave, outcome, plain, relabelled_codes
from harmonise.checks.renames import answer_codes
from harmonise.reports.text import visible
from harmonise.spec.codetables import TableSet
from harmonise.spec.crosswalk import Crosswalk, Rule, Wave
from harmonise.spec.resolve import WavePlan, alternatives, wave_rules, without_override
from harmonise.spec.schema import TargetSchema
from harmonise.spec.source import SourceMeta, find_variable, norm_code

LABEL_SIMILARITY = 0.85  # normalised labels at least this alike make a candidate (below: not a candidate)


@dataclass
class Found:
    """A variable a rule reads, and where the file holds it (None: nowhere)."""

    name: str
    new: str | None
    settled: bool
    why: str


@dataclass
class Adaptation:
    """What ``wave`` of ``crosswalk`` needs for the file: override lines, and what stays unavailable."""

    crosswalk: Crosswalk
    wave: Wave
    lines: list[str] = field(default_factory=list)  # ``target: {...}`` lines for the wave's overrides
    todo: list[str] = field(default_factory=list)  # targets whose lines carry a TODO
    unavailable: dict[str, list[str]] = field(default_factory=dict)  # target → variables found nowhere
    found: list[Found] = field(default_factory=list)

    def text(self, file: str, crosswalk_file: str) -> str:
        """The block to paste, with comments saying where and what is left."""
        head = [f"# {file} as {self.crosswalk.survey} wave {self.wave.wave}: paste under waves[{self.wave.wave}]"
                f".overrides in {crosswalk_file}" + (" (a line for a target the wave already overrides replaces it)"
                                                     if any(t in self.wave.overrides for t in self._targets()) else "")]
        for f in self.found:
            head.append(f"#   {f.name} → {f.new}: {f.why}" if f.new else f"#   {f.name}: {f.why}")
        if self.unavailable:
            head.append("# not available in this file (stored as not_available, nothing to write): "
                        + "; ".join(f"{t} ({', '.join(v)})" for t, v in self.unavailable.items()))
        if self.todo:
            head.append(f"# TODO: decide {', '.join(self.todo)} (validate refuses the TODO until then)")
        # comment lines hold a file's name and labels: each stays one line without control characters (a line
        # break would end the comment and start YAML of the file's choosing)
        head = [visible(line.replace("\u2028", " ").replace("\u2029", " ")) for line in head]  # YAML line breaks too
        return "\n".join(head + [f"      {line}" for line in self.lines]) + "\n"

    def _targets(self) -> list[str]:
        return [line.split(":", 1)[0] for line in self.lines]


def _label_score(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, plain(a), plain(b)).ratio()


def locate_variable(name: str, declared: SourceMeta | None, meta: SourceMeta, taken: set[str]) -> Found:
    """Where the file holds ``name``: under another case, else the variable whose label (and labelled
    codes) match the declared variable's; settled only when label and codes agree exactly."""
    vm = find_variable(meta.variables, name)
    if vm is not None:
        return Found(name, vm.name, True, "the same name in another case")
    dv = declared.get(name) if declared is not None else None
    if dv is None or not dv.label:
        return Found(name, None, False, "not in the file, and no declared label to look for it by")
    scored = sorted(((round(_label_score(dv.label, v.label or ""), 3), v.name) for v in meta.variables.values()
                     if v.name.lower() not in taken and v.type == dv.type), reverse=True)
    scored = [(s, n) for s, n in scored if s >= LABEL_SIMILARITY]
    if not scored:
        return Found(name, None, False, f"not in the file; no variable is labelled like '{dv.label}'")
    best, new = scored[0]
    nv = meta.variables[new]
    codes_agree = not dv.labels or answer_codes(dv) == answer_codes(nv)
    unique = len(scored) == 1 or scored[1][0] < best
    if best == 1.0 and codes_agree and unique:
        return Found(name, new, True, f"labelled '{nv.label}' like the declared {name}"
                     + (", with the same labelled codes" if dv.labels else ""))
    doubts = []
    if best < 1.0:
        doubts.append(f"label '{nv.label}' resembles '{dv.label}' ({best:.0%})")
    if not codes_agree:
        doubts.append(f"labelled codes differ ({', '.join(sorted(answer_codes(nv) ^ answer_codes(dv))[:6])})")
    if not unique:
        doubts.append(f"as much like it: {', '.join(n for s, n in scored[1:] if s == best)}")
    return Found(name, new, False, "; ".join(doubts))


def _renamed(rule: Rule, names: dict[str, str]) -> dict[str, Any]:
    """The override fields that make ``rule`` read the new names."""
    if rule.expr is not None:
        expr = rule.expr
        for old, new in names.items():
            expr = re.sub(rf"\b{re.escape(old)}\b", new, expr)
        return {"expr": expr}
    return {"source": names.get(rule.source or "", rule.source)}


def adapt(cw: Crosswalk, wave: Wave, schema: TargetSchema, plan: WavePlan, declared: SourceMeta | None,
          meta: SourceMeta, tables: TableSet) -> Adaptation:
    """What ``wave`` needs to read the file of ``meta`` (``plan``: the wave resolved against it;
    ``declared``: the wave's declared codebook, whose labels find renamed variables)."""
    out = Adaptation(cw, wave)
    rules = {at.target: at.rule for at in wave_rules(cw, wave, schema)}
    taken = {n.lower() for n in plan.sources()} | {n.lower() for n in (wave.content or {})}
    looked: dict[str, Found] = {}
    for target, tp in plan.targets.items():
        if tp.kind not in ("absent", "row_id") or not tp.absent:
            continue
        rule = rules.get(target)
        if rule is None:
            continue
        for name in tp.absent:
            if name not in looked:
                looked[name] = located = locate_variable(name, declared, meta, taken)
                if located.new is not None:
                    taken.add(located.new.lower())
        found = [looked[n] for n in tp.absent]
        if not all(f.new for f in found):
            out.unavailable[target] = [f.name for f in found if not f.new]
            continue
        base = alternatives(rule)[0]
        assert isinstance(base, Rule)
        alt = _renamed(base, {f.name: f.new for f in found if f.new})
        existing = dict(wave.overrides.get(target) or {})
        fields: dict[str, Any] = {**existing, "alternatives": [*existing.get("alternatives", []), alt]}
        if not all(f.settled for f in found):
            fields["TODO"] = "check " + "; ".join(f"{f.new} for {f.name}: {f.why}" for f in found if not f.settled)
            out.todo.append(target)
        out.lines.append(f"{target}: {flow(fields)}")
    out.found = list(looked.values())
    if declared is not None:
        _recoded(out, plan, schema, tables, declared, meta)
        _relabelled(out, plan, declared, meta)
    return out


def _recoded(out: Adaptation, plan: WavePlan, schema: TargetSchema, tables: TableSet, declared: SourceMeta,
             meta: SourceMeta) -> None:
    """Map and range rules whose file recoded the declared codes (a code labelled with another code's declared
    label): the rule's map with those codes mapped as their labels say, or a reversed scale's transform (a TODO
    where a missing code moved, or the codes moved otherwise). A wave override already written for the file's
    labels needs nothing."""
    for target, tp in plan.targets.items():
        dv, fv = (declared.get(tp.source), meta.get(tp.source)) if tp.kind in ("map", "range") and tp.source \
            else (None, None)
        if dv is None or fv is None or dv.type != fv.type:
            continue
        moved = [m for m in moved_in_wave(plan, target, dv, fv, schema, lambda t: without_override(
            plan.crosswalk, plan.wave, t, schema, tables, meta.variables)) if not m.followed]
        if not moved:
            continue
        said = ", ".join(f"{norm_code(m.code)} '{m.label}'" for m in moved)
        out.found.append(Found(tp.source or target, None, True, f"codes recoded in this file: {said}"))
        fields: dict[str, Any] = dict(out.wave.overrides.get(target) or {})
        values = all(m.mine[0] == "value" and m.theirs[0] == "value" for m in moved)
        sums = {float(m.code) + float(m.other) for m in moved if isinstance(m.code, (int, float))
                and isinstance(m.other, (int, float))}  # codes are numbers or text (bool is no code)
        if tp.kind == "range" and values and len(sums) == 1 and all(isinstance(m.code, (int, float)) for m in moved):
            total = sums.pop()  # a reversed scale: code c holds the answers of (total - c)
            turned = f"({total:g} - x)"
            fields["transform"] = re.sub(r"\bx\b", turned, tp.transform) if tp.transform else turned[1:-1]
        elif tp.kind == "map" and values:
            mapped: dict[object, object] = {norm_code(c): v for c, v in tp.values.items()}
            mapped.update({norm_code(m.code): m.theirs[1] for m in moved})
            # codes the rule does not know that carry a declared label (a file numbered from 0 in its labels'
            # order: vote 0 'No', 1 'Not eligible to vote', 2 'Yes'), as :func:`_relabelled` maps them
            renumbered = relabelled_codes(tp, dv, fv)
            mapped.update({norm_code(c): o[1] for c, o in renumbered.items() if o[0] == "value"})
            fields["map"] = mapped
            reasons = {norm_code(c): o[1] for c, o in renumbered.items() if o[0] == "missing"}
            if reasons:
                fields["missing"] = {**{norm_code(c): r for c, r in tp.explicit_missing.items()}, **reasons}
        else:
            fields["TODO"] = (f"{tp.source}'s codes moved ({said}): map the file's codes by their labels, giving "
                              "missing codes their reasons under missing")
            out.todo.append(target)
        out.lines.append(f"{target}: {flow(fields)}")


def _relabelled(out: Adaptation, plan: WavePlan, declared: SourceMeta, meta: SourceMeta) -> None:
    """Map rules whose file holds the declared answers under other codes (ICS's city 'ANT' stored as the number 1
    labelled 'Antwerp'; an edition's new code for a declared answer): the file's codes mapped, or given their
    missing reasons, as the declared codes of the same labels; a TODO for labelled codes no declared label names.
    Where the file stores the variable with another type, the rule's own codes (of the declared type) are left
    out of the override."""
    drafted = {line.split(":", 1)[0] for line in out.lines}
    for target, tp in plan.targets.items():
        dv, fv = (declared.get(tp.source), meta.get(tp.source)) if tp.kind == "map" and tp.source else (None, None)
        if dv is None or fv is None or tp.source is None or target in drafted:
            continue
        found = relabelled_codes(tp, dv, fv)
        if not found:
            continue
        retyped = dv.type != fv.type
        said = ", ".join(f"{norm_code(c)} '{fv.labels[c]}'" for c in list(found)[:4]) + (
            f" and {len(found) - 4} more" if len(found) > 4 else "")
        if all(f.name != tp.source for f in out.found):
            out.found.append(Found(tp.source, None, True, f"codes renumbered in this file, mapped by their labels: "
                                   f"{said}" + (f"; stored as {fv.type}, declared {dv.type}: refresh the declared "
                                                "codebook's variable from the file (`harmonise declare --survey "
                                                f"{out.crosswalk.survey} --wave {out.wave.wave} FILE --write`), "
                                                "whose codes the static check reads" if retyped else "")))
        fields: dict[str, Any] = dict(out.wave.overrides.get(target) or {})
        kept = {} if retyped else {norm_code(c): v for c, v in tp.values.items()}
        fields["map"] = {**kept, **{norm_code(c): o[1] for c, o in found.items() if o[0] == "value"}}
        reasons = {norm_code(c): o[1] for c, o in found.items() if o[0] == "missing"}
        if reasons:
            own = {} if retyped else {norm_code(c): r for c, r in tp.explicit_missing.items()}
            fields["missing"] = {**own, **reasons}
        left = [c for c in fv.labels if c not in found and outcome(tp, c) is None and not fv.declared_missing(c)]
        if left:
            fields["TODO"] = (f"{tp.source}'s codes {', '.join(f'{norm_code(c)} {fv.labels[c]!r}' for c in left[:5])}"
                              " carry no declared label: map them or give them missing reasons")
            out.todo.append(target)
        out.lines.append(f"{target}: {flow(fields)}")


def paste(text: str, wave_id: str, lines: list[str]) -> str:
    """``text`` (a crosswalk) with ``lines`` pasted under ``waves[wave_id].overrides``, replacing the
    wave's own overrides of the same targets; waves are written as ``  - wave: "ID"`` blocks."""
    rows = text.split("\n")
    start = next((i for i, r in enumerate(rows) if re.fullmatch(rf'  - wave: ["\']?{re.escape(wave_id)}["\']?\s*', r)),
                 None)
    if start is None:
        raise ValueError(f"wave {wave_id} is not written as `  - wave: \"{wave_id}\"` in the crosswalk")
    end = next((i for i in range(start + 1, len(rows)) if not rows[i].startswith("    ") or rows[i].startswith("  - ")),
               len(rows))
    targets = {line.split(":", 1)[0] for line in lines}
    block = rows[start:end]
    if "    overrides:" not in block:
        block.append("    overrides:")
    at = block.index("    overrides:") + 1
    kept, i = block[:at], at
    while i < len(block):
        key = block[i][6:].split(":", 1)[0] if block[i].startswith("      ") and not block[i].startswith("       ") else None
        j = i + 1
        while j < len(block) and block[j].startswith("        "):
            j += 1
        if key not in targets:
            kept.extend(block[i:j])
        i = j
    kept[at:at] = [f"      {line}" for line in lines]
    return "\n".join(rows[:start] + kept + rows[end:])
