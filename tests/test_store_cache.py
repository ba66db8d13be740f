"""Issue 22.3: incremental builds through the build cache (harmonise/store/cache.py).

A rebuild reuses what it may and nothing else: its database equals a full build's, table by table and
row by row (``respondents`` in key order: the rebuild keeps the kept files' rows where they were); a damaged or mismatched cache is not trusted; a failed build leaves the previous cache.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, folder_db, run, unchanged

from harmonise.readers.files import open_source
from harmonise.spec.project import load_project
from harmonise.store.cache import INDEX, BuildCache, folder_of
from harmonise.store.headers import source_from, source_json, variables_from, variables_json

REAL = ROOT.parent / "shared" / "data" / "ess_real"
TIMES = {"sources": "built_at", "build_info": "built_at"}  # build times: the only columns two builds may differ in


def _country_files(out: Path, project: Path, waves: list[str], per_wave: int = 2, rows: int = 150) -> Path:
    """ESS country files as the ESS ships them (ESS<round><country>.sav), ``per_wave`` countries per round."""
    from harmonise.fixtures import generate

    declared = load_project(project)
    data = out / "data"
    data.mkdir(parents=True)
    for w in waves:
        countries = [str(k) for v in declared.codebooks[("ess", w)].variables if v.name == "cntry" for k in v.labels]
        for i, country in enumerate(countries[:per_wave]):
            made = generate(project, out / f"gen-{w}-{country}", survey="ess", wave=w, rows=rows, seed=i + 1,
                            editions=False, countries=[country])
            shutil.move(str(made[0]), data / f"ESS{w}{country}.sav")
    return data


KEY = "survey, wave, source_file, source_row"  # a respondents row's place in a full build: file by file, row by row


def _tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows in stored order, without the build times; ``respondents`` in :data:`KEY` order (a
    rebuild stores the kept files' rows where they were and appends the files harmonised again)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall():
            cols = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                                              "ORDER BY column_index", [name]).fetchall()]
            keep = ", ".join(f'"{c}"' for c in cols if c != TIMES.get(name))
            where = " WHERE key <> 'built_at'" if name == "build_info" else ""
            order = f" ORDER BY {KEY}" if name == "respondents" else ""
            out[name] = con.execute(f'SELECT {keep} FROM "{name}"{where}{order}').fetchall()
        return out
    finally:
        con.close()


def _stored(db: Path) -> list[tuple[object, ...]]:
    """The respondents rows in stored order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT * FROM respondents").fetchall()
    finally:
        con.close()


def _build(project: Path, data: Path, db: Path, *extra: str) -> str:
    code, out, err = run("build", "--data", str(data), "--db", str(db), *extra, project=project)
    assert code == 0, err
    return out


def _kept(out: str) -> tuple[int, int] | None:
    found = re.search(r"; (\d+) of (\d+) files kept from the previous build", out)
    return (int(found.group(1)), int(found.group(2))) if found else None


RANGE = re.compile(r"^( +)year_of_arrival: \{range: \[(\d+), (\d+)\](?:, missing: \{[^}]*\})?\}$", re.MULTILINE)


def _ranged_waves(project: Path) -> list[str]:
    """The ESS rounds whose own rules override the year-of-arrival range, in crosswalk order."""
    text = (project / "mappings" / "ess.yaml").read_text()
    return [re.findall(r'^  - wave: "([^"]+)"', text[:m.start()], re.MULTILINE)[-1] for m in RANGE.finditer(text)]


def _edit(project: Path, rounds: int = 1) -> None:
    """Edit one rule of each of the last ``rounds`` ESS rounds with a year-of-arrival range (new SQL) and the
    notes of a rule that waves share (no new SQL: their files are kept, but their lineage must say the new
    notes)."""
    path = project / "mappings" / "ess.yaml"
    text = path.read_text()
    found = list(RANGE.finditer(text))
    assert len(found) >= rounds, "the ESS crosswalk has too few year_of_arrival range overrides to edit"
    for last in reversed(found[-rounds:]):
        indent, low, high = last.group(1), int(last.group(2)), last.group(3)
        text = text[:last.start()] + f"{indent}year_of_arrival:\n{indent}  range: [{low + 1}, {high}]" + text[last.end():]
    shared = re.search(r"^periods:\n(?:.*\n)*?.*\{[^\n]*notes: \"", text, re.MULTILINE)
    assert shared, "no rule of a period has notes to edit"
    path.write_text(text[:shared.end()] + "Edited. " + text[shared.end():])


def _by_file(rows: list[tuple[object, ...]]) -> dict[object, list[tuple[object, ...]]]:
    """Per-file provenance rows (survey, wave, file_name, …) by file name."""
    out: dict[object, list[tuple[object, ...]]] = {}
    for r in rows:
        out.setdefault(r[2], []).append(r)
    return out


@pytest.mark.slow
def test_a_rebuild_after_editing_one_rule_equals_a_full_build(project: Path, tmp_path: Path) -> None:
    """Rules of two rounds edited: their files (two groups, harmonised in workers) come before a kept round's
    in the build's order, which is checked while the workers run and written after them."""
    waves = [w.wave for w in load_project(project).crosswalks["ess"].waves]
    edited = _ranged_waves(project)[-2:]
    data = _country_files(tmp_path, project, [waves[0], *edited])
    files = sorted(p.name for p in data.iterdir())
    db = tmp_path / "inc.duckdb"
    assert _kept(_build(project, data, db, "--jobs", "2")) is None
    original = _tables(db)
    assert _kept(_build(project, data, db)) == (len(files), len(files))  # nothing changed: every file kept
    assert _tables(db) == original

    _edit(project, rounds=2)
    previous = _stored(db)
    out = _build(project, data, db, "--jobs", "2")
    full = tmp_path / "full.duckdb"
    _build(project, data, full, "--full")
    incremental, fresh = _tables(db), _tables(full)
    assert list(incremental) == list(fresh)
    for name in fresh:
        assert incremental[name] == fresh[name], f"table {name} differs from a full build's"
    # the edited rule's wave was harmonised again, the others kept — with the edited notes in their lineage
    sql_before, sql_after = _by_file(original["compiled_sql"]), _by_file(fresh["compiled_sql"])
    changed = [f for f in files if sql_before[f] != sql_after[f]]
    assert {sql_after[f][0][1] for f in changed} == set(edited)
    assert min(files.index(f) for f in changed) < max(files.index(f) for f in files if f not in changed)
    assert _kept(out) == (len(files) - len(changed), len(files))
    # stored: the kept files' rows where the previous database had them, then the changed files' in build order
    file_at = len(previous[0]) - 1
    assert _stored(db) == [r for r in previous if r[file_at] not in changed] + \
        [r for r in _stored(full) if r[file_at] in changed]
    lineage_before, lineage_after = _by_file(original["lineage"]), _by_file(fresh["lineage"])
    noted = [f for f in files if f not in changed and lineage_before[f] != lineage_after[f]]
    assert noted and all(any("Edited. " in str(r) for r in lineage_after[f]) for f in noted)


@pytest.mark.slow
def test_workers_started_on_a_plan_the_previous_database_overturns_are_not_used(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers start on the files the cache index lacks before the kept files are checked against the
    previous database; when that check keeps none, the groups change and the early workers' files go unused."""
    waves = _ranged_waves(project)[-2:]
    data = _country_files(tmp_path, project, waves)
    db = tmp_path / "inc.duckdb"
    _build(project, data, db, "--jobs", "2")
    _edit(project)
    from harmonise import pipeline

    monkeypatch.setattr(BuildCache, "harmonised", lambda self, con, keys: {})  # the previous rows "missing"
    early, started = pipeline.early_workers, []
    monkeypatch.setattr(pipeline, "early_workers", lambda *a: started.append(early(*a)) or started[-1])
    out = _build(project, data, db, "--jobs", "2")
    assert [len(s.groups) for s in started] == [2]  # the edited round's two files, one worker each
    assert _kept(out) is None and "(600 rows)" in out  # then all four files harmonised again, in new groups
    full = tmp_path / "full.duckdb"
    _build(project, data, full, "--full")
    assert _tables(db) == _tables(full)
    assert not db.with_name(db.name + ".jobs").exists()


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two country files of the last ESS round built once per module: (the project, their folder, the database
    with its cache); read-only, tests take :func:`_built` copies."""
    tmp = tmp_path_factory.mktemp("cache")
    project = tmp / "proj"
    for part in ("mappings", "surveys"):
        shutil.copytree(ROOT / part, project / part)
    last = load_project(project).crosswalks["ess"].waves[-1].wave
    data = _country_files(tmp, project, [last], per_wave=2)
    db = tmp / "h.duckdb"
    _build(project, data, db)
    return project, data, db


def _built(built_once: tuple[Path, Path, Path], tmp_path: Path, data_too: bool = False) -> tuple[Path, Path, Path]:
    """A copy of :func:`built_once` to change: the database hard-linked (same inode, so its cache still
    describes it; a build replaces the file, never writes into it) and the cache copied; ``data_too``: the
    data folder copied too (else the module's, which the database's ``sources`` name)."""
    project, data, db = built_once
    copy = tmp_path / db.name
    os.link(db, copy)
    shutil.copytree(folder_of(db), folder_of(copy))
    if data_too:
        data = shutil.copytree(data, tmp_path / "data", copy_function=os.link)
    return project, data, copy


def _estimated(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The survey-waves the build estimates indicators for, recorded as it calls the estimator."""
    from harmonise.reports import indicator_table

    seen: list[object] = []
    estimate = indicator_table.estimate_frame

    def recorded(*a: object, **kw: object) -> object:
        seen.extend(kw.get("sample") or ["all"])  # type: ignore[arg-type]
        return estimate(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(indicator_table, "estimate_frame", recorded)
    return seen


def _set_range(project: Path, wave: str, low: int, high: int, transform: str = "",
               missing: dict[str, str] | None = None) -> None:
    """Set the year-of-arrival range override of ESS round ``wave`` (and a ``transform`` of its values, and
    ``missing`` codes)."""
    path = project / "mappings" / "ess.yaml"
    text = path.read_text()
    found = [m for m in RANGE.finditer(text) if re.findall(r'^  - wave: "([^"]+)"', text[:m.start()],
                                                            re.MULTILINE)[-1] == wave]
    assert len(found) == 1, f"ESS round {wave} has no year_of_arrival range override"
    m = found[0]
    rule = f"range: [{low}, {high}]" + (f", transform: \"{transform}\"" if transform else "") + \
        (f", missing: {{{', '.join(f'{k}: {v}' for k, v in missing.items())}}}" if missing else "")
    path.write_text(text[:m.start()] + f"{m.group(1)}year_of_arrival: {{{rule}}}" + text[m.end():])


@pytest.mark.slow
def test_a_wave_harmonised_again_to_the_same_rows_keeps_its_indicator_rows(
        built_once: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Early cut-off: an edited rule recompiles the wave's files, but when the rows it gives are the previous
    database's (and lineage's flags, sampling and definitions are unchanged), the wave's indicator rows are the
    previous build's, not estimated again; once its rows change, they are estimated again. Either way the
    database is the one a full build writes."""
    shared, data, db = _built(built_once, tmp_path)
    project = shutil.copytree(shared, tmp_path / "proj")
    wave = load_project(project).crosswalks["ess"].waves[-1].wave
    assert wave in _ranged_waves(project)
    text = (project / "mappings" / "ess.yaml").read_text()
    (low, high), = [(int(m.group(2)), int(m.group(3))) for m in RANGE.finditer(text)
                    if re.findall(r'^  - wave: "([^"]+)"', text[:m.start()], re.MULTILINE)[-1] == wave]
    before = _tables(db)
    con = duckdb.connect(str(db), read_only=True)
    years = con.execute("SELECT min(year_of_arrival), max(year_of_arrival) FROM respondents").fetchone()
    con.close()
    assert years is not None and low < years[0] <= years[1] < high  # the fixture's years lie inside the range

    _set_range(project, wave, low + 1, high)  # new SQL, the same values
    estimated = _estimated(monkeypatch)
    assert _kept(_build(project, data, db)) is None  # both files harmonised again
    after = _tables(db)
    assert after["respondents"] == before["respondents"] and after["compiled_sql"] != before["compiled_sql"]
    assert estimated == []
    assert after["indicators"] == before["indicators"]

    # new values in columns no estimate reads: the reason for a year not applicable (no indicator reads it:
    # years since arrival is read by its value, which stays missing), yet the rows differ (decision 63)
    con = duckdb.connect(str(db), read_only=True)
    codes = con.execute("SELECT DISTINCT source_code FROM harmonisation_report WHERE survey = 'ess' AND wave = ? "
                        "AND target = 'year_of_arrival' AND missing_reason = 'not_applicable'", [wave]).fetchall()
    con.close()
    assert len(codes) == 1
    _set_range(project, wave, low, high, missing={codes[0][0]: "dont_know"})
    _build(project, data, db)
    after = _tables(db)
    assert after["respondents"] != before["respondents"] and estimated == []
    assert "dont_know" in {r for (r,) in duckdb.connect(str(db), read_only=True).execute(
        "SELECT DISTINCT year_of_arrival_missing FROM respondents WHERE wave = ?", [wave]).fetchall()}
    assert after["indicators"] == before["indicators"]
    fresh = tmp_path / "fresh.duckdb"
    _build(project, data, fresh, "--full")
    assert _tables(fresh)["indicators"] == after["indicators"]

    _set_range(project, wave, low, high, transform="x - 1")  # every year one earlier: new values
    estimated.clear()
    _build(project, data, db)
    assert _tables(db)["respondents"] != before["respondents"]
    assert set(estimated) == {("ess", wave)}  # only it (with design PSUs: in two halves of the indicators)


@pytest.mark.slow
def test_a_damaged_or_mismatched_cache_is_rebuilt_not_trusted(built_once: tuple[Path, Path, Path],
                                                              tmp_path: Path) -> None:
    project, data, db = _built(built_once, tmp_path)
    assert BuildCache(db).previous == db  # the copy's cache describes it
    reference = _tables(db)
    index = folder_of(db) / INDEX
    index.write_bytes(b"not a database" * 100)  # damaged
    assert _kept(_build(project, data, db)) is None
    assert _tables(db) == reference
    assert _kept(_build(project, data, db)) == (2, 2)  # the rebuild wrote a sound index again
    con = duckdb.connect(str(db))  # the database changed behind the cache's back: it describes another one now
    con.execute("DELETE FROM respondents WHERE source_row = 1")
    con.close()
    assert _kept(_build(project, data, db)) is None
    assert _tables(db) == reference


@pytest.mark.slow
def test_a_failed_build_leaves_the_previous_cache(built_once: tuple[Path, Path, Path], tmp_path: Path) -> None:
    project, data, db = _built(built_once, tmp_path, data_too=True)  # a file is added to it
    index = folder_of(db) / INDEX
    before = index.read_bytes()
    first = min(data.iterdir())
    twin = data / f"{first.stem}X{first.suffix}"  # the same respondents twice: the build fails after harmonising
    shutil.copy(first, twin)
    code, _, err = run("build", "--data", str(data), "--db", str(db), project=project)
    assert code == 1 and "the previous database is unchanged" in err
    assert index.read_bytes() == before
    assert [p.name for p in folder_of(db).iterdir()] == [INDEX]  # no half-written index left beside it
    twin.unlink()
    assert _kept(_build(project, data, db)) == (2, 2)


@pytest.mark.slow
def test_a_build_failing_while_its_index_is_written_leaves_the_previous_cache(
        built_once: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next build's index is written while the indicators are estimated: a build failing then leaves the
    previous database, its index and nothing beside them."""
    from harmonise import api
    from harmonise.reports import indicator_table

    project, data, db = _built(built_once, tmp_path)
    index = folder_of(db) / INDEX
    before, stored = index.read_bytes(), db.read_bytes()

    def full_disk(*a: object, **kw: object) -> None:
        raise duckdb.IOException("could not write: no space left on device")

    monkeypatch.setattr(indicator_table, "store_indicators", full_disk)
    with pytest.raises(duckdb.IOException, match="no space left"):
        api.build(project, [data], db)
    assert index.read_bytes() == before and db.read_bytes() == stored
    assert [p.name for p in folder_of(db).iterdir()] == [INDEX]


def test_a_first_build_failing_leaves_no_cache_folder(built_once: tuple[Path, Path, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A first build interrupted after it had made `<db>.cache/` for the next build's index left the folder,
    empty, beside no database; a previous build's folder stays (its index is the previous database's)."""
    from harmonise import api
    from harmonise.reports import indicator_table

    project, data, _ = built_once
    db = tmp_path / "first.duckdb"

    def interrupted(*a: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(indicator_table, "store_indicators", interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.build(project, [data], db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.duckdb.lock"]


@pytest.mark.slow
def test_a_file_no_write_touched_is_not_hashed_again(built_once: tuple[Path, Path, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose device, inode, size and times are those the index recorded keeps its recorded sha256; one
    written since — even with the same bytes and its modification time set back — is hashed again."""
    from harmonise.store import cache, identity

    project, data, db = _built(built_once, tmp_path, data_too=True)
    for f in data.iterdir():  # its own inodes: the module's files are not written to
        shutil.copy(f, f.with_name("copy"))
        os.replace(f.with_name("copy"), f)
    monkeypatch.setattr(cache, "SETTLED_NS", 0)  # the files were written just now
    hashed: list[str] = []
    sha256_of = identity.sha256_of
    monkeypatch.setattr(identity, "sha256_of", lambda path: hashed.append(path.name) or sha256_of(path))
    assert _kept(_build(project, data, db)) == (2, 2)
    assert sorted(hashed) == sorted(p.name for p in data.iterdir())  # new inodes: hashed, then recorded
    hashed.clear()
    reference = _tables(db)
    assert _kept(_build(project, data, db)) == (2, 2)
    assert hashed == []
    first = min(data.iterdir())
    before, data_bytes = first.stat(), first.read_bytes()
    with first.open("r+b") as fh:  # the same bytes, written again in place
        fh.write(data_bytes)
    os.utime(first, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert first.stat().st_mtime_ns == before.st_mtime_ns and first.stat().st_ino == before.st_ino
    assert _kept(_build(project, data, db)) == (2, 2)
    assert hashed == [first.name]
    assert _tables(db) == reference


@pytest.mark.slow
def test_full_reuses_nothing_and_rewrites_the_cache(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    data = REAL / "ess9_nordic"
    shared = folder_db(tmp_path_factory, data)  # built once per run (test_pipeline_real_files reads it too)
    db = tmp_path / "h.duckdb"
    os.link(shared, db)  # the same file, so the cache beside it describes it
    shutil.copytree(folder_of(shared), folder_of(db))
    assert BuildCache(db).previous == db
    with unchanged(shared):
        assert _kept(_build(ROOT, data, db, "--full")) is None
        assert _kept(_build(ROOT, data, db)) == (3, 3)


@pytest.mark.parametrize("path", [ROOT.parent / "shared" / "data" / "ess8_fr" / "ESS8FR.sav",
                                  REAL / "ess9_gb_dta" / "ESS9GB.dta", REAL / "ess4_extract" / "ESS04_2008.dta",
                                  REAL / "ess11_subset_sav" / "ESS11-subset.sav"], ids=lambda p: p.name)
def test_a_file_header_survives_the_cache_unchanged(path: Path) -> None:
    """Headers come back exactly (codes keep int, float or text; ranges, Stata letters, guessed encodings),
    so a file harmonised from a cached header compiles to the SQL its own header gives."""
    src = open_source(path)
    back = source_from(path, source_json(src), variables_from(variables_json(src.meta)))
    assert back == src
    assert [type(k) for vm in back.meta.variables.values() for k in vm.labels] == \
        [type(k) for vm in src.meta.variables.values() for k in vm.labels]


@pytest.mark.slow
def test_a_file_renamed_to_another_formats_extension_is_read_and_refused_again(built_once: tuple[Path, Path, Path],
                                                                               tmp_path: Path) -> None:
    project, data, db = _built(built_once, tmp_path, data_too=True)
    first = min(data.glob("*.sav"))
    renamed = first.rename(first.with_suffix(".dta"))  # the same bytes: the cache holds their header
    code, _, err = run("build", "--data", str(data), "--db", str(db), project=project)
    assert code == 2
    assert f"{renamed}: the content is a SAV file but the extension says DTA; rename it to .sav" in err


@pytest.mark.parametrize(("old", "new", "same"), [
    ([("a", 1, 1.0), ("a", 2, None)], [("a", 2, None), ("a", 1, 1.0)], True),  # order and NULLs do not matter
    ([("a", 1, 1.0), ("a", 2, 2.0)], [("a", 1, 1.0), ("a", 2, 2.5)], False),  # a value differs
    ([("a", 1, 1.0)], [("a", 1, 1.0), ("b", 1, 1.0)], False),  # a row more
    ([("a", 1, 1.0), ("b", 1, 2.0)], [("a", 1, 1.0), ("a", 1, 1.0)], False),  # a row twice, another missing
    ([("a", 1, 1.0), ("a", 1, 1.0)], [("a", 1, 1.0), ("a", 1, 1.0)], False),  # a pair repeated: not trusted
])
def test_same_rows_compares_a_waves_respondents_with_the_previous_databases(
        tmp_path: Path, old: list[tuple[object, ...]], new: list[tuple[object, ...]], same: bool) -> None:
    def make(path: Path, rows: list[tuple[object, ...]]) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE respondents (survey VARCHAR, wave VARCHAR, source_file VARCHAR, source_row BIGINT, "
                    "x DOUBLE)")
        con.executemany("INSERT INTO respondents VALUES ('ess', '11', ?, ?, ?)", [list(r) for r in rows])
        con.execute("INSERT INTO respondents VALUES ('ess', '10', 'z', 1, 9.0)")  # another wave: not compared
        return con

    make(tmp_path / "old.duckdb", old).close()
    con = make(tmp_path / "new.duckdb", new)
    cache = BuildCache(tmp_path / "new.duckdb", full=True)
    cache.previous = tmp_path / "old.duckdb"
    assert cache.same_rows(con, "ess", "11") is same
    assert con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'previous'").fetchone() == (0,)


def test_same_rows_compares_only_the_columns_asked_for(tmp_path: Path) -> None:
    for name, y in (("old", 1.0), ("new", 2.0)):
        con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        con.execute("CREATE TABLE respondents (survey VARCHAR, wave VARCHAR, source_file VARCHAR, source_row BIGINT, "
                    "x DOUBLE, y DOUBLE)")
        con.execute("INSERT INTO respondents VALUES ('ess', '11', 'a', 1, 5.0, ?)", [y])
        con.close()
    con = duckdb.connect(str(tmp_path / "new.duckdb"))
    cache = BuildCache(tmp_path / "new.duckdb", full=True)
    cache.previous = tmp_path / "old.duckdb"
    assert cache.same_rows(con, "ess", "11") is False
    assert cache.same_rows(con, "ess", "11", ["x", "age_band"]) is True  # a name no column has is left out
    assert cache.same_rows(con, "ess", "11", ["x", "y"]) is False


@pytest.mark.slow
def test_a_kept_files_findings_come_from_the_cache_and_say_what_a_full_build_says(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild checked every kept file's report again (a quarter of the benchmark's rebuild): the findings are
    cached with what they follow from beyond the file's key (the wave's plan, the declared codebook, the path). Kept
    and unchanged there, they are the cache's, located at the crosswalk's lines of now; changed (a declared
    codebook edited), they are made again; either way the build says what a full build says."""
    import pyreadstat

    from harmonise.pipeline import rows

    made: list[str] = []
    findings = rows._findings

    def counted(f: object, *a: object) -> object:
        made.append(f.job.file_name)  # type: ignore[attr-defined]
        return findings(f, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(rows, "_findings", counted)
    data = _country_files(tmp_path, project, ["10"])
    first = min(data.iterdir())  # without pdwrk: the labour status by an approximate alternative, said
    df, meta = pyreadstat.read_sav(str(first), user_missing=True)
    df = df.drop(columns=["pdwrk"])
    keep = {c: meta.column_names_to_labels[c] for c in df.columns}
    pyreadstat.write_sav(df, str(first), column_labels=keep, missing_ranges={
        k: v for k, v in meta.missing_ranges.items() if k in keep},
        variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in keep})
    db, full = tmp_path / "inc.duckdb", tmp_path / "full.duckdb"

    def said(target: Path, *extra: str) -> str:
        code, _, err = run("build", "--data", str(data), "--db", str(target), *extra, project=project)
        assert code == 0, err
        return err

    before = said(db)
    assert "by an approximate alternative" in before and len(made) == 2
    made.clear()
    assert said(db) == before and made == []  # kept, and their findings with them
    crosswalk = project / "mappings" / "ess.yaml"
    crosswalk.write_text("# a line more: every rule one line down\n" + crosswalk.read_text())
    now = said(db)
    assert made == [] and now != before and now == said(full, "--full")
    made.clear()
    codebook = project / "surveys" / "ess" / "codebook_10.yaml"
    codebook.write_text(codebook.read_text() + "\n# edited\n")
    assert said(db) == said(full, "--full") and len(made) == 2 + 2  # made again for the kept files, and in full
