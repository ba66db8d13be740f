"""Draft a crosswalk for one wave of a new source file.

For every target of the schema: the candidate source variables ranked by
:mod:`harmonise.authoring.similarity`, and a rule for the best one — code maps pre-filled
where value labels clearly match the target's codes, survey-level missing defaults inferred
from labels such as *Refusal* or *Don't know*. A rule is written without a TODO only when
its source matched clearly *and* harmonise's own checks pass it against the file's metadata
and observed codes; every other rule line carries ``TODO: "<what to decide>"``, a key the
crosswalk model rejects, so ``harmonise validate`` fails (naming file, line and target) until
a person resolves it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harmonise.authoring.flowyaml import flow, scalar
from harmonise.authoring.inspect import count_codes, valid_values
from harmonise.authoring.jsonschema import MODELINE
from harmonise.authoring.similarity import Candidate, code_match, missing_reason, rank, substantive_labels
from harmonise.checks.crosswalk import check_target
from harmonise.errors import UsageError
from harmonise.readers.files import open_source
from harmonise.spec.coverage import coverage
from harmonise.spec.crosswalk import Crosswalk, MissingDefaults, Rule, Wave
from harmonise.spec.project import Project, load_project, validate_model
from harmonise.spec.schema import Variable
from harmonise.spec.source import Code, SourceMeta, VarMeta
from harmonise.spec.yamlload import load_yaml_file

MIN_SCORE = 0.35  # below this the best candidate is no candidate: propose not_asked
CLEAR_MARGIN = 0.05  # a rule is certain only when its source leads the runner-up by this much
QUESTION_NUMBER = re.compile(r"^[A-Za-z]{1,3}[0-9]")  # v225, q12, HH03: numbered names


class AliasFile(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}
    aliases: dict[str, list[str]]


@dataclass
class TargetDraft:
    """The proposal for one target: candidates, a rule, and what is left to decide (None: nothing)."""

    variable: Variable
    candidates: list[Candidate]
    rule: dict[str, Any]
    todo: str | None = None

    @property
    def top(self) -> str | None:
        return self.candidates[0].name if self.candidates else None


@dataclass
class Draft:
    survey: str
    wave: str
    year: int | None
    source: Path
    meta: SourceMeta
    missing: MissingDefaults
    targets: list[TargetDraft] = field(default_factory=list)

    @property
    def todos(self) -> int:
        return sum(t.todo is not None for t in self.targets) + (self.year is None)

    def text(self) -> str:
        return render(self)


def load_aliases(project: Project, exclude_survey: str | None = None) -> dict[str, frozenset[str]]:
    """Alias names per target: ``mappings/aliases.yaml`` plus the named (not numbered) sources other
    crosswalks use."""
    names: dict[str, set[str]] = defaultdict(set)
    path = project.root / "mappings" / "aliases.yaml"
    if path.is_file():
        obj, issues = validate_model(AliasFile, load_yaml_file(path, "mappings/aliases.yaml"))
        if obj is None:
            raise UsageError("mappings/aliases.yaml is invalid: " + "; ".join(i.format() for i in issues))
        for target, values in obj.aliases.items():
            names[target].update(v.lower() for v in values)
    for cell in coverage(project):
        # single-source rules only: an expression's other inputs (country, routing filters) are no aliases
        if cell.survey != exclude_survey and cell.kind in ("map", "range", "table"):
            # question numbers (v225, q12, HH03, PR01_01) mean something else in every survey: not aliases
            names[cell.target].update(s.lower() for s in cell.sources if not QUESTION_NUMBER.match(s))
    return {k: frozenset(v) for k, v in names.items()}


def infer_missing(meta: SourceMeta) -> MissingDefaults:
    """Survey-level missing defaults from value labels (each code gets its most frequent reason)."""
    votes: dict[Code, Counter[str]] = defaultdict(Counter)
    extended: dict[str, Counter[str]] = defaultdict(Counter)
    for vm in meta.variables.values():
        answers = [c for c, lab in vm.labels.items() if isinstance(c, (int, float)) and missing_reason(lab) is None]
        top = max(answers, default=None)
        for code, label in vm.labels.items():
            reason = missing_reason(label)
            # a missing-like label counts where the code is declared missing, or sits where missing codes sit:
            # in a string variable, below zero, or above every answer code
            if reason and (vm.declared_missing(code) or isinstance(code, str) or code < 0
                           or (top is not None and code > top)):
                votes[code][reason] += 1
        for letter, label in vm.extended.items():
            extended[letter][missing_reason(label) or "other_missing"] += 1
    codes: dict[str, list[Code]] = defaultdict(list)
    for code in sorted(votes, key=lambda c: (isinstance(c, str), len(str(c)), str(c))):
        if sum(votes[code].values()) >= 2:  # a one-off is a rule-level matter
            codes[votes[code].most_common(1)[0][0]].append(code)
    return MissingDefaults(codes=dict(codes), extended={k: v.most_common(1)[0][0] for k, v in sorted(extended.items())})


def _default_reason(defaults: MissingDefaults, code: Code) -> str | None:
    return next((r for r, codes in defaults.codes.items() if code in codes), None)


def propose(var: Variable, vm: VarMeta, project: Project, defaults: MissingDefaults,
            bounds: tuple[float, float] | None) -> tuple[dict[str, Any], list[str]]:
    """A rule for ``var`` from source ``vm``, and the reasons it is uncertain (empty: certain)."""
    doubts: list[str] = []
    labels = substantive_labels(vm)
    rule: dict[str, Any] = {"source": vm.name}
    t = var.type
    if t in ("category", "boolean"):
        mapping: dict[Code, Any] = {}
        unclear: list[Code] = []
        for code, label in labels.items():
            value, cover, jac = code_match(label, var)
            mapping[code] = value if value is not None else "TODO"
            if value is None or cover < 1.0 or jac < 0.5:
                unclear.append(code)
        if unclear:
            doubts.append(f"give the target codes of source code(s) {', '.join(map(repr, unclear))}")
        if not labels:
            doubts.append(f"map the codes ({vm.name} has no value labels to match)")
        rule["map"] = mapping
        one_to_one = len({v for v in mapping.values()}) == len(mapping)
        rule["quality"] = "exact" if one_to_one else "recoded"
    elif t in ("integer", "number"):
        if var.range and var.range[0] in labels and var.range[1] in labels:
            rule["range"] = list(_ints(var.range) or ())
        else:
            rule["range"] = list(_ints(bounds or var.range) or (0, 0))
            doubts.append("check the valid range (pre-filled with the observed minimum and maximum)")
        rule["quality"] = "exact"
    elif t in ("country", "language"):
        table, share = best_table(project, vm, labels)
        if table:
            rule["table"] = table
            if share < 1.0:
                doubts.append(f"check table {table}: it covers {share:.0%} of the labelled codes")
        else:
            rule["map"] = {code: "TODO" for code in list(labels)[:3]}
            doubts.append("no code table fits: add one under mappings/tables/ or map the codes")
        rule["quality"] = "exact"
    else:
        rule = {"expr": vm.name if vm.type == "string" else f"str({vm.name})", "quality": "exact"}
        doubts.append("check the expression")
    conflicts = {code: reason for code, label in vm.labels.items()
                 if (reason := missing_reason(label)) and _default_reason(defaults, code) != reason}
    if conflicts and "expr" not in rule:
        rule["missing"] = conflicts
    return rule, doubts


def best_table(project: Project, vm: VarMeta, labels: dict[Code, str]) -> tuple[str | None, float]:
    """The code table covering most of the source's labelled codes, and that share."""
    best: tuple[str | None, float] = (None, 0.0)
    if not labels:
        return best
    for name in sorted(project.tables.tables):
        table = project.tables.code_map(name)
        if table is None or (table.key_type == "string") != (vm.type == "string"):
            continue
        keys = set(table.normalised_map()) | set(table.normalised_missing())
        share = sum(c in keys for c in labels) / len(labels)
        if share > best[1]:
            best = (name, share)
    return best


def verify(var: Variable, rule: dict[str, Any], draft: Draft, project: Project,
           observed: Counter[Code]) -> list[str]:
    """harmonise's own static checks of one rule against the file, plus every observed code accounted for."""
    assert project.schema is not None
    try:
        parsed = Rule.model_validate(rule)
    except ValidationError as exc:
        return [e["msg"] for e in exc.errors()]
    wave = Wave(wave=draft.wave, year=draft.year or 2000, files=[draft.source.name])
    cw = Crosswalk(survey=draft.survey, title="draft", missing=draft.missing, waves=[wave], targets={var.name: parsed})
    from harmonise.spec.resolve import resolve_wave

    plan = resolve_wave(cw, wave, project.schema, project.tables, draft.meta.variables)
    tp = plan.targets[var.name]
    problems = [i.message for i in check_target(var, tp, plan, project.schema, project.tables, draft.meta)]
    if tp.kind in ("map", "table", "range"):
        for code in observed:
            if code == "." or (isinstance(code, str) and code.startswith(".") and code[1:] in tp.missing.extended):
                continue
            in_range = tp.range is not None and isinstance(code, (int, float)) and tp.range[0] <= code <= tp.range[1]
            declared = isinstance(code, (int, float)) and any(lo <= code <= hi for lo, hi in tp.missing.ranges)
            if not (code in tp.values or code in tp.missing.reasons or in_range or declared):
                problems.append(f"observed code {code!r} has no target code or missing reason")
    return problems


def scaffold(root: Path, path: Path, survey: str, wave: str, *, year: int | None = None,
             encoding: str | None = None, aliases: bool = True) -> Draft:
    """Draft a crosswalk for ``wave`` of ``survey`` from source file ``path``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", survey):
        raise UsageError(f"survey name {survey!r} must be lower case letters, digits and _ (e.g. ess, eumidis)")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,16}", wave):
        raise UsageError(f"wave {wave!r} must be 1-16 letters, digits, '_', '.' or '-' (e.g. 8, 2017, II)")
    project = load_project(root)
    if project.schema is None:
        raise UsageError(f"{root}: mappings/schema.yaml does not load; run `harmonise validate` first")
    src = open_source(path, encoding=encoding)
    meta = src.meta
    alias_names = load_aliases(project, exclude_survey=survey) if aliases else {}
    draft = Draft(survey, wave, year, path, meta, infer_missing(meta))
    cache: dict[str, dict[Code, str]] = {}
    wanted = [v for v in project.schema.variables if not v.automatic and not v.derived]
    ranked = {v.name: rank(v, meta, alias_names.get(v.name, frozenset()), labels=cache) for v in wanted}
    tops = sorted({c[0].name for c in ranked.values() if c and c[0].score >= MIN_SCORE})
    observed: dict[str, Counter[Code]] = {n: Counter() for n in tops}
    bounds: dict[str, tuple[float, float]] = {}
    for chunk in src.chunks(tops):
        for n in tops:
            vm = meta.variables[n]
            observed[n].update(count_codes(vm, chunk))
            if vm.type == "numeric":
                valid = valid_values(vm, chunk[n])
                if len(valid):
                    lo, hi = bounds.get(n, (float(valid.min()), float(valid.max())))
                    bounds[n] = (min(lo, float(valid.min())), max(hi, float(valid.max())))
    for var in wanted:
        cands = ranked[var.name]
        if not cands or cands[0].score < MIN_SCORE:
            draft.targets.append(TargetDraft(var, cands, {"not_asked": f"{path.name} has no variable for this"},
                                             f"no candidate scored {MIN_SCORE} or more: map a source or give the reason"))
            continue
        top = cands[0]
        rule, doubts = propose(var, meta.variables[top.name], project, draft.missing, _ints(bounds.get(top.name)))
        if len(cands) > 1 and top.score - cands[1].score < CLEAR_MARGIN and not top.alias:
            doubts.insert(0, f"choose the source ({top.name} and {cands[1].name} score alike)")
        if not doubts:  # looks certain: harmonise's own checks have the last word
            doubts = [f"fix: {p}" for p in verify(var, rule, draft, project, observed[top.name])]
        todo = "; ".join(doubts) if doubts else None
        draft.targets.append(TargetDraft(var, cands, rule, todo))
    return draft


def _ints(b: tuple[float, float] | None) -> tuple[float, float] | None:
    if b is None:
        return None
    return tuple(int(x) if float(x).is_integer() else x for x in b)  # type: ignore[return-value]


def _clean(text: str) -> str:
    return " ".join(text.split())


def target_line(t: TargetDraft) -> str:
    """The one-line rule; uncertain rules start with the TODO key."""
    body = ({"TODO": t.todo} if t.todo else {}) | t.rule
    return f"  {t.variable.name}: {flow(body)}"


def render(d: Draft) -> str:
    """The draft crosswalk as YAML text (a comment block of candidates above every rule line)."""
    rows = f"{d.meta.rows:,}" if d.meta.rows is not None else "?"
    out = [MODELINE,
           f"# Draft crosswalk for {d.survey} wave {d.wave}, scaffolded by `harmonise scaffold` from {d.source.name}",
           (f"# ({d.meta.format}, {rows} rows, {len(d.meta.variables)} variables). "
            f"{d.todos} line(s) are marked TODO and"),
           "# fail `harmonise validate` ('unresolved TODO') until resolved: check the rule against the candidates",
           "# listed above it (`harmonise inspect FILE --match NAME` shows every code), correct it and delete the",
           "# TODO key. Rules without TODO matched clearly and pass the checks against this file: still read them.",
           f"survey: {scalar(d.survey)}",
           f"title: {scalar(d.source.stem)}",
           "missing:", f"  system: {d.missing.system}", "  codes:" + ("" if d.missing.codes else " {}")]
    out += [f"    {reason}: {flow(codes)}" for reason, codes in d.missing.codes.items()]
    if d.missing.extended:
        out.append(f"  extended: {flow(d.missing.extended)}")
    out += ["waves:", f"  - wave: {scalar(d.wave)}",
            f"    year: {d.year}" if d.year is not None else '    year: TODO  # first fieldwork year',
            f"    files: {flow([d.source.name])}", "", "targets:"]
    for t in d.targets:
        v = t.variable
        codes = f": {', '.join(v.codes)}" if v.codes else ""
        out.append(f"  # {v.name} — {_clean(v.label)} ({v.type}{codes})")
        for c in t.candidates[:3]:
            vm = d.meta.variables[c.name]
            values = ", ".join(f"{k} {_clean(lab)}" for k, lab in list(vm.labels.items())[:6])
            more = ", …" if len(vm.labels) > 6 or len(values) > 100 else ""
            values = values[:100]
            alias = ", alias" if c.alias else ""
            shown = f" [{values}{more}]" if values else ""
            out.append(f"  #   {c.name} ({c.score:.2f}{alias}) {_clean(vm.label)!r}{shown}")
        out.append(target_line(t))
    return "\n".join(out) + "\n"


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
