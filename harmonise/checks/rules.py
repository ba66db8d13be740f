"""The shape of each rule in each wave: one kind, the keys that kind needs, known tables and targets.

Resolution (:mod:`harmonise.spec.resolve`) never reports; these checks say what is wrong with
the rules it resolved as far as it could. Issues carry ``extra['yaml_path']`` for
:func:`harmonise.spec.yamlload.locate`.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from harmonise.errors import Issue
from harmonise.spec.codetables import TableSet
from harmonise.spec.crosswalk import CODED_KINDS, Crosswalk, Rule, Wave
from harmonise.spec.resolve import mapped_twice, override_layers, rule_kinds, wave_rules
from harmonise.spec.schema import TargetSchema
from harmonise.spec.source import norm_code


def _issue(msg: str, path: tuple[Any, ...], **kw: Any) -> Issue:
    return Issue(msg, path=".".join(map(str, path)), extra={"yaml_path": path}, **kw)


def rule_issues(cw: Crosswalk, wave: Wave, schema: TargetSchema, tables: TableSet) -> list[Issue]:
    """Every problem of the rules in force in ``wave`` that no source metadata is needed to see."""
    issues: list[Issue] = []
    for prefix, overrides in override_layers(cw, wave):  # the periods naming the wave, then the wave's own
        for name in overrides:
            if name not in schema.names:
                close = difflib.get_close_matches(name, list(schema.names), n=1)
                issues.append(_issue(f"override for unknown target '{name}'", (*prefix, name), code="unknown-target",
                                     hint=f"did you mean '{close[0]}'?" if close else None))
    for at in wave_rules(cw, wave, schema):
        var = schema.variable(at.target)
        if at.error is not None:
            for err in at.error.errors():
                path = at.path + tuple(err["loc"])
                if err["type"] == "extra_forbidden":  # as for base rules: the key, and the one meant
                    bad = str(err["loc"][-1])
                    close = difflib.get_close_matches(bad, list(Rule.model_fields), n=1)
                    issues.append(_issue(f"unknown key '{bad}'", path, code="unknown-key",
                                         hint=f"did you mean '{close[0]}'?" if close else None))
                else:
                    issues.append(_issue(err["msg"], path, code="type"))
        elif at.rule is None:
            if not var.automatic and not (var.derived and var.derive is not None):
                issues.append(Issue(f"wave {wave.wave}: target '{var.name}' has no rule",  # one issue for its waves (dedupe)
                                    path=f"targets.{var.name}", code="no-rule",
                                    hint=f"map it, or declare `{var.name}: {{not_asked: <reason>}}`",
                                    extra={"yaml_path": ("targets",)}))
        else:
            found = shape_issues(at.rule, at.path, tables)
            if at.path[0] != "targets" and any(i.code == "rule-kind" for i in found):
                found = [_kept_from_base(i, at.rule, overrides_at(cw, wave, at.path)) for i in found]
            issues.extend(found)
    for name in cw.targets:
        if name not in schema.names:
            close = difflib.get_close_matches(name, schema.names, n=1)
            issues.append(_issue(f"unknown target '{name}'", ("targets", name), code="unknown-target",
                                 hint=f"did you mean '{close[0]}'?" if close else "see mappings/schema.yaml"))
    return issues


def overrides_at(cw: Crosswalk, wave: Wave, path: tuple[str | int, ...]) -> dict[str, Any]:
    """The override written at ``path`` (``waves.<i>.overrides.<target>`` or ``periods.<i>...``) in force in
    ``wave``: empty when there is none."""
    for prefix, overrides in override_layers(cw, wave):
        if prefix == path[:-1]:
            return overrides.get(str(path[-1])) or {}
    return {}


def _kept_from_base(issue: Issue, rule: Rule, override: dict[str, Any]) -> Issue:
    """A rule-kind issue of a rule an override left with two kinds: the hint names the fields it kept from the base
    rule and how to drop them (an override replaces only the fields it sets)."""
    if issue.code != "rule-kind" or not override:
        return issue
    kept = [k for k in CODED_KINDS if getattr(rule, k) is not None and k not in override]
    if not kept:
        return issue
    return dataclasses.replace(issue, hint=(
        f"the override keeps the base rule's {' and '.join(f'`{k}`' for k in kept)} (an override with map, range "
        f"or table replaces only the fields it sets): write {', '.join(f'`{k}: null`' for k in kept)} in the "
        "override to drop " + ("it" if len(kept) == 1 else "them")))


def shape_issues(rule: Rule, path: tuple[str | int, ...], tables: TableSet) -> list[Issue]:
    """What is wrong with one rule on its own: its kind, the keys the kind needs, its table, its codes."""
    out: list[Issue] = []

    def err(msg: str, sub: tuple[Any, ...] = (), **kw: Any) -> None:  # sub may end in a code (int, float, str)
        out.append(_issue(msg, path + sub, **kw))

    kinds = rule_kinds(rule)
    if not kinds:
        err("rule has no kind: give one of map, range, table, expr, constant, not_asked", code="rule-kind")
        return out
    if len(kinds) > 1:
        err(f"rule mixes kinds {', '.join(kinds)}: give exactly one", code="rule-kind")
        return out
    kind = kinds[0]
    if kind == "not_asked":
        return out
    if rule.quality is None:
        err("quality flag missing", code="missing-key", hint="add quality: exact | recoded | approximate | proxy")
    if kind in ("map", "range", "table") and not rule.source:
        err(f"a {kind} rule needs `source: <variable>`", code="missing-key")
        return out
    if kind in ("expr", "constant") and rule.source:
        err(f"`source` does not go with {kind} (name the variables in the expression)", code="rule-kind")
    if kind == "table" and tables.code_map(rule.table or "") is None:
        close = difflib.get_close_matches(rule.table or "", list(tables.tables), n=1)
        err(f"unknown code table '{rule.table}'", ("table",), code="unknown-table",
            hint=f"did you mean '{close[0]}'?" if close else "see mappings/tables/")
        return out
    missing = {norm_code(k): v for k, v in (rule.missing or {}).items()}
    for code in mapped_twice(rule):
        value = {norm_code(k): v for k, v in (rule.map or {}).items()}[code]
        err(f"code {code!r} is mapped twice: to {value!r} and to missing reason {missing[code]!r}",
            ("missing", code), code="mapped-twice", hint="keep one of the two entries")
    if kind == "range" and rule.range:
        lo, hi = rule.range
        if lo > hi:
            err("range must be [low, high]", ("range",), code="range")
        for code in missing:
            if isinstance(code, (int, float)) and lo <= code <= hi:
                err(f"missing code {code!r} lies inside the valid range [{lo:g}, {hi:g}]", ("missing", code),
                    code="mapped-twice", hint="narrow the range or drop the missing entry")
    return out
