"""The suite's helpers follow the mappings: a wave added to a project copy reaches them without a test edit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harmonise import connect
from harmonise.fixtures import generate
from harmonise.spec.descriptor import load_descriptor
from tests.conftest import ROOT, add_wave, cpu_by_test, declared_waves, run, waves_of
from tests.test_reports_ddi import wave_count


def test_a_wave_added_to_a_copy_of_ties_reaches_the_helpers(project: Path, tmp_path: Path) -> None:
    before, ties = declared_waves(project), waves_of("ties", project)
    assert before == declared_waves(ROOT)
    like, new = ties[-1], str(max(int(w) for w in ties) + 10)  # TIES waves are years
    add_wave(project, "ties", like, new)
    after = declared_waves(project)
    at = before.index(("ties", like)) + 1
    assert after == before[:at] + (("ties", new),) + before[at:]
    assert waves_of("ties", project) == [*ties, new]
    assert waves_of("ess", project) == waves_of("ess")
    assert wave_count(project) == len(after) == wave_count() + 1
    assert [w.id for w in load_descriptor(project / "surveys" / "ties" / "survey.yaml").waves] == [*ties, new]
    sampled = (project / "mappings" / "cities.yaml").read_text(encoding="utf-8")
    assert sampled.count(f'{{survey: ties, wave: "{new}"}}') == sampled.count(f'{{survey: ties, wave: "{like}"}}') > 0
    # the copy is a valid project whose fixtures hold the new wave
    assert run("validate", project=project) == (0, "ok: 0 error(s), 0 warning(s)\n", "")
    files = generate(project, tmp_path / "data", survey="ties", rows=20, editions=False)
    assert len(files) == len(ties) + 1 and files[-1].name == files[-2].name.replace(like, new)
    code, _, err = run("build", "--data", str(tmp_path / "data"), "--db", str(tmp_path / "t.duckdb"), project=project)
    assert code == 0, err
    with connect(tmp_path / "t.duckdb") as con:
        assert con.execute("SELECT wave, count(*) FROM respondents GROUP BY 1 ORDER BY 1").fetchall() == [
            (w, 20) for w in sorted([*ties, new])]


def test_the_repository_waves_are_read_once_and_a_copy_afresh(project: Path) -> None:
    assert declared_waves() is declared_waves(ROOT)
    assert declared_waves(project) == declared_waves() and declared_waves(project) is not declared_waves()


def test_cpu_by_test_sums_the_phases_of_each_test() -> None:
    def report(nodeid: str, when: str, seconds: float | None) -> pytest.TestReport:
        props = [("cpu_seconds", seconds)] if seconds is not None else []
        return pytest.TestReport(nodeid, ("f.py", 1, nodeid), {}, "passed", None, when, user_properties=props)

    reports = [report("a", "setup", 0.5), report("a", "call", 1.0), report("b", "call", 2.0),
               report("a", "teardown", 0.25), report("c", "call", None)]
    assert cpu_by_test(reports) == [(2.0, "b"), (1.75, "a")]


def test_cpu_durations_count_computing_not_waiting(tmp_path: Path) -> None:
    (tmp_path / "test_two.py").write_text(
        "import time\n\n"
        "def test_computes():\n    t = time.process_time()\n    while time.process_time() - t < 0.3:\n        pass\n\n"
        "def test_waits():\n    time.sleep(0.3)\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "--cpu-durations=0", str(tmp_path / "test_two.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "CPU seconds per test" in line)
    rows = {line.split()[1].split("::")[-1]: float(line.split()[0].rstrip("s")) for line in lines[start + 1:start + 3]}
    assert set(rows) == {"test_computes", "test_waits"}
    assert rows["test_computes"] >= 0.3 and rows["test_waits"] < 0.1


def test_modules_are_ordered_demo_builders_then_slow_then_demo_readers_then_the_rest(tmp_path: Path) -> None:
    modules = {"test_a.py": "def test_plain():\n    pass\n",
               "test_b.py": "import pytest\n\n\ndef test_quick():\n    pass\n\n\n@pytest.mark.slow\ndef test_slow():\n    pass\n",
               "test_c.py": "def test_reads_the_demo(demo_db):\n    pass\n\n\ndef test_plain():\n    pass\n",
               "test_d.py": "def test_reads_the_small_demo(small_demo_db):\n    pass\n",
               "test_e.py": "def test_reads_both(demo_build, demo_codebook):\n    pass\n"}
    for name, text in modules.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "show.py").write_text(
        "import pytest\n\n\n@pytest.hookimpl(trylast=True)\ndef pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        print('ITEM', item.nodeid.split('/')[-1], item.get_closest_marker('slow') is not None)\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "-p", "show", "--collect-only", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("ITEM ")] == [
        ["test_c.py::test_reads_the_demo", "True"], ["test_c.py::test_plain", "False"],  # first to need the demo
        ["test_d.py::test_reads_the_small_demo", "True"],  # first to need the small demo
        ["test_b.py::test_quick", "False"], ["test_b.py::test_slow", "True"],  # slow
        ["test_e.py::test_reads_both", "True"],  # reads what c and d build
        ["test_a.py::test_plain", "False"]]
