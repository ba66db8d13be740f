"""Checks of expressions: the codes they compare and return, the names they quote, the type they give."""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable

from harmonise.checks.values import value_ok
from harmonise.compile.expr import Context, NameSQL, compile_expr
from harmonise.compile.sqltext import quote_ident
from harmonise.spec.codetables import TableSet
from harmonise.spec.expr import EXPR_TYPES, ExprError, ExprType, compared_literals, parse, result_literals
from harmonise.spec.schema import TargetSchema, Variable
from harmonise.spec.source import SourceMeta


def expr_type(text: str, meta: SourceMeta | None, schema: TargetSchema, tables: TableSet) -> str | None:
    """The type an expression over ``meta``'s variables gives; None when it does not compile (reported
    by :func:`expr_problem` and the other checks)."""
    typ, _ = expr_problem(text, meta, schema, tables)
    return typ


def expr_problem(text: str, meta: SourceMeta | None, schema: TargetSchema, tables: TableSet,
                 transform: bool = False) -> tuple[str | None, str | None]:
    """(the type, None) of an expression compiled as the build compiles it, its variables typed as ``meta``
    declares them (numeric: a number, string: text; unknown without ``meta`` or for a variable it lacks,
    reported elsewhere); or (None, why it does not compile): a type error the build would refuse (text
    compared with a number, ``length(agea)``, ``'a' * 3``). ``transform``: a range rule's expression of
    ``x``, the in-range source value (a number)."""
    def resolve(name: str) -> NameSQL:
        if transform:
            return NameSQL(value="x", reason="NULL", type="number" if name == "x" else "unknown")
        vm = meta.get(name) if meta is not None else None
        typ: ExprType = "unknown" if vm is None else "number" if vm.type == "numeric" else "string"
        return NameSQL(value=quote_ident(name), reason="NULL", type=typ)

    try:
        return compile_expr(text, expression_context(resolve, schema, tables)).type, None
    except ExprError as exc:
        return None, _unless_named(text, str(exc), schema, tables)
    except (KeyError, ValueError, TypeError):
        return None, None


def derived_problem(text: str, schema: TargetSchema, tables: TableSet) -> str | None:
    """Why a schema derivation does not compile over the schema's variables (as typed by the schema), as
    every build compiles it; None when it does (or names what the other checks report)."""
    return _compiled(text, schema, tables)[1]


def boolean_problem(text: str, schema: TargetSchema, tables: TableSet) -> str | None:
    """Why ``text`` does not compile over the schema's variables to true or false (a consistency statement);
    None when it does (or when what is wrong is named by the other checks)."""
    typ, why = _compiled(text, schema, tables)
    if why is not None or typ in (None, "boolean", "unknown"):
        return why
    return f"gives {_TYPE_SAID.get(typ, typ)}, not true or false"


def _compiled(text: str, schema: TargetSchema, tables: TableSet) -> tuple[ExprType | None, str | None]:
    """The type ``text`` compiles to over the schema's variables, or why it does not compile (None, None: what
    is wrong is named by the other checks)."""
    types = {v.name: EXPR_TYPES[v.type] for v in schema.variables}

    def resolve(name: str) -> NameSQL:
        return NameSQL(value=quote_ident(name), reason="NULL", type=types.get(name, "unknown"))

    try:
        return compile_expr(text, expression_context(resolve, schema, tables)).type, None
    except ExprError as exc:
        return None, _unless_named(text, str(exc), schema, tables)
    except (KeyError, ValueError, TypeError):
        return None, None


_TYPE_SAID = {"number": "a number", "string": "text"}


def expression_context(resolve: Callable[[str], NameSQL], schema: TargetSchema, tables: TableSet) -> Context:
    """What an expression sees when it is checked: as when it is built, with ``resolve``'s types."""
    eu, non_eu = tables.eu_groups()
    return Context(resolve=resolve, reasons=schema.reasons, params=schema.params, tables=tables.lookups(),
                   eu_codes=eu, non_eu_codes=non_eu)


def _unless_named(text: str, why: str, schema: TargetSchema, tables: TableSet) -> str | None:
    """``why``, unless the expression quotes an unknown table, parameter or reason (reported by
    :func:`named_arguments`, which the compiler stops at) or does not parse (reported where it is parsed)."""
    try:
        return None if named_arguments(parse(text), schema, tables) else why
    except ExprError:
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
