"""compile.sql: a wave's statement computes each map or table target's code position, and each expression
input's clean value and reason, once (the positions CTE), and gives what each written inline gives."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from conftest import ROOT

from harmonise.compile.sql import (
    INPUT_PREFIX,
    LIST_INLINE_MAX,
    LIST_PREFIX,
    LISTS,
    POSITION_PREFIX,
    CompiledWave,
    WaveCompiler,
    plan_and_compile,
)
from harmonise.readers.files import SourceFile, open_source
from harmonise.spec.project import Project, load_project
from harmonise.spec.resolve import WavePlan
from harmonise.spec.schema import Variable


def _round_8(ess8: Path) -> tuple[Project, SourceFile, WavePlan, CompiledWave]:
    """The project, the real ESS8 FR file opened, and ESS round 8's plan and statement for it (compiled clean)."""
    project = load_project(ROOT)
    cw = project.crosswalks["ess"]
    wave = next(w for w in cw.waves if w.wave == "8")
    src = open_source(ess8, isolate=False)
    plan, compiled = plan_and_compile(cw, wave, project, src.meta)
    assert not compiled.errors
    return project, src, plan, compiled


def test_each_code_position_is_written_once_and_gives_the_inline_lookups_values(ess8: Path) -> None:
    project, src, plan, compiled = _round_8(ess8)
    assert project.schema is not None
    looked_up = [v for v in project.schema.variables
                 if (tp := plan.targets.get(v.name)) is not None and tp.kind in ("map", "table") and tp.values]
    assert len(looked_up) >= 10
    for var in looked_up:  # defined once in p0; read by the value, and by the reason (code known, why not)
        alias = f'"{POSITION_PREFIX}{var.name}"'
        reads = 1 if var.required else 3  # a required target has no missing-reason column
        assert compiled.sql.count(f"AS {alias}") == 1 and compiled.sql.count(f"src.{alias}") == reads, var.name

    _equal_inline(project, plan, src, compiled, looked_up, POSITION_PREFIX)


def _equal_inline(project: Project, plan: WavePlan, src: SourceFile, compiled: CompiledWave, targets: list[Variable],
                  prefix: str) -> None:
    """Each of ``targets`` gives, row for row, what it gives compiled outside ``compile()`` (no positions CTE: its
    lookups and inputs written inline, so no ``prefix`` column)."""
    assert project.schema is not None
    frame = next(src.chunks(sorted(compiled.sources)))
    con = duckdb.connect()
    con.register("src", frame)
    inline = WaveCompiler(plan, src.meta, project.schema, project.tables)
    for var in targets:
        value, reason, _ = inline.direct(var, plan.targets[var.name])
        assert prefix not in value + reason
        why, stored = ("NULL", "NULL") if var.required else (reason, f'"{var.missing_column}"')
        expected = con.execute(f"SELECT src.__row, {value}, {why} FROM src ORDER BY 1").fetchall()
        got = con.execute(f'SELECT source_row, "{var.name}", {stored} FROM ({compiled.sql}) ORDER BY 1').fetchall()
        assert got == expected, var.name


def test_each_expression_input_is_written_once_and_the_targets_equal_inline_inputs(ess8: Path) -> None:
    """An expression's input (a source variable's clean value, and its missing reason) is a column of the
    positions CTE, written once however many expressions and reasons read it: inlined, ESS round 8's idno was
    written five times in respondent_id alone. Each expression target gives what it gives with its inputs inline."""
    project, src, plan, compiled = _round_8(ess8)
    assert project.schema is not None
    sql = compiled.sql
    defined = re.findall(rf'AS "({INPUT_PREFIX}\d+)"', sql)
    assert len(defined) >= 20 and len(set(defined)) == len(defined)
    assert all(sql.count(f'src."{alias}"') >= 1 for alias in defined)  # each one read
    # idno's clean value is written once (in p0), though respondent_id reads it five times; its reason, which
    # nothing reads (respondent_id is required: it has no reason column), is left out
    assert sql.count('WHEN src."idno" IS NULL THEN') == 1
    exprs = [v for v in project.schema.variables if (tp := plan.targets.get(v.name)) is not None and tp.kind == "expr"]
    assert len(exprs) >= 10
    _equal_inline(project, plan, src, compiled, exprs, INPUT_PREFIX)


ITEM = r"(?:'(?:[^']|'')*'|-?[0-9.e+-]+|NULL|TRUE|FALSE)"
LITERAL = re.compile(rf"\[{ITEM}(?:, {ITEM})*\]")  # a list literal of SQL constants


def test_each_long_list_literal_is_written_once_in_the_lists_cte(ess8: Path) -> None:
    """A code list, its values and a code table's columns: written once, as a column of the lists CTE
    (ESS round 8's country lists were three quarters of its statement); short lists stay inline."""
    project = load_project(ROOT)
    assert project.schema is not None
    cw = project.crosswalks["ess"]
    wave = next(w for w in cw.waves if w.wave == "8")
    _, compiled = plan_and_compile(cw, wave, project, open_source(ess8, isolate=False).meta)
    sql = compiled.sql
    literals = LITERAL.findall(sql)
    long = [lit for lit in literals if len(lit) >= LIST_INLINE_MAX]
    assert len(long) >= 10 and len(set(long)) == len(long)
    assert sql.startswith(f"WITH {LISTS} AS (SELECT [")
    head = sql.split("\n", 1)[0]
    assert all(lit in head for lit in long)  # every long literal is in the lists CTE, none elsewhere
    assert all(len(lit) < LIST_INLINE_MAX for lit in LITERAL.findall(sql.split("\n", 1)[1]))
    columns = re.findall(rf'{LISTS}\."({LIST_PREFIX}\d+)"', sql)
    assert sorted(set(columns)) == sorted(f"{LIST_PREFIX}{i}" for i in range(len(long)))  # each one read
