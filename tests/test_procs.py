"""Killed parallel builds leave no process running and no microdata outside the target's folder
(harmonise/procs.py, pipeline.run_jobs, store/atomic.py): issue 20, defect 8.

A driver process imports harmonise once and forks one `harmonise build --jobs 2` per kill point,
SIGKILLs it after a seeded random delay spread over a whole build, and reports back. Every process
the builds start carries a marker in its environment, so the test finds survivors among all the
machine's processes; TMPDIR points at a private folder, so any temporary file written outside the
target's folder would show there.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harmonise.cli import main

ROOT = Path(__file__).resolve().parents[1]
KILLS = 20
SEED = 20260520
SURVEYS = ("ties", "ics")  # two files, so two workers run

DRIVER = r"""
import json, os, signal, sys, time
from harmonise.cli import main
import harmonise.api, harmonise.pipeline  # noqa: F401  (imported once, before forking)

root, data, db = sys.argv[1:4]
ARGV = ["--project", root, "build", "--jobs", "2", "--full", "--data", data, "--db", db]  # --full: every build harmonises


def spawn():
    pid = os.fork()
    if pid == 0:
        out = os.open(os.devnull, os.O_WRONLY)
        os.dup2(out, 1)
        os.dup2(out, 2)
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
    t0 = time.perf_counter()
    pid = spawn()
    if cmd == "kill":
        time.sleep(float(args[0]))
        os.kill(pid, signal.SIGKILL)
    print(json.dumps({"code": reap(pid), "seconds": time.perf_counter() - t0}), flush=True)
"""


def survivors(marker: str) -> list[int]:
    """Processes other than the driver whose environment carries ``marker`` (the builds and their children)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours
            continue
        if f"HARMONISE_KILL_TEST={marker}".encode() in env.split(b"\0"):
            found.append(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_parallel_builds_leaves_no_process_and_no_microdata_outside(tmp_path: Path) -> None:
    from harmonise.fixtures import generate

    project, data, target, systmp = tmp_path / "proj", tmp_path / "data", tmp_path / "target", tmp_path / "systmp"
    shutil.copytree(ROOT / "mappings", project / "mappings")  # only two crosswalks: less for each worker to load
    for other in {p.stem for p in (ROOT / "surveys").iterdir()} - set(SURVEYS):
        (project / "mappings" / f"{other}.yaml").unlink()
    for s in SURVEYS:
        shutil.copytree(ROOT / "surveys" / s, project / "surveys" / s)
    for s in SURVEYS:
        generate(project, data, survey=s, rows=200)
    target.mkdir()
    systmp.mkdir()
    db = target / "h.duckdb"
    marker = f"{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "TMPDIR": str(systmp), "HARMONISE_KILL_TEST": marker}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(project), str(data), str(db)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert driver.stdin is not None and driver.stdout is not None

    def ask(line: str) -> dict[str, float]:
        driver.stdin.write(line + "\n")  # type: ignore[union-attr]
        driver.stdin.flush()  # type: ignore[union-attr]
        reply = driver.stdout.readline()  # type: ignore[union-attr]
        assert reply, "driver died"
        return json.loads(reply)  # type: ignore[no-any-return]

    try:
        first = ask("build")
        assert first["code"] == 0
        seconds = first["seconds"]
        rng = random.Random(SEED)
        killed = 0
        for _ in range(KILLS):
            reply = ask(f"kill {rng.uniform(0.05, 0.8 * seconds):.4f}")
            killed += reply["code"] == -signal.SIGKILL
            deadline = time.monotonic() + 5
            while [p for p in survivors(marker) if p != driver.pid] and time.monotonic() < deadline:
                time.sleep(0.05)  # a worker gets SIGKILL from the kernel as its parent dies; reaping takes a moment
            assert [p for p in survivors(marker) if p != driver.pid] == [], "a worker outlived its killed build"
        assert killed >= KILLS // 2, f"only {killed} of {KILLS} builds were killed before finishing ({seconds:.2f} s)"
    finally:
        driver.stdin.close()
        driver.wait(timeout=30)
    res = CliRunner().invoke(main, ["--project", str(project), "build", "--jobs", "2", "--data", str(data),
                                    "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in target.iterdir()) == ["h.duckdb", "h.duckdb.cache", "h.duckdb.lock"]
    assert list(systmp.iterdir()) == []
