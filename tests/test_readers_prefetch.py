"""The forked chunk readers give exactly the frames of an in-process read; the insert thread's errors surface."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest
from conftest import ROOT

from harmonise.discover import discover
from harmonise.errors import InputError
from harmonise.pipeline import batch
from harmonise.readers.files import open_source
from harmonise.readers.prefetch import Prefetcher, can_prefetch, prefetched_chunks
from harmonise.spec.project import load_project
from harmonise.store.respondents import create_all

pytestmark = pytest.mark.skipif(not can_prefetch(), reason="needs fork and two cores")
ROWS = 2_345


def _frame(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"num": rng.integers(1, 6, rows).astype(float),
                         "miss": np.where(rng.random(rows) < 0.1, 99.0, rng.integers(0, 11, rows).astype(float)),
                         "text": rng.choice(["FR", "DE", "", "PL "], rows)})


def _write(path: Path, **kw: bool) -> Path:
    df = _frame()
    if path.suffix == ".dta":
        pyreadstat.write_dta(df, str(path))
    else:
        pyreadstat.write_sav(df, str(path), missing_ranges={"miss": [99]}, **kw)
    return path


@pytest.mark.parametrize(("name", "kw", "seekable"), [
    ("plain.sav", {}, True), ("rows.sav", {"row_compress": True}, False), ("z.zsav", {"compress": True}, False),
    ("stata.dta", {}, True)])
def test_prefetched_chunks_equal_the_in_process_read(tmp_path: Path, name: str, kw: dict[str, bool],
                                                      seekable: bool) -> None:
    src = open_source(_write(tmp_path / name, **kw))
    assert src.seekable() is seekable
    cols = ["num", "miss", "text"]
    expected = list(src.chunks(cols, 500))
    chunks = prefetched_chunks(src, cols, 500)
    assert isinstance(chunks, Prefetcher)
    assert len(chunks._procs) == (2 if seekable else 1)
    got = list(chunks)
    assert [len(c) for c in got] == [500, 500, 500, 500, 345]
    for a, b in zip(expected, got):
        pd.testing.assert_frame_equal(a, b)
    assert got[-1]["__row"].iloc[-1] == ROWS


def test_chunk_size_not_divisible_by_the_readers(tmp_path: Path) -> None:
    src = open_source(_write(tmp_path / "plain.sav"))
    got = pd.concat(list(Prefetcher(src, ["num", "text"], 333, readers=2)), ignore_index=True)
    pd.testing.assert_frame_equal(got, pd.concat(list(src.chunks(["num", "text"], 10_000)), ignore_index=True))


def test_reader_error_is_raised_not_hung(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.sav")
    src = open_source(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # the header survives, the data are cut
    with pytest.raises(InputError, match="truncated|corrupt|cannot read"):
        list(prefetched_chunks(src, ["num", "miss", "text"], 500))


def test_closing_a_partly_read_prefetcher_stops_its_readers(tmp_path: Path) -> None:
    src = open_source(_write(tmp_path / "plain.sav"))
    chunks = Prefetcher(src, ["num"], 100, readers=2)
    next(chunks)
    chunks.close()
    assert all(not p.is_alive() for p in chunks._procs)
    with pytest.raises(StopIteration):
        next(chunks)


def test_harmonising_with_and_without_readers_gives_the_same_database(ess8: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "PREFETCH_MIN_ROWS", 0)
    project = load_project(ROOT)
    (job,), _ = discover(project, [ess8])
    tables = {}
    for prefetch in (False, True):
        con = duckdb.connect(":memory:")
        assert project.schema is not None
        create_all(con, project.schema)
        out = batch.process(job, con, project, chunksize=700, prefetch=prefetch)
        assert out.rows == 2_070 and not [i for i in out.issues if i.severity == "error"]
        tables[prefetch] = [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                            for t in ("respondents", "harmonisation_report", "conservation", "validation_failures")]
        con.close()
    assert tables[True] == tables[False]


def test_a_failed_insert_stops_the_run_with_its_error(ess8: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer thread's error is raised in the harmonising thread, not lost or hung on."""
    monkeypatch.setattr(batch, "insert_select", lambda schema, relation, file_name: f"INSERT INTO no_such_table SELECT * FROM {relation}")
    project = load_project(ROOT)
    (job,), _ = discover(project, [ess8])
    con = duckdb.connect(":memory:")
    assert project.schema is not None
    create_all(con, project.schema)
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        batch.process(job, con, project, chunksize=700)
    assert con.execute("SELECT count(*) FROM respondents").fetchone() == (0,)
    con.close()


def test_rows_written_as_full_row_groups_equal_the_logged_ones(ess8: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A build file with row groups smaller than a chunk (written straight to the file, not through
    the write-ahead log) holds exactly the rows a default database holds; it spills beside itself."""
    from harmonise.store import atomic

    monkeypatch.setattr(atomic, "ROW_GROUP_ROWS", 2048)
    project = load_project(ROOT)
    (job,), _ = discover(project, [ess8])
    assert project.schema is not None
    content, groups = {}, {}
    for name, opener in (("default", lambda p: duckdb.connect(str(p))), ("row groups", atomic.open_build)):
        path = tmp_path / f"{name}.duckdb"
        con = opener(path)
        create_all(con, project.schema)
        out = batch.process(job, con, project, chunksize=2_070, prefetch=False)  # one chunk: a full row group + 22 rows
        assert out.rows == 2_070
        con.close()
        con = duckdb.connect(str(path), read_only=True)
        content[name] = con.execute("SELECT * FROM respondents ORDER BY source_row").fetchall()
        groups[name] = con.execute("SELECT row_group_id, max(count) FROM pragma_storage_info('respondents') "
                                   "WHERE column_id = 0 GROUP BY 1 ORDER BY 1").fetchall()
        con.close()
    assert groups == {"default": [(0, 2_070)], "row groups": [(0, 2_048), (1, 22)]}
    assert content["row groups"] == content["default"]
    con = atomic.open_build(tmp_path / "spill.duckdb")
    assert con.execute("SELECT current_setting('temp_directory')").fetchall() == [(f"{tmp_path / 'spill.duckdb'}.tmp",)]
    con.close()
