"""Static checks of crosswalks: against the target schema, code tables and source metadata.

The source metadata is the declared codebook under ``surveys/`` (no data
needed) or, with ``--data``, the actual file's. Every labelled source code of a
mapped variable must be a valid code of the rule or carry a missing reason;
every declared missing value must carry a reason.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from harmonise.checks.expressions import expr_problem, named_arguments
from harmonise.checks.labels import label_issues
from harmonise.checks.rules import rule_issues
from harmonise.checks.values import value_ok
from harmonise.errors import Issue
from harmonise.spec.codetables import TableSet
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.expr import EXPR_TYPES, ExprError, parse, referenced_names, result_literals
from harmonise.spec.resolve import TargetPlan, WavePlan, resolve_wave, special_missing_key
from harmonise.spec.schema import TargetSchema, Variable
from harmonise.spec.source import Code, SourceMeta, VarMeta
from harmonise.spec.yamlload import LineIndex, locate

SAFE_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+$")


def check_crosswalk(cw: Crosswalk, schema: TargetSchema, tables: TableSet, index: LineIndex | None,
                    metas: dict[str, SourceMeta | None], only_wave: str | None = None,
                    data: bool = False, supplied: Mapping[str, Any] | None = None) -> list[Issue]:
    """All static issues of one crosswalk; ``metas`` maps wave id → source metadata (or None);
    ``supplied``: target → value the user gave for a file (``--country``).

    ``data``: the metadata is a real file's, about to be harmonised. Then a variable the file lacks
    makes its targets not available (one grouped warning; the pipeline says it), and labelled codes
    are judged against the rows (:mod:`harmonise.checks.accounting`); against a declared codebook
    both are errors of the crosswalk."""
    issues = header_issues(cw, schema, index)
    for wave in cw.waves:
        if only_wave is not None and wave.wave != only_wave:
            continue
        issues.extend(locate(i, index, cw.survey, wave.wave)
                      for i in wave_issues(cw, wave, schema, tables, metas.get(wave.wave), data, supplied))
    return dedupe(issues)


def header_issues(cw: Crosswalk, schema: TargetSchema, index: LineIndex | None) -> list[Issue]:
    """The issues of what a crosswalk declares for all its waves: its survey code, missing-code
    conventions, file patterns and periods (located)."""
    issues: list[Issue] = []
    reasons = set(schema.reasons)

    def add(path: tuple[Any, ...], msg: str, wave: str | None = None, **kw: Any) -> None:
        issues.append(locate(Issue(msg, extra={"yaml_path": path}, path=".".join(map(str, path)), **kw),
                             index, cw.survey, wave))

    known = next((v.codes for v in schema.variables if v.name == "survey" and v.type == "category"), None)
    if known and cw.survey not in known:
        add(("survey",), f"survey '{cw.survey}' is not a code of the schema's survey variable "
            f"({', '.join(known)})", code="unknown-survey",
            hint="add it to the codes of `survey` in mappings/schema.yaml")
    d = cw.missing
    where = [(("missing", "system"), d.system), *((("missing", "codes", r), r) for r in d.codes),
             *((("missing", "extended", k), r) for k, r in d.extended.items())]
    for path, r in where:
        if r not in reasons:
            close = difflib.get_close_matches(r, list(reasons), n=1)
            add(path, f"unknown missing reason '{r}'", code="unknown-reason",
                hint=f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(schema.reasons)}")
    for letter in d.extended:
        if len(letter) != 1 or not letter.isalpha() or not letter.islower():
            add(("missing", "extended", letter), f"extended missing keys are single letters a-z, got '{letter}'",
                code="type")
    for wi, wave in enumerate(cw.waves):
        for fi, pat in enumerate(wave.files):
            if not SAFE_PATTERN.fullmatch(pat) or ".." in pat:
                add(("waves", wi, "files", fi), f"file pattern {pat!r} must be a plain file name pattern "
                    "(no folders, '..' or absolute paths)", wave.wave, code="unsafe-pattern")
    ids = [w.wave for w in cw.waves]
    for pi, period in enumerate(cw.periods):
        for wi, wid in enumerate(period.waves):
            if wid not in ids:
                close = difflib.get_close_matches(wid, ids, n=1)
                add(("periods", pi, "waves", wi), f"period names wave '{wid}', which the crosswalk does not declare",
                    code="unknown-wave", hint=f"did you mean '{close[0]}'?" if close else f"waves: {', '.join(ids)}")
    return issues


def wave_issues(cw: Crosswalk, wave: Wave, schema: TargetSchema, tables: TableSet, meta: SourceMeta | None,
                data: bool = False, supplied: Mapping[str, Any] | None = None) -> list[Issue]:
    """The issues of the rules in force in one wave against the source metadata ``meta`` (not located:
    pass them through :func:`~harmonise.spec.yamlload.locate`). They follow from the wave's position
    and entry, the rest of the crosswalk but its other waves, the schema, the tables and ``meta``."""
    plan = resolve_wave(cw, wave, schema, tables, meta.variables if meta else None, supplied)
    issues = list(rule_issues(cw, wave, schema, tables))
    for var in schema.variables:
        tp = plan.targets.get(var.name)
        if tp is not None:
            issues.extend(check_target(var, tp, plan, schema, tables, meta, data))
    return issues


_WAVE_PREFIX = re.compile(r"^wave (\S+): (.*)$", re.DOTALL)


def dedupe(issues: list[Issue]) -> list[Issue]:
    """Base-rule problems repeat for every wave: report each once, naming the waves it affects."""
    groups: dict[tuple[Any, ...], list[tuple[str | None, Issue]]] = {}
    for i in issues:
        m = _WAVE_PREFIX.match(i.message)
        wave, text = (m.group(1), m.group(2)) if m else (None, i.message)
        key = (i.file, i.line, i.path, i.severity, text)
        if all(w != wave for w, _ in groups.get(key, [])):
            groups.setdefault(key, []).append((wave, i))
    out = []
    for (_, _, _, _, text), found in groups.items():
        first = found[0][1]
        waves = [w for w, _ in found if w is not None]
        if len(waves) > 1:  # of several waves: not the first's (JSON consumers read `waves`)
            first = replace(first, message=f"waves {', '.join(waves)}: {text}", wave=None,
                            extra={**first.extra, "waves": waves})
        out.append(first)
    return out


def check_target(var: Variable, tp: TargetPlan, plan: WavePlan, schema: TargetSchema, tables: TableSet,
                 meta: SourceMeta | None, data: bool = False) -> list[Issue]:
    out: list[Issue] = []
    reasons = set(schema.reasons)
    wave = plan.wave.wave

    def add(msg: str, sub: tuple[Any, ...] = (), **kw: Any) -> None:
        path = tp.path + sub
        out.append(Issue(f"wave {wave}: {msg}" if tp.path and tp.path[0] == "targets" else msg,
                         path=".".join(map(str, path)), extra={"yaml_path": path}, **kw))

    if var.automatic and tp.kind == "absent":  # the crosswalk's own rule reads variables this file lacks
        add(f"{var.name} is needed in every row, but its rule reads {', '.join(tp.absent)}, which the file lacks",
            code="rule-kind", hint=f"give the rule an alternative for such files (a constant {var.name} of quality "
                                   "approximate, as the ESS rounds' year rules have), or a file with the variable")
    elif var.automatic and tp.kind not in ("automatic", "expr", "range", "map", "constant"):
        add(f"{var.name} is set by harmonise; it cannot be {tp.kind}", code="rule-kind")
    if var.required and tp.kind == "not_asked":
        add(f"{var.name} is required and cannot be not_asked", code="rule-kind")
    for code, reason in tp.explicit_missing.items():
        if reason not in reasons:
            add(f"unknown missing reason '{reason}' for code {code!r}", ("missing", code), code="unknown-reason",
                hint=f"use one of {', '.join(schema.reasons)}")
    if tp.kind in ("map", "table"):
        for code, value in (tp.values or {}).items():
            why = value_ok(var, value, tables)
            if why:
                sub = ("map", code) if tp.kind == "map" else ("table",)
                # YAML reads an unquoted yes/no/on/off/true/false as a boolean
                quote = "quote it: YAML reads an unquoted yes, no, on, off, true or false as true/false" \
                    if isinstance(value, bool) and var.type not in ("boolean",) else None
                add(f"code {code!r} maps to {why}", sub, code="bad-target-code", hint=quote)
                if tp.kind == "table":
                    break
    if tp.kind == "constant":
        why = value_ok(var, tp.constant, tables)
        if why:
            add(f"constant {why}", ("constant",), code="bad-target-code")
    if tp.kind == "range" and var.type not in ("integer", "number"):
        add(f"a range rule gives numbers, but {var.name} is {var.type}: use a map from the source codes",
            ("range",), code="rule-kind", hint="e.g. map: {1: ..., 2: ...}")
    if tp.kind == "range" and tp.source and meta is not None and (vm := meta.get(tp.source)) is not None \
            and vm.type == "string":
        add(f"a range rule needs a numeric source, but {tp.source} is a string variable", ("source",),
            code="rule-kind", hint="a file storing numbers as text needs them made numeric (Stata `destring`, SPSS "
                                   "`ALTER TYPE`; decimal commas made points); a file written with its value labels "
                                   "applied holds their texts ('No trust at all', '1', …) instead of the codes: use "
                                   "the release with codes; for text codes, use a map or a table")
    if tp.kind == "expr" and tp.expr:
        got, _ = expr_problem(tp.expr, meta, schema, tables)
        want = EXPR_TYPES.get(var.type)
        if got not in (None, "unknown", want) and want is not None:
            add(f"the expression gives a {got}, but {var.name} is {var.type}"
                + (" (a number would become true whenever it is not 0)" if var.type == "boolean" else ""),
                ("expr",), code="rule-kind",
                hint="compare with codes, e.g. brncntr == 1" if var.type == "boolean" else None)
    for field, text in (("expr", tp.expr if tp.kind == "expr" else None), ("transform", tp.transform)):
        if not text:
            continue
        try:
            tree = parse(text)
            names = referenced_names(text)
        except ExprError as exc:
            add(f"{field}: {exc}", (field,), code="bad-expression")
            continue
        for why in named_arguments(tree, schema, tables):
            add(f"{field}: {why}", (field,), code="bad-expression")
        # what the build's compiler refuses (text compared with a number, length() of a number, …), found
        # here against the declared codebook's types; against a file, the compiler's own error says it
        got, refused = expr_problem(text, meta, schema, tables, transform=field == "transform")
        if field == "transform" and got in ("string", "boolean"):
            refused = (f"transform gives {'text' if got == 'string' else 'true/false'}, but a range rule's value is a "
                       f"number ({var.name} is {var.type})")
        if refused and not data:
            add(f"{field}: {refused}", (field,), code="expr-type",
                hint="see docs/expressions.md for what each operator and function takes")
        if field == "transform":
            bad = [n for n in names if n != "x"]
            if bad:
                add(f"transform may only use x (the source value), not {bad}", (field,), code="bad-expression")
            continue
        if var.type == "category":
            for lit in result_literals(text):
                if isinstance(lit, str) and lit not in (var.codes or {}):
                    add(f"expression returns {lit!r}, not a code of {var.name}", (field,), code="bad-target-code")
    if tp.kind == "absent" and meta is not None and not data:  # a declared codebook lacks what the rule reads
        for n in tp.absent:
            close = difflib.get_close_matches(n, list(meta.variables), n=1)
            if tp.expr:
                add(f"expression refers to {n!r}, which is not in {meta.origin}", ("expr",),
                    code="unknown-source", hint=f"did you mean '{close[0]}'?" if close else None)
            else:
                add(f"source variable {n!r} is not in {meta.origin}", ("source",), code="unknown-source",
                    hint=f"did you mean '{close[0]}'?" if close else "check the name or declare the target not_asked")
    if tp.kind in ("map", "table", "range") and tp.source and meta is not None and not data:
        vm = meta.get(tp.source)
        if vm is not None and not (tp.table and tables.code_map(tp.table) is None):  # unknown table: reported above
            out.extend(_check_codes(var, tp, vm, add))
    if tp.kind in ("map", "range") and tp.source and meta is not None and (vm := meta.get(tp.source)) is not None:
        wrong = next((c for c in tp.explicit_missing if isinstance(c, str) == (vm.type == "numeric")
                      and not special_missing_key(c)), None)
        if wrong is not None:  # the compiled rule reads only codes of the source's type: this one would be ignored
            add(f"missing code {wrong!r} has the wrong type for {vm.type} source {vm.name}, so it matches no value: "
                "the code would be read as if the entry were not there", ("missing", wrong), code="code-type",
                hint="quote string codes; leave numeric codes unquoted")
    if tp.kind in ("map", "table") and tp.source and meta is not None and (vm := meta.get(tp.source)) is not None:
        out.extend(label_issues(var, tp, vm, tables))
    return out


def _check_codes(var: Variable, tp: TargetPlan, vm: VarMeta, add: Any) -> list[Issue]:
    numeric = vm.type == "numeric"
    for code in tp.values:
        if isinstance(code, str) == numeric:
            add(f"code {code!r} has the wrong type for {'numeric' if numeric else 'string'} source {vm.name}",
                ("map", code), code="code-type", variable=vm.name,
                hint="quote string codes; leave numeric codes unquoted")
            break
    labelled, declared, letters = unaccounted(tp, vm)
    if labelled:
        add(f"{codes_text(labelled, 'source code')} of {vm.name} {'has' if len(labelled) == 1 else 'have'} no target "
            "code or missing reason", ("map",) if tp.kind != "range" else ("missing",), code="unmapped-code",
            variable=vm.name, hint="add it to map, or to missing with a reason")
    for code in declared:
        add(f"declared missing value {code!r} of {vm.name} has no missing reason",
            ("missing",), code="unmapped-code", variable=vm.name,
            hint=f"add `{code!r}: <reason>` under missing")
    for letter, label in letters:
        add(f"Stata extended missing .{letter} ('{label}') of {vm.name} has no missing reason",
            ("missing",), code="unmapped-code", variable=vm.name,
            hint=f"add `{letter}: <reason>` under missing.extended (survey level) or '.{letter}' under this rule's missing")
    return []


def unaccounted(tp: TargetPlan, vm: VarMeta) -> tuple[list[tuple[Code, str]], list[Code], list[tuple[str, str]]]:
    """What a source variable declares that the rule neither maps nor gives a reason: labelled codes (with
    labels), declared missing values, Stata extended letters (with labels)."""
    rng = tp.range

    def accounted(code: Any) -> bool:
        if code in tp.values or code in tp.missing.reasons:
            return True
        return rng is not None and isinstance(code, (int, float)) and rng[0] <= code <= rng[1]

    return ([(c, lab) for c, lab in vm.labels.items() if not accounted(c)],
            [c for c in vm.missing_values if not accounted(c)],
            [(k, lab) for k, lab in vm.extended.items() if k not in tp.missing.extended])


def codes_text(items: list[tuple[Code, str]], noun: str, shown: int = 5) -> str:
    """``source code 3 ('Other')`` or ``source codes 3 ('Other'), 4 ('…') and 12 more``."""
    head = ", ".join(f"{c!r} ('{lab}')" for c, lab in items[:shown])
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{noun}{'s' if len(items) > 1 else ''} {head}{more}"
