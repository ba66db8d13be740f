"""Shared fixtures: the real ESS8 France file, a built database, throw-away project copies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyreadstat
import pytest
from click.testing import CliRunner
from hypothesis import settings

from harmonise.cli import main

ROOT = Path(__file__).resolve().parents[1]

# Property tests explore new examples on developers' machines; CI replays a fixed derivation, so a
# submission lands or fails on its own code, not on which random examples a run happened to draw.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
ESS8 = ROOT.parent / "shared" / "data" / "ess8_fr" / "ESS8FR.sav"


def run(*args: str, project: Path | None = None) -> tuple[int, str, str]:
    """Invoke the CLI through CliRunner; returns (exit code, stdout, stderr)."""
    runner = CliRunner()
    argv = (["--project", str(project)] if project else ["--project", str(ROOT)]) + list(args)
    res = runner.invoke(main, argv, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="session")
def ess8() -> Path:
    if not ESS8.is_file():
        pytest.fail(f"the real ESS file is required at {ESS8} (../shared beside the repository)")
    return ESS8


@pytest.fixture(scope="session")
def fr_db(tmp_path_factory: pytest.TempPathFactory, ess8: Path) -> Path:
    db = tmp_path_factory.mktemp("db") / "fr.duckdb"
    code, _, err = run("build", "--data", str(ess8.parent), "--db", str(db))
    assert code == 0, err
    return db


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`harmonise build --demo` (every declared wave of all six surveys), run once per run: the database
    and what the command printed."""
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    code, out, err = run("build", "--demo", "--db", str(db))
    assert code == 0, err
    return db, out


@pytest.fixture(scope="session")
def demo_db(demo_build: tuple[Path, str]) -> Path:
    """The demo database, built once per run."""
    return demo_build[0]


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A copy of the project's declarations (mappings/, surveys/) to break on purpose."""
    dst = tmp_path / "proj"
    shutil.copytree(ROOT / "mappings", dst / "mappings")
    shutil.copytree(ROOT / "surveys", dst / "surveys")
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def write_ess_copy(src: Path, dst: Path, columns: list[str], mutate=None) -> Path:  # type: ignore[no-untyped-def]
    """Rewrite some columns of the real file (labels and missing declarations kept), optionally mutated."""
    df, meta = pyreadstat.read_sav(str(src), usecols=columns, user_missing=True)
    if mutate is not None:
        mutate(df)
    ranges = {k: v for k, v in meta.missing_ranges.items() if k in columns}
    pyreadstat.write_sav(df, str(dst), column_labels=[meta.column_names_to_labels[c] for c in df.columns],
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in columns},
                         missing_ranges=ranges)
    return dst
