"""SQL text: quoting identifiers and writing literals (every SQL string harmonise writes uses these)."""

from __future__ import annotations

import math

from harmonise.spec.expr import ExprError


def sql_literal(value: object) -> str:
    """A SQL literal for a Python scalar (strings with quotes doubled)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ExprError(f"non-finite number {value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ExprError(f"unsupported literal {value!r}")


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes (quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'
