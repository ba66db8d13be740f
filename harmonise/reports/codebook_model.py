"""What a codebook says, gathered from the declarations (what a database adds is in codebook_build).

One :class:`Codebook` holds a page per target variable, per source survey-wave,
per code table and per indicator, the schema's parameters, plus the coverage matrix. The HTML, Markdown and DDI
writers only render it, so all three say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from harmonise.checks import declaration_issues, rule_issues
from harmonise.errors import Issue, UsageError, ValidationFailed
from harmonise.reports.codebook_indicators import IndicatorPage, declared_indicators
from harmonise.spec.codetables import CodeMap
from harmonise.spec.coverage import Cell, plan_sources, wave_cells
from harmonise.spec.descriptor import SurveyDescriptor, load_descriptor
from harmonise.spec.descriptor import Wave as WaveDescriptor
from harmonise.spec.expr import ExprError, referenced_names
from harmonise.spec.project import Project
from harmonise.spec.resolve import TargetPlan, WavePlan, expr_source_missing, resolve_wave
from harmonise.spec.schema import Variable
from harmonise.spec.source import Code, VarMeta
from harmonise.spec.yamlload import locate

# Rule kinds a coverage cell shows instead of a quality flag.
# a rule whose variables the declared codebook lacks (a file that has them still builds) is 'absent'
KIND_FLAG = {"not_asked": "not_asked", "automatic": "automatic", "derived": "derived", "absent": "absent"}


@dataclass(frozen=True)
class CodeRow:
    """One source code and where it goes: a target value or a missing reason."""

    code: str
    label: str
    target: str | None = None
    target_label: str = ""
    reason: str | None = None
    variable: str = ""


@dataclass
class SourceVar:
    """A source variable as the declared codebook describes it."""

    name: str
    label: str
    type: str
    labels: list[tuple[str, str]] = field(default_factory=list)
    missing: str = ""
    declared: bool = True
    missing_codes: set[str] = field(default_factory=set)


@dataclass
class Entry:
    """One target in one survey-wave: the rule and its code tables."""

    cell: Cell
    plan: TargetPlan
    sources: list[SourceVar]
    rows: list[CodeRow]
    missing_rows: list[CodeRow]
    system: str | None = None
    extended: list[tuple[str, str]] = field(default_factory=list)
    table_codes: int = 0

    @property
    def key(self) -> str:
        return f"{self.cell.survey}-{self.cell.wave}"

    @property
    def flag(self) -> str:
        if self.cell.kind in KIND_FLAG:  # a derived cell shows as derived, whatever its nominal quality
            return KIND_FLAG[self.cell.kind]
        return self.cell.quality or "other"


@dataclass
class TargetPage:
    var: Variable
    codes: list[tuple[str, str]]  # the codes the page lists (a category's, Yes/No)
    entries: list[Entry]
    # every value's label, for the frequency tables: also a country's, language's or city's name from its table
    value_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class WavePage:
    """One source survey-wave: its descriptor and the targets it feeds."""

    survey: str
    wave: str
    year: int
    crosswalk_file: str
    codebook_file: str | None
    notes: str | None
    descriptor: SurveyDescriptor | None
    wave_descriptor: WaveDescriptor | None
    entries: list[Entry]
    sources: list[SourceVar]

    @property
    def key(self) -> str:
        return f"{self.survey}-{self.wave}"

    @property
    def title(self) -> str:
        return f"{self.descriptor.acronym if self.descriptor else self.survey.upper()} {self.wave}"


@dataclass
class TablePage:
    name: str
    description: str
    source: str
    rows: list[CodeRow]


@dataclass(frozen=True)
class Param:
    """A schema parameter (``params:`` in schema.yaml) and the targets whose derivation reads it."""

    name: str
    value: float
    used_by: list[str]

    @property
    def shown(self) -> str:
        return code_text(self.value)


@dataclass(frozen=True)
class Statement:
    """A consistency statement of the schema (``consistency:`` in schema.yaml) and the targets it reads."""

    name: str
    expr: str
    says: str
    reads: list[str]


@dataclass
class Codebook:
    """Everything the writers render."""

    title: str
    version: int
    description: str
    reasons: list[tuple[str, str, str]]
    groups: dict[str, str]
    targets: list[TargetPage]
    waves: list[WavePage]
    tables: list[TablePage]
    params: list[Param] = field(default_factory=list)
    indicators: list[IndicatorPage] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)

    def target(self, name: str) -> TargetPage:
        return next(t for t in self.targets if t.var.name == name)

    @property
    def target_names(self) -> list[str]:
        return [t.var.name for t in self.targets]


def code_text(code: object) -> str:
    """A code as shown on a page: integral floats without '.0', booleans as true/false."""
    if isinstance(code, bool):
        return "true" if code else "false"
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code)


def _code_key(code: Code) -> tuple[int, float, str]:
    if isinstance(code, (int, float)) and not isinstance(code, bool):
        return (0, float(code), "")
    return (1, 0.0, str(code))


def target_labels(var: Variable, project: Project) -> dict[str, str]:
    """Labels of a target's values: schema codes, Yes/No, or the country/language/city reference tables."""
    if var.codes:
        return dict(var.codes)
    if var.type == "boolean":
        return {"true": "Yes", "false": "No"}
    ref = {"country": project.tables.tables.get("countries"), "language": project.tables.tables.get("languages"),
           "city": project.tables.cities}.get(var.type)
    rows = getattr(ref, "rows", None) or []
    return {str(r["code"]): str(r.get("name", "")) for r in rows if "code" in r}


def _source_var(name: str, meta: dict[str, VarMeta] | None) -> SourceVar:
    vm = meta.get(name) if meta else None
    if vm is None:
        return SourceVar(name, "", "", declared=False)
    decl = vm.missing_declaration()
    parts = []
    if decl.get("values"):
        parts.append("values " + ", ".join(code_text(c) for c in decl["values"]))
    for lo, hi in decl.get("ranges", []):
        parts.append(f"range {code_text(lo)}–{code_text(hi)}")
    if decl.get("extended"):
        parts.append("extended " + ", ".join(f".{k}" for k in decl["extended"]))
    missing_codes = {code_text(c) for c in vm.labels if vm.declared_missing(c)}
    return SourceVar(vm.name, vm.label, vm.type,
                     [(code_text(k), v) for k, v in sorted(vm.labels.items(), key=lambda kv: _code_key(kv[0]))],
                     "; ".join(parts), True, missing_codes)


def _entry(cell: Cell, plan: TargetPlan, wplan: WavePlan, meta: dict[str, VarMeta] | None, labels: dict[str, str],
           project: Project) -> Entry:
    sources = [_source_var(s, meta) for s in plan_sources(plan)]
    src_labels = dict(sources[0].labels) if len(sources) == 1 else {}
    values = dict(plan.values)
    table_codes = 0
    if plan.kind == "table":
        table = project.tables.code_map(plan.table or "")
        base = table.normalised_map() if table else {}
        table_codes = len(base)
        values = {k: v for k, v in values.items() if k not in base or base[k] != v}
    rows = [CodeRow(code_text(c), src_labels.get(code_text(c), ""), code_text(v), labels.get(code_text(v), ""))
            for c, v in sorted(values.items(), key=lambda kv: _code_key(kv[0]))]
    if plan.kind not in ("map", "range", "table", "expr"):
        return Entry(cell, plan, sources, rows, [], table_codes=table_codes)
    missing = plan.missing
    per_var = [(src, missing) for src in sources[:1]]
    if plan.kind == "expr":
        # an expression classifies each referenced variable's missing codes on its own (no valid domain)
        per_var = [(src, expr_source_missing(wplan.crosswalk.missing, meta.get(src.name) if meta else None,
                                             plan.explicit_missing)) for src in sources]
    miss_rows = []
    for src, sm in per_var:
        lab = dict(src.labels)
        miss_rows += [CodeRow(code_text(c), lab.get(code_text(c), ""), reason=r, variable=src.name)
                      for c, r in sorted(sm.reasons.items(), key=lambda kv: _code_key(kv[0]))]
    return Entry(cell, plan, sources, rows, miss_rows, missing.system, sorted(missing.extended.items()), table_codes)


def _descriptors(project: Project) -> dict[str, SurveyDescriptor]:
    out: dict[str, SurveyDescriptor] = {}
    for survey in sorted(project.crosswalks):
        path = project.root / "surveys" / survey / "survey.yaml"
        if not path.is_file():
            continue
        try:
            out[survey] = load_descriptor(path)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UsageError(f"surveys/{survey}/survey.yaml: {'.'.join(map(str, first['loc']))}: {first['msg']}; "
                             "fix the descriptor (see harmonise/spec/descriptor.py)") from None
    return out


def _table_pages(project: Project) -> list[TablePage]:
    pages = []
    for name in sorted(project.tables.tables):
        t = project.tables.tables[name]
        if not isinstance(t, CodeMap):
            continue
        labels = {code_text(k): v for k, v in t.labels.items()}
        rows = [CodeRow(code_text(k), labels.get(code_text(k), ""), code_text(v))
                for k, v in sorted(t.normalised_map().items(), key=lambda kv: _code_key(kv[0]))]
        rows += [CodeRow(code_text(k), labels.get(code_text(k), ""), reason=r)
                 for k, r in sorted(t.normalised_missing().items(), key=lambda kv: _code_key(kv[0]))]
        pages.append(TablePage(name, t.description.strip(), t.source.strip(), rows))
    return pages


def build_codebook(project: Project) -> Codebook:
    """Resolve every crosswalk wave and collect the pages; raises UsageError when the project does not load."""
    project.codebooks.load_all()
    loading = declaration_issues(project)
    if project.schema is None or any(i.severity == "error" for i in loading):
        raise ValidationFailed(loading, "the declarations do not load; fix them before generating codebooks")
    schema = project.schema
    descriptors = _descriptors(project)
    labels = {v.name: target_labels(v, project) for v in schema.variables}
    by_target: dict[str, list[Entry]] = {v.name: [] for v in schema.variables}
    waves: list[WavePage] = []
    issues: list[Issue] = []
    for survey in sorted(project.crosswalks):
        cw = project.crosswalks[survey]
        desc = descriptors.get(survey)
        for wave in cw.waves:
            cb_file = project.surveys[survey].codebook_files.get(wave.wave)
            declared = project.declared_meta(survey, wave.wave)
            meta = declared.variables if declared else None
            wplan = resolve_wave(cw, wave, schema, project.tables, meta)
            issues += [locate(replace(i, file=None), project.surveys[survey].index, survey, wave.wave) for i in rule_issues(cw, wave, schema, project.tables)]
            entries = [_entry(cell, wplan.targets[cell.target], wplan, meta, labels[cell.target], project)
                       for cell in wave_cells(wplan)]
            for e in entries:
                by_target[e.cell.target].append(e)
            wdesc = None
            if desc is not None:
                wdesc = next((w for w in desc.waves if w.id == wave.wave), None)
            waves.append(WavePage(survey, wave.wave, wave.year, project.surveys[survey].file, cb_file, wave.notes,
                                  desc, wdesc, entries, [_source_var(s, meta) for s in wplan.sources()]))
    if any(i.severity == "error" for i in issues):  # a period's problem is found in each of its waves: said once
        unique = list({(i.file, i.line, i.path, i.message): i for i in issues}.values())
        raise ValidationFailed(unique, "the crosswalks do not resolve; fix them before generating codebooks")
    targets = [TargetPage(v, list(labels[v.name].items()) if v.type in ("category", "boolean") else [],
                          by_target[v.name], labels[v.name]) for v in schema.variables]
    params = [Param(name, value, [v.name for v in schema.variables if v.derive and re.search(
        rf"param\(\s*['\"]{re.escape(name)}['\"]\s*\)", v.derive.expr)]) for name, value in schema.params.items()]
    return Codebook(f"{schema.schema_} (schema version {schema.version})", schema.version, schema.description.strip(),
                    [(r, m.label, m.definition) for r, m in schema.missing_reasons.items()], dict(schema.groups),
                    targets, waves, _table_pages(project), params, declared_indicators(project.root, schema),
                    [Statement(c.name, c.expr, c.says, [n for n in _names(c.expr) if n in schema.names])
                     for c in schema.consistency])


def _names(expr: str) -> list[str]:
    try:
        return referenced_names(expr)
    except ExprError:  # refused by validate; the codebook names none
        return []


def load_codebook_model(root: Path) -> Codebook:
    """Load the project at ``root`` and gather its codebook."""
    from harmonise.spec.project import load_project

    return build_codebook(load_project(root))
