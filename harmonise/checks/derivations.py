"""Checks of the schema's derivations: expressions that compile, known inputs, no cycles, valid codes.

Reported once, at ``mappings/schema.yaml``, not per crosswalk.
"""

from __future__ import annotations

from harmonise.checks.expressions import (
    boolean_problem,
    compared_codes,
    derived_code_issues,
    derived_problem,
    named_arguments,
)
from harmonise.errors import Issue
from harmonise.spec.codetables import TableSet
from harmonise.spec.expr import ExprError, parse, referenced_names
from harmonise.spec.schema import TargetSchema
from harmonise.spec.yamlload import LineIndex


def derivation_issues(schema: TargetSchema, index: LineIndex, tables: TableSet | None = None) -> list[Issue]:
    """Derivations that cannot compile: bad expressions, unknown inputs, self-reference and cycles,
    codes a category derivation cannot give or compare with, and (with ``tables``) unknown names
    in lookup()/param()/missing(). Reported once, at schema.yaml, not per crosswalk."""
    issues: list[Issue] = []
    pos = {v.name: i for i, v in enumerate(schema.variables)}
    needs: dict[str, list[str]] = {}
    for v in schema.variables:
        if v.derive is None:
            continue
        where = ("variables", pos[v.name], "derive", "expr")
        try:
            names = referenced_names(v.derive.expr)
        except ExprError as exc:
            issues.append(index.issue(where, f"{v.name}: {exc}", code="bad-expression"))
            continue
        unknown = [n for n in names if n not in pos]
        if unknown:
            issues.append(index.issue(where, f"{v.name}: derivation refers to unknown variable(s) {unknown}",
                                      code="bad-expression"))
        issues.extend(index.issue(where, f"{v.name}: {why}", code="bad-target-code")
                      for why in derived_code_issues(v, schema, tables))
        refused = derived_problem(v.derive.expr, schema, tables) if tables is not None else None
        if refused:  # what every build's compiler would refuse, over the schema's types of the variables
            issues.append(index.issue(where, f"{v.name}: {refused}", code="expr-type",
                                      hint="see docs/expressions.md for what each operator and function takes"))
        needs[v.name] = [n for n in names if n in pos]
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in needs.get(name, []):
            if state.get(dep) == 1:
                cycle = trail[trail.index(dep):] + [dep]
                what = f"{name} refers to itself" if dep == name else "circular derivation " + " → ".join(cycle)
                issues.append(index.issue(("variables", pos[dep], "derive", "expr"), what, code="circular-derivation",
                                          hint="a derived variable cannot depend on itself, directly or through others"))
            elif dep in needs and dep not in state:
                visit(dep, trail + [dep])
        state[name] = 2

    for name in needs:
        if name not in state:
            visit(name, [name])
    return issues


def consistency_issues(schema: TargetSchema, index: LineIndex, tables: TableSet | None = None) -> list[Issue]:
    """Consistency statements (``consistency:`` in schema.yaml) that cannot be judged: bad expressions, unknown
    variables, codes a category cannot hold, and (with ``tables``) unknown names and expressions that do not
    give true or false."""
    issues: list[Issue] = []
    for i, rule in enumerate(schema.consistency):
        where = ("consistency", i, "expr")
        try:
            names = referenced_names(rule.expr)
        except ExprError as exc:
            issues.append(index.issue(where, f"{rule.name}: {exc}", code="bad-expression"))
            continue
        unknown = [n for n in names if n not in schema.names]
        if unknown:
            issues.append(index.issue(where, f"{rule.name}: refers to unknown variable(s) {unknown}",
                                      code="bad-expression", hint="name variables of the schema"))
            continue
        issues.extend(index.issue(where, f"{rule.name}: {why}", code="bad-target-code")
                      for why in compared_codes(rule.expr, schema))
        if tables is None:
            continue
        named = named_arguments(parse(rule.expr), schema, tables)
        issues.extend(index.issue(where, f"{rule.name}: {why}", code="bad-target-code") for why in named)
        refused = None if named else boolean_problem(rule.expr, schema, tables)
        if refused:
            issues.append(index.issue(where, f"{rule.name}: {refused}", code="expr-type",
                                      hint="a consistency statement is true or false for each respondent, e.g. "
                                           "abs(year - birth_year - age) <= 2; see docs/expressions.md"))
    return issues
