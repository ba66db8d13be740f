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

    def _not_numbers(self, node: ast.BinOp) -> str:
        """Which operands are variables holding text or true/false (in this file), said for an error."""
        said = [f"{n.id} holds {'text' if t == 'string' else 'true/false'}" for n in (node.left, node.right)
                if isinstance(n, ast.Name) and (t := self.name(n.id).type) in ("string", "boolean")]
        return (f": {' and '.join(said)} (a file storing numbers as text needs them made numeric: Stata `destring`, "
                "SPSS `ALTER TYPE`)" if said else "")

    def node(self, node: ast.AST) -> tuple[str, str, ExprType]:
        method = getattr(self, "n_" + type(node).__name__)
        return method(node)

    def n_Constant(self, node: ast.Constant) -> tuple[str, str, ExprType]:
        v = node.value
        typ: ExprType = "boolean" if isinstance(v, bool) else "string" if isinstance(v, str) else "number"
        return sql_literal(v), "NULL", typ

    def n_Name(self, node: ast.Name) -> tuple[str, str, ExprType]:
        n = self.name(node.id)
        return n.value, n.reason, n.type

    def n_UnaryOp(self, node: ast.UnaryOp) -> tuple[str, str, ExprType]:
        v, _, _ = self.node(node.operand)
        if isinstance(node.op, ast.Not):
            return f"(NOT {v})", self.inputs_why(node), "boolean"
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        return f"({sign}{v})", self.inputs_why(node), "number"

    def n_BoolOp(self, node: ast.BoolOp) -> tuple[str, str, ExprType]:
        op = " AND " if isinstance(node.op, ast.And) else " OR "
        parts = [self.node(v)[0] for v in node.values]
        return "(" + op.join(parts) + ")", self.inputs_why(node), "boolean"

    def n_BinOp(self, node: ast.BinOp) -> tuple[str, str, ExprType]:
        lv, _, lt = self.node(node.left)
        rv, _, rt = self.node(node.right)
        if isinstance(node.op, ast.Add) and "string" in (lt, rt):
            if lt != rt:
                raise ExprError("cannot add text and a number; use concat(a, str(b))")
            return f"({lv} || {rv})", self.inputs_why(node), "string"
        if "string" in (lt, rt) or "boolean" in (lt, rt):
            raise ExprError(f"arithmetic '{_SQL_BINOPS[type(node.op)]}' needs numbers{self._not_numbers(node)}")
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):  # a zero divisor gives no value, not an error
            rv = f"NULLIF({rv}, 0)"
        return f"({lv} {_SQL_BINOPS[type(node.op)]} {rv})", self.inputs_why(node), "number"

    def n_Compare(self, node: ast.Compare) -> tuple[str, str, ExprType]:
        parts = []
        left, _, _ = self.node(node.left)
        for op, comp in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                items = ", ".join(sql_literal(e.value) for e in comp.elts)  # type: ignore[attr-defined]
                neg = "NOT " if isinstance(op, ast.NotIn) else ""
                parts.append(f"({left} {neg}IN ({items}))")
                continue
            right, _, _ = self.node(comp)
            parts.append(f"({left} {_SQL_CMPOPS[type(op)]} {right})")
            left = right
        sql = parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
        return sql, self.inputs_why(node), "boolean"

    def n_IfExp(self, node: ast.IfExp) -> tuple[str, str, ExprType]:
        c, cwhy, _ = self.node(node.test)
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
            c, _, _ = self.node(args[i])
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
        x, _, _ = self.node(node.args[1])
        mapping = self.ctx.tables[table]
        if not mapping:
            raise ExprError(f"lookup({table!r}, ...): the table maps no codes")
        vals = list(mapping.values())
        typ: ExprType = "string" if isinstance(vals[0], str) else "boolean" if isinstance(vals[0], bool) else "number"
        return self.ctx.lookup_sql(f"lookup_{table}", mapping, x), self.inputs_why(node), typ

    def f_eu_group(self, node: ast.Call) -> tuple[str, str, ExprType]:
        x, _, _ = self.node(node.args[0])
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

    def _simple(self, node: ast.Call, template: str, typ: ExprType) -> tuple[str, str, ExprType]:
        args = [self.node(a)[0] for a in node.args]
        return template.format(*args), self.inputs_why(node), typ

    def f_abs(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "abs({0})", "number")

    def f_round(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "round({0})" if len(node.args) == 1 else
                            f"round({{0}}, CAST(greatest(-{DIGITS}, least({DIGITS}, trunc({{1}}))) AS INTEGER))", "number")

    def f_floor(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "floor({0})", "number")

    def f_ceil(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "ceil({0})", "number")

    def _extreme(self, node: ast.Call, fn: str) -> tuple[str, str, ExprType]:
        args = [self.node(a)[0] for a in node.args]
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
        return self._simple(node, "upper({0})", "string")

    def f_lower(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "lower({0})", "string")

    def f_trim(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "trim({0})", "string")

    def f_length(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "length({0})", "number")

    def f_substr(self, node: ast.Call) -> tuple[str, str, ExprType]:
        return self._simple(node, "substr({0}, TRY_CAST({1} AS BIGINT), TRY_CAST({2} AS BIGINT))", "string")


def _join_types(a: ExprType, b: ExprType) -> ExprType:
    if a == "unknown":
        return b
    if b == "unknown" or a == b:
        return a
    raise ExprError(f"branches return different types ({a} and {b})")
