"""Shared fixtures: the real ESS8 France file, a built database, throw-away project copies.

Expensive session fixtures (the demo, the ESS8 FR database) are built once per run and shared by the
xdist workers through :func:`built_once`; tests only read them.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyreadstat
import pytest
from click.testing import CliRunner
from filelock import FileLock
from hypothesis import settings

from harmonise.cli import main

if TYPE_CHECKING:
    from harmonise.reports.chart import Chart

ROOT = Path(__file__).resolve().parents[1]
# `harmonise validate` run as a subprocess would otherwise start a validation server (harmonise.warm)
# that outlives the test; tests/test_warm.py starts its own.
os.environ.setdefault("HARMONISE_SERVER", "off")

# Property tests explore new examples on developers' machines; CI replays a fixed derivation, so a
# submission lands or fails on its own code, not on which random examples a run happened to draw. Neither
# times an example: Hypothesis's 200 ms deadline is a timed assertion (speed is measured in benchmarks/), and
# it failed a literal's round trip on a machine loaded by other work (261 ms).
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
ESS8 = ROOT.parent / "shared" / "data" / "ess8_fr" / "ESS8FR.sav"
# what validating the real ESS8 FR file says (its one respondent whose year of arrival precedes the year of birth:
# tests/test_checks_inputs.py::test_derived_values_the_inputs_contradict_are_said)
ESS8_SAID = [("note: ess wave 8: derived values stored as invalid where their inputs contradict each other: "
             "age_at_arrival in 1 row (from year_of_arrival, birth_year); in ESS8FR.sav — check those rows' values in "
             "the file (a year of arrival after the interview or before the year of birth); the derivations are in "
             "mappings/schema.yaml"), "ok: 0 error(s), 0 warning(s), 1 note(s), 1 file(s), 2,070 rows"]


# Fixtures whose tests need a demo build: the first such test of a run waits ~20 s for the full one.
DEMO_FIXTURES = frozenset({"demo_build", "demo_db", "small_demo_db", "demo_codebook"})
SHARED_BUILDS = {"demo_build": "demo", "demo_db": "demo", "small_demo_db": "small demo", "demo_codebook": "small demo"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the demo build slow, so `-m "not slow"` never builds it; then order the
    modules for `--dist loadscope` (pyproject.toml: each module runs whole on one xdist worker, so its module
    fixtures are made once per run, in this order): :func:`module_rank`."""
    for item in items:
        if DEMO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    ranks = module_rank(items)
    items.sort(key=lambda item: ranks[item.path])  # stable: modules stay whole, in collection order within a rank


def module_rank(items: list[pytest.Item]) -> dict[Path, int]:
    """Per test module: 0 for the first module that needs each demo build (so both builds start at once, on
    the two workers, instead of a worker waiting on the other's build lock), 1 for the other modules holding
    slow tests (so no worker ends the run on a long test), 2 for the other modules that read a demo build
    (built by then), 3 for the rest."""
    builds: dict[Path, set[str]] = {}
    slow: set[Path] = set()
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        builds.setdefault(item.path, set()).update(SHARED_BUILDS[f] for f in used & SHARED_BUILDS.keys())
        if item.get_closest_marker("slow") is not None:
            slow.add(item.path)
    first: dict[str, Path] = {}
    for path, needed in builds.items():
        for build in sorted(needed):
            first.setdefault(build, path)
    return {path: 0 if path in first.values() else 2 if needed else 1 if path in slow else 3
            for path, needed in builds.items()}


def pytest_configure(config: pytest.Config) -> None:
    """Let this run write bytecode caches, whatever ``PYTHONDONTWRITEBYTECODE`` says (docs/testing.md).

    Without them every xdist worker rewrote the asserts of all test modules (collection 8.9 → 3.8 s of
    CPU) and every interpreter the tests start (the CLI, the kill test's driver, parallel-build workers,
    the benchmark runs) compiled harmonise from source. Set here, in the controlling process before the
    workers start, so they and every process the tests start inherit it."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move everything imported and collected so far out of the garbage collector's reach (gc.freeze)."""
    gc.freeze()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-durations", type=int, default=None, metavar="N",
                     help="list the N tests that used the most CPU (user + system time of the test process and of "
                          "the child processes it waited for; setup, call and teardown summed; 0: all). Unlike "
                          "--durations it does not count waiting, so it stays comparable on a busy machine.")


CPU_SECONDS = pytest.StashKey[dict[str, float]]()


def cpu_seconds() -> float:
    """User + system CPU of this process and of its children that were waited for, so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(item: pytest.Item, phase: str) -> Iterator[None]:
    if item.config.getoption("cpu_durations") is None:
        yield
        return
    start = cpu_seconds()
    yield
    item.stash.setdefault(CPU_SECONDS, {})[phase] = cpu_seconds() - start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _timed(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _timed(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from _timed(item, "teardown")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the phase's CPU seconds to its report (user_properties travel from xdist workers)."""
    outcome = yield
    spent = item.stash.get(CPU_SECONDS, {}).get(call.when)
    if spent is not None:
        outcome.get_result().user_properties.append(("cpu_seconds", spent))


def cpu_by_test(reports: Iterable[pytest.TestReport]) -> list[tuple[float, str]]:
    """(CPU seconds, test id) summed over each test's phases, most first."""
    total: dict[str, float] = {}
    for r in reports:
        for key, value in r.user_properties:
            if key == "cpu_seconds":
                total[r.nodeid] = total.get(r.nodeid, 0.0) + float(value)
    return sorted(((s, n) for n, s in total.items()), key=lambda x: (-x[0], x[1]))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    limit = config.getoption("cpu_durations")
    if limit is None:
        return
    rows = cpu_by_test(r for rs in terminalreporter.stats.values() for r in rs if isinstance(r, pytest.TestReport))
    terminalreporter.write_sep("=", f"CPU seconds per test ({sum(s for s, _ in rows):.1f} s in all)")
    for seconds, nodeid in rows[:limit or None]:
        terminalreporter.write_line(f"{seconds:8.2f}s {nodeid}")


def run(*args: str, project: Path | None = None) -> tuple[int, str, str]:
    """Invoke the CLI through CliRunner; returns (exit code, stdout, stderr)."""
    runner = CliRunner()
    argv = (["--project", str(project)] if project else ["--project", str(ROOT)]) + list(args)
    res = runner.invoke(main, argv, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def run_drawing(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str, list[Chart]]:
    """:func:`run`, recording every chart the command draws: `harmonise compare` calls
    ``harmonise.reports.chart.compare`` (which ``harmonise.compare`` is), so a test asserts on the CLI's own
    chart instead of drawing it again through the API."""
    from harmonise.reports import chart

    drawn: list[Chart] = []
    draw = chart.compare

    def recorded(*a: Any, **kw: Any) -> Chart:
        drawn.append(draw(*a, **kw))
        return drawn[-1]

    monkeypatch.setattr(chart, "compare", recorded)
    return (*run(*args), drawn)


@pytest.fixture(scope="session")
def ess8() -> Path:
    if not ESS8.is_file():
        pytest.fail(f"the real ESS file is required at {ESS8} (../shared beside the repository)")
    return ESS8


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder this run's xdist workers share (each worker's base temp is a child of it); without
    xdist the base temp itself."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder that ``make(folder)`` fills once per run, whichever worker asks first; the others wait
    on a file lock and reuse it. A failed ``make`` is reported by every worker that asks, not rerun."""
    shared = run_folder(tmp_path_factory)
    folder, done, failed = shared / name, shared / f"{name}.done", shared / f"{name}.failed"
    with FileLock(str(shared / f"{name}.lock")):
        if failed.is_file():
            pytest.fail(f"{name} (built once per run) failed in another worker:\n{failed.read_text()}")
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                make(folder)
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}")
                raise
            done.write_text("ok\n")
    return folder


@contextmanager
def unchanged(*paths: Path) -> Iterator[None]:
    """Yield, then fail if any of ``paths`` was written to: shared builds are read-only for tests."""
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in paths}
    yield
    changed = [str(p) for p, st in before.items() if (p.stat().st_size, p.stat().st_mtime_ns) != st]
    assert not changed, f"a test wrote to a database shared by the whole run: {changed}; copy it first"


@pytest.fixture(scope="session")
def fr_db(tmp_path_factory: pytest.TempPathFactory, ess8: Path) -> Iterator[Path]:
    """The real ESS8 France file built into a database, once per run (read-only: copy it to change it)."""
    def make(folder: Path) -> None:
        code, _, err = run("build", "--data", str(ess8.parent), "--db", str(folder / "fr.duckdb"))
        assert code == 0, err

    db = built_once(tmp_path_factory, "fr_db", make) / "fr.duckdb"
    with unchanged(db):
        yield db


def folder_db(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Path:
    """`harmonise build --data <folder>` with the shipped crosswalks, once per run and folder (read-only: copy it
    to change it)."""
    def make(out: Path) -> None:
        code, _, err = run("build", "--data", str(folder), "--db", str(out / "h.duckdb"))
        assert code == 0, err

    return built_once(tmp_path_factory, f"folder_db-{folder.parent.name}-{folder.name}", make) / "h.duckdb"


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """`harmonise build --demo` (every declared wave of all six surveys), run once per run: the database
    (read-only: copy it to change it) and what the command printed."""
    def make(folder: Path) -> None:
        code, out, err = run("build", "--demo", "--db", str(folder / "demo.duckdb"))
        assert code == 0, err
        (folder / "stdout.json").write_text(json.dumps(out))

    folder = built_once(tmp_path_factory, "demo", make)
    db = folder / "demo.duckdb"
    out = json.loads((folder / "stdout.json").read_text())
    with unchanged(db):
        yield db, out


@pytest.fixture(scope="session")
def demo_db(demo_build: tuple[Path, str]) -> Path:
    """The demo database, built once per run (read-only: copy it to change it)."""
    return demo_build[0]


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every declared wave's fixture files (seed 1, 300 rows, Stata editions included), generated once per run
    (read-only)."""
    def make(out: Path) -> None:
        code, _, err = run("fixtures", "--out", str(out), "--seed", "1", "--rows", "300", "--editions")
        assert code == 0, err

    return built_once(tmp_path_factory, "fixtures_seed1", make)


@pytest.fixture(scope="session")
def small_demo_db(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Iterator[Path]:
    """A demo database at 300 rows per file: the primary edition of every declared wave's fixture file (the
    demo's generator, countries, cities and sample designs, marked synthetic), built once per run (read-only).
    For tests that read a demo database but not its declared sample sizes: it builds and queries in a
    fraction of the time of `demo_db`'s ~100,000 rows."""
    def make(folder: Path) -> None:
        from harmonise import api

        result = api.build(ROOT, api.demo_files(fixtures_dir), folder / "demo.duckdb", synthetic=True)
        assert result.ok, [i.format() for i in result.issues]

    db = built_once(tmp_path_factory, "small_demo", make) / "demo.duckdb"
    with unchanged(db):
        yield db


def codebook_once(tmp_path_factory: pytest.TempPathFactory, name: str, *args: str) -> tuple[Path, str]:
    """`harmonise codebook --out <folder> *args`, once per run: the folder (read-only) and what it printed."""
    def make(folder: Path) -> None:
        code, out, err = run("codebook", "--out", str(folder / "codebooks"), *args)
        assert code == 0, err
        (folder / "stdout.json").write_text(json.dumps(out))

    folder = built_once(tmp_path_factory, name, make)
    return folder / "codebooks", json.loads((folder / "stdout.json").read_text())


@pytest.fixture(scope="session")
def declared_codebook(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The codebooks of the declarations alone (what `codebooks/` commits) and what the command printed."""
    return codebook_once(tmp_path_factory, "declared_codebook")


@pytest.fixture(scope="session")
def demo_codebook(tmp_path_factory: pytest.TempPathFactory, small_demo_db: Path) -> Path:
    """The codebooks of the small demo database (every declared wave, with frequencies), written once per run."""
    out, stdout = codebook_once(tmp_path_factory, "demo_codebook", "--db", str(small_demo_db))
    assert f"with frequencies from {small_demo_db}" in stdout
    return out


@pytest.fixture(scope="session")
def fr_codebook(tmp_path_factory: pytest.TempPathFactory, fr_db: Path) -> Path:
    """The codebooks of the ESS8 FR database, written once per run."""
    return codebook_once(tmp_path_factory, "fr_codebook", "--db", str(fr_db))[0]


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A copy of the project's declarations (mappings/, surveys/) to break on purpose."""
    dst = tmp_path / "proj"
    shutil.copytree(ROOT / "mappings", dst / "mappings")
    shutil.copytree(ROOT / "surveys", dst / "surveys")
    return dst


def declared_waves(root: Path = ROOT) -> tuple[tuple[str, str], ...]:
    """Every (survey, wave) the crosswalks under ``root`` declare, in their order: what tests iterate over and
    count instead of writing wave lists or totals down (a new wave then breaks only tests of its content).
    Read once per process for the repository, afresh for a project copy (which a test may change)."""
    return _repository_waves() if root == ROOT else _waves_under(root)


def _waves_under(root: Path) -> tuple[tuple[str, str], ...]:
    from harmonise.spec.project import load_project

    return tuple((cw.survey, w.wave) for cw in load_project(root).crosswalks.values() for w in cw.waves)


@cache
def _repository_waves() -> tuple[tuple[str, str], ...]:
    return _waves_under(ROOT)


def waves_of(survey: str, root: Path = ROOT) -> list[str]:
    """The waves of one survey's crosswalk, in declared order."""
    return [w for s, w in declared_waves(root) if s == survey]


def _wave_block(lines: list[str], start: int) -> list[str]:
    """The lines of the YAML list item opening at ``start`` (up to the next item or a shallower line)."""
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return lines[start:end]


def add_wave(project: Path, survey: str, like: str, new: str) -> None:
    """Declare one more wave ``new`` of ``survey`` in a project copy, as a copy of wave ``like``: its crosswalk
    entry, descriptor entry and declared codebook, with ``like`` replaced by ``new`` in them, and the cities
    ``like`` sampled (mappings/cities.yaml) sampled by ``new`` too."""
    for path, opener in ((project / "mappings" / f"{survey}.yaml", f'  - wave: "{like}"'),
                         (project / "surveys" / survey / "survey.yaml", f'  - id: "{like}"')):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if line.rstrip() == opener)
        block = _wave_block(lines, start)
        end = start + len(block)
        lines[end:end] = [line.replace(like, new) for line in block]
        path.write_text("".join(lines), encoding="utf-8")
    folder = project / "surveys" / survey
    text = (folder / f"codebook_{like}.yaml").read_text(encoding="utf-8")
    (folder / f"codebook_{new}.yaml").write_text(text.replace(f'wave: "{like}"', f'wave: "{new}"')
                                                 .replace(f"_{like}.", f"_{new}."), encoding="utf-8")
    cities, entry = project / "mappings" / "cities.yaml", f'{{survey: {survey}, wave: "{like}"}}'
    cities.write_text(cities.read_text(encoding="utf-8").replace(entry, f'{entry}, {{survey: {survey}, wave: "{new}"}}'),
                      encoding="utf-8")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def read_in_chunks_from(monkeypatch: pytest.MonkeyPatch, rows: int) -> list[tuple[str, bool]]:
    """Files of ``rows`` rows or more read as long files are: in chunks, by forked readers ahead of the
    harmonising and alone rather than with their wave's other small files (``batch.PREFETCH_MIN_ROWS``), in a
    build that starts readers ahead (``pipeline.ONE_THREAD_ROWS``), both 10,000 as shipped: a test of that path
    then writes a file of a few thousand rows instead of one past 10,000. Set in this process, they hold in
    the build's workers and readers too (forked from it). Returns, per file read in chunks
    (``batch.prefetched_chunks``), its name and whether forked readers read it, filled as the build reads."""
    from harmonise import pipeline
    from harmonise.pipeline import batch
    from harmonise.readers.prefetch import Prefetcher

    assert batch.PREFETCH_MIN_ROWS == pipeline.ONE_THREAD_ROWS == 10_000 > rows  # the thresholds this lowers
    monkeypatch.setattr(batch, "PREFETCH_MIN_ROWS", rows)
    monkeypatch.setattr(pipeline, "ONE_THREAD_ROWS", rows)
    read: list[tuple[str, bool]] = []
    prefetched = batch.prefetched_chunks

    def recorded(src: Any, columns: list[str], chunksize: int, enabled: bool = True) -> Any:
        chunks = prefetched(src, columns, chunksize, enabled)
        read.append((src.path.name, isinstance(chunks, Prefetcher)))
        return chunks

    monkeypatch.setattr(batch, "prefetched_chunks", recorded)
    return read


@cache
def named_by(survey: str) -> frozenset[str]:
    """Every name that the survey's crosswalk (``mappings/<survey>.yaml``), descriptor and declared codebooks
    (``surveys/<survey>/``) write, lower-cased: a superset of the variables a build reads from its files and of
    those the declarations expect in them (a file lacking a declared variable is noted as an extract). A test that
    writes a copy of a real file keeps these columns (``keep_named``) where what it checks lies in them:
    pyreadstat writes a file row by row, and a real ESS file's ~600 variables (71 of them named) made most of such
    a test's time."""
    import re

    paths = [ROOT / "mappings" / f"{survey}.yaml", *sorted((ROOT / "surveys" / survey).glob("*.yaml"))]
    text = "\n".join(path.read_text(encoding="utf-8") for path in paths)
    return frozenset(w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def keep_named(df: Any, survey: str = "ess") -> Any:
    """The columns of ``df`` (a pandas frame) that :func:`named_by` ``survey`` names."""
    named = named_by(survey)
    return df[[c for c in df.columns if c.lower() in named]]


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


def twice_unless_crashing(item: str) -> str:
    """A stand-in reader for the reader-child tests: ``"crash"`` kills its process (SIGSEGV), ``"raise"``
    raises a ValueError, anything else comes back doubled."""
    if item == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if item == "raise":
        raise ValueError("a readable error")
    return item * 2

