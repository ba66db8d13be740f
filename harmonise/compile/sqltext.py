"""SQL text: quoting identifiers and writing literals (every SQL string harmonise writes uses these)."""

from __future__ import annotations

import math

from harmonise.spec.expr import ExprError


def sql_literal(value: object) -> str:
    """A SQL literal for a Python scalar (strings with quotes doubled; infinities and NaN as DOUBLE casts)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            # a data file may declare one (SPSS ``LOWEST THRU 5``, or a crafted header): repr() would write
            # ``inf``/``nan``, which DuckDB reads as a column name
            return f"CAST('{value!r}' AS DOUBLE)"
        if isinstance(value, float) and value == 0 and math.copysign(1, value) < 0:
            return "CAST('-0.0' AS DOUBLE)"  # -0.0 is read as a DECIMAL, whose zero has no sign
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ExprError(f"unsupported literal {value!r}")


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes (quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'
