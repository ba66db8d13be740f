"""SQL summarising a harmonised chunk ``h``: one row per variable and distinct (source code, value, reason).

The profile feeds both the harmonisation report (every source code → target
value or missing reason, counted) and pandera validation (each distinct value
and reason pair, with its row count and first source row), so the harmonised
rows are scanned once by DuckDB and never copied into pandas.
"""

from __future__ import annotations

from harmonise.compile.sql import CompiledWave
from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.spec.resolve import WavePlan
from harmonise.spec.schema import TargetSchema

# types whose report shows '*' for "a value" rather than the value itself (unless mapped code by code)
STARRED = ("integer", "number", "string", "country", "language", "city")
CODED = ("country", "language", "city")
COUNTS = "count(*)::BIGINT AS n, min(source_row)::BIGINT AS first_row"


def profile_sql(compiled: CompiledWave, plan: WavePlan, schema: TargetSchema, relation: str = "h",
                by: str | None = None) -> str:
    """One ``SELECT … GROUP BY ALL`` per schema variable, joined by UNION ALL.

    A target with a source code groups by its raw source columns first and renders the code as
    text once per distinct value (``compiled.codes``), so no row pays for the rendering; the
    rows are not unique in (code, value, reason), and readers fold them with ``sum(n)``.
    ``by``: an SQL expression over the relation (the file a row came from, when one relation holds
    several files' rows), grouped by too and selected last as ``file``; without it ``file`` is 0.
    """
    group = by or "0"
    parts = []
    for var in schema.variables:
        tp = plan.targets.get(var.name)
        starred = var.type in STARRED and not (tp is not None and tp.kind in ("map", "table") and var.type in CODED)
        num = var.type in ("integer", "number")
        reason = quote_ident(var.missing_column) if var.has_missing_column else "NULL::VARCHAR"
        code = compiled.codes.get(var.name)
        if code is not None:
            raw = ", ".join(f"{quote_ident('src:' + c)} AS {quote_ident(c)}" for c in code[1])
            rel = (f"(SELECT {raw + ', ' if raw else ''}{quote_ident(var.name)} AS __v, {reason} AS __r, "
                   f"{group} AS __f, {COUNTS} FROM {relation} GROUP BY ALL) src")
            v, source, reason, counts, file = "__v", f"CAST({code[0]} AS VARCHAR)", "__r", "n, first_row", "__f"
        else:
            rel, v, source, counts, file = relation, quote_ident(var.name), "NULL::VARCHAR", COUNTS, group
        shown = f"CASE WHEN {v} IS NULL THEN NULL ELSE '*' END" if starred else f"CAST({v} AS VARCHAR)"
        text = f"CAST({v} AS VARCHAR)" if not num and var.type != "boolean" else "NULL::VARCHAR"
        sel = (f"SELECT {sql_literal(var.name)} AS target, {source} AS source_code, {shown} AS report_value, "
               f"{text} AS v_text, {f'CAST({v} AS DOUBLE)' if num else 'NULL::DOUBLE'} AS v_num, "
               f"{f'CAST({v} AS BOOLEAN)' if var.type == 'boolean' else 'NULL::BOOLEAN'} AS v_bool, "
               f"{reason} AS reason, {counts}, {file} AS file FROM {rel}")
        parts.append(sel if code is not None else sel + " GROUP BY ALL")
    return "\nUNION ALL ".join(parts)


def report_insert(compiled: CompiledWave, stage: str = "report_stage", relation: str = "prof") -> str:
    """Fold a chunk's profile into the report stage (reported targets only), by file."""
    names = ", ".join(sql_literal(n) for n in compiled.report_targets) or "NULL"
    return (f"INSERT INTO {stage} SELECT file, target, source_code, report_value, reason, sum(n)::BIGINT FROM {relation} "
            f"WHERE target IN ({names}) GROUP BY ALL")


# The distinct (value, reason) pairs pandera validates, by file (``first_row`` is then a row of that file).
VALIDATION_SELECT = ("SELECT target, v_text, v_num, v_bool, reason, file, sum(n)::BIGINT AS n, "
                     "min(first_row)::BIGINT AS first_row FROM prof GROUP BY ALL ORDER BY target, first_row")
