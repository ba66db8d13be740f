"""The restricted expression language of crosswalks and derived variables: grammar and types.

Expressions are written in a small subset of Python's expression syntax and
compiled to DuckDB SQL by :mod:`harmonise.compile.expr`. They can only reference declared variables, literals
and a whitelist of pure functions: there is no attribute access, subscripting,
lambda, comprehension, keyword argument or any way to name a table, file,
setting or extension, so an expression cannot read files or run code.

Missing values: a referenced variable is NULL when missing and carries a typed
reason. Every compiled expression yields a value *and* the reason to store when
the value is NULL (the first missing input's reason, ``missing('reason')`` where
written, or ``not_available``).

    'employed' if pdwrk == 1 else case(uempla == 1, 'unemployed', 'inactive')
    missing('not_applicable') if labour_status != 'employed' else hours_worked < 30
"""

from __future__ import annotations

import ast
import math
import warnings
from functools import lru_cache
from typing import Literal

ExprType = Literal["number", "string", "boolean", "unknown"]
# the expression type of a value of each schema variable type
EXPR_TYPES: dict[str, ExprType] = {"category": "string", "string": "string", "country": "string", "language": "string",
                                   "city": "string", "boolean": "boolean", "integer": "number", "number": "number"}
MAX_LENGTH = 4000
MAX_DEPTH = 40

FUNCTIONS: dict[str, str] = {
    "case": "case(cond1, value1, cond2, value2, ..., [default]): first true condition wins",
    "missing": "missing('reason'): no value, with that missing reason",
    "param": "param('name'): a schema parameter (mappings/schema.yaml params)",
    "lookup": "lookup('table', x): recode x through a code table in mappings/tables/",
    "eu_group": "eu_group(country): 'eu' or 'non_eu' against the EU27_2020 list",
    "coalesce": "coalesce(a, b, ...): first non-missing argument (missing with the last argument's reason)",
    "is_missing": "is_missing(x): true when x has no value",
    "missing_reason": "missing_reason(x): x's missing reason as text ('not_applicable', ...), '' when x has a value",
    "abs": "abs(x)",
    "round": "round(x[, digits])",
    "floor": "floor(x)",
    "ceil": "ceil(x)",
    "least": "least(a, b, ...): smallest (missing if any is missing)",
    "greatest": "greatest(a, b, ...): largest (missing if any is missing)",
    "str": "str(x): text form (integers without decimals)",
    "int": "int(x): whole number (missing when not a number)",
    "float": "float(x): number (missing when not a number)",
    "concat": "concat(a, b, ...): joined text (numbers via str())",
    "upper": "upper(s)",
    "lower": "lower(s)",
    "trim": "trim(s)",
    "length": "length(s)",
    "substr": "substr(s, start, length): 1-based",
}

_ARITY: dict[str, tuple[int, int | None]] = {
    "case": (2, None), "missing": (1, 1), "param": (1, 1), "lookup": (2, 2), "eu_group": (1, 1),
    "coalesce": (1, None), "is_missing": (1, 1), "missing_reason": (1, 1), "abs": (1, 1), "round": (1, 2), "floor": (1, 1),
    "ceil": (1, 1), "least": (1, None), "greatest": (1, None), "str": (1, 1), "int": (1, 1),
    "float": (1, 1), "concat": (1, None), "upper": (1, 1), "lower": (1, 1), "trim": (1, 1),
    "length": (1, 1), "substr": (3, 3),
}

# the operators the grammar allows (their SQL lives in harmonise.compile.expr)
BINARY_OPERATORS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
                                                   ast.FloorDiv: "//", ast.Mod: "%"}
COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class ExprError(ValueError):
    """An expression is malformed or uses something outside the whitelist."""


def parse(text: str) -> ast.expr:
    """Parse and whitelist-check an expression; raise ExprError with the reason.

    Trees are kept by their text (callers read them, never change them): the checks, the compiler
    and the lineage parse the same expressions many times over."""
    if not isinstance(text, str):
        raise ExprError("expression is empty")
    return _parse(text)


@lru_cache(maxsize=8192)
def _parse(text: str) -> ast.expr:
    if not text.strip():
        raise ExprError("expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is longer than {MAX_LENGTH} characters")
    try:
        with warnings.catch_warnings():  # e.g. "1if x else 2": the error or the result speaks, not stderr
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(_mistake(text.strip()) or f"syntax error at column {exc.offset}: {exc.msg}") from None
    _check(tree.body, 0)
    return tree.body


_OTHER_LANGUAGES = {"===": "==", "!==": "!=", "&&": "and", "||": "or", "=": "=="}


def _mistake(text: str) -> str | None:
    """A clearer message for a common slip Python's parser reports far from where it is: another language's
    operator (``===``, ``&&``, ``||``, a single ``=``), or an expression that stops short (``'x' if c else``)."""
    import io
    import tokenize

    tokens: list[tokenize.TokenInfo] = []
    try:
        tokens.extend(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # the tokens before the error are kept
    ops = [t for t in tokens if t.type == tokenize.OP]
    for i, t in enumerate(ops):
        joined, col = t.string, t.start[1]
        nxt = ops[i + 1] if i + 1 < len(ops) else None
        if nxt is not None and nxt.start == t.end and t.string + nxt.string in _OTHER_LANGUAGES:
            joined = t.string + nxt.string
        elif t.string in ("==", "!=") and nxt is not None and nxt.string == "=" and nxt.start == t.end:
            joined = t.string + "="
        if joined in _OTHER_LANGUAGES and (joined != "=" or t.string == "="):
            return f"syntax error at column {col + 1}: '{joined}' is not an operator here; write {_OTHER_LANGUAGES[joined]}"
    words = [t for t in tokens if t.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER, tokenize.STRING)]
    if words and (words[-1].string in ("if", "else", "and", "or", "not", "in") or
                  words[-1].type == tokenize.OP and words[-1].string not in (")", "]")):
        return (f"syntax error at column {len(text)}: the expression stops after '{words[-1].string}' "
                "(something is missing at its end)")
    return None


def _check(node: ast.AST, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ExprError(f"expression nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ExprError("only plain function calls are allowed (no methods or attributes)")
        fname = node.func.id
        if fname not in FUNCTIONS:
            raise ExprError(f"function {fname!r} is not allowed; allowed functions: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise ExprError(f"{fname}(): keyword arguments are not allowed")
        lo, hi = _ARITY[fname]
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            raise ExprError(f"{fname}() takes {lo}{'' if hi == lo else (' or more' if hi is None else f' to {hi}')} argument(s), got {n}")
        if fname in ("missing", "param", "lookup"):
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                raise ExprError(f"{fname}() needs a quoted name as its first argument")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise ExprError("*args are not allowed")
            _check(a, depth + 1)
        return
    if isinstance(node, ast.Name):
        if not isinstance(node.ctx, ast.Load):
            raise ExprError("assignment is not allowed")
        return
    if isinstance(node, ast.Constant):
        if node.value is None or not isinstance(node.value, (bool, int, float, str)):
            raise ExprError(f"literal {node.value!r} is not allowed (numbers, quoted text, True, False only)")
        if isinstance(node.value, float) and not math.isfinite(node.value):
            raise ExprError("a number too large to represent (it reads as infinity) is not allowed")
        return
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, depth + 1)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            raise ExprError("only 'not', unary minus and plus are allowed")
        _check(node.operand, depth + 1)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in BINARY_OPERATORS:
            raise ExprError(f"operator {type(node.op).__name__} is not allowed (+ - * / // % only)")
        _check(node.left, depth + 1)
        _check(node.right, depth + 1)
        return
    if isinstance(node, ast.Compare):
        _check(node.left, depth + 1)
        for op, comp in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(comp, (ast.Tuple, ast.List)) or not comp.elts:
                    raise ExprError("'in' needs a literal list: x in (1, 2, 3)")
                for e in comp.elts:
                    if not isinstance(e, ast.Constant) or isinstance(e.value, bool) or e.value is None:
                        raise ExprError("'in' lists may only hold numbers or quoted text")
            elif not isinstance(op, COMPARISONS):
                raise ExprError(f"comparison {type(op).__name__} is not allowed")
            else:
                _check(comp, depth + 1)
        return
    if isinstance(node, ast.IfExp):
        for part in (node.test, node.body, node.orelse):
            _check(part, depth + 1)
        return
    raise ExprError(f"{type(node).__name__} is not allowed in expressions")


def var_names(tree: ast.AST) -> list[str]:
    """Variable names referenced in a parsed tree, in order of first appearance (function names excluded)."""
    out: list[str] = []

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.Call):
            for a in node.args:
                walk(a)
            return
        if isinstance(node, ast.Name) and node.id not in out:
            out.append(node.id)
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(tree)
    return out


def referenced_names(text: str) -> list[str]:
    """Variable names an expression references, in order of first appearance."""
    return list(_referenced(text)) if isinstance(text, str) else var_names(parse(text))


@lru_cache(maxsize=8192)
def _referenced(text: str) -> tuple[str, ...]:
    return tuple(var_names(parse(text)))


def result_literals(text: str) -> list[object]:
    """Literals an expression can return as its value (to check against target codes)."""
    tree = parse(text)
    out: list[object] = []

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            out.append(node.value)
        elif (folded := _text_of(node)) is not None:  # concat('employed', 1): 'employed1'
            out.append(folded)
        elif isinstance(node, ast.IfExp):
            walk(node.body)
            walk(node.orelse)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "case":
            args = node.args
            for i in range(1, len(args), 2):
                walk(args[i])
            if len(args) % 2 == 1:
                walk(args[-1])

    walk(tree)
    return out


_TEXT_FUNCTIONS = {"concat", "str", "upper", "lower", "trim"}


def _text_of(node: ast.AST) -> str | None:
    """The text a call of text functions over literals only always gives (``concat('a', 1)`` → ``'a1'``), as
    the compiled SQL gives it; None for anything else."""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            return None
        if isinstance(v, float) and v.is_integer() and abs(v) < 9e18:
            v = int(v)
        return v if isinstance(v, str) else str(v)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _TEXT_FUNCTIONS):
        return None
    fname = node.func.id
    if fname not in ("concat", "str") and not (isinstance(node.args[0], ast.Call) or
                                               isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return None  # upper(1) does not compile: not a value it gives
    parts = [_text_of(a) for a in node.args]
    if any(p is None for p in parts):
        return None
    first = parts[0] or ""
    return ("".join(p or "" for p in parts) if fname in ("concat", "str") else
            first.upper() if fname == "upper" else first.lower() if fname == "lower" else first.strip(" "))


def compared_literals(text: str) -> list[tuple[str, object]]:
    """(name, literal) for every comparison of a plain name with a literal (``x == 'a'``, ``'a' != x``,
    ``x in ('a', 'b')``): the literals to check against the variable's codes."""
    out: list[tuple[str, object]] = []
    for node in ast.walk(parse(text)):
        if not isinstance(node, ast.Compare):
            continue
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            if isinstance(left, ast.Name) and isinstance(right, (ast.Tuple, ast.List)):
                out.extend((left.id, e.value) for e in right.elts if isinstance(e, ast.Constant))
            elif isinstance(left, ast.Name) and isinstance(right, ast.Constant):
                out.append((left.id, right.value))
            elif isinstance(left, ast.Constant) and isinstance(right, ast.Name):
                out.append((right.id, left.value))
            left = right
    return out


_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b}


def arithmetic_value(text: str, x: float) -> float | None:
    """The value at ``x`` of an arithmetic expression of ``x`` (a range rule's ``transform``: numbers, ``x``,
    + - * / and signs); None for any other expression (a function, another name) or an undefined value."""
    def value(node: ast.expr) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id == "x":
            return float(x)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            return _ARITHMETIC[type(node.op)](value(node.left), value(node.right))
        raise ExprError("not arithmetic")

    try:
        result = value(parse(text))
    except (ExprError, ZeroDivisionError, OverflowError):
        return None
    return result if math.isfinite(result) else None
