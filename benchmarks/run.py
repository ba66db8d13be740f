"""Time `harmonise build` against its physical floor (reading the needed columns) and record peak memory.

For each file — ESS round 8 widened to 600 columns at 1×, 4× and 16× of 50,000
rows, and the same 1× rows with the mapped columns only — the runner times, in
fresh processes and alternating which goes first in each pair:

  floor  python -c "pyreadstat.read_sav(file, usecols=<the crosswalk's source variables>, user_missing=True)"
  build  harmonise build --data <folder> --db <fresh database>

Peak memory is the largest sum of proportional set sizes (PSS) over the
process and its children, sampled every 20 ms in separate runs after the timed
pairs (sampling /proc costs CPU that would otherwise count against the build,
which runs longer and in more processes than the floor). Ratios are medians.
It prints a table and writes JSON (``--json``).

    python benchmarks/run.py                 # full run (generates the files first, ~4 GB for 16x)
    python benchmarks/run.py --quick         # small files, one pair: checks that the runner works
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

from generate import FILE_NAME, generate

from harmonise.discover import discover
from harmonise.pipeline import needed_columns
from harmonise.spec.project import load_project

FLOOR = ("import json, sys, pyreadstat; "
         "pyreadstat.read_sav(sys.argv[1], usecols=json.loads(sys.argv[2]), user_missing=True)")
TARGETS = {"time": 1.3, "scaling": 0.15, "memory": 2.0, "wide": 1.2, "demo": 30.0}


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


def measure(cmd: list[str], cwd: Path, memory: bool = False) -> Sample:
    """Wall time of one fresh process, and with ``memory`` its peak PSS (process tree, sampled
    every 20 ms). Reading smaps costs CPU beside the measured process, so timed runs are not
    sampled. Raises when the process fails."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.wait()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … exited {proc.returncode}: {err.strip()[-2000:]}")
    return Sample(round(seconds, 3), round(peak / 2**20, 1) if memory else None)


NO_INDICATORS = ("import harmonise.reports.indicators as i; i.store_indicators = lambda con, project: None; "
                 "from harmonise.cli import main; main()")


def harmonise_cmd(indicators: bool = True) -> list[str]:
    """The `harmonise` command; without the indicators table when ``indicators`` is false."""
    script = Path(sys.executable).parent / "harmonise"
    if not indicators:
        return [sys.executable, "-c", NO_INDICATORS]
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from harmonise.cli import main; main()"]


def build_cmd(db: Path, data: Path | None = None, indicators: bool = True) -> list[str]:
    """`harmonise build` of ``data`` (or the demo) into ``db``."""
    source = ["--data", str(data)] if data is not None else ["--demo"]
    return [*harmonise_cmd(indicators), "--project", str(ROOT), "build", *source, "--db", str(db)]


def run_case(case: Case, folder: Path, columns: list[str], pairs: int, work: Path, indicators: bool = True,
             memory_runs: int = 2) -> None:
    """Alternating timed pairs, then ``memory_runs`` alternating pairs sampled for peak memory."""
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
            sample = measure(floor if kind == "floor" else build, ROOT, memory)
            getattr(case, f"{kind}_memory" if memory else kind).append(sample)
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


def note(s: dict[str, object], pairs: int, pairs_top: int) -> str:
    cores = os.cpu_count()
    top = f" ({pairs_top} at the largest scale)" if pairs_top != pairs else ""
    parts = [f"On {cores} core(s), medians of {pairs} alternating pair(s) per file{top}:"]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=HERE / "data", help="folder for the generated files")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--rows", type=int, default=50_000, help="rows at scale 1")
    ap.add_argument("--columns", type=int, default=600)
    ap.add_argument("--pairs", type=int, default=5, help="alternating floor/build pairs per file")
    ap.add_argument("--pairs-top", type=int, default=None,
                    help="pairs at the largest scale (default: --pairs; each 16x pair takes minutes)")
    ap.add_argument("--memory-runs", type=int, default=2,
                    help="alternating pairs per file sampled for peak memory (after the timed pairs)")
    ap.add_argument("--no-demo", action="store_true", help="skip timing the demo build")
    ap.add_argument("--without-indicators", action="store_true",
                    help="time the build without its final indicators table (harmonising and loading only)")
    ap.add_argument("--json", type=Path, default=HERE / "results.json")
    ap.add_argument("--quick", action="store_true", help="tiny files, one pair, no demo: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.columns, args.scales, args.pairs, args.no_demo, args.memory_runs = 1_000, 120, [1, 2], 1, True, 1
    scales = sorted(set(args.scales) | {1})
    with tempfile.TemporaryDirectory(prefix="harmonise-bench-") as tmp:
        data = Path(tmp) / "data" if args.quick else args.data
        print(f"generating files in {data} …", flush=True)
        folders = generate(data, scales, args.rows, args.columns)
        project = load_project(ROOT)
        jobs, _ = discover(project, [folders["narrow-1x"]])
        columns = needed_columns(jobs[0], project)
        print(f"floor reads {len(columns)} columns: {', '.join(columns)}", flush=True)
        cases: dict[str, Case] = {}
        for name, folder in folders.items():
            k = int(name.split("-")[1].rstrip("x"))
            f = folder / FILE_NAME
            width = len(_width(f))
            cases[name] = Case(name, args.rows * k, width, f.stat().st_size / 1e6)
            top = k == max(scales) and k != 1 and args.pairs_top is not None
            run_case(cases[name], folder, columns, args.pairs_top if top else args.pairs, Path(tmp),
                     not args.without_indicators, args.memory_runs)
        paired = None
        if "wide-1x" in folders and "narrow-1x" in folders:
            paired = paired_builds(folders["wide-1x"], folders["narrow-1x"], args.pairs, Path(tmp),
                                   not args.without_indicators)
        demo = None
        if not args.no_demo:
            db = Path(tmp) / "demo.duckdb"
            subprocess.run(build_cmd(db),
                           check=True, stdout=subprocess.DEVNULL)  # warm the cached demo files
            db.unlink()
            demo = measure(build_cmd(db), ROOT).seconds
    result = summary(cases, demo, scales, paired)
    print()
    print(table(cases))
    print()
    print(note(result, args.pairs, args.pairs_top or args.pairs))
    payload = {"machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                           "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                           "python": platform.python_version(), "system": platform.platform()},
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pairs": args.pairs,
               "pairs_top": args.pairs_top or args.pairs, "memory_runs": args.memory_runs, "indicators": not args.without_indicators,
               "summary": result, "cases": {n: asdict(c) for n, c in cases.items()},
               "wide_narrow_pairs": paired}
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
