"""The code type-checks and lints clean: mypy (pydantic plugin, pandas and PyYAML stubs) and ruff, as pyproject.toml sets them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_package_type_checks_with_mypy() -> None:
    proc = _run("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Success: no issues found in "), proc.stdout


def test_code_lints_clean_with_ruff() -> None:
    proc = _run("ruff", "check", "harmonise", "tests", "benchmarks")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "All checks passed!"
