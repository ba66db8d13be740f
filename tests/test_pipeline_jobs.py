"""Issue 8: files harmonised in parallel give the same database; validation of distinct value pairs."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, run

from harmonise import connect
from harmonise.checks import frame
from harmonise.checks.frame import SMALL, validate_profile
from harmonise.outdir import MANIFEST
from harmonise.spec.project import load_project

DIGESTS = (
    "SELECT (SELECT count(*) FROM respondents), "
    "(SELECT md5(string_agg(r::VARCHAR, '|' ORDER BY r::VARCHAR)) FROM respondents r), "
    "(SELECT md5(string_agg(h::VARCHAR, '|' ORDER BY h::VARCHAR)) FROM harmonisation_report h), "
    "(SELECT md5(string_agg(c::VARCHAR, '|' ORDER BY c::VARCHAR)) FROM conservation c), "
    "(SELECT md5(string_agg(l::VARCHAR, '|' ORDER BY l::VARCHAR)) FROM lineage l), "
    "(SELECT string_agg(survey || wave || sha256 || rows, ',' ORDER BY survey, wave) FROM sources)"
)


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three files of two crosswalks (ESS's first and last wave, EVS's first): as many files as workers and
    one more, so a worker harmonises two; every declared wave would only repeat the same code."""
    from harmonise.fixtures import generate

    out = tmp_path_factory.mktemp("fx")
    crosswalks = load_project(ROOT).crosswalks
    ess, evs = [w.wave for w in crosswalks["ess"].waves], [w.wave for w in crosswalks["evs"].waves]
    for survey, wave in (("ess", ess[0]), ("ess", ess[-1]), ("evs", evs[0])):
        generate(ROOT, out, survey=survey, wave=wave, rows=200, editions=False)
    return out


def _digest(db: Path) -> tuple[object, ...]:
    con = connect(db)
    try:
        return con.execute(DIGESTS).fetchone()  # type: ignore[return-value]
    finally:
        con.close()


@pytest.mark.slow
def test_same_database_whatever_the_number_of_jobs(fixture_files: Path, tmp_path: Path) -> None:
    digests = []
    for jobs in ("1", "2"):
        db = tmp_path / f"jobs{jobs}.duckdb"
        code, out, err = run("build", "--data", str(fixture_files), "--db", str(db), "--jobs", jobs)
        assert code == 0, err
        assert out.count(" rows from ") == len([p for p in fixture_files.rglob("*")
                                                     if p.is_file() and p.name != MANIFEST])
        digests.append(_digest(db))
    assert digests[0] == digests[1]
    assert digests[0][0] == 200 * len(digests[0][5].split(","))  # type: ignore[union-attr]


def test_jobs_must_be_positive(fixture_files: Path, tmp_path: Path) -> None:
    code, _, err = run("build", "--data", str(fixture_files), "--db", str(tmp_path / "x.duckdb"), "--jobs", "0")
    assert code == 2
    assert "Invalid value for '--jobs': 0 is not in the range x>=1." in err


def _profile(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["target", "v_text", "v_num", "v_bool", "reason", "n", "first_row"])


def test_validate_profile_reports_each_failing_pair_with_rows_and_count() -> None:
    project = load_project(ROOT)
    schema, tables = project.schema, project.tables
    assert schema is not None
    ok = [("labour_status", "employed", None, None, None, 40, 1), ("labour_status", None, None, None, "refused", 2, 7)]
    bad = [("labour_status", "retired-ish", None, None, None, 3, 12),   # not a declared code
           ("labour_status", "employed", None, None, "refused", 1, 30)]  # value and reason both set
    ages = [("age", None, float(a), None, None, 1, 100 + a) for a in range(SMALL + 5)]  # a large group of its own
    fc = validate_profile(_profile(ok + bad + ages), schema, tables)
    got = sorted((r.column, r.failure_case, r.source_row, r.n) for r in fc.itertuples())
    over = [("age", str(float(a)), 100 + a, 1) for a in range(121, SMALL + 5)]
    assert got == sorted([("labour_status", "retired-ish", 12, 3), ("labour_status", "employed", 30, 1),
                          ("labour_status_missing", "refused", 30, 1), *over])
    assert set(fc.loc[fc["column"] == "age", "check"]) == {"in_range(0.0, 120.0)"}
    assert validate_profile(_profile(ok + ages[:121]), schema, tables).empty


def test_kept_verdicts_are_those_pandera_gives_and_a_changed_profile_is_validated_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    project = load_project(ROOT)
    schema, tables = project.schema, project.tables
    assert schema is not None
    bad = [("labour_status", "retired-ish", None, None, None, 3, 12)]
    text_none = [("labour_status", "None", None, None, None, 3, 12)]  # the text "None", not a null
    null = [("labour_status", None, None, None, None, 3, 12)]  # neither value nor reason: fails
    fresh = [validate_profile(_profile(rows), schema, tables) for rows in (bad, text_none, null)]
    monkeypatch.setattr(frame, "_COLUMNS", {})
    kept = [validate_profile(_profile(rows), schema, tables) for rows in (bad, text_none, null)]
    assert len(frame._COLUMNS) == 3  # three different pairs of the one variable: three verdicts
    kept[0].loc[0, "n"] = 999  # a caller changing its copy changes nothing kept
    again = [validate_profile(_profile(rows), schema, tables) for rows in (bad, text_none, null)]
    assert len(frame._COLUMNS) == 3
    for a, b in zip(fresh, again):
        pd.testing.assert_frame_equal(a, b)
    assert sorted(fresh[1]["failure_case"]) == ["None"] and fresh[2]["failure_case"].tolist() != ["None"]
    edited = schema.model_copy(deep=True)  # a declaration edited: validated again, against it
    edited.variable("labour_status").codes["retired-ish"] = "Retired, more or less"
    assert validate_profile(_profile(bad), edited, tables).empty
    assert len(frame._COLUMNS) == 4


def _parts(folder: Path, groups: int, rows: int) -> list[Path]:
    """A worker's database file per group: table ``t`` of ``rows`` rows (group, row)."""
    import duckdb

    out = []
    for g in range(1, groups + 1):
        path = folder / f"job-{g}.duckdb"
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE t (g INTEGER, i INTEGER)")
        con.execute(f"INSERT INTO t SELECT {g}, i FROM range({rows}) r(i)")
        con.close()
        out.append(path)
    return out


def test_a_group_merged_before_the_one_ahead_of_it_is_stored_after_it(tmp_path: Path) -> None:
    """Workers' files are merged as soon as each is written, in transactions committed in the groups' order
    (decision 56): the second group, merged first, follows the first in the table (rows of more than one
    row group, written to the file before the commit)."""
    from concurrent.futures import ThreadPoolExecutor

    from harmonise.pipeline.workers import Merge
    from harmonise.store.atomic import ROW_GROUP_ROWS, open_build

    rows = ROW_GROUP_ROWS + 5_000
    first, second = _parts(tmp_path, 2, rows)
    con = open_build(tmp_path / "build.duckdb")
    try:
        con.execute("CREATE TABLE t (g INTEGER, i INTEGER)")
        with ThreadPoolExecutor(2) as merger:
            later = Merge(con, second, merger)
            later.future.result()  # merged before the first group is even done
            Merge(con, first, merger).commit()
            later.commit()
        assert con.execute("SELECT g, i FROM t").fetchall() == [(g, i) for g in (1, 2) for i in range(rows)]
    finally:
        con.close()


def test_a_merge_left_uncommitted_is_rolled_back(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from harmonise.pipeline.workers import Merge
    from harmonise.store.atomic import open_build

    (part,) = _parts(tmp_path, 1, 1_000)
    con = open_build(tmp_path / "build.duckdb")
    try:
        con.execute("CREATE TABLE t (g INTEGER, i INTEGER)")
        with ThreadPoolExecutor(1) as merger:
            merge = Merge(con, part, merger)
            merge.future.result()
            merge.close()  # a failed build
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name LIKE 'merge_%'"
                           ).fetchall() == [(0,)]
    finally:
        con.close()


def test_workers_folders_a_killed_validate_left_are_removed_by_the_next(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`validate --data --jobs N` killed by SIGKILL (or the OOM killer) left `harmonise-jobs-*` in the temporary
    folder, holding the workers' DuckDB files of harmonised microdata, for good: nothing removed them."""
    import subprocess
    import sys
    import tempfile

    import duckdb

    from harmonise.pipeline.workers import workers_folder

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = tmp_path / f"harmonise-jobs-{gone.pid}-ab12cd_e"
    orphan.mkdir()
    (orphan / "job-0.duckdb").write_bytes(b"microdata")
    alive = tmp_path / f"harmonise-jobs-{os.getpid()}-zz12cd_e"  # a running validate's
    alive.mkdir()
    other = tmp_path / f"harmonise-jobs-{gone.pid}-x"  # not a name harmonise gives
    other.mkdir()
    target = tmp_path / "kept"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    (tmp_path / f"harmonise-jobs-{gone.pid}-11111111").symlink_to(target)  # a link is never followed or removed
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    con = duckdb.connect(":memory:")
    with workers_folder(con) as folder:
        assert folder.parent == tmp_path and folder.name.startswith(f"harmonise-jobs-{os.getpid()}-")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [alive.name, other.name, "kept", f"harmonise-jobs-{gone.pid}-11111111", folder.name])
    con.close()
    assert (target / "keep.txt").read_text() == "mine" and not folder.exists()


class _Small:
    """What :func:`batches` reads of a prepared file: whether it is small, its batch key and its rows."""

    def __init__(self, key: str, rows: int, small: bool = True) -> None:
        from types import SimpleNamespace

        self.key, self.small = key, small
        self.src = SimpleNamespace(meta=SimpleNamespace(rows=rows))

    def batch_key(self) -> tuple[object, ...]:
        return (self.key,)


@pytest.mark.parametrize(("files", "groups"), [
    (30, [30]),  # 60,000 rows: 25 + 5 files were two groups; together 1.2 × the limit
    (31, [31]),  # 62,000 rows: 1.24 × the limit
    (32, [25, 7]),  # 64,000 rows: over 1.25 × the limit, the tail stays a group of its own
    (50, [25, 25]),
    (55, [25, 30]),  # the last two: 50,000 + 10,000 joined
    (12, [12]),
], ids=["30", "31", "32", "50", "55", "12"])
def test_a_runs_small_tail_joins_the_group_before_it(files: int, groups: list[int]) -> None:
    from harmonise.pipeline.batch import batches

    got = batches([_Small("a", 2_000) for _ in range(files)], 50_000)  # type: ignore[misc]
    assert [len(g) for g in got] == groups


def test_a_tail_never_joins_across_runs_or_a_large_file() -> None:
    from harmonise.pipeline.batch import batches

    run_a = [_Small("a", 2_000) for _ in range(26)]  # 25 + 1
    big = _Small("a", 60_000, small=False)
    run_b = [_Small("b", 2_000) for _ in range(3)]
    got = batches([*run_a, big, *run_b, _Small("a", 2_000)], 50_000)  # type: ignore[list-item]
    assert [len(g) for g in got] == [26, 1, 3, 1]
    assert got[1] == [big] and got[2] == run_b
