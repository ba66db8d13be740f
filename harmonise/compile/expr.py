"""The expression language compiled to DuckDB SQL: a value and the missing reason to store when it is NULL.

The grammar (what an expression may contain) is :mod:`harmonise.spec.expr`; this module only
writes SQL for trees it has accepted. Every compiled expression yields a value *and* the reason
to store when the value is NULL (the first missing input's reason, ``missing('reason')`` where
written, or ``not_available``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harmonise.compile.sqltext import sql_literal
from harmonise.spec.expr import ExprError, ExprType, parse, var_names

DIGITS = 38  # round(x, d) clamps d to ±DIGITS: beyond it a DOUBLE has no digits left to round
_SQL_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}
_SQL_CMPOPS = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@dataclass(frozen=True)
class NameSQL:
    """How a referenced variable appears in SQL: its value, its missing reason, its type."""

    value: str
    reason: str
    type: ExprType


@dataclass(frozen=True)
class Compiled:
    value: str
    reason: str
    type: ExprType
    refs: tuple[str, ...]


@dataclass
class Context:
    """What an expression may see."""

    resolve: Callable[[str], NameSQL]
    reasons: Sequence[str]
    params: Mapping[str, float]
    tables: Mapping[str, Mapping[Any, object]]
    eu_codes: frozenset[str] = frozenset()
    non_eu_codes: frozenset[str] = frozenset()
    relation: Callable[[str, Mapping[Any, object], str], str] | None = None

    def lookup_sql(self, name: str, mapping: Mapping[Any, object], x: str) -> str:
        """SQL looking ``x`` up in a code → value relation (a CTE when the compiler offers one)."""
        if self.relation is not None:
            return self.relation(name, mapping, x)
        whens = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in mapping.items())
        return f"(CASE {x} {whens} END)"


def compile_expr(text: str, ctx: Context) -> Compiled:
    """Compile ``text`` to SQL (value and missing reason)."""
    tree = parse(text)
    comp = _Compiler(ctx)
    value, why, typ = comp.node(tree)
    return Compiled(value=value, reason=why, type=typ, refs=tuple(comp.refs))


class _Compiler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.refs: list[str] = []
        self._names: dict[str, NameSQL] = {}

    def name(self, ident: str) -> NameSQL:
        if ident not in self._names:
            try:
                self._names[ident] = self.ctx.resolve(ident)
            except KeyError:
                raise ExprError(f"unknown variable {ident!r}") from None
            self.refs.append(ident)
        return self._names[ident]

    def inputs_why(self, node: ast.AST) -> str:
        """Reason of the first missing variable referenced below ``node``."""
        parts = []
        for ident in var_names(node):
            r = self.name(ident).reason
            if r not in parts:
                parts.append(r)
        return f"coalesce({', '.join(parts + [sql_literal('not_available')])})" if parts else sql_literal("not_available")

    def _not_numbers(self, node: ast.BinOp, types: tuple[ExprType, ExprType]) -> str:
        """Which operands hold text or true/false, said for an error (a variable: in this file)."""
        said = [f"{n.id} holds {'text' if t == 'string' else 'true/false'}" for n, t in zip((node.left, node.right), types)
                if isinstance(n, ast.Name) and t in ("string", "boolean")]
        if said:
            return (f": {' and '.join(said)} (a file storing numbers as text needs them made numeric: Stata `destring`, "
                    "SPSS `ALTER TYPE`)")
        other = [_said(n, t) for n, t in zip((node.left, node.right), types) if t in ("string", "boolean")]
        return f", but {' and '.join(other)}; use numbers, or concat() to join text"

    def node(self, node: ast.AST) -> tuple[str, str, ExprType]:
        method = getattr(self, "n_" + type(node).__name__)
        return method(node)

    def typed(self, node: ast.AST, want: ExprType, what: str, fix: str) -> str:
        """SQL of ``node``, which must give a ``want`` (text, number or true/false; a missing value
        fits any): else an ExprError saying what gives what, and the fix."""
        value, _, got = self.node(node)
        if got not in ("unknown", want):
            raise ExprError(f"{what} needs {_NOUN[want]}, but {_said(node, got)}; {fix}")
        return value

    def condition(self, node: ast.AST, what: str) -> str:
        """SQL of a condition (true/false; a number counts as true when not 0, as in Python): never text."""
        value, _, got = self.node(node)
        if got == "string":
            raise ExprError(f"{what} needs a condition (true/false), but {_said(node, got)}; compare it, e.g. "
                            f"{_name_or(node, 'x')} == 'code'")
        return value

    def n_Constant(self, node: ast.Constant) -> tuple[str, str, ExprType]:
        v = node.value
        typ: ExprType = "boolean" if isinstance(v, bool) else "string" if isinstance(v, str) else "number"
        return sql_literal(v), "NULL", typ

    def n_Name(self, node: ast.Name) -> tuple[str, str, ExprType]:
        n = self.name(node.id)
        return n.value, n.reason, n.type

    def n_UnaryOp(self, node: ast.UnaryOp) -> tuple[str, str, ExprType]:
        if isinstance(node.op, ast.Not):
            v = self.condition(node.operand, "'not'")
            return f"(NOT {v})", self.inputs_why(node), "boolean"
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        v = self.typed(node.operand, "number", f"unary '{sign}'", "use it on numbers only")
        return f"({sign}{v})", self.inputs_why(node), "number"

    def n_BoolOp(self, node: ast.BoolOp) -> tuple[str, str, ExprType]:
        op = " AND " if isinstance(node.op, ast.And) else " OR "
        parts = [self.condition(v, f"'{op.strip().lower()}'") for v in node.values]
        return "(" + op.join(parts) + ")", self.inputs_why(node), "boolean"

    def n_BinOp(self, node: ast.BinOp) -> tuple[str, str, ExprType]:
        lv, _, lt = self.node(node.left)
        rv, _, rt = self.node(node.right)
        if isinstance(node.op, ast.Add) and "string" in (lt, rt):
            if lt != rt:
                raise ExprError("cannot add text and a number; use concat(a, str(b))")
            return f"({lv} || {rv})", self.inputs_why(node), "string"
        if "string" in (lt, rt) or "boolean" in (lt, rt):
            raise ExprError(f"arithmetic '{_SQL_BINOPS[type(node.op)]}' needs numbers{self._not_numbers(node, (lt, rt))}")
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):  # a zero divisor gives no value, not an error
            rv = f"NULLIF({rv}, 0)"
        return f"({lv} {_SQL_BINOPS[type(node.op)]} {rv})", self.inputs_why(node), "number"

    def n_Compare(self, node: ast.Compare) -> tuple[str, str, ExprType]:
        parts = []
        left, _, lt = self.node(node.left)
        lnode: ast.AST = node.left
        for op, comp in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                elts = comp.elts  # type: ignore[attr-defined]
                for e in elts:
                    _comparable(lnode, lt, e, _constant_type(e.value))
                items = ", ".join(sql_literal(e.value) for e in elts)
                neg = "NOT " if isinstance(op, ast.NotIn) else ""
                parts.append(f"({left} {neg}IN ({items}))")
                continue
            right, _, rt = self.node(comp)
            _comparable(lnode, lt, comp, rt)
            parts.append(f"({left} {_SQL_CMPOPS[type(op)]} {right})")
            left, lt, lnode = right, rt, comp
        sql = parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
        return sql, self.inputs_why(node), "boolean"

    def n_IfExp(self, node: ast.IfExp) -> tuple[str, str, ExprType]:
        c = self.condition(node.test, "'if'")
        cwhy = self.inputs_why(node.test)
        a, awhy, at = self.node(node.body)
        b, bwhy, bt = self.node(node.orelse)
        value = f"(CASE WHEN ({c}) IS NULL THEN NULL WHEN {c} THEN {a} ELSE {b} END)"
        why = f"(CASE WHEN ({c}) IS NULL THEN {cwhy} WHEN {c} THEN {self._why(node.body, awhy)} ELSE {self._why(node.orelse, bwhy)} END)"
        return value, why, _join_types(at, bt)

    def _why(self, node: ast.AST, own: str) -> str:
        """Reason for a branch value: literals never miss; names and missing() carry theirs."""
        if isinstance(node, ast.Constant):
            return "NULL"
        if isinstance(node, (ast.Name, ast.IfExp)) or (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("missing", "case")
        ):
            return own
        return self.inputs_why(node)

    def n_Call(self, node: ast.Call) -> tuple[str, str, ExprType]:
        fname = node.func.id  # type: ignore[attr-defined]
        return getattr(self, "f_" + fname)(node)

    # --- functions -----------------------------------------------------------
    def f_missing(self, node: ast.Call) -> tuple[str, str, ExprType]:
        reason = node.args[0].value  # type: ignore[attr-defined]
        if reason not in self.ctx.reasons:
            raise ExprError(f"missing({reason!r}): unknown missing reason; use one of {', '.join(self.ctx.reasons)}")
        return "NULL", sql_literal(reason), "unknown"

    def f_param(self, node: ast.Call) -> tuple[str, str, ExprType]:
        name = node.args[0].value  # type: ignore[attr-defined]
        if name not in self.ctx.params:
            raise ExprError(f"param({name!r}): no such schema parameter; known: {', '.join(sorted(self.ctx.params)) or 'none'}")
        return sql_literal(self.ctx.params[name]), "NULL", "number"

    def f_case(self, node: ast.Call) -> tuple[str, str, ExprType]:
        args = node.args
        vparts, wparts, types = [], [], []
        for i in range(0, len(args) - 1, 2):
            c = self.condition(args[i], f"case() condition {i // 2 + 1}")
            v, vwhy, vt = self.node(args[i + 1])
            vparts.append(f"WHEN {c} THEN {v}")
            wparts.append(f"WHEN {c} THEN {self._why(args[i + 1], vwhy)}")
            types.append(vt)
        if len(args) % 2 == 1:
            d, dwhy, dt = self.node(args[-1])
            vparts.append(f"ELSE {d}")
            wparts.append(f"ELSE {self._why(args[-1], dwhy)}")
            types.append(dt)
        else:
            wparts.append(f"ELSE {self.inputs_why(node)}")
        typ: ExprType = "unknown"
        for t in types:
            typ = _join_types(typ, t)
        return "(CASE " + " ".join(vparts) + " END)", "(CASE " + " ".join(wparts) + " END)", typ

    def f_lookup(self, node: ast.Call) -> tuple[str, str, ExprType]:
        table = node.args[0].value  # type: ignore[attr-defined]
        if table not in self.ctx.tables:
            raise ExprError(f"lookup({table!r}, ...): no such code table; known: {', '.join(sorted(self.ctx.tables))}")
        mapping = self.ctx.tables[table]
        if not mapping:
            raise ExprError(f"lookup({table!r}, ...): the table maps no codes")
        keys = {_constant_type(k) for k in mapping}
        if len(keys) == 1:  # the table's codes are all text or all numbers: x must be the same
            key = keys.pop()
            x = self.typed(node.args[1], key, f"lookup({table!r}, ...)", "the table's codes are "
                           + ("text: convert with str()" if key == "string" else "numbers: convert with int()"))
        else:
            x = self.node(node.args[1])[0]
        vals = list(mapping.values())
        typ: ExprType = "string" if isinstance(vals[0], str) else "boolean" if isinstance(vals[0], bool) else "number"
        return self.ctx.lookup_sql(f"lookup_{table}", mapping, x), self.inputs_why(node), typ

    def f_eu_group(self, node: ast.Call) -> tuple[str, str, ExprType]:
        x = self.typed(node.args[0], "string", "eu_group()", "give it a country code (a country target)")
        groups: dict[object, object] = {c: "eu" for c in sorted(self.ctx.eu_codes)}
        groups.update({c: "non_eu" for c in sorted(self.ctx.non_eu_codes)})
        if not groups:
            raise ExprError("eu_group(): no country table (mappings/tables/countries.yaml) is loaded")
        return self.ctx.lookup_sql("eu_groups", groups, x), self.inputs_why(node), "string"

    def f_coalesce(self, node: ast.Call) -> tuple[str, str, ExprType]:
        parts = [self.node(a) for a in node.args]
        typ: ExprType = "unknown"
        for p in parts:
            typ = _join_types(typ, p[2])
        last = node.args[-1]
        return f"coalesce({', '.join(p[0] for p in parts)})", self._why(last, parts[-1][1]), typ

    def f_is_missing(self, node: ast.Call) -> tuple[str, str, ExprType]:
        x, _, _ = self.node(node.args[0])
        return f"(({x}) IS NULL)", "NULL", "boolean"

    def f_missing_reason(self, node: ast.Call) -> tuple[str, str, ExprType]:
        """The missing reason of ``x`` as text (``'not_applicable'``…), ``''`` where ``x`` has a value (never
        missing itself, so a condition on it is never missing): tells a filtered-out item from an unanswered one."""
        x, why, _ = self.node(node.args[0])
        return f"(CASE WHEN ({x}) IS NULL THEN coalesce({why}, '') ELSE '' END)", "NULL", "string"

    def _simple(self, node: ast.Call, template: str, typ: ExprType,
                wants: Sequence[ExprType] = ()) -> tuple[str, str, ExprType]:
        """``template`` over the arguments' SQL; ``wants``: the type each argument needs (the last one
        for any after it; none: any type)."""
        fname = node.func.id  # type: ignore[attr-defined]
        args = []
        for i, a in enumerate(node.args):
            if not wants:
                args.append(self.node(a)[0])
                continue
            want = wants[min(i, len(wants) - 1)]
            which = f"{fname}()" if len(node.args) == 1 else f"{fname}() argument {i + 1}"
            args.append(self.typed(a, want, which, _FIX[want]))
        return template.format(*args), self.inputs_why(node), typ

    def f_abs(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "abs({0})", "number", ("number",))

    def f_round(self, node: ast.Call) -> tuple[str, str, ExprType]:
        if len(node.args) == 2 and not _constant_number(node.args[1]):  # DuckDB binds only a constant precision
            raise ExprError(f"round(): the number of digits must be a number written out (round(x, 1)) or param(), "
                            f"not {ast.unparse(node.args[1])}")
        return self._simple(node, "round({0})" if len(node.args) == 1 else
                            f"round({{0}}, CAST(greatest(-{DIGITS}, least({DIGITS}, trunc({{1}}))) AS INTEGER))", "number",
                            ("number",))

    def f_floor(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "floor({0})", "number", ("number",))

    def f_ceil(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "ceil({0})", "number", ("number",))

    def _extreme(self, node: ast.Call, fn: str) -> tuple[str, str, ExprType]:
        args = [self.typed(a, "number", f"{fn}() argument {i + 1}", _FIX["number"]) for i, a in enumerate(node.args)]
        anynull = " OR ".join(f"({a}) IS NULL" for a in args)
        return f"(CASE WHEN {anynull} THEN NULL ELSE {fn}({', '.join(args)}) END)", self.inputs_why(node), "number"

    def f_least(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._extreme(node, "least")

    def f_greatest(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._extreme(node, "greatest")

    def _to_str(self, sql: str, typ: ExprType) -> str:
        if typ == "string":
            return sql
        if typ == "number":
            return (f"(CASE WHEN {sql} = trunc({sql}) AND abs({sql}) < 9e18 THEN CAST(CAST({sql} AS BIGINT) AS VARCHAR) "
                    f"ELSE CAST({sql} AS VARCHAR) END)")
        return f"CAST({sql} AS VARCHAR)"

    def f_str(self, node: ast.Call) -> tuple[str, str, ExprType]:
        v, _, t = self.node(node.args[0])
        return self._to_str(v, t), self.inputs_why(node), "string"

    def f_int(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "TRY_CAST(trunc(TRY_CAST({0} AS DOUBLE)) AS BIGINT)", "number")

    def f_float(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "TRY_CAST({0} AS DOUBLE)", "number")

    def f_concat(self, node: ast.Call) -> tuple[str, str, ExprType]:
        parts = [self.node(a) for a in node.args]
        return "(" + " || ".join(self._to_str(v, t) for v, _, t in parts) + ")", self.inputs_why(node), "string"

    def f_upper(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "upper({0})", "string", ("string",))

    def f_lower(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "lower({0})", "string", ("string",))

    def f_trim(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "trim({0})", "string", ("string",))

    def f_length(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "length({0})", "number", ("string",))

    def f_substr(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "substr({0}, TRY_CAST({1} AS BIGINT), TRY_CAST({2} AS BIGINT))", "string",
                            ("string", "number"))


def _join_types(a: ExprType, b: ExprType) -> ExprType:
    if a == "unknown":
        return b
    if b == "unknown" or a == b:
        return a
    raise ExprError(f"branches return different types ({a} and {b})")


_NOUN: dict[ExprType, str] = {"number": "a number", "string": "text", "boolean": "true/false", "unknown": "a value"}
_FIX: dict[ExprType, str] = {"number": "convert text with int() or float()",
                             "string": "convert a number with str(), or use a variable holding text",
                             "boolean": "compare it", "unknown": ""}


def _constant_type(value: object) -> ExprType:
    return "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"


def _said(node: ast.AST, typ: ExprType) -> str:
    """``agea is a number`` / ``'x' is text`` / ``the value is a number``, for an error."""
    noun = _NOUN[typ]
    if isinstance(node, ast.Name):
        return f"{node.id} is {noun}"
    if isinstance(node, ast.Constant):
        return f"{node.value!r} is {noun}"
    return f"{ast.unparse(node)} gives {noun}"


def _name_or(node: ast.AST, default: str) -> str:
    return node.id if isinstance(node, ast.Name) else default


def _constant_number(node: ast.AST) -> bool:
    """A number written out (signs and arithmetic of numbers allowed) or a schema parameter: known before any row."""
    if isinstance(node, ast.Constant):
        return not isinstance(node.value, (bool, str))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _constant_number(node.operand)
    if isinstance(node, ast.BinOp):
        return _constant_number(node.left) and _constant_number(node.right)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "param"


def _comparable(left: ast.AST, lt: ExprType, right: ast.AST, rt: ExprType) -> None:
    """Text compares only with text (DuckDB fails on the first value that is not a number, when it runs):
    an ExprError for text against a number or true/false."""
    if "unknown" in (lt, rt) or lt == rt or "string" not in (lt, rt):
        return
    text, other = (left, right) if lt == "string" else (right, left)
    other_t = rt if lt == "string" else lt
    if isinstance(other, ast.Constant) and other_t == "number" and isinstance(text, ast.Name):
        code = ast.unparse(other)
        fix = f"quote the code ({text.id} == '{code}'), or compare int({text.id}) with {code}"
    elif isinstance(text, ast.Constant) and isinstance(other, ast.Name):
        fix = f"compare {other.id} with a {'number' if other_t == 'number' else 'True/False'}, not quoted text"
    else:
        fix = "convert one side: str(x) for text, int(x) or float(x) for a number"
    raise ExprError(f"cannot compare text with {_NOUN[other_t]}: {_said(text, 'string')} and "
                    f"{_said(other, other_t)}; {fix}")
