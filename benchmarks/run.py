"""Time `harmonise build` against its physical floor (reading the needed columns) and record peak memory.

Cases (``--cases``, default all):

- ``scale``: for each file — ESS round 8 widened to 600 columns at 1×, 4× and 16× of 50,000
  rows, and the same 1× rows with the mapped columns only — the runner times, in fresh processes
  and alternating which goes first in each pair:

    floor  python -c "pyreadstat.read_sav(file, usecols=<the crosswalk's source variables>, user_missing=True)"
    build  harmonise build --data <folder> --db <fresh database>

  Peak memory is the largest sum of proportional set sizes (PSS) over the process and its
  children, sampled every 20 ms in separate runs after the timed pairs (sampling /proc costs CPU
  that would otherwise count against the build, which runs longer and in more processes than the
  floor);
- ``many``: the ESS as it ships country by country (generate.py --many: 290 files), floor = one
  process reading every file's needed columns, build = one `harmonise build` of the folder;
  the per-file overhead is (build − floor) / files;
- ``incremental``: in a copy of the project, a full build of the many files, then one rule of one
  ESS round edited and the database rebuilt (reusing the unchanged files): rebuild / full; the edit
  changes no value, so the round keeps its indicators; then the rule edited again so that it changes
  values no estimate reads (a missing code's reason: the indicators are kept), and once more so that it
  changes values the estimates read (every year one earlier: the round's indicators estimated again),
  the database rebuilt after each;
- ``demo``: `harmonise build --demo` (its generated files cached);
- ``editloop``: a comment saved into a copy of `mappings/ess.yaml`, then `harmonise validate --data
  ../shared/data/ess8_fr/` (through the validation server), median over ``--editloop-runs``; then the
  same with a rule of round 8 (the file's round) changed at each save;
- ``retroharmonize``: where R is installed, benchmarks/retroharmonize.R reads the many files'
  needed columns through retroharmonize (skipped without R).

Ratios are medians. It prints tables and writes JSON (``--json``).

    python benchmarks/run.py                 # full run (generates the files first, ~5 GB)
    python benchmarks/run.py --cases many,incremental,editloop   # only these
    python benchmarks/run.py --quick         # small files, one sampled pair, scale case: checks that the runner works
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from generate import FILE_NAME, MANY_COLUMNS, MANY_COUNTRIES, MANY_ROWS, generate, generate_many

from harmonise.discover import discover
from harmonise.pipeline.batch import needed_columns
from harmonise.spec.project import load_project

FLOOR = ("import json, sys, pyreadstat; "
         "pyreadstat.read_sav(sys.argv[1], usecols=json.loads(sys.argv[2]), user_missing=True)")
MANY_FLOOR = ("import json, sys, pyreadstat\n"
              "for f, c in json.load(open(sys.argv[1])): pyreadstat.read_sav(f, usecols=c, user_missing=True)")
TARGETS = {"time": 1.3, "scaling": 0.15, "memory": 2.0, "wide": 1.2, "demo": 30.0, "many": 1.5, "incremental": 0.15}
CASES = ("scale", "many", "incremental", "demo", "editloop", "retroharmonize")
EDIT_LOOP_DATA = ROOT.parent / "shared" / "data" / "ess8_fr"


@dataclass
class Sample:
    seconds: float
    peak_mb: float | None = None  # only in memory runs: sampling /proc costs CPU, so timed runs are not sampled


@dataclass
class Case:
    name: str
    rows: int
    columns: int
    size_mb: float
    floor: list[Sample] = field(default_factory=list)
    build: list[Sample] = field(default_factory=list)
    floor_memory: list[Sample] = field(default_factory=list)
    build_memory: list[Sample] = field(default_factory=list)

    def median(self, kind: str, attr: str) -> float:
        runs = getattr(self, f"{kind}_memory" if attr == "peak_mb" else kind)
        return statistics.median(getattr(s, attr) for s in runs)

    def ratio(self) -> float:
        """Median over pairs of build time / floor time."""
        return statistics.median(b.seconds / f.seconds for f, b in zip(self.floor, self.build))


def measure(cmd: list[str], cwd: Path, memory: bool = False, output: list[str] | None = None) -> Sample:
    """Wall time of one fresh process, and with ``memory`` its peak PSS (process tree, sampled
    every 20 ms). Reading smaps costs CPU beside the measured process, so timed runs are not
    sampled. Raises when the process fails. ``output``: receives what it printed."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE if output is not None else subprocess.DEVNULL,
                        stderr=subprocess.PIPE)
    peak = 0
    if memory:
        while proc.poll() is None:
            total = 0
            try:
                for p in [proc, *proc.children(recursive=True)]:
                    total += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
            peak = max(peak, total)
            time.sleep(0.02)
    out, err_bytes = proc.communicate()
    err = err_bytes.decode() if err_bytes else ""
    seconds = time.perf_counter() - t0
    if output is not None:
        output.append(out.decode() if out else "")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … exited {proc.returncode}: {err.strip()[-2000:]}")
    return Sample(round(seconds, 3), round(peak / 2**20, 1) if memory else None)


# the build with no indicators table: the test the build asks before estimating any (patched before the CLI runs)
NO_INDICATORS = ("import harmonise.reports.indicator_table as t; t.stores_indicators = lambda project: False; "
                 "from harmonise.cli import main; main()")


def harmonise_cmd(indicators: bool = True) -> list[str]:
    """The `harmonise` command; without the indicators table when ``indicators`` is false."""
    script = Path(sys.executable).parent / "harmonise"
    if not indicators:
        return [sys.executable, "-c", NO_INDICATORS]
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from harmonise.cli import main; main()"]


def build_cmd(db: Path, data: Path | None = None, indicators: bool = True, project: Path = ROOT,
              *extra: str) -> list[str]:
    """`harmonise build` of ``data`` (or the demo) into ``db``."""
    source = ["--data", str(data)] if data is not None else ["--demo"]
    return [*harmonise_cmd(indicators), "--project", str(project), "build", *source, "--db", str(db), *extra]


def run_case(case: Case, folder: Path, columns: list[str], pairs: int, work: Path, indicators: bool = True,
             memory_runs: int = 2) -> None:
    """Alternating timed pairs, then ``memory_runs`` alternating pairs sampled for peak memory (0: the timed
    pairs are sampled and count as memory runs too — a smoke run, each process once)."""
    file = folder / FILE_NAME
    floor = [sys.executable, "-c", FLOOR, str(file), json.dumps(columns)]
    db = work / f"{case.name}.duckdb"
    build = build_cmd(db, folder, indicators)
    for i in range(pairs + memory_runs):
        memory = i >= pairs
        order = ("floor", "build") if i % 2 == 0 else ("build", "floor")
        for kind in order:
            if kind == "build":
                db.unlink(missing_ok=True)
            sample = measure(floor if kind == "floor" else build, ROOT, memory or memory_runs == 0)
            getattr(case, f"{kind}_memory" if memory else kind).append(sample)
            if memory_runs == 0:
                getattr(case, f"{kind}_memory").append(sample)
            what = f"{sample.peak_mb:.0f} MB peak" if memory else f"{sample.seconds:.2f} s"
            print(f"  {case.name} {'memory run' if memory else 'pair'} {i + 1 - (pairs if memory else 0)}: "
                  f"{kind} {what}", flush=True)
    db.unlink(missing_ok=True)


def paired_builds(wide: Path, narrow: Path, pairs: int, work: Path, indicators: bool = True) -> list[tuple[float, float]]:
    """(wide, narrow) build seconds of alternating pairs: the wide-vs-narrow ratio compares builds run
    next to each other, so a change in the machine's speed between the two cases does not enter it."""
    out = []
    for i in range(pairs):
        order = (wide, narrow) if i % 2 == 0 else (narrow, wide)
        seconds = {}
        for folder in order:
            db = work / "paired.duckdb"
            db.unlink(missing_ok=True)
            seconds[folder] = measure(build_cmd(db, folder, indicators), ROOT).seconds
            db.unlink(missing_ok=True)
        out.append((seconds[wide], seconds[narrow]))
        print(f"  wide/narrow pair {i + 1}: {seconds[wide]:.2f} s / {seconds[narrow]:.2f} s", flush=True)
    return out


def summary(cases: dict[str, Case], demo: float | None, scales: list[int],
            paired: list[tuple[float, float]] | None = None) -> dict[str, object]:
    """The issue's ratios from the measured cases."""
    one = cases.get("wide-1x")
    out: dict[str, object] = {}
    if one is None:
        return out
    out["time_ratio_1x"] = round(one.ratio(), 3)
    per_row = one.median("build", "seconds") / one.rows
    out["per_row_ratio"] = {f"{k}x": round(cases[f"wide-{k}x"].median("build", "seconds") /
                                           cases[f"wide-{k}x"].rows / per_row, 3)
                            for k in scales if k != 1 and f"wide-{k}x" in cases}
    top = max(scales)
    if top != 1 and f"wide-{top}x" in cases:
        out[f"memory_ratio_{top}x"] = round(cases[f"wide-{top}x"].median("build", "peak_mb") /
                                            one.median("build", "peak_mb"), 3)
    if paired and "narrow-1x" in cases:
        out["wide_time_ratio"] = round(statistics.median(w / n for w, n in paired), 3)
        out["wide_memory_ratio"] = round(one.median("build", "peak_mb") / cases["narrow-1x"].median("build", "peak_mb"), 3)
    if demo is not None:
        out["demo_seconds"] = round(demo, 2)
    return out


def table(cases: dict[str, Case]) -> str:
    head = f"{'file':<10} {'rows':>9} {'cols':>5} {'MB':>6} {'floor s':>8} {'build s':>8} {'build/floor':>11} " \
           f"{'floor MB':>9} {'build MB':>9}"
    lines = [head, "-" * len(head)]
    for c in cases.values():
        lines.append(f"{c.name:<10} {c.rows:>9,} {c.columns:>5} {c.size_mb:>6.0f} {c.median('floor', 'seconds'):>8.2f} "
                     f"{c.median('build', 'seconds'):>8.2f} {c.ratio():>11.2f} {c.median('floor', 'peak_mb'):>9.0f} "
                     f"{c.median('build', 'peak_mb'):>9.0f}")
    return "\n".join(lines)


def note(s: dict[str, object], pairs: int, pairs_top: int, scale: bool = True) -> str:
    """The summary's lines; ``scale``: the scale cases ran (the pairs named are theirs)."""
    cores = os.cpu_count()
    top = f" ({pairs_top} at the largest scale)" if pairs_top != pairs else ""
    parts = [f"On {cores} core(s), medians of {pairs} alternating pair(s) per file{top}:" if scale
             else f"On {cores} core(s):"]
    if "time_ratio_1x" in s:
        parts.append(f"build/floor at 1x = {s['time_ratio_1x']} (target <= {TARGETS['time']})")
    for k, v in dict(s.get("per_row_ratio", {})).items():  # type: ignore[call-overload]
        parts.append(f"time per row at {k} = {v} x the 1x run (target within {TARGETS['scaling']:.0%})")
    for k, v in s.items():
        if k.startswith("memory_ratio_"):
            parts.append(f"peak memory at {k.rsplit('_', 1)[1]} = {v} x 1x (target <= {TARGETS['memory']})")
    if "wide_time_ratio" in s:
        parts.append(f"wide vs mapped-only columns (builds in alternating pairs): time {s['wide_time_ratio']} x, "
                     f"memory {s['wide_memory_ratio']} x "
                     f"(target <= {TARGETS['wide']})")
    if "demo_seconds" in s:
        parts.append(f"demo build of all surveys {s['demo_seconds']} s (target < {TARGETS['demo']:.0f} s)")
    return "\n  ".join(parts)


@dataclass
class Many:
    """The many-files case: floor and build seconds of alternating pairs."""

    files: int
    rows: int
    size_mb: float
    floor: list[float] = field(default_factory=list)
    build: list[float] = field(default_factory=list)

    def ratio(self) -> float:
        return statistics.median(b / f for f, b in zip(self.floor, self.build))

    def overhead_ms(self) -> float:
        """Median over pairs of (build − floor) per file, in milliseconds."""
        return statistics.median((b - f) / self.files * 1000 for f, b in zip(self.floor, self.build))


def many_spec(folder: Path, out: Path) -> tuple[int, int]:
    """Write (file, needed columns) of every file of ``folder`` as JSON to ``out``: what the floor reads.
    Returns (files, rows)."""
    import pyreadstat

    project = load_project(ROOT)
    jobs, _ = discover(project, [folder])
    spec = [(str(j.path), needed_columns(j, project)) for j in jobs]
    out.write_text(json.dumps(spec))
    rows = sum(pyreadstat.read_sav(f, metadataonly=True)[1].number_rows for f, _ in spec)
    return len(spec), rows


def many_case(folder: Path, pairs: int, work: Path, indicators: bool = True) -> Many:
    """Alternating pairs: every file's needed columns read in one process, and one build of the folder
    (without its indicators table unless ``indicators``)."""
    spec = work / "many-spec.json"
    files, rows = many_spec(folder, spec)
    case = Many(files, rows, sum(p.stat().st_size for p in folder.glob("*.sav")) / 1e6)
    floor = [sys.executable, "-c", MANY_FLOOR, str(spec)]
    db = work / "many.duckdb"
    for i in range(pairs):
        for kind in (("floor", "build") if i % 2 == 0 else ("build", "floor")):
            if kind == "build":
                _fresh(db)
            seconds = measure(floor if kind == "floor" else build_cmd(db, folder, indicators), ROOT).seconds
            getattr(case, kind).append(seconds)
            print(f"  many files pair {i + 1}: {kind} {seconds:.2f} s", flush=True)
    _fresh(db)
    return case


def _fresh(db: Path) -> None:
    """No database (and no build cache) at ``db``: the next build there is a full one."""
    db.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(db.name + ".cache"), ignore_errors=True)


YEAR_RANGE = re.compile(r"^( +)year_of_arrival: \{range: \[(\d+), (\d+)\]\}$", re.MULTILINE)


def edit_last_round(crosswalk: Path) -> str:
    """Edit one rule of the last ESS round (its year-of-arrival range); returns the round."""
    text = crosswalk.read_text()
    found = list(YEAR_RANGE.finditer(text))
    if not found:
        raise SystemExit(f"{crosswalk}: no year_of_arrival range override to edit")
    last = found[-1]
    crosswalk.write_text(text[:last.start()] + f"{last.group(1)}year_of_arrival: {{range: [{int(last.group(2)) + 1}, "
                         f"{last.group(3)}]}}" + text[last.end():])
    rounds = re.findall(r'^  - wave: "([^"]+)"', text[:last.start()], re.MULTILINE)
    return rounds[-1]


def edit_values_last_round(crosswalk: Path, estimated: bool = False) -> None:
    """Edit the same rule so that it changes values: code 9999 of the last round's year of arrival (no_answer
    by the survey's defaults) becomes refused, so that round's rows change but no value an indicator reads
    (years since arrival is read by its value, which stays missing); with ``estimated``, every year one earlier
    instead, which changes years since arrival, and so the round's indicators."""
    text = crosswalk.read_text()
    last = list(YEAR_RANGE.finditer(text))[-1]
    tail = ', transform: "x - 1"}' if estimated else ", missing: {9999: refused}}"
    crosswalk.write_text(text[:last.end() - 1] + tail + text[last.end():])


def incremental_case(folder: Path, pairs: int, work: Path) -> list[dict[str, object]]:
    """Pairs of a full build and, after editing one rule of one round, the rebuild (in a project copy); the
    edit (the round's year-of-arrival range) changes no value of the generated files, so the round's
    indicators are kept; then a rebuild after an edit of the same rule that changes values no estimate reads
    (``rebuild_values``: the indicators are kept), and one after an edit that changes values they read
    (``rebuild_estimated``: the round's indicators are estimated again)."""
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    for part in ("mappings", "surveys"):
        shutil.copytree(ROOT / part, project / part)
    crosswalk = project / "mappings" / "ess.yaml"
    original = crosswalk.read_text()
    db = work / "incremental.duckdb"
    out = []
    for i in range(pairs):
        crosswalk.write_text(original)
        _fresh(db)
        full = measure(build_cmd(db, folder, True, project, "--full"), ROOT).seconds
        edited = edit_last_round(crosswalk)
        printed: list[str] = []
        rebuild = measure(build_cmd(db, folder, True, project), ROOT, output=printed).seconds
        kept = re.search(r"; (\d+) of (\d+) files kept", printed[0])
        if kept is None:
            raise SystemExit(f"the rebuild kept no file: {printed[0][-500:]}")
        seconds = []
        for estimated in (False, True):
            crosswalk.write_text(original)
            edit_values_last_round(crosswalk, estimated)
            printed = []
            seconds.append(measure(build_cmd(db, folder, True, project), ROOT, output=printed).seconds)
            if re.search(r"; \d+ of \d+ files kept", printed[0]) is None:
                raise SystemExit(f"a rebuild after a value-changing edit kept no file: {printed[0][-500:]}")
        values, estimates = seconds
        out.append({"full": full, "rebuild": rebuild, "rebuild_values": values, "rebuild_estimated": estimates,
                    "round": edited, "kept": int(kept.group(1)), "files": int(kept.group(2))})
        print(f"  incremental pair {i + 1}: full {full:.2f} s, rebuild after editing round {edited} {rebuild:.2f} s "
              f"({kept.group(1)} of {kept.group(2)} files kept), after an edit that changes its values "
              f"{values:.2f} s (values the indicators read: {estimates:.2f} s)", flush=True)
    _fresh(db)
    return out


RULE_EDIT = ('        missing: {"99999": not_available}\n        quality: exact\n',  # ess.yaml, waves[8] region_nuts
             '        missing: {"99999": not_available, "{code}": not_available}\n        quality: exact\n')


def editloop_case(runs: int, work: Path | None = None, rule: bool = False) -> list[float]:
    """The mapping author's loop: save `mappings/ess.yaml`, then `harmonise validate --data
    ../shared/data/ess8_fr/`, ``runs`` times, in a copy of the project (``work``), through the validation
    server as the author's command runs it (the first run starts it). Each save adds a comment line, or
    with ``rule`` changes a rule of round 8 (the file's round: another missing code of its region rule,
    so its checks and compiled SQL change at every save)."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        project = Path(tmp) / "project"
        for part in ("mappings", "surveys"):
            shutil.copytree(ROOT / part, project / part)
        ess = project / "mappings" / "ess.yaml"
        text = ess.read_text(encoding="utf-8")
        if rule and text.count(RULE_EDIT[0]) != 1:
            raise SystemExit("benchmarks/run.py: the rule edit's anchor is not in mappings/ess.yaml; update RULE_EDIT")
        cmd = [*harmonise_cmd(), "--project", str(project), "validate", "--data", str(EDIT_LOOP_DATA)]
        out = []
        for i in range(runs + 1):  # run 0 starts the server and is not counted
            edited = text.replace(RULE_EDIT[0], RULE_EDIT[1].replace("{code}", str(99990 - i))) if rule \
                else text + f"# edit {i}\n"
            ess.write_text(edited, encoding="utf-8")  # every run follows a save
            seconds = measure(cmd, ROOT).seconds
            if i:
                out.append(seconds)
                print(f"  edit loop ({'rule' if rule else 'comment'}) run {i}: {seconds:.2f} s", flush=True)
            else:
                _server_ready(project)
    return out


def _server_ready(project: Path, limit: float = 60) -> None:
    """Wait (up to ``limit`` s) for the validation server the first run started to listen, as an author's
    next save comes seconds later, not at once."""
    from harmonise import warm

    sock = warm.socket_path(warm.server_dir(), project.resolve(), warm.code_fingerprint())
    deadline = time.monotonic() + limit
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def retroharmonize_case(folder: Path, work: Path) -> float | None:
    """benchmarks/retroharmonize.R over the many files' needed columns (None when R is not installed)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("  retroharmonize: skipped (R is not installed)", flush=True)
        return None
    spec = work / "many-spec.json"
    if not spec.is_file():
        many_spec(folder, spec)
    tsv = work / "many-spec.tsv"
    tsv.write_text("".join(f"{f}\t{','.join(c)}\n" for f, c in json.loads(spec.read_text())))
    seconds = measure([rscript, str(HERE / "retroharmonize.R"), str(tsv)], ROOT).seconds
    print(f"  retroharmonize: {seconds:.2f} s", flush=True)
    return seconds


def extra_summary(many: Many | None, incremental: list[dict[str, object]] | None, editloop: list[float] | None,
                  retro: float | None, editrule: list[float] | None = None) -> dict[str, object]:
    out: dict[str, object] = {}
    if many is not None:
        out["many_files"] = many.files
        out["many_build_floor"] = round(many.ratio(), 3)
        out["many_overhead_ms"] = round(many.overhead_ms(), 1)
    if incremental:
        out["incremental_ratio"] = round(statistics.median(float(p["rebuild"]) / float(p["full"])  # type: ignore[arg-type]
                                                           for p in incremental), 3)
        out["incremental_values_ratio"] = round(statistics.median(
            float(p["rebuild_values"]) / float(p["full"]) for p in incremental), 3)  # type: ignore[arg-type]
        out["incremental_estimated_ratio"] = round(statistics.median(
            float(p["rebuild_estimated"]) / float(p["full"]) for p in incremental), 3)  # type: ignore[arg-type]
    if editloop:
        out["editloop_seconds"] = round(statistics.median(editloop), 3)
    if editrule:
        out["editloop_rule_seconds"] = round(statistics.median(editrule), 3)
    if retro is not None:
        out["retroharmonize_seconds"] = round(retro, 2)
    return out


def extra_note(s: dict[str, object], many: Many | None) -> list[str]:
    parts = []
    if many is not None:
        parts.append(f"{many.files} files ({many.rows:,} rows), median of {len(many.floor)} alternating pair(s): "
                     f"build/floor = {s['many_build_floor']} (target <= "
                     f"{TARGETS['many']}), per-file overhead {s['many_overhead_ms']} ms "
                     f"(floor {statistics.median(many.floor):.2f} s, build {statistics.median(many.build):.2f} s)")
    if "incremental_ratio" in s:
        parts.append(f"rebuild after editing one rule of one round / full build = {s['incremental_ratio']} "
                     f"(target <= {TARGETS['incremental']}; the edit changes no value, the round's indicators are "
                     f"kept); after an edit of the rule that changes values no estimate reads = "
                     f"{s['incremental_values_ratio']}, values they read = {s['incremental_estimated_ratio']}")
    if "editloop_seconds" in s:
        parts.append(f"edit loop (validate --data ESS8 FR after saving a comment) median {s['editloop_seconds']} s")
    if "editloop_rule_seconds" in s:
        parts.append(f"edit loop (the same after changing a rule of round 8) median {s['editloop_rule_seconds']} s")
    if "retroharmonize_seconds" in s:
        parts.append(f"retroharmonize reading the many files {s['retroharmonize_seconds']} s")
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=HERE / "data", help="folder for the generated files")
    ap.add_argument("--cases", default=None,
                    help=f"comma-separated cases to run (default: all; --quick: scale): {', '.join(CASES)}")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--rows", type=int, default=50_000, help="rows at scale 1")
    ap.add_argument("--columns", type=int, default=600)
    ap.add_argument("--pairs", type=int, default=5, help="alternating floor/build pairs per file")
    ap.add_argument("--pairs-top", type=int, default=None,
                    help="pairs at the largest scale (default: --pairs; each 16x pair takes minutes)")
    ap.add_argument("--memory-runs", type=int, default=2,
                    help="alternating pairs per file sampled for peak memory (after the timed pairs; 0: the timed "
                         "pairs are sampled)")
    ap.add_argument("--many-pairs", type=int, default=2, help="floor/build pairs of the many-files case")
    ap.add_argument("--many-countries", type=int, default=MANY_COUNTRIES)
    ap.add_argument("--many-rows", type=int, default=MANY_ROWS)
    ap.add_argument("--many-columns", type=int, default=MANY_COLUMNS)
    ap.add_argument("--incremental-pairs", type=int, default=2, help="full build / rebuild pairs")
    ap.add_argument("--editloop-runs", type=int, default=5)
    ap.add_argument("--no-demo", action="store_true", help="skip timing the demo build")
    ap.add_argument("--without-indicators", action="store_true",
                    help="time the builds (scale and many files) without the indicators table: harmonising and loading "
                         "only")
    ap.add_argument("--json", type=Path, default=HERE / "results.json")
    ap.add_argument("--quick", action="store_true",
                    help="tiny files, one sampled pair per file (its builds also give the wide/narrow pair), no demo: "
                         "a smoke test")
    args = ap.parse_args(argv)
    chosen = [c.strip() for c in (args.cases or ("scale" if args.quick else ",".join(CASES))).split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CASES))
    if unknown:
        ap.error(f"--cases: unknown {', '.join(unknown)} (cases: {', '.join(CASES)})")
    if args.no_demo and "demo" in chosen:
        chosen.remove("demo")
    if args.quick:
        args.rows, args.columns, args.scales, args.pairs, args.memory_runs = 1_000, 120, [1, 2], 1, 0
        args.many_countries, args.many_rows, args.many_columns, args.many_pairs = 2, 200, 120, 1
        args.incremental_pairs, args.editloop_runs = 1, 1
    scales = sorted(set(args.scales) | {1})
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    cases: dict[str, Case] = {}
    paired = many = incremental = editloop = editrule = None
    demo = retro = None
    with tempfile.TemporaryDirectory(prefix="harmonise-bench-") as tmp:
        data = Path(tmp) / "data" if args.quick else args.data
        if "scale" in chosen:
            print(f"generating files in {data} …", flush=True)
            folders = generate(data, scales, args.rows, args.columns)
            project = load_project(ROOT)
            jobs, _ = discover(project, [folders["narrow-1x"]])
            columns = needed_columns(jobs[0], project)
            print(f"floor reads {len(columns)} columns: {', '.join(columns)}", flush=True)
            for name, folder in folders.items():
                k = int(name.split("-")[1].rstrip("x"))
                f = folder / FILE_NAME
                width = len(_width(f))
                cases[name] = Case(name, args.rows * k, width, f.stat().st_size / 1e6)
                top = k == max(scales) and k != 1 and args.pairs_top is not None
                run_case(cases[name], folder, columns, args.pairs_top if top else args.pairs, Path(tmp),
                         not args.without_indicators, args.memory_runs)
            if "wide-1x" in folders and "narrow-1x" in folders:
                paired = ([(cases["wide-1x"].build[0].seconds, cases["narrow-1x"].build[0].seconds)] if args.quick
                          else paired_builds(folders["wide-1x"], folders["narrow-1x"], args.pairs, Path(tmp),
                                             not args.without_indicators))
        if {"many", "incremental", "retroharmonize"} & set(chosen):
            print(f"generating the many-files case in {data} …", flush=True)
            many_folder = generate_many(data, args.many_countries, args.many_rows, columns=args.many_columns)
            if "many" in chosen:
                many = many_case(many_folder, args.many_pairs, Path(tmp), not args.without_indicators)
            if "incremental" in chosen:
                incremental = incremental_case(many_folder, args.incremental_pairs, Path(tmp))
            if "retroharmonize" in chosen:
                retro = retroharmonize_case(many_folder, Path(tmp))
        if "demo" in chosen:
            db = Path(tmp) / "demo.duckdb"
            subprocess.run(build_cmd(db),
                           check=True, stdout=subprocess.DEVNULL)  # warm the cached demo files
            _fresh(db)
            demo = measure(build_cmd(db), ROOT).seconds
            print(f"  demo build {demo:.2f} s", flush=True)
        if "editloop" in chosen:
            editloop = editloop_case(args.editloop_runs)
            editrule = editloop_case(args.editloop_runs, rule=True)
    result = {**summary(cases, demo, scales, paired), **extra_summary(many, incremental, editloop, retro, editrule)}
    if "demo_seconds" not in result and demo is not None:
        result["demo_seconds"] = round(demo, 2)
    print()
    if cases:
        print(table(cases))
        print()
    lines = note(result, args.pairs, args.pairs_top or args.pairs, scale=bool(cases)).split("\n  ")
    lines += [f"build/floor at {n.split('-')[1]} = {c.ratio():.3f}" for n, c in cases.items()
              if n.startswith("wide-") and n != "wide-1x"]
    print("\n  ".join(lines + extra_note(result, many)))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    payload = {"machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                           "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                           "python": platform.python_version(), "system": platform.platform()},
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cases_run": chosen, "pairs": args.pairs,
               "pairs_top": args.pairs_top or args.pairs, "memory_runs": args.memory_runs, "indicators": not args.without_indicators,
               "summary": result, "cases": {n: asdict(c) for n, c in cases.items()},
               "wide_narrow_pairs": paired, "many": asdict(many) if many is not None else None,
               "incremental": incremental, "editloop": editloop, "editloop_rule": editrule, "retroharmonize": retro, "demo": demo}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


def _width(path: Path) -> list[str]:
    import pyreadstat

    _, meta = pyreadstat.read_sav(str(path), metadataonly=True)
    return list(meta.column_names)


if __name__ == "__main__":
    raise SystemExit(main())
