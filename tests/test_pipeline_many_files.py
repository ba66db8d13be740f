"""Issue 22.1: many small files — read by shared reader children, harmonised together per wave.

Harmonising a wave's small files together must give what harmonising them one at a time gives:
the same rows, provenance and findings per file (a pandera failure names its own file's rows and
count), whatever the number of files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, twice_unless_crashing

from harmonise import pipeline
from harmonise.discover import discover
from harmonise.pipeline import batch
from harmonise.pipeline.workers import group_rows
from harmonise.readers.isolation import ReaderCrashed, isolated_map
from harmonise.spec.project import Project, load_project
from harmonise.store.respondents import create_all

TABLES = ("respondents", "harmonisation_report", "conservation", "validation_failures", "lineage", "compiled_sql")


@pytest.fixture(scope="module")
def country_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three country files of the first ESS round and two of the last, as the ESS ships them."""
    from harmonise.fixtures import generate

    out = tmp_path_factory.mktemp("many")
    project = load_project(ROOT)
    waves = [w.wave for w in project.crosswalks["ess"].waves]
    data = out / "data"
    data.mkdir()
    for w, n in ((waves[0], 3), (waves[-1], 2)):
        countries = [str(k) for v in project.codebooks[("ess", w)].variables if v.name == "cntry" for k in v.labels]
        for i, country in enumerate(countries[:n]):
            made = generate(ROOT, out / f"gen-{w}-{country}", survey="ess", wave=w, rows=120 + 10 * i, seed=i + 1,
                            editions=False, countries=[country])
            shutil.move(str(made[0]), data / f"ESS{w}{country}.sav")
    return data


def _harmonise(project: Project, data: Path, threads: list[int] | None = None
               ) -> tuple[dict[str, list[tuple[object, ...]]], list[list[str]]]:
    """Every table the harmonising writes (in stored order), and each file's findings; ``threads``: gets
    DuckDB's threads setting after the harmonising (two before it)."""
    assert project.schema is not None
    jobs, _ = discover(project, [data])
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET threads = 2")
        create_all(con, project.schema)
        outcomes = pipeline.run_jobs(jobs, con, project)
        tables = {t: con.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
        if threads is not None:
            threads.append(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    finally:
        con.close()
    tables["sources"] = [(o.job.path.name, o.rows, o.sha256) for o in outcomes]  # type: ignore[misc]
    return tables, [[i.format() for i in o.issues] for o in outcomes]


def test_a_waves_small_files_together_give_what_each_alone_gives(country_files: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    project = load_project(ROOT)
    together = _harmonise(project, country_files)
    monkeypatch.setattr(batch, "PREFETCH_MIN_ROWS", 0)  # no file is small: each is harmonised alone
    alone = _harmonise(project, country_files)
    assert together == alone
    assert [r[0] for r in together[0]["sources"]] == sorted(p.name for p in country_files.iterdir())


def test_fewer_rows_than_the_one_thread_limit_run_on_one_thread_with_the_same_result(
        country_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 48: 640 rows in all run DuckDB on one thread; at the limit the setting is left alone."""
    project = load_project(ROOT)
    threads: list[int] = []
    one = _harmonise(project, country_files, threads)
    rows = sum(int(r[1]) for r in one[0]["sources"])  # type: ignore[call-overload]
    assert rows == 120 + 130 + 140 + 120 + 130 < pipeline.ONE_THREAD_ROWS
    monkeypatch.setattr(pipeline, "ONE_THREAD_ROWS", rows)  # not fewer rows than the limit
    two = _harmonise(project, country_files, threads)
    assert threads == [1, 2]
    assert one == two


@pytest.mark.parametrize(("small", "workers", "rows"), [
    (60_000, 2, 30_000),  # one wave's 30 files of 2,000 rows: two groups of 15 files, not 25 and 5
    (60_001, 2, 30_001),
    (580_000, 2, pipeline.CHUNK_ROWS),  # enough for every worker: groups as large as a chunk
    (60_000, 1, pipeline.CHUNK_ROWS),
    (3, 4, 1),
    (0, 2, pipeline.CHUNK_ROWS),
])
def test_small_files_are_grouped_evenly_across_the_workers(small: int, workers: int, rows: int) -> None:
    assert group_rows(small, workers) == rows


def test_pandera_failures_are_counted_per_file_when_files_go_together(country_files: Path, project: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule giving ages out of the schema's range: each file's finding counts its own rows."""
    crosswalk = project / "mappings" / "ess.yaml"
    text = crosswalk.read_text()
    rule = "  age:\n    source: agea\n    range: [13, 120]\n"
    assert rule in text
    crosswalk.write_text(text.replace(rule, '  age:\n    expr: "agea + 100"\n'))
    declared = load_project(project)
    together = _harmonise(declared, country_files)
    monkeypatch.setattr(batch, "PREFETCH_MIN_ROWS", 0)
    alone = _harmonise(declared, country_files)
    assert together == alone
    failures = together[0]["validation_failures"]
    assert {r[2] for r in failures} == {p.name for p in country_files.iterdir()}  # every file has its own rows
    found = [f for issues in together[1] for f in issues if "in_range" in f]
    assert len(found) == len(list(country_files.iterdir()))


def test_a_reader_child_crashing_on_one_file_costs_only_that_file() -> None:
    items = ["a", "crash", "b", "raise", "c", "d"]
    out = isolated_map(twice_unless_crashing, items, 2)
    assert out[0] == "aa" and out[2] == "bb" and out[4] == "cc" and out[5] == "dd"
    assert isinstance(out[1], ReaderCrashed)
    assert isinstance(out[3], ValueError) and str(out[3]) == "a readable error"
