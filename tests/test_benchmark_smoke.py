"""Issue 8: the benchmark runner works end to end on tiny files (it asserts no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_quick_benchmark_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
                          check=False, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("file "))
    assert [line.split()[0] for line in lines[header + 2:header + 5]] == ["wide-1x", "wide-2x", "narrow-1x"]
    assert any(line.startswith("On ") and "core(s)" in line for line in lines)
    data = json.loads(out.read_text())
    assert set(data["summary"]) == {"time_ratio_1x", "per_row_ratio", "memory_ratio_2x", "wide_time_ratio",
                                    "wide_memory_ratio"}
    assert list(data["summary"]["per_row_ratio"]) == ["2x"]
    cases = data["cases"]
    assert [(c["name"], c["rows"], c["columns"]) for c in cases.values()] == [
        ("wide-1x", 1000, 120), ("wide-2x", 2000, 120), ("narrow-1x", 1000, 70)]
    assert all(len(c["floor"]) == 1 and len(c["build"]) == 1 for c in cases.values())
    assert all(s["seconds"] > 0 and s["peak_mb"] is None for c in cases.values() for s in c["floor"] + c["build"])
    assert all(len(c["floor_memory"]) == 1 and len(c["build_memory"]) == 1 for c in cases.values())
    assert all(s["peak_mb"] > 0 for c in cases.values() for s in c["floor_memory"] + c["build_memory"])
    assert len(data["wide_narrow_pairs"]) == 1 and all(x > 0 for x in data["wide_narrow_pairs"][0])
    assert data["machine"]["cores"] >= 1


@pytest.mark.slow
def test_bounds_runner_times_every_case_and_writes_json(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from generate import FILE_NAME, generate
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    file = generate(tmp_path / "data", [1], 1_000, 120)["wide-1x"] / FILE_NAME
    out = tmp_path / "bounds.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bounds.py"), "--file", str(file), "--rounds", "2",
                           "--json", str(out)], check=False, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines.index(f"{'case':<8} {'wall s':>7} {'x floor':>8} {'CPU s':>6}")
    assert [line.split()[0] for line in lines[header + 1:header + 5]] == ["floor", "copy", "recode", "build"]
    data = json.loads(out.read_text())
    assert data["file"] == str(file) and data["rounds"] == 2
    assert list(data["cases"]) == ["floor", "copy", "recode", "build"]
    assert data["cases"]["floor"]["ratio"] == 1.0
    assert all(len(c["runs"]) == 2 and all(w > 0 and cpu > 0 for w, cpu in c["runs"]) for c in data["cases"].values())
