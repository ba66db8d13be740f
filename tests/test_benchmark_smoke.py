"""Issue 8: the benchmark runner works end to end on tiny files (it asserts no timings)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_quick_benchmark_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    """Every case of the quick run once: one floor and one build process per file, sampled for memory; the
    wide/narrow pair is those builds' times (the full run's separate memory and paired runs: tests below)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
                          check=False, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("file "))
    assert [line.split()[0] for line in lines[header + 2:header + 5]] == ["wide-1x", "wide-2x", "narrow-1x"]
    assert any(line.startswith("On ") and "core(s)" in line for line in lines)
    runs = [line.split(":")[0].split() for line in lines if line.startswith("  ") and " pair " in line]
    assert runs == [[case, "pair", "1"] for case in ("wide-1x", "wide-2x", "narrow-1x") for _ in ("floor", "build")]
    data = json.loads(out.read_text())
    assert set(data["summary"]) == {"time_ratio_1x", "per_row_ratio", "memory_ratio_2x", "wide_time_ratio",
                                    "wide_memory_ratio"}
    assert list(data["summary"]["per_row_ratio"]) == ["2x"]
    cases = data["cases"]
    assert [(c["name"], c["rows"], c["columns"]) for c in cases.values()] == [
        ("wide-1x", 1000, 120), ("wide-2x", 2000, 120), ("narrow-1x", 1000, 71)]
    assert all(len(c["floor"]) == 1 and len(c["build"]) == 1 for c in cases.values())
    assert all(c["floor_memory"] == c["floor"] and c["build_memory"] == c["build"] for c in cases.values())
    assert all(s["seconds"] > 0 and s["peak_mb"] > 0 for c in cases.values() for s in c["floor"] + c["build"])
    assert data["wide_narrow_pairs"] == [[cases["wide-1x"]["build"][0]["seconds"],
                                          cases["narrow-1x"]["build"][0]["seconds"]]]
    assert data["machine"]["cores"] >= 1


@pytest.mark.slow
def test_bounds_runner_times_every_case_and_writes_json(tmp_path: Path) -> None:
    """Every case once: one round (a second would run the same code, the cases in reverse order)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from generate import FILE_NAME, generate
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    file = generate(tmp_path / "data", [1], 1_000, 120)["wide-1x"] / FILE_NAME
    out = tmp_path / "bounds.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bounds.py"), "--file", str(file), "--rounds", "1",
                           "--json", str(out)], check=False, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines.index(f"{'case':<9} {'wall s':>7} {'x floor':>8} {'CPU s':>6}")
    assert [line.split()[0] for line in lines[header + 1:header + 5]] == ["floor", "copy", "recode", "build"]
    data = json.loads(out.read_text())
    assert data["file"] == str(file) and data["rounds"] == 1
    assert list(data["cases"]) == ["floor", "copy", "recode", "build"]
    assert data["cases"]["floor"]["ratio"] == 1.0
    assert all(len(c["runs"]) == 1 and all(w > 0 and cpu > 0 for w, cpu in c["runs"]) for c in data["cases"].values())


@pytest.mark.slow
def test_many_files_bounds_run_each_case_in_two_processes_and_write_json(tmp_path: Path) -> None:
    """``bounds.py --many``: two rounds' country files, a wave to each process; the floor, the read and the
    estimate once (the estimate's children recode and store first, as ``recode``'s do; the build is the command
    the single-file bounds test runs), their databases fresh each time (a case that failed would exit non-zero)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from generate import generate_many
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    folder = generate_many(tmp_path / "data", countries=1, rows=100, rounds=["8", "10"], columns=50)
    out = tmp_path / "bounds.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bounds.py"), "--many", str(folder),
                           "--cases", "estimate,read", "--rounds", "1", "--json", str(out)],
                          check=False, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"{folder}: 2 files in 2 groups, two processes; on {os.cpu_count()} core(s), medians of 1 rounds" in lines
    header = lines.index(f"{'case':<9} {'wall s':>7} {'x floor':>8} {'CPU s':>6}")
    assert [line.split()[0] for line in lines[header + 1:] if line] == ["floor", "read", "estimate", "wrote"]
    data = json.loads(out.read_text())
    assert (data["files"], data["rounds"], list(data["cases"])) == (2, 1, ["floor", "read", "estimate"])
    assert data["cases"]["floor"]["ratio"] == 1.0
    assert all(len(c["runs"]) == 1 and all(w > 0 and cpu > 0 for w, cpu in c["runs"]) for c in data["cases"].values())
    unknown = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bounds.py"), "--many", str(folder),
                              "--cases", "estimate,copy"], check=False, capture_output=True, text=True, cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown case(s) copy: choose from floor, read, recode, estimate, build" \
        in unknown.stderr


def test_many_files_bounds_deal_each_wave_whole_to_the_process_holding_fewer_rows() -> None:
    """Waves largest first, each to the emptier process, a wave's groups (the build's, ``plan_groups``) all to one
    process in their order."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bounds import deal
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    groups = [(("ess", "1"), 80, {"g": "a0"}), (("ess", "1"), 80, {"g": "a1"}), (("ess", "1"), 40, {"g": "a2"}),
              (("ess", "2"), 150, {"g": "b0"}), (("ess", "3"), 90, {"g": "c0"})]
    # 200 rows of wave 1 go first (to process 0), then 150 of wave 2 and 90 of wave 3 to the emptier process 1
    assert [[g["g"] for g in p] for p in deal(groups)] == [["a0", "a1", "a2"], ["b0", "c0"]]
    assert [[g["g"] for g in p] for p in deal(groups, 3)] == [["a0", "a1", "a2"], ["b0"], ["c0"]]


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """benchmarks/run.py as a module (its processes are replaced by a recorder in the tests below)."""
    spec = importlib.util.spec_from_file_location("benchmark_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # it puts benchmarks/ first on the path
    yield module
    del sys.modules[spec.name]


@pytest.fixture
def calls(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """What the benchmark ran, through a stand-in for ``measure``: (what ran, sampled for memory);
    the stand-in returns numbered samples."""
    ran: list[tuple[str, bool]] = []

    def measure(cmd: list[str], cwd: Path, memory: bool = False, output: list[str] | None = None) -> object:
        folder = next((Path(part).name for part in cmd if Path(part).name in ("wide", "narrow")), None)
        ran.append((folder or ("build" if "build" in cmd else "floor"), memory))
        return bench.Sample(float(len(ran)), 10.0 * len(ran) if memory else None)

    monkeypatch.setattr(bench, "measure", measure)
    return ran


def test_a_full_run_times_alternating_pairs_then_samples_memory_in_runs_of_its_own(
        bench: ModuleType, tmp_path: Path, calls: list[tuple[str, bool]]) -> None:
    case = bench.Case("wide-1x", 1000, 120, 1.0)
    bench.run_case(case, tmp_path, ["idno"], 2, tmp_path, memory_runs=1)
    assert calls == [("floor", False), ("build", False), ("build", False), ("floor", False),
                     ("floor", True), ("build", True)]
    sample = bench.Sample
    assert (case.floor, case.build) == ([sample(1.0), sample(4.0)], [sample(2.0), sample(3.0)])
    assert (case.floor_memory, case.build_memory) == ([sample(5.0, 50.0)], [sample(6.0, 60.0)])


def test_without_memory_runs_the_timed_pair_is_sampled_and_counts_as_both(
        bench: ModuleType, tmp_path: Path, calls: list[tuple[str, bool]]) -> None:
    case = bench.Case("wide-1x", 1000, 120, 1.0)
    bench.run_case(case, tmp_path, ["idno"], 1, tmp_path, memory_runs=0)
    assert calls == [("floor", True), ("build", True)]
    assert case.floor == case.floor_memory == [bench.Sample(1.0, 10.0)]
    assert case.build == case.build_memory == [bench.Sample(2.0, 20.0)]


def test_wide_and_narrow_builds_alternate_in_pairs(bench: ModuleType, tmp_path: Path,
                                                    calls: list[tuple[str, bool]]) -> None:
    wide, narrow = tmp_path / "wide", tmp_path / "narrow"
    assert bench.paired_builds(wide, narrow, 2, tmp_path) == [(1.0, 2.0), (4.0, 3.0)]
    assert calls == [("wide", False), ("narrow", False), ("narrow", False), ("wide", False)]


def test_the_summary_names_the_scale_pairs_only_when_the_scale_cases_ran(bench: ModuleType) -> None:
    cores = os.cpu_count()
    assert bench.note({}, 5, 5) == f"On {cores} core(s), medians of 5 alternating pair(s) per file:"
    assert bench.note({}, 5, 5, scale=False) == f"On {cores} core(s):"
    many = bench.Many(290, 580_000, 600.0, [10.0, 12.0], [30.0, 30.0])
    line = bench.extra_note({"many_build_floor": 2.75, "many_overhead_ms": 66.2}, many)[0]
    assert line == ("290 files (580,000 rows), median of 2 alternating pair(s): build/floor = 2.75 (target <= "
                    f"{bench.TARGETS['many']}), per-file overhead 66.2 ms (floor 11.00 s, build 30.00 s)")
