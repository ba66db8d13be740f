"""Determinism and conservation: same inputs → identical harmonised content; every row and code accounted for.

(`--jobs` equality is tested in tests/test_pipeline_jobs.py.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from harmonise.cli import main
from tests.conftest import built_once, declared_waves, waves_of

ROOT = Path(__file__).resolve().parents[1]
# every table, minus the columns that say *when* the build ran
EXPORT = {
    "respondents": "*", "harmonisation_report": "*", "conservation": "*", "lineage": "*", "validation_failures": "*",
    "compiled_sql": "*", "schema_variables": "*", "value_labels": "*", "missing_reasons": "*",
    "sources": "* EXCLUDE (built_at)", "build_info": "*",
}


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two builds of the same TIES and ICS fixtures, once per run."""
    from harmonise.fixtures import generate

    def make(tmp: Path) -> None:
        generate(ROOT, tmp / "data", survey="ties", rows=300)
        generate(ROOT, tmp / "data", survey="ics", rows=200)
        for name in ("a.duckdb", "b.duckdb"):
            res = CliRunner().invoke(main, ["--project", str(ROOT), "build", "--data", str(tmp / "data"),
                                            "--db", str(tmp / name)])
            assert res.exit_code == 0, res.output

    tmp = built_once(tmp_path_factory, "determinism", make)
    return tmp / "a.duckdb", tmp / "b.duckdb"


def export_digests(db: Path) -> dict[str, str]:
    """sha256 of each table's rows, ordered by every column, as text."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table, cols in EXPORT.items():
            where = " WHERE key <> 'built_at'" if table == "build_info" else ""
            rows = con.execute(f"SELECT {cols} FROM {table}{where} ORDER BY ALL").fetchall()
            h = hashlib.sha256()
            for r in rows:
                h.update(repr(r).encode())
                h.update(b"\n")
            out[table] = f"{len(rows)}:{h.hexdigest()}"
        return out
    finally:
        con.close()


def test_same_inputs_same_content(builds: tuple[Path, Path]) -> None:
    a, b = export_digests(builds[0]), export_digests(builds[1])
    assert a == b
    assert a["respondents"].startswith(f"{300 * len(waves_of('ties')) + 200 * len(waves_of('ics'))}:")


def test_conservation_is_stored_and_holds(builds: tuple[Path, Path]) -> None:
    con = duckdb.connect(str(builds[0]), read_only=True)
    try:
        rows = con.execute("SELECT survey, wave, count(*), min(rows_in), max(rows_in), bool_and(ok), "
                           "bool_and(rows_in = rows_out) FROM conservation GROUP BY ALL ORDER BY ALL").fetchall()
        targets = con.execute("SELECT count(*) FROM schema_variables").fetchone()[0]  # type: ignore[index]
        assert [r[0] for r in rows] == sorted(s for s, _ in declared_waves() if s in ("ics", "ties"))
        for survey, wave, n_targets, lo, hi, ok, equal in rows:
            n = con.execute("SELECT count(*) FROM respondents WHERE survey = ? AND wave = ?",
                            [survey, wave]).fetchone()[0]  # type: ignore[index]
            assert (lo, hi, ok, equal) == (n, n, True, True)
            assert targets - 4 <= n_targets <= targets  # key columns set by harmonise need no accounting
        # the report's counts add up to the rows of every target, and each line has one outcome
        bad = con.execute("""
            SELECT c.survey, c.wave, c.target, c.rows_in, sum(h.n) FROM conservation c
            JOIN harmonisation_report h USING (survey, wave, target)
            GROUP BY ALL HAVING sum(h.n) <> c.rows_in""").fetchall()
        assert bad == []
        both = con.execute("SELECT count(*) FROM harmonisation_report "
                           "WHERE (target_value IS NULL) = (missing_reason IS NULL)").fetchone()
        assert both == (0,)
        # a recoded source code lands in exactly one target code or missing reason
        split = con.execute("""
            SELECT h.survey, h.wave, h.target, h.source_code, count(*) FROM harmonisation_report h
            JOIN lineage l USING (survey, wave, target) WHERE l.kind = 'map'
            GROUP BY ALL HAVING count(*) > 1""").fetchall()
        assert split == []
    finally:
        con.close()


def test_report_counts_match_the_stored_values(builds: tuple[Path, Path]) -> None:
    con = duckdb.connect(str(builds[0]), read_only=True)
    try:
        pairs = con.execute("SELECT survey, target FROM harmonisation_report GROUP BY ALL "
                            "HAVING bool_and(coalesce(target_value, '') <> '*') ORDER BY ALL").fetchall()
        assert {("ties", "sex"), ("ics", "country"), ("ties", "labour_status")} <= set(pairs)
        missing_col = dict(con.execute("SELECT name, missing_column FROM schema_variables").fetchall())
        for survey, t in pairs:
            miss = f'"{missing_col[t]}"' if missing_col[t] else "NULL::VARCHAR"
            stored = con.execute(f'SELECT CAST("{t}" AS VARCHAR), {miss}, count(*) FROM respondents '
                                 "WHERE survey = ? GROUP BY ALL ORDER BY ALL", [survey]).fetchall()
            report = con.execute("SELECT target_value, missing_reason, sum(n)::BIGINT FROM harmonisation_report "
                                 "WHERE survey = ? AND target = ? GROUP BY ALL ORDER BY ALL", [survey, t]).fetchall()
            assert stored == report, (survey, t)
        assert len(pairs) > 40
    finally:
        con.close()


def test_a_run_spares_what_discovery_read_from_the_collector_and_gives_the_freeze_back() -> None:
    """api.spared_by_collector: the spared block runs with the collector paused; what is alive at its end is
    frozen to the end of the outer block, and only when nothing was frozen before (the caller's freeze, like
    this test worker's, stays as it was)."""
    import gc

    from harmonise.api import spared_by_collector

    before = gc.get_freeze_count()
    gc.unfreeze()  # as in a command: nothing frozen
    try:
        with spared_by_collector() as sparing:
            assert gc.get_freeze_count() == 0
            with sparing():
                assert not gc.isenabled()
                made = [[i] for i in range(1000)]
            assert gc.isenabled()
            frozen = gc.get_freeze_count()
            assert frozen > 1000 and len(made) == 1000
            with sparing():  # once
                pass
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == 0
        gc.freeze()  # as in a caller that freezes
        kept = gc.get_freeze_count()
        with spared_by_collector() as sparing:
            extra = [[i] for i in range(1000)]  # alive at the block's end: frozen only if it froze
            with sparing():
                assert not gc.isenabled()
            assert gc.isenabled()
        assert 0 < gc.get_freeze_count() <= kept and len(extra) == 1000  # not unfrozen, nothing added
        gc.disable()  # a caller that paused the collector finds it paused
        with spared_by_collector() as sparing, sparing():
            pass
        assert not gc.isenabled()
        gc.enable()
    finally:
        gc.enable()
        gc.unfreeze()
        if before:
            gc.freeze()


def test_work_alongside_a_block_runs_on_its_own_cursor_and_its_error_is_raised_after_the_block() -> None:
    """A build writes its lookup tables while DuckDB checks and estimates the waves harmonised afresh on a
    cursor (api._alongside, decision 56): the work's error fails the build, after the block; an error of
    the block itself is the one raised."""
    from harmonise.api import _alongside

    con = duckdb.connect()
    try:
        seen: list[object] = []
        with _alongside(con, lambda cur: seen.append(cur.execute("SELECT 42").fetchall())):
            seen.append("block")
        assert sorted(map(str, seen)) == ["[(42,)]", "block"]
        with pytest.raises(duckdb.CatalogException, match="missing"), \
                _alongside(con, lambda cur: cur.execute("SELECT * FROM missing")):
            pass
        with pytest.raises(KeyError), _alongside(con, lambda cur: cur.execute("SELECT * FROM missing")):
            raise KeyError("the block's")
    finally:
        con.close()
