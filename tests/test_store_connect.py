"""Read-only querying: `harmonise query` and `harmonise.connect` cannot write, attach, load or read files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from harmonise import api, connect
from harmonise.cli import main
from harmonise.errors import InputError
from harmonise.store.connect import READ_ONLY_CONFIG
from tests.conftest import waves_of

ROOT = Path(__file__).resolve().parents[1]

# statement → the start of DuckDB's refusal (the same for connect() and `harmonise query`)
REFUSED = {
    "CREATE TABLE x (a INTEGER)": 'Invalid Input Error: Cannot execute statement of type "CREATE" on database "h" '
                                  "which is attached in read-only mode!",
    "INSERT INTO build_info VALUES ('k', 'v')": 'Invalid Input Error: Cannot execute statement of type "INSERT"',
    "UPDATE respondents SET sex = 'male'": 'Invalid Input Error: Cannot execute statement of type "UPDATE"',
    "DELETE FROM respondents": 'Invalid Input Error: Cannot execute statement of type "DELETE"',
    "DROP TABLE respondents": 'Invalid Input Error: Cannot execute statement of type "DROP"',
    "ALTER TABLE respondents ADD COLUMN z INTEGER": 'Invalid Input Error: Cannot execute statement of type "ALTER"',
    "ATTACH '{other}' AS other": 'Permission Error: Cannot access file "{other}" - file system operations are '
                                 "disabled by configuration",
    "ATTACH ':memory:' AS scratch": "Catalog Error: Cannot launch in-memory database in read-only mode!",
    "INSTALL httpfs": "Permission Error: Cannot access directory",
    "LOAD httpfs": "Permission Error: Loading external extensions is disabled through configuration",
    "LOAD '{tmp}/evil.duckdb_extension'": "Permission Error: Loading external extensions is disabled through "
                                          "configuration",
    "COPY respondents TO '{tmp}/out.csv'": 'Permission Error: Cannot access file "{tmp}/out.csv" - file system '
                                           "operations are disabled by configuration",
    "EXPORT DATABASE '{tmp}/export'": "Permission Error: Cannot access file",
    "SELECT * FROM read_csv('{secret}')": 'Permission Error: Cannot access file "{secret}" - file system operations '
                                          "are disabled by configuration",
    "SELECT * FROM read_text('{secret}')": 'Permission Error: Cannot access file "{secret}"',
    "SELECT * FROM read_parquet('{secret}')": 'Permission Error: Cannot access file "{secret}"',
    "SELECT * FROM glob('{tmp}/*')": 'Permission Error: Cannot access file "{tmp}/*"',
    "SELECT * FROM '{secret}'": 'Permission Error: Cannot access file "{secret}"',
    "SET enable_external_access = true": 'Invalid Input Error: Cannot change configuration option '
                                         '"enable_external_access" - the configuration has been locked',
    "SET lock_configuration = false": 'Invalid Input Error: Cannot change configuration option "lock_configuration"',
    "SET allow_community_extensions = true": "Invalid Input Error: Cannot change configuration option "
                                             '"allow_community_extensions"',
    "RESET enable_external_access": 'Invalid Input Error: Cannot change configuration option "enable_external_access"',
    "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')": "Permission Error: Cannot access directory",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harmonise.fixtures import generate

    tmp = tmp_path_factory.mktemp("ro")
    data = generate(ROOT, tmp / "data", survey="ties", rows=120)
    db = tmp / "h.duckdb"
    api.build(ROOT, data, db)
    (tmp / "secret.csv").write_text("password\nhunter2\n")
    return db


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _fill(text: str, db: Path) -> str:
    return (text.replace("{other}", str(db.parent / "other.duckdb")).replace("{tmp}", str(db.parent))
            .replace("{secret}", str(db.parent / "secret.csv")))


def test_connect_uses_the_locked_read_only_configuration(built: Path) -> None:
    con = connect(built)
    try:
        settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                    "('enable_external_access', 'lock_configuration', 'autoload_known_extensions', "
                                    "'autoinstall_known_extensions', 'allow_community_extensions', "
                                    "'access_mode')").fetchall())
    finally:
        con.close()
    assert settings == {"enable_external_access": "false", "lock_configuration": "true",
                        "autoload_known_extensions": "false", "autoinstall_known_extensions": "false",
                        "allow_community_extensions": "false", "access_mode": "read_only"}
    assert READ_ONLY_CONFIG["enable_external_access"] is False


@pytest.mark.parametrize("statement", list(REFUSED))
def test_connect_refuses(built: Path, statement: str) -> None:
    before = _sha(built)
    con = connect(built)
    try:
        with pytest.raises(duckdb.Error) as exc:
            con.execute(_fill(statement, built)).fetchall()
    finally:
        con.close()
    assert str(exc.value).startswith(_fill(REFUSED[statement], built)), str(exc.value)
    assert _sha(built) == before
    assert not (built.parent / "out.csv").exists() and not (built.parent / "export").exists()
    assert not (built.parent / "other.duckdb").exists()


@pytest.mark.parametrize("statement", ["DROP TABLE respondents", "COPY respondents TO '{tmp}/out.csv'",
                                       "SELECT * FROM read_csv('{secret}')", "ATTACH '{other}' AS other",
                                       "INSTALL httpfs", "LOAD httpfs", "SET enable_external_access = true",
                                       "SELECT 1; DROP TABLE respondents"])
def test_cli_query_refuses_with_exit_2(built: Path, statement: str) -> None:
    before = _sha(built)
    res = CliRunner().invoke(main, ["--project", str(ROOT), "query", _fill(statement, built), "--db", str(built)])
    expected = REFUSED.get(statement, 'Invalid Input Error: Cannot execute statement of type "DROP"')
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: query failed: {_fill(expected, built)}")  # no usage banner: the SQL is at fault
    assert "Traceback" not in res.output + res.stderr
    assert _sha(built) == before


def test_reading_still_works(built: Path) -> None:
    res = CliRunner().invoke(main, ["query", "SELECT count(*) AS n FROM respondents", "--db", str(built),
                                    "--format", "csv"])
    rows = 120 * len(waves_of("ties"))  # every TIES wave's fixture
    assert (res.exit_code, res.stdout) == (0, f"n\n{rows}\n")
    con = connect(built)
    try:  # temporary tables live in memory only: allowed, and the file is untouched
        con.execute("CREATE TEMP TABLE t AS SELECT sex, count(*) AS n FROM respondents GROUP BY 1")
        assert con.execute("SELECT sum(n) FROM t").fetchone() == (rows,)
    finally:
        con.close()


@pytest.mark.parametrize("sql", ["", " ; ", "/* only a comment */"])
def test_cli_query_that_is_empty_is_a_usage_error(built: Path, sql: str) -> None:
    res = CliRunner().invoke(main, ["query", "--db", str(built), "--", sql])
    assert (res.exit_code, res.stdout) == (2, "")
    assert res.stderr == 'error: the query is empty; give one SQL statement, e.g. "SELECT count(*) FROM respondents"\n'


def test_cli_query_json_is_strict_and_keeps_every_column(built: Path) -> None:
    res = CliRunner().invoke(main, ["query", "SELECT 'nan'::DOUBLE AS a, 1 AS a, 'inf'::DOUBLE AS b, 2.5 AS a",
                                    "--db", str(built), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert "NaN" not in res.stdout and "Infinity" not in res.stdout
    assert json.loads(res.stdout) == [{"a": None, "a_1": 1, "b": None, "a_2": 2.5}]


def test_python_objects_are_not_visible_to_sql(built: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [1]})  # noqa: F841  (a replacement scan would find it by name)
    con = connect(built)
    try:
        with pytest.raises(duckdb.Error, match="Table with name frame does not exist"):
            con.execute("SELECT * FROM frame").fetchall()
    finally:
        con.close()


def test_connect_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no such database; run `harmonise build` first or pass --db"):
        connect(tmp_path / "none.duckdb")
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"not a database at all" * 300)
    with pytest.raises(InputError, match=r"bad.duckdb: cannot open as a harmonise database"):
        connect(bad)
    res = CliRunner().invoke(main, ["query", "SELECT 1", "--db", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {bad}: cannot open as a harmonise database (")
    assert res.stderr.endswith("); pass the --db that `harmonise build` wrote\n")
    empty = tmp_path / "empty.duckdb"
    empty.write_bytes(b"")
    res = CliRunner().invoke(main, ["indicators", "--db", str(empty)])
    assert (res.exit_code, res.stderr) == (2, (f"error: {empty}: is empty (0 bytes), not a database; pass the --db that "
                                              "`harmonise build` wrote, or build one there\n"))
    assert empty.read_bytes() == b""


def test_no_connection_draws_duckdbs_progress_bar_on_standard_output(fr_db: Path, tmp_path: Path) -> None:
    """DuckDB drew its progress bar on standard output once a query ran for two seconds: between the rows of
    `indicators --format csv > out.csv` on the demo. Queries' connections (their cursors too) and the build's draw
    none; a query's connection stays locked."""
    from harmonise.store.atomic import open_build

    db = tmp_path / "copy.duckdb"  # no other connection of this process holds it (they would share its lock)
    db.write_bytes(fr_db.read_bytes())
    con = connect(db)
    try:
        setting = "SELECT current_setting('enable_progress_bar'), current_setting('lock_configuration')"
        assert con.execute(setting).fetchall() == con.cursor().execute(setting).fetchall() == [(False, True)]
    finally:
        con.close()
    build = open_build(tmp_path / "new.duckdb")
    try:
        assert build.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    finally:
        build.close()
