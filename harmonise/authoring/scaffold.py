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
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from harmonise.authoring.flowyaml import flow, scalar
from harmonise.authoring.inspect import count_codes, valid_values
from harmonise.authoring.jsonschema import MODELINE
from harmonise.authoring.known import KnownRule, known_rules
from harmonise.authoring.similarity import (
    ALIAS_BONUS,
    Candidate,
    code_match,
    label_precision,
    label_recall,
    map_conflicts,
    missing_reason,
    rank,
    score,
    substantive_labels,
    table_conflicts,
)
from harmonise.checks.crosswalk import check_target
from harmonise.errors import UsageError
from harmonise.readers.files import open_source, undecodable_names
from harmonise.reports.text import one_line, visible
from harmonise.spec.codetables import Reference
from harmonise.spec.coverage import coverage
from harmonise.spec.crosswalk import Crosswalk, MissingDefaults, Rule, Wave
from harmonise.spec.project import Project, load_project, validate_model
from harmonise.spec.schema import Variable
from harmonise.spec.source import Code, SourceMeta, VarMeta, norm_code
from harmonise.spec.yamlload import load_yaml_file

MIN_SCORE = 0.35  # below this the best candidate is no candidate: propose not_asked
CLEAR_MARGIN = 0.05
LABEL_RECALL = 0.5  # without an alias, a source's label names at least half the target label's words (and no others)  # a rule is certain only when its source leads the runner-up by this much
REFERENCE = {"country": "countries", "language": "languages"}  # code-table target → reference table
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
    known: bool = False  # the rule is one of the survey's own crosswalk
    origin: str | None = None  # where a known rule comes from (crosswalk file and waves)

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
    rounds: str | None = None  # the file holds several waves' rows: which, and whose codes the draft counted

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
        table, share = best_table(project, vm, labels, t)
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


def best_table(project: Project, vm: VarMeta, labels: dict[Code, str], target_type: str) -> tuple[str | None, float]:
    """The code table covering most of the source's labelled codes (among those whose target names agree
    best with the labels), and that share."""
    best: tuple[str | None, float] = (None, 0.0)
    rank_key: tuple[float, float] = (-1.0, 0.0)
    if not labels:
        return best
    for name in sorted(project.tables.tables):
        table = project.tables.code_map(name)
        if table is None or table.target != target_type or (table.key_type == "string") != (vm.type == "string"):
            continue
        keys = set(table.normalised_map()) | set(table.normalised_missing())
        share = sum(c in keys for c in labels) / len(labels)
        agree = 1.0 - len(table_conflicts(labels, table.normalised_map(), reference_rows(project, table.target))) / len(labels)
        if share > 0 and (agree, share) > rank_key:
            best, rank_key = (name, share), (agree, share)
    return best


def reference_rows(project: Project, target_type: str) -> dict[str, dict[str, Any]]:
    """Rows of the reference table a code table's target names (countries, languages) by code; empty otherwise."""
    ref = project.tables.tables.get(REFERENCE.get(target_type, ""))
    return {str(r[ref.key]): r for r in ref.rows} if isinstance(ref, Reference) else {}


def label_doubts(var: Variable, rule: dict[str, Any], vm: VarMeta, project: Project) -> list[str]:
    """Where the file's value labels disagree with the codes a rule gives (both labels shown)."""
    labels = substantive_labels(vm)
    values: dict[Code, Any] = {norm_code(k): v for k, v in (rule.get("map") or {}).items()}
    if "table" in rule:
        table = project.tables.code_map(rule["table"])
        if table is None:
            return []
        values = {**table.normalised_map(), **values}
        shown = [f"code {c!r} is '{lab}' in {vm.name} but {rule['table']} gives {t} '{n}'"
                 for c, lab, t, n in table_conflicts(labels, values, reference_rows(project, table.target))]
    elif "map" in rule:
        shown = [f"code {c!r} is '{lab}' in {vm.name} but the rule gives {m!r} (the label names {b!r})"
                 for c, lab, m, b in map_conflicts(var, values, labels)]
    else:
        return []
    if not shown:
        return []
    more = f" (and {len(shown) - 3} more)" if len(shown) > 3 else ""
    return ["labels disagree: " + "; ".join(shown[:3]) + more]


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
             encoding: str | None = None, aliases: bool = True, known: bool = True,
             project: Project | None = None) -> Draft:
    """Draft a crosswalk for ``wave`` of ``survey`` from source file ``path``.

    For a survey the project covers (``known``), the rules of its crosswalk are the candidates: those
    the file supports are kept, the others are TODO. Otherwise, and for targets no such rule fits,
    source variables are ranked by similarity and a rule is settled only when name or label, value
    labels and codes agree and no other target claims the same variable. ``project``: the declarations
    under ``root`` already loaded (drafting many files reads them once).
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", survey):
        raise UsageError(f"survey name {survey!r} must be lower case letters, digits and _ (e.g. ess, eumidis)")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,16}", wave):
        raise UsageError(f"wave {wave!r} must be 1-16 letters, digits, '_', '.' or '-' (e.g. 8, 2017, II)")
    project = project if project is not None else load_project(root)
    if project.schema is None:
        raise UsageError(f"{root}: mappings/schema.yaml does not load; run `harmonise validate` first")
    undecodable = undecodable_names([path])
    if undecodable is not None:
        raise undecodable
    src = open_source(path, encoding=encoding)
    meta = src.meta
    cw = project.crosswalks.get(survey) if known else None
    alias_names = load_aliases(project, exclude_survey=survey) if aliases else {}
    draft = Draft(survey, wave, year, path, meta, cw.missing if cw is not None else infer_missing(meta))
    cache: dict[str, dict[Code, str]] = {}
    wanted = [v for v in project.schema.variables if not v.automatic and not v.derived]
    ranked = {v.name: rank(v, meta, alias_names.get(v.name, frozenset()), labels=cache) for v in wanted}
    offers: dict[str, list[KnownRule]] = {}
    if cw is not None:
        only = wave if any(w.wave == wave for w in cw.waves) else None
        offers = {v.name: known_rules(cw, v.name, only) for v in wanted}
    read = {c[0].name for c in ranked.values() if c and c[0].score >= MIN_SCORE}
    read |= {vm.name for kr in (k for ks in offers.values() for k in ks) for n in rule_sources(kr.rule)
             if (vm := meta.get(n)) is not None}
    told, marks = _rounds_of(project, survey, wave, meta)
    observed, bounds, draft.rounds = _observe(src, sorted(read), told, marks, survey, wave)
    settled = Settle(draft, project, observed)
    if cw is not None:
        settled.fit_waves([w.wave for w in cw.waves], offers)
    for var in wanted:
        cands, why = ranked[var.name], None
        if offers.get(var.name):
            pick, why = settled.choose(var, offers[var.name], survey)
            if pick is not None:
                draft.targets.append(TargetDraft(var, cands, dict(pick.rule), why, known=True,
                                                 origin=f"mappings/{survey}.yaml, {pick.describe()}"))
                continue
        draft.targets.append(by_similarity(var, cands, draft, project, wanted, alias_names, observed, bounds, why))
    one_source_one_target(draft.targets, alias_names)
    return draft


def by_similarity(var: Variable, cands: list[Candidate], draft: Draft, project: Project, wanted: list[Variable],
                  aliases: dict[str, frozenset[str]], observed: dict[str, Counter[Code]],
                  bounds: dict[str, tuple[float, float]], why: str | None) -> TargetDraft:
    """The rule for ``var`` from its best-ranked candidate, settled only when names, labels and codes agree
    (``why``: what makes it a TODO anyway, e.g. that no rule of the survey's crosswalk fits)."""
    if not cands or cands[0].score < MIN_SCORE:
        reason = f"no candidate scored {MIN_SCORE} or more: map a source or give the reason"
        return TargetDraft(var, cands, {"not_asked": f"{draft.source.name} has no variable for this"},
                           f"{why}; {reason}" if why else reason)
    top = cands[0]
    vm = draft.meta.variables[top.name]
    rule, doubts = propose(var, vm, project, draft.missing, _ints(bounds.get(top.name)))
    if len(cands) > 1 and top.score - cands[1].score < CLEAR_MARGIN and not top.alias:
        doubts.insert(0, f"choose the source ({top.name} and {cands[1].name} score alike)")
    if not top.alias and (label_recall(var, vm) < LABEL_RECALL or label_precision(var, vm) < 1.0):
        doubts.append(f"check the source: the labels of {top.name} ('{_clean(vm.label)}') and the target "
                      f"('{_clean(var.label)}') differ")
    rival = best_target(vm, wanted, aliases)
    if rival is not None and rival.name != var.name and score(rival, vm).score > top.score - ALIAS_BONUS * top.alias:
        doubts.append(f"check the source: {top.name} fits {rival.name} better; one source feeds one target "
                      "unless you decide otherwise")
    doubts += label_doubts(var, rule, vm, project)
    if why:
        doubts.insert(0, why)
    if not doubts:  # looks certain: harmonise's own checks have the last word
        doubts = [f"fix: {p}" for p in verify(var, rule, draft, project, observed.get(top.name, Counter()))]
    return TargetDraft(var, cands, rule, "; ".join(doubts) if doubts else None)


def one_source_one_target(targets: list[TargetDraft], aliases: dict[str, frozenset[str]]) -> None:
    """Make TODO every settled similarity rule whose source another settled rule also reads, unless the source is
    a listed alias of that target (crosswalk rules are the survey's own decisions and exempt)."""
    users: dict[str, list[TargetDraft]] = defaultdict(list)
    for t in targets:
        if t.todo is None:
            for n in rule_sources(t.rule):
                users[n.lower()].append(t)
    for name, ts in users.items():
        if len(ts) > 1:
            claimed = [t for t in ts if t.known or name in aliases.get(t.variable.name, frozenset())]
            for t in ts:
                if not t.known and (len(claimed) != 1 or t is not claimed[0]):
                    others = ", ".join(o.variable.name for o in ts if o is not t)
                    t.todo = (f"choose: {name} is also proposed for {others}; one source feeds one target unless you "
                              "decide otherwise")


def rule_sources(rule: dict[str, Any]) -> list[str]:
    """Source variables a rule (as a dict) reads."""
    if rule.get("source") and any(k in rule for k in ("map", "range", "table")):
        return [str(rule["source"])]
    if "expr" in rule:
        from harmonise.spec.expr import ExprError, referenced_names

        try:
            return referenced_names(str(rule["expr"]))
        except ExprError:
            return []
    return []


def best_target(vm: VarMeta, wanted: list[Variable], aliases: dict[str, frozenset[str]]) -> Variable | None:
    """The target a source variable fits best by label and values (its alias target, if it is one of one)."""
    alias_of = [v for v in wanted if vm.name.lower() in aliases.get(v.name, frozenset())]
    if len(alias_of) == 1:
        return alias_of[0]
    labels = substantive_labels(vm)  # once, not once per target
    scores = [(score(v, vm, labels=labels).score, i) for i, v in enumerate(wanted)]
    return wanted[max(scores)[1]] if scores else None


def _rounds_of(project: Project, survey: str, wave: str, meta: SourceMeta) -> tuple[tuple[str, str] | None, set[str]]:
    """The file's variable that tells a crosswalk's waves apart (``essround``) with that crosswalk's survey, and its
    values that mark the rows of ``survey`` ``wave`` (the wave's ``content``; a wave the survey's crosswalk lacks:
    its name, as ESS rounds are named), none for another survey's variable."""
    from harmonise.rounds import content_wanted, round_variable

    own = project.crosswalks.get(survey)
    for cw in [*([own] if own is not None else []), *(c for s, c in project.crosswalks.items() if s != survey)]:
        vm = round_variable(cw, meta)
        if vm is None:
            continue
        if cw.survey != survey:
            return (cw.survey, vm.name), set()
        held = next((w for w in cw.waves if w.wave == wave), None)
        values = next((v for n, v in (held.content or {}).items() if n.lower() == vm.name.lower()), None) \
            if held is not None else None
        return (cw.survey, vm.name), content_wanted(values if values is not None else wave)
    return None, set()


Observed = tuple[dict[str, Counter[Code]], dict[str, tuple[float, float]]]


def _observe(src: Any, names: list[str], told: tuple[str, str] | None = None, wanted: set[str] | frozenset[str] = frozenset(),
             survey: str = "", wave: str = "") -> tuple[dict[str, Counter[Code]], dict[str, tuple[float, float]], str | None]:
    """Observed codes of ``names`` and the valid minimum and maximum of the numeric ones, and what to say of a file
    of several waves' rows (a cumulative file, by ``told``: the survey and variable that tell its waves apart): the
    codes of its rows of ``survey`` ``wave`` only (those whose value is ``wanted``), or of every row when it holds
    none (read in one pass, the rows per value counted with them)."""
    from harmonise.rounds import content_text, rounds_text, tally

    every: Observed = ({n: Counter() for n in names}, {})
    mine: Observed = ({n: Counter() for n in names}, {})
    rows: dict[str | None, int] = {}
    column = told[1] if told is not None else None
    for chunk in src.chunks(names + ([column] if column is not None and column not in names else [])):
        part: Observed = ({n: Counter() for n in names}, {})
        _count(src, names, chunk, part)
        _merge(part, every)
        if column is not None:
            tally(chunk[column], rows)
            keep = chunk[column].map(lambda v: not pd.isna(v) and content_text(v) in wanted).to_numpy(dtype=bool)
            if keep.all():  # a file of one wave, or a chunk of one wave's rows: counted once
                _merge(part, mine)
            elif keep.any():
                _count(src, names, chunk[keep].reset_index(drop=True), mine)
    if told is None or len([v for v in rows if v is not None]) < 2:
        return *every, None
    survey_of, column = told
    held = sum(n for v, n in rows.items() if v is not None and v in wanted)
    listing = f"holds the rows of several {survey_of} waves, by its {column}: {rounds_text(column, rows)}; "
    shared = "(the value labels and missing declarations are the file's, one set for all its waves)"
    if held:
        values = ", ".join(sorted(wanted & {v for v in rows if v is not None}))
        return *mine, (f"{listing}the draft for {survey} wave {wave} counts the codes of its {held:,} "
                       f"row{'s' if held != 1 else ''} of {column} = {values} only {shared}")
    if survey_of != survey:
        return *every, f"{listing}the draft counts the codes of every wave's rows together {shared}"
    return *every, (f"{listing}no row holds {survey} wave {wave}'s {column} ({', '.join(sorted(wanted))}), so the "
                    f"draft counts the codes of every wave's rows together {shared}; to draft from one wave's rows, "
                    f"give --wave a wave whose rows the file holds")


def _merge(part: Observed, into: Observed) -> None:
    """Add the codes and bounds of ``part`` to ``into``."""
    for n, counts in part[0].items():
        into[0][n].update(counts)
    for n, (lo, hi) in part[1].items():
        old = into[1].get(n, (lo, hi))
        into[1][n] = (min(old[0], lo), max(old[1], hi))


def _count(src: Any, names: list[str], chunk: pd.DataFrame, into: Observed) -> None:
    """Add the codes of ``names`` in ``chunk`` and the valid bounds of the numeric ones to ``into``."""
    observed, bounds = into
    for n in names:
        vm = src.meta.variables[n]
        observed[n].update(count_codes(vm, chunk))
        if vm.type == "numeric":
            valid = valid_values(vm, chunk[n])
            if len(valid):
                lo, hi = bounds.get(n, (float(valid.min()), float(valid.max())))
                bounds[n] = (min(lo, float(valid.min())), max(hi, float(valid.max())))


class Settle:
    """Which of a covered survey's known rules a file supports, and which to keep per target."""

    def __init__(self, draft: Draft, project: Project, observed: dict[str, Counter[Code]]) -> None:
        self.draft, self.project, self.observed = draft, project, observed
        self.problems: dict[int, list[str]] = {}
        self.evidence: dict[tuple[str, str], int] = {}  # (target, wave) → +1 supported, -1 not supported
        self.waves: list[str] = []

    def check(self, var: Variable, kr: KnownRule) -> list[str]:
        """Why the file does not support ``kr`` (empty: it does)."""
        if id(kr) in self.problems:
            return self.problems[id(kr)]
        meta = self.draft.meta
        missing = [n for n in rule_sources(kr.rule) if meta.get(n) is None]
        if missing:
            out = [f"{self.draft.source.name} lacks {', '.join(missing)}"]
        else:
            vm = meta.get(str(kr.rule.get("source", ""))) if "source" in kr.rule else None
            observed = self.observed.get(vm.name, Counter()) if vm is not None else Counter()
            out = verify(var, kr.rule, self.draft, self.project, observed)
            if vm is not None:
                out += label_doubts(var, kr.rule, vm, self.project)
        self.problems[id(kr)] = out
        return out

    def fit_waves(self, waves: list[str], offers: dict[str, list[KnownRule]]) -> None:
        """Per target and wave, whether the file supports the wave's rule (+1), does not (-1) or it is no evidence
        (0: a not_asked or constant rule fits every file)."""
        schema = self.project.schema
        assert schema is not None
        self.waves = waves
        for name, rules in offers.items():
            for kr in rules:
                if kr.kind not in ("not_asked", "constant"):
                    sign = -1 if self.check(schema.variable(name), kr) else 1
                    for w in kr.waves:
                        self.evidence[(name, w)] = sign

    def fit(self, wave: str, leave_out: str | None = None) -> tuple[int, int]:
        """How well the file fits ``wave``: (rules supported, minus rules not supported), without the evidence of
        target ``leave_out``. Supported rules count first: an extract lacks most variables of every wave."""
        signs = [v for (t, w), v in self.evidence.items() if w == wave and t != leave_out]
        return signs.count(1), -signs.count(-1)

    def best_waves(self, leave_out: str | None = None) -> set[str]:
        fits = {w: self.fit(w, leave_out) for w in self.waves}
        most = max(fits.values(), default=(0, 0))
        return {w for w, f in fits.items() if f == most}

    def choose(self, var: Variable, offers: list[KnownRule], survey: str) -> tuple[KnownRule | None, str | None]:
        """The known rule to write for ``var`` and what is left to decide (None: nothing); no rule when none fits."""
        ok = [kr for kr in offers if not self.check(var, kr)]
        candidates = [kr for kr in ok if kr.kind != "not_asked"] or ok
        if not candidates:
            tried = "; ".join(f"{kr.describe()} ({self.problems[id(kr)][0]})" for kr in offers[:3])
            return None, f"no rule of mappings/{survey}.yaml fits this file ({tried})"
        measured = [kr for kr in offers if kr.kind != "not_asked"]
        if candidates[0].kind == "not_asked" and measured:
            # the file lacks what every measuring rule reads: not_asked only if the waves it fits best say so,
            # judged without this target's own rules (their misfit is what is in question)
            best = self.best_waves(leave_out=var.name)
            agreed = [kr for kr in candidates if best <= set(kr.waves)]
            if len(agreed) == 1:
                return agreed[0], None
            tried = "; ".join(f"{kr.describe()} ({self.problems[id(kr)][0]})" for kr in measured[:3])
            return candidates[0], (f"keep not_asked only if this wave did not ask it; mappings/{survey}.yaml "
                                   f"measures it in other waves ({tried})")
        fits = {w: self.fit(w) for w in self.waves}
        most = max(max(fits.get(w, (0, 0)) for w in kr.waves) for kr in candidates)
        top = [kr for kr in candidates if max(fits.get(w, (0, 0)) for w in kr.waves) == most]
        if len(top) > 1:
            return top[0], "choose: " + " or ".join(kr.describe() for kr in top) + " (all fit this file)"
        return top[0], None


def _ints(b: tuple[float, float] | None) -> tuple[float, float] | None:
    if b is None:
        return None
    return tuple(int(x) if float(x).is_integer() else x for x in b)  # type: ignore[return-value]


def _clean(text: str) -> str:
    """Text from a file (a label, the file's name) for a comment line of the draft: one line (a line break would
    end the comment and start YAML of the file's choosing), control characters written as visible escapes."""
    return visible(one_line(text))


def target_line(t: TargetDraft) -> str:
    """The one-line rule; uncertain rules start with the TODO key."""
    body = ({"TODO": t.todo} if t.todo else {}) | t.rule
    return f"  {t.variable.name}: {flow(body)}"


def render(d: Draft) -> str:
    """The draft crosswalk as YAML text (a comment block of candidates above every rule line)."""
    rows = f"{d.meta.rows:,}" if d.meta.rows is not None else "?"
    out = [MODELINE,
           f"# Draft crosswalk for {d.survey} wave {d.wave}, scaffolded by `harmonise scaffold` from {_clean(d.source.name)}",
           (f"# ({d.meta.format}, {rows} rows, {len(d.meta.variables)} variables). "
            f"{d.todos} line(s) are marked TODO and"),
           "# fail `harmonise validate` ('unresolved TODO') until resolved: check the rule against the candidates",
           "# listed above it (`harmonise inspect FILE --match NAME` shows every code), correct it and delete the",
           "# TODO key. Rules without TODO matched clearly and pass the checks against this file: still read them.",
           *(["# Rules marked 'rule of mappings/...' are the survey's own crosswalk rules that this file supports."]
             if any(t.known for t in d.targets) else []),
           *(f"# {line}" for line in (textwrap.wrap(f"The file {_clean(d.rounds)}.", 110) if d.rounds else [])),
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
        if t.origin:
            out.append(f"  #   rule of {t.origin}")
        out.append(target_line(t))
    return "\n".join(out) + "\n"
