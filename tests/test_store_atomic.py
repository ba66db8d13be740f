"""Interrupted and racing builds never damage the database a build replaces.

A driver process imports harmonise once and forks one `harmonise build` per kill point (a fork
costs milliseconds where a fresh interpreter costs seconds), SIGKILLs it after a seeded random
delay spread over a whole build, and reports back; after every kill the previous database must
open read-only and answer exactly as before. One kill hits a fully fresh `harmonise` process too.
"""

from __future__ import annotations

import fcntl
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from harmonise import connect
from harmonise.cli import main

ROOT = Path(__file__).resolve().parents[1]
KILLS = 20
SEED = 20261130
QUERIES = [  # one round trip: the row count and digests of the ordered content of the main tables
    ("SELECT (SELECT count(*) FROM respondents), "
     "(SELECT md5(string_agg(r::VARCHAR, '|' ORDER BY r.respondent_id)) FROM respondents r), "
     "(SELECT md5(string_agg(h::VARCHAR, '|' ORDER BY h::VARCHAR)) FROM harmonisation_report h), "
     "(SELECT md5(string_agg(c::VARCHAR, '|' ORDER BY c::VARCHAR)) FROM conservation c), "
     "(SELECT string_agg(sha256, ',') FROM sources)"),
]

DRIVER = r"""
import json, os, signal, sys, time
from harmonise.cli import main
import harmonise.api, harmonise.pipeline  # noqa: F401  (imported once, before forking)

root, data, db = sys.argv[1:4]
ARGV = ["--project", root, "build", "--full", "--data", data, "--db", db]  # --full: no rebuild reuses files


def spawn(err):
    pid = os.fork()
    if pid == 0:
        out = os.open(os.devnull, os.O_WRONLY)
        errfd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(errfd, 2)
        try:
            main(ARGV)
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        os._exit(0)
    return pid


def reap(pid):
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "build":
        t0 = time.perf_counter()
        code = reap(spawn(db + ".err"))
        reply = {"code": code, "seconds": time.perf_counter() - t0}
    elif cmd == "kill":
        pid = spawn(os.devnull)
        time.sleep(float(args[0]))
        os.kill(pid, signal.SIGKILL)
        reply = {"code": reap(pid)}
    elif cmd == "race":
        pids = [spawn(f"{db}.race{i}") for i in (0, 1)]
        reply = {"codes": [reap(p) for p in pids]}
    else:
        break
    print(json.dumps(reply), flush=True)
"""


class Driver:
    def __init__(self, project: Path, data: Path, db: Path) -> None:
        self.project = project
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(project), str(data), str(db)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, line: str) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, "driver died"
        return json.loads(reply)  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def answers(db: Path) -> list[list[tuple[object, ...]]]:
    con = connect(db)
    try:
        return [con.execute(q).fetchall() for q in QUERIES]
    finally:
        con.close()


def leftovers(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name + ".tmp-"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from harmonise.fixtures import generate

    tmp = tmp_path_factory.mktemp("kill")
    project = tmp / "proj"  # only the TIES crosswalk: the same build code, less YAML to load per kill
    others = [p.name for p in (ROOT / "mappings").glob("*.yaml") if p.name not in ("schema.yaml", "cities.yaml",
                                                                                 "ties.yaml")]
    shutil.copytree(ROOT / "mappings", project / "mappings", ignore=lambda d, names: others)
    shutil.copytree(ROOT / "surveys" / "ties", project / "surveys" / "ties")
    generate(project, tmp / "data", survey="ties", rows=300)
    db = tmp / "h.duckdb"
    driver = Driver(project, tmp / "data", db)
    times = []
    for _ in range(2):  # the second (warm) build gives the span the kill points are spread over
        reply = driver.ask("build")
        assert reply["code"] == 0, (db.with_name(db.name + ".err")).read_text()
        times.append(float(reply["seconds"]))  # type: ignore[arg-type]
    yield driver, db, tmp / "data", min(times)
    driver.close()


@pytest.mark.slow
def test_sigkill_at_random_points_keeps_the_previous_database(setup) -> None:  # type: ignore[no-untyped-def]
    driver, db, data, seconds = setup
    reference = answers(db)
    assert reference[0][0][0] == 300
    rng = random.Random(SEED)
    killed = finished = 0
    # a build may run faster than the warm one timed (the machine's load varies): the kills fall in its
    # first 80% and up to 3 x KILLS tries get KILLS kills
    while killed < KILLS and killed + finished < 3 * KILLS:
        delay = rng.uniform(0.0, 0.8 * seconds)
        reply = driver.ask(f"kill {delay:.4f}")
        if reply["code"] == -signal.SIGKILL:
            killed += 1
        else:
            assert reply["code"] == 0, reply
            finished += 1
        assert answers(db) == reference, f"database changed after a kill at {delay:.3f} s"
    assert killed >= KILLS, f"only {killed} builds were killed before finishing (build takes {seconds:.2f} s)"
    # one fresh `harmonise build` process, killed once it is past start-up
    exe = Path(sys.executable).with_name("harmonise")
    proc = subprocess.Popen([str(exe), "--project", str(driver.project), "build", "--data", str(data), "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.3, 1.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert answers(db) == reference
    # the next build removes what killed builds left behind, and gives the same content
    res = CliRunner().invoke(main, ["--project", str(driver.project), "build", "--data", str(data), "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert leftovers(db) == []
    assert {"h.duckdb", "h.duckdb.lock"} <= {p.name for p in db.parent.iterdir()}
    assert answers(db) == reference


def test_leftover_temporary_files_are_ignored_then_removed(setup) -> None:  # type: ignore[no-untyped-def]
    driver, db, _, _ = setup
    reference = answers(db)
    junk = [db.with_name(db.name + ".tmp-999999-deadbeef"), db.with_name(db.name + ".tmp-999999-deadbeef.wal")]
    for p in junk:
        p.write_bytes(b"half a database")
    spill = db.with_name(db.name + ".tmp-999999-deadbeef.tmp")  # DuckDB's spill folder of a killed build
    spill.mkdir()
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"spilled")
    assert answers(db) == reference  # readers never look at them
    assert driver.ask("build")["code"] == 0
    assert leftovers(db) == []
    assert answers(db) == reference


def test_build_while_another_holds_the_lock_fails_clearly(setup) -> None:  # type: ignore[no-untyped-def]
    driver, db, data, _ = setup
    reference = answers(db)
    with db.with_name(db.name + ".lock").open("a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        res = CliRunner().invoke(main, ["--project", str(driver.project), "build", "--data", str(data),
                                        "--db", str(db)])
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    assert res.exit_code == 2
    assert res.stderr == (f"error: {db}: another harmonise build is writing this database; "
                          "wait for it to finish or choose another --db path\n")
    assert answers(db) == reference


def test_two_racing_builds_one_fails_clearly_neither_corrupts(setup) -> None:  # type: ignore[no-untyped-def]
    driver, db, _, _ = setup
    reference = answers(db)
    for _ in range(2):
        codes = driver.ask("race")["codes"]
        assert sorted(codes) in ([0, 0], [0, 2]), codes  # type: ignore[call-overload]
        for i, code in enumerate(codes):  # type: ignore[arg-type]
            err = db.with_name(f"{db.name}.race{i}").read_text()
            if code == 2:
                assert err == (f"error: {db}: another harmonise build is writing this database; "
                               "wait for it to finish or choose another --db path\n")
        assert answers(db) == reference
        assert leftovers(db) == []


@pytest.mark.parametrize("error", [RuntimeError("Query interrupted"), duckdb.InterruptException("INTERRUPT Error")])
def test_a_sigint_that_reaches_duckdb_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                error: Exception) -> None:
    """SIGINT during a DuckDB query surfaces as DuckDB's interrupt error, not KeyboardInterrupt."""
    from harmonise import api

    def interrupted(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(api, "build", interrupted)
    res = CliRunner().invoke(main, ["build", "--demo", "--db", str(tmp_path / "x.duckdb")])
    assert (res.exit_code, res.stderr) == (130, "interrupted; a database being built was not replaced\n")
