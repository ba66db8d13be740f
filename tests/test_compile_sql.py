"""compile.sql: a wave's statement computes each map or table target's code position once (the positions
CTE), and gives what each target's lookup written inline gives."""

from __future__ import annotations

from pathlib import Path

import duckdb
from conftest import ROOT

from harmonise.compile.sql import POSITION_PREFIX, WaveCompiler, plan_and_compile
from harmonise.readers.files import open_source
from harmonise.spec.project import load_project


def test_each_code_position_is_written_once_and_gives_the_inline_lookups_values(ess8: Path) -> None:
    project = load_project(ROOT)
    assert project.schema is not None
    cw = project.crosswalks["ess"]
    wave = next(w for w in cw.waves if w.wave == "8")
    src = open_source(ess8, isolate=False)
    plan, compiled = plan_and_compile(cw, wave, project, src.meta)
    assert not compiled.errors
    looked_up = [v for v in project.schema.variables
                 if (tp := plan.targets.get(v.name)) is not None and tp.kind in ("map", "table") and tp.values]
    assert len(looked_up) >= 10
    for var in looked_up:  # defined once in p0; read by the value, and by the reason (code known, why not)
        alias = f'"{POSITION_PREFIX}{var.name}"'
        reads = 1 if var.required else 3  # a required target has no missing-reason column
        assert compiled.sql.count(f"AS {alias}") == 1 and compiled.sql.count(f"src.{alias}") == reads, var.name

    frame = next(src.chunks(sorted(compiled.sources)))
    con = duckdb.connect()
    con.register("src", frame)
    inline = WaveCompiler(plan, src.meta, project.schema, project.tables)  # outside compile(): lookups inline
    for var in looked_up:
        value, reason, _ = inline.direct(var, plan.targets[var.name])
        assert POSITION_PREFIX not in value + reason
        why, stored = ("NULL", "NULL") if var.required else (reason, f'"{var.missing_column}"')
        expected = con.execute(f"SELECT src.__row, {value}, {why} FROM src ORDER BY 1").fetchall()
        got = con.execute(f'SELECT source_row, "{var.name}", {stored} FROM ({compiled.sql}) ORDER BY 1').fetchall()
        assert got == expected, var.name
