"""Checks across one respondent's harmonised values: a derived value its inputs contradict (a year of arrival
after the interview, or before birth) is stored as invalid by the schema's derivation, and said here, so that a
file's inconsistent rows are not left to be found in the missing-reason counts; and the schema's consistency
statements (``consistency:``: age and year of birth agree), whose contradicting rows are said."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harmonise.checks.expressions import expression_context
from harmonise.compile.expr import NameSQL, compile_expr
from harmonise.compile.sqltext import quote_ident
from harmonise.errors import Issue, more
from harmonise.spec.codetables import TableSet
from harmonise.spec.expr import EXPR_TYPES, ExprError, referenced_names
from harmonise.spec.schema import TargetSchema

if TYPE_CHECKING:
    import duckdb


def contradictions(con: duckdb.DuckDBPyConnection, schema: TargetSchema, table: str = "respondents") -> list[Issue]:
    """A note per survey-wave whose rows hold derived values stored as invalid although every input of the
    derivation is there: the inputs contradict each other (the derivation's own ``missing('invalid')``). A note:
    the values are stored as they should be (invalid, not guessed); the file's rows are what to check."""
    found: dict[tuple[str, str], list[tuple[str, list[str], int, list[str]]]] = {}
    for var in schema.variables:
        if var.derive is None or not var.has_missing_column:
            continue
        try:
            inputs = [n for n in referenced_names(var.derive.expr) if n in schema.names]
        except ExprError:  # said by the static checks
            continue
        present = " AND ".join(f"{quote_ident(n)} IS NOT NULL" for n in inputs) or "TRUE"
        rows = con.execute(f"SELECT survey, wave, count(*), list(DISTINCT source_file ORDER BY source_file) "
                           f"FROM {table} WHERE {quote_ident(var.missing_column)} = 'invalid' AND {present} "
                           "GROUP BY ALL ORDER BY ALL").fetchall()
        for survey, wave, n, files in rows:
            found.setdefault((survey, wave), []).append((var.name, inputs, n, files))
    out = []
    for (survey, wave), targets in found.items():
        files = sorted({f for *_, fs in targets for f in fs})
        shown = "; ".join(f"{name} in {n:,} row{'s' if n != 1 else ''} (from {', '.join(inputs)})"
                          for name, inputs, n, _ in targets)
        out.append(Issue(f"derived values stored as invalid where their inputs contradict each other: {shown}; in "
                         f"{', '.join(files[:5])}{more(len(files) - 5)}", code="contradictory-inputs",
                         severity="note", survey=survey, wave=wave, extra={"data_files": files},
                         hint="check those rows' values in the file (a year of arrival after the interview or before "
                              "the year of birth); the derivations are in mappings/schema.yaml"))
    return out


SHARE = 0.01  # above this share of the rows a statement judges, its contradictions are a warning, not a note


def inconsistent(con: duckdb.DuckDBPyConnection, schema: TargetSchema, tables: TableSet,
                 table: str = "respondents") -> list[Issue]:
    """An issue per consistency statement and survey-wave with rows that make it false, among the rows it judges
    (those where it is true or false: not unknown for a missing value it reads). A note when they are few (at most
    :data:`SHARE` of those rows: the file's own errors, stored as they are); a warning when more (a rule reading the
    wrong variable, or the wrong codes, shows in most rows)."""
    by_name = {v.name: v for v in schema.variables}

    def resolve(name: str) -> NameSQL:
        var = by_name[name]
        reason = quote_ident(var.missing_column) if var.has_missing_column else "NULL"
        return NameSQL(value=quote_ident(name), reason=reason, type=EXPR_TYPES[var.type])

    out = []
    for rule in schema.consistency:
        try:
            compiled = compile_expr(rule.expr, expression_context(resolve, schema, tables))
        except (ExprError, KeyError, ValueError, TypeError):  # said by the static checks
            continue
        if compiled.type != "boolean":
            continue
        false = f"NOT ({compiled.value})"
        rows = con.execute(
            f"SELECT survey, wave, count(*) FILTER (WHERE {false}), count({compiled.value}), "
            f"list(DISTINCT source_file ORDER BY source_file) FILTER (WHERE {false}), "
            f"min(respondent_id) FILTER (WHERE {false}) FROM {table} GROUP BY ALL ORDER BY ALL").fetchall()
        for survey, wave, n, judged, files, example in rows:
            if not n:
                continue
            inputs = ", ".join(compiled.refs)
            out.append(Issue(
                f"{rule.says} in {n:,} of the {judged:,} row(s) it judges (e.g. respondent {example}): "
                f"{rule.name} ({rule.expr}) is false there; in {', '.join(files[:5])}{more(len(files) - 5)}",
                code="inconsistent-values", severity="warning" if n > SHARE * judged else "note",
                survey=survey, wave=wave, extra={"data_files": files, "rows": n, "judged": judged},
                hint=f"the values are stored as the file has them; check those rows in the file, and if most rows "
                     f"are said, the rules of {inputs} (a variable read from the wrong source, or its codes); the "
                     "statement is in mappings/schema.yaml"))
    return out


def decimal_ids(con: duckdb.DuckDBPyConnection, table: str = "respondents") -> list[Issue]:
    """A warning per file whose respondent ids end in a whole number written with decimals (``GB-50095.0``): an id
    variable stored as text from a float; the ids are the text as it is, and do not match those of editions storing
    the variable as a number (``GB-50095``), nor a design file's."""
    rows = con.execute(f"SELECT survey, wave, source_file, count(*), min(respondent_id) FROM {table} "
                       r"WHERE regexp_matches(respondent_id, '[0-9]\.0+$') GROUP BY ALL ORDER BY ALL").fetchall()
    return [Issue(f"{name}: {n:,} respondent id(s) end in a whole number written with decimals (e.g. {example}): the "
                  "id variable is text made from a number; the ids are kept as the text is, and do not match those of "
                  "an edition (or a design file) storing it as a number", code="decimal-ids", severity="warning",
                  survey=survey, wave=wave, extra={"data_files": [name]},
                  hint="store the id variable as a number, or as text without the decimals, in the file")
            for survey, wave, name, n, example in rows]
