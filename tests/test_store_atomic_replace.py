"""Builds replace only what they may and never report success on a database that does not open
(harmonise/store/atomic.py): issue 20, defects 2, 3 and 4."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from harmonise import connect
from tests.conftest import run, waves_of

ROWS = 60 * len(waves_of("ties"))  # the TIES fixture: 60 rows a declared wave


@pytest.fixture(scope="module")
def ties(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harmonise.fixtures import generate
    from tests.conftest import ROOT

    folder = tmp_path_factory.mktemp("ties")
    generate(ROOT, folder, survey="ties", rows=60)
    return folder


@pytest.fixture(scope="module")
def built(ties: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TIES fixture built once (read-only: tests that start from a built database copy it)."""
    db = tmp_path_factory.mktemp("built") / "h.duckdb"
    code, _, err = build(ties, db)
    assert code == 0, err
    return db


def build(data: Path, db: Path, *extra: str) -> tuple[int, str, str]:
    return run("build", "--data", str(data), "--db", str(db), *extra)


def copy_of(built: Path, tmp_path: Path) -> Path:
    db = tmp_path / built.name
    shutil.copy(built, db)
    return db


def rows(db: Path) -> int:
    con = connect(db)
    try:
        return int(con.execute("SELECT count(*) FROM respondents").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def test_leftover_cleanup_matches_exact_names_not_a_glob(ties: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "thesis.tmp-backup.docx").write_text("the user's thesis")
    (folder / "results.tmp-2024").mkdir()
    (folder / "results.tmp-2024" / "table.csv").write_text("1,2")
    (folder / "*.tmp-1-0123abcd").write_text("a leftover of the build of '*'")
    (folder / "*.tmp-1-0123abcd.jobs").mkdir()
    code, _, err = build(ties, folder / "*")
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["*", "*.cache", "*.lock", "results.tmp-2024",
                                                        "thesis.tmp-backup.docx"]
    assert (folder / "results.tmp-2024" / "table.csv").read_text() == "1,2"
    assert rows(folder / "*") == ROWS


def test_build_replaces_only_a_database_harmonise_built(ties: Path, tmp_path: Path) -> None:
    own = tmp_path / "analysis.duckdb"
    con = duckdb.connect(str(own))
    con.execute("CREATE TABLE results AS SELECT 42 AS answer")
    con.close()
    before = own.read_bytes()
    code, _, err = build(ties, own)
    assert code == 2 and err == (f"error: {own}: it is a DuckDB database harmonise did not build (no build_info "
                                 "table); refusing to replace it — choose another --db path, or pass --force to "
                                 "replace it\n")
    assert own.read_bytes() == before
    code, _, err = build(ties, own, "--force")
    assert code == 0, err
    assert rows(own) == ROWS
    code, _, err = build(ties, own)  # now it is harmonise's own: replaced without --force
    assert code == 0, err


def test_a_stale_wal_does_not_make_a_successful_build_unusable(ties: Path, built: Path, tmp_path: Path) -> None:
    db = copy_of(built, tmp_path)
    other = tmp_path / "other.duckdb"  # a write-ahead log of another database, as a crash or a copy leaves it
    con = duckdb.connect(str(other))
    con.execute("SET checkpoint_threshold = '1GB'")
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    shutil.copy(tmp_path / "other.duckdb.wal", tmp_path / "h.duckdb.wal")
    con.close()
    with pytest.raises(Exception, match="WAL does not match database file"):
        duckdb.connect(str(db), read_only=True).close()
    code, out, err = build(ties, db)
    assert code == 0, err
    assert out.splitlines()[-1].startswith(f"built {db} ({ROWS} rows)")
    assert not (tmp_path / "h.duckdb.wal").exists()
    assert rows(db) == ROWS
    code, out, _ = run("query", "SELECT count(*) AS n FROM respondents", "--db", str(db), "--format", "csv")
    assert (code, out) == (0, f"n\n{ROWS}\n")


def test_success_only_after_the_new_database_opens_read_only(ties: Path, built: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from harmonise.store import atomic

    db = copy_of(built, tmp_path)
    before = db.read_bytes()
    real = atomic.verify

    def corrupt_then_verify(path: Path) -> None:
        if path != db:
            path.write_bytes(path.read_bytes()[:4096])  # as a full disk would leave it
        real(path)

    monkeypatch.setattr(atomic, "verify", corrupt_then_verify)
    code, out, err = build(ties, db)
    assert code == 2 and "built" not in out
    assert err.startswith("error: ") and "the new database does not open read-only" in err
    assert db.read_bytes() == before


def test_a_damaged_database_is_a_message_not_an_internal_error(built: Path, tmp_path: Path) -> None:
    db = copy_of(built, tmp_path)
    raw = bytearray(db.read_bytes())
    block = 262_144  # DuckDB's block size; the first 12 KiB are the file headers, then the catalog's block
    for start in range(12_288 + block + 5_000, len(raw), block):  # data blocks: it opens, reading fails
        raw[start:start + 500] = bytes(b ^ 0x5A for b in raw[start:start + 500])
    db.write_bytes(bytes(raw))
    for args in (["query", "SELECT * FROM respondents"], ["indicators"],
                 ["export", "--format", "csv", "--out", str(tmp_path / "ex")]):
        code, _, err = run(*args, "--db", str(db))
        assert code == 2, (args, err)
        assert err.startswith(f"error: {db}: the database file is damaged (") and \
            err.endswith("); build it again with `harmonise build`\n"), (args, err)
    raw[12_288 + 100:12_288 + 600] = bytes(500)  # the catalog's block too: it does not even open
    db.write_bytes(bytes(raw))
    code, _, err = run("indicators", "--db", str(db))
    assert code == 2 and err.startswith(f"error: {db}: the database file is damaged (Corrupt database file"), err
