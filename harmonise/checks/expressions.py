"""Checks of expressions: the codes they compare and return, the names they quote, the type they give."""

from __future__ import annotations

import ast
import difflib

from harmonise.checks.values import value_ok
from harmonise.compile.expr import Context, NameSQL, compile_expr
from harmonise.compile.sqltext import quote_ident
from harmonise.spec.codetables import TableSet
from harmonise.spec.expr import ExprError, compared_literals, parse, result_literals
from harmonise.spec.schema import TargetSchema, Variable
from harmonise.spec.source import SourceMeta


def expr_type(text: str, meta: SourceMeta, schema: TargetSchema, tables: TableSet) -> str | None:
    """The type an expression over ``meta``'s variables gives; None when it does not compile (reported
    by the other checks)."""
    def resolve(name: str) -> NameSQL:
        vm = meta.get(name)
        if vm is None:
            raise KeyError(name)
        return NameSQL(value=quote_ident(name), reason="NULL", type="number" if vm.type == "numeric" else "string")

    try:
        ctx = Context(resolve=resolve, reasons=schema.reasons, params=schema.params, tables=tables.lookups())
        return compile_expr(text, ctx).type
    except (ExprError, KeyError, ValueError, TypeError):
        return None


def compared_codes(text: str, schema: TargetSchema) -> list[str]:
    """Why each literal an expression compares a category variable of the schema with is not one of
    its codes (``labour_status == 'employd'`` is never true, silently); empty when all are."""
    out = []
    categories = {v.name: v for v in schema.variables if v.type == "category"}
    no_tables = TableSet({})  # category codes need none
    for name, lit in compared_literals(text):
        var = categories.get(name)
        if var is None:
            continue
        why = value_ok(var, lit, no_tables)
        if why:
            out.append(f"comparison with {name}: {why}")
    return out


def derived_code_issues(var: Variable, schema: TargetSchema, tables: TableSet | None) -> list[str]:
    """What is wrong with the codes and quoted names of ``var``'s derivation (checked once, at schema.yaml)."""
    assert var.derive is not None
    text = var.derive.expr
    out = compared_codes(text, schema)
    if var.type == "category":
        out += [f"expression returns {lit!r}, not a code of {var.name}" for lit in result_literals(text)
                if isinstance(lit, str) and lit not in (var.codes or {})]
    if tables is not None:
        out += named_arguments(parse(text), schema, tables)
    return out


def named_arguments(tree: ast.AST, schema: TargetSchema, tables: TableSet) -> list[str]:
    """Names quoted in lookup()/param()/missing() that do not exist (caught here, not only at compile time)."""
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
                and isinstance(node.args[0], ast.Constant)):
            continue
        fname, name = node.func.id, node.args[0].value
        if fname == "lookup" and tables.code_map(str(name)) is None and name not in tables.lookups():
            close = difflib.get_close_matches(str(name), list(tables.tables), n=1)
            out.append(f"lookup({name!r}, ...): no such code table" + (f" (did you mean '{close[0]}'?)" if close else ""))
        elif fname == "param" and name not in schema.params:
            out.append(f"param({name!r}): no such schema parameter; known: {', '.join(sorted(schema.params)) or 'none'}")
        elif fname == "missing" and name not in schema.reasons:
            out.append(f"missing({name!r}): unknown missing reason; use one of {', '.join(schema.reasons)}")
    return out
