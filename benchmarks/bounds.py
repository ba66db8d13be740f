"""How close to the floor can a build that stores harmonised rows in DuckDB get? Lower bounds for issue 8.

Times, in fresh processes and in alternating rounds (each round runs every case
once, in reversed order every other round), on one generated file:

  floor    pyreadstat.read_sav(file, usecols=<the crosswalk's source variables>, user_missing=True)
  copy     the same columns read by harmonise's readers (two forked processes, each half the rows),
           stored unchanged in a new DuckDB file
  recode   the same read, through the compiled recode query of the crosswalk, stored in a new
           DuckDB file (what every build must do at least)
  build    harmonise build (adds the declarations, crosswalk checks, profile and harmonisation
           report, pandera, sha256 provenance and the indicators table)

``copy`` and ``recode`` load no declarations and check nothing: the columns and the SQL
are prepared once by the parent. Per case it prints the median wall time, the ratio
to the floor (median over rounds of the case's time over the floor's in the same
round, as the machine's speed drifts between rounds) and the median CPU time (user +
system over the process and its children), and writes JSON.

    python benchmarks/bounds.py                  # wide-1x (generated if absent), 7 rounds

With ``--many FOLDER`` (the many files of ``generate.py --many``) the cases are those of issue 22's many-files
target, each in two processes at once (the build's ``--jobs`` on two cores), a wave's files in one of them
(the waves dealt out so the two hold about as many rows), in the groups the build makes of them, each group
reading the columns and running the recode query the build's does:

  floor     every file's needed columns read with pyreadstat in one process (benchmarks/run.py's floor)
  read      the same columns read by harmonise's reader, nothing stored
  recode    the read, through each wave's compiled recode query, inserted into a DuckDB file per process as
            the build inserts (``respondents``, 16,384-row row groups, 256 MB memory limit)
  estimate  the recode, then each wave's stored indicators estimated from that file as the build estimates a
            wave (``estimate_frame``, every breakdown, disclosure control and quality flags)
  build     harmonise build of the folder (discovery, checks, accounting, pandera, provenance, the merge)

``recode`` and ``estimate`` check nothing and write no provenance, and their files are never merged into one:
they are what any build that stores the harmonised rows and the stored indicators must do at least.

    python benchmarks/bounds.py --many benchmarks/data/many --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

CASES = ("floor", "copy", "recode", "build")
MANY_CASES = ("floor", "read", "recode", "estimate", "build")


def child(kind: str, file: Path, db: Path, spec: Path) -> None:
    """The ``copy``/``recode`` process: read ``spec``'s columns with harmonise's readers, store in ``db``."""
    import duckdb

    from harmonise.readers.files import open_source
    from harmonise.readers.prefetch import prefetched_chunks

    plan = json.loads(spec.read_text())
    select = plan["sql"] if kind == "recode" else "SELECT * FROM src"
    con = duckdb.connect()
    con.execute("SET memory_limit = '256MB'")  # as the build connection
    con.execute(f"ATTACH '{db}' AS out (ROW_GROUP_SIZE 16384)")  # as the build's database file
    con.execute("USE out")
    for i, chunk in enumerate(prefetched_chunks(open_source(file), plan["columns"], 50_000)):
        con.register("src", chunk)
        con.execute(f"CREATE TABLE rows AS {select}" if i == 0 else f"INSERT INTO rows {select}")
        con.unregister("src")
    con.close()


def many_child(kind: str, spec: Path, db: Path) -> None:
    """One process of a ``--many`` case: its groups of files (``spec``) read, recoded into ``db``, estimated."""
    from harmonise.pipeline.batch import CHUNK_ROWS
    from harmonise.readers.files import open_source

    groups = json.loads(spec.read_text())
    if kind == "read":
        for g in groups:
            for file in g["files"]:
                list(open_source(Path(file), isolate=False).chunks(g["columns"], CHUNK_ROWS))
        return
    import duckdb
    import pandas as pd

    from harmonise.api import BUILD_MEMORY_LIMIT, INDICATORS_MEMORY_LIMIT
    from harmonise.spec.project import load_project
    from harmonise.store.respondents import FILE_BITS, create_all, insert_select

    project = load_project(ROOT)
    assert project.schema is not None
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{BUILD_MEMORY_LIMIT}'")  # as the build connection
    con.execute(f"ATTACH '{db}' AS out (ROW_GROUP_SIZE 16384)")  # as a worker's database file
    con.execute("USE out")
    create_all(con, project.schema)
    for g in groups:
        frames = []
        for i, file in enumerate(g["files"]):
            for frame in open_source(Path(file), isolate=False).chunks(g["columns"], CHUNK_ROWS):
                if i:
                    frame["__row"] += i << FILE_BITS
                frames.append(frame)
        con.register("src", frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True))
        con.execute(insert_select(project.schema, f"({g['sql']})", [Path(f).name for f in g["files"]]))
        con.unregister("src")
    if kind == "estimate":
        from harmonise.reports.indicators import DEFAULT_BY, estimate_frame, load_definitions

        defs = load_definitions(ROOT, project.schema)
        con.execute(f"SET memory_limit = '{INDICATORS_MEMORY_LIMIT}'")  # as the build's estimates (decision 28),
        con.execute("SET threads = 1")  # one thread each as there (two processes share the two cores)
        for survey, wave in dict.fromkeys((g["survey"], g["wave"]) for g in groups):
            estimate_frame(con, defs, None, DEFAULT_BY, (None, *defs.breakdowns), sample=[(survey, wave)],
                           materialise=True)
    con.close()


def many_groups(folder: Path) -> list[list[dict[str, object]]]:
    """For each of two processes, its groups of ``folder``'s files as the build plans them for two workers
    (``pipeline.plan_groups``: a wave's small files together, up to its group size), each with the columns the build
    reads and the recode query it runs (:func:`deal` says which process takes which wave)."""
    from harmonise.discover import discover
    from harmonise.pipeline import plan_groups, prepare_file, wave_of
    from harmonise.samework import SameWork
    from harmonise.spec.project import load_project

    project = load_project(ROOT)
    same = SameWork()
    jobs, _ = discover(project, [folder])
    _, segments = plan_groups([prepare_file(job, project, same, None) for job in jobs], set(), 2)
    return deal([(wave_of(g[0]), sum(f.src.meta.rows or 0 for f in g),
                  {"survey": g[0].job.crosswalk.survey, "wave": g[0].job.wave.wave, "sql": g[0].compiled.sql,
                   "columns": g[0].columns, "files": [str(f.job.path) for f in g]})
                 for _, groups in segments for g in groups])


def deal(groups: list[tuple[tuple[str, str], int, dict[str, object]]], processes: int = 2
         ) -> list[list[dict[str, object]]]:
    """Each process's groups: the (wave, rows, group) given, a wave's groups all to one process in their order; the
    waves dealt out largest first, each to the process holding the fewest rows so far."""
    waves: dict[tuple[str, str], list[tuple[int, dict[str, object]]]] = {}
    for wave, rows, group in groups:
        waves.setdefault(wave, []).append((rows, group))
    procs: list[list[dict[str, object]]] = [[] for _ in range(processes)]
    held = [0] * processes
    for parts in sorted(waves.values(), key=lambda parts: -sum(n for n, _ in parts)):
        p = held.index(min(held))
        held[p] += sum(n for n, _ in parts)
        procs[p] += [group for _, group in parts]
    return procs


def timed(cmds: list[list[str]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of processes run at once, until the last ends; raises when one fails."""
    before = os.times()
    t0 = time.perf_counter()
    running = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for c in cmds]
    errors = [p.communicate()[1] for p in running]
    wall = time.perf_counter() - t0
    after = os.times()
    for cmd, p, err in zip(cmds, running, errors):
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])} … exited {p.returncode}: {err.strip()[-2000:]}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def many_main(folder: Path, rounds: int, out: Path, cases: Sequence[str] = MANY_CASES) -> int:
    """The ``--many`` cases (``cases``, the floor always among them) in alternating rounds; prints and writes
    medians and ratios to the floor."""
    from run import MANY_FLOOR, build_cmd, many_spec

    cases = [k for k in MANY_CASES if k in cases or k == "floor"]
    procs = many_groups(folder)
    with tempfile.TemporaryDirectory(prefix="harmonise-bounds-") as tmp:
        specs = [Path(tmp) / f"groups-{i}.json" for i in range(2)]
        for spec, groups in zip(specs, procs):
            spec.write_text(json.dumps(groups))
        floor_file = Path(tmp) / "floor.json"
        many_spec(folder, floor_file)  # what run.py's floor reads
        dbs = [Path(tmp) / f"out-{i}.duckdb" for i in range(2)]
        me = [sys.executable, str(Path(__file__).resolve())]
        commands = {"floor": [[sys.executable, "-c", MANY_FLOOR, str(floor_file)]],
                    "build": [build_cmd(dbs[0], folder)]}
        for kind in MANY_CASES[1:-1]:
            commands[kind] = [[*me, "--many-child", kind, str(s), str(d)] for s, d in zip(specs, dbs)]
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        for r in range(rounds):
            for kind in cases if r % 2 == 0 else cases[::-1]:
                for db in dbs:
                    db.unlink(missing_ok=True)
                    shutil.rmtree(db.with_name(db.name + ".cache"), ignore_errors=True)
                runs[kind].append(timed(commands[kind]))
            print(f"  round {r + 1}: " + ", ".join(f"{k} {runs[k][-1][0]:.2f} s" for k in cases), flush=True)
    result = _summary(runs)
    files = sum(len(g["files"]) for p in procs for g in p)  # type: ignore[misc,arg-type]
    print(f"\n{folder}: {files} files in {sum(map(len, procs))} groups, two processes; on {os.cpu_count()} core(s), "
          f"medians of {rounds} rounds")
    _table(result)
    out.write_text(json.dumps({"folder": str(folder), "files": files, "cores": os.cpu_count(), "rounds": rounds,
                               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cases": result},
                              indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


def _summary(runs: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, object]]:
    """Per case: median wall and CPU seconds, and the median over rounds of its wall time over the floor's."""
    floor = [w for w, _ in runs["floor"]]
    return {k: {"seconds": round(statistics.median(w for w, _ in v), 3),
                "ratio": round(statistics.median(w / f for (w, _), f in zip(v, floor)), 3),
                "cpu_seconds": round(statistics.median(c for _, c in v), 3),
                "runs": [[round(w, 3), round(c, 3)] for w, c in v]} for k, v in runs.items()}


def _table(result: dict[str, dict[str, object]]) -> None:
    print(f"{'case':<9} {'wall s':>7} {'x floor':>8} {'CPU s':>6}")
    for k, v in result.items():
        print(f"{k:<9} {v['seconds']:>7.2f} {v['ratio']:>8.2f} {v['cpu_seconds']:>6.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", choices=("copy", "recode"), help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, default=None, help="a .sav of ESS round 8 (default: the wide-1x file)")
    ap.add_argument("--data", type=Path, default=HERE / "data", help="folder of the generated files")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", type=Path, default=HERE / "bounds.json")
    ap.add_argument("--many", type=Path, default=None, help="a folder of country files (generate.py --many): "
                    "the many-files cases instead")
    ap.add_argument("--many-child", choices=MANY_CASES[1:-1], help=argparse.SUPPRESS)
    ap.add_argument("--cases", default=",".join(MANY_CASES), help=f"with --many: the cases to run, comma-separated "
                    f"(of {', '.join(MANY_CASES)}; the floor is always run)")
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, *map(Path, args.rest))
        return 0
    if args.many_child:
        many_child(args.many_child, *map(Path, args.rest))
        return 0
    if args.many:
        cases = args.cases.split(",")
        if unknown := [c for c in cases if c not in MANY_CASES]:
            ap.error(f"unknown case(s) {', '.join(unknown)}: choose from {', '.join(MANY_CASES)}")
        return many_main(args.many, args.rounds, args.json, cases)

    from generate import FILE_NAME, generate
    from run import FLOOR, build_cmd

    from harmonise.api import compiled_sql
    from harmonise.discover import discover
    from harmonise.pipeline.batch import needed_columns
    from harmonise.spec.project import load_project

    file = args.file or generate(args.data, [1])["wide-1x"] / FILE_NAME
    project = load_project(ROOT)
    jobs, _ = discover(project, [file])
    columns = needed_columns(jobs[0], project)
    sql, _ = compiled_sql(ROOT, jobs[0].crosswalk.survey, jobs[0].wave.wave, file)
    with tempfile.TemporaryDirectory(prefix="harmonise-bounds-") as tmp:
        spec, db = Path(tmp) / "spec.json", Path(tmp) / "out.duckdb"
        spec.write_text(json.dumps({"columns": columns, "sql": sql}))
        me = [sys.executable, str(Path(__file__).resolve())]
        commands = {"floor": [sys.executable, "-c", FLOOR, str(file), json.dumps(columns)],
                    "copy": [*me, "--child", "copy", str(file), str(db), str(spec)],
                    "recode": [*me, "--child", "recode", str(file), str(db), str(spec)],
                    "build": build_cmd(db, file.parent)}
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in CASES}
        for r in range(args.rounds):
            for kind in CASES if r % 2 == 0 else CASES[::-1]:
                db.unlink(missing_ok=True)
                runs[kind].append(timed([commands[kind]]))
            print(f"  round {r + 1}: " + ", ".join(f"{k} {runs[k][-1][0]:.2f} s" for k in CASES), flush=True)
    result = _summary(runs)
    print(f"\n{file.name}: {len(columns)} source columns; on {os.cpu_count()} core(s), medians of {args.rounds} rounds")
    _table(result)
    shown = file.resolve().relative_to(ROOT) if file.resolve().is_relative_to(ROOT) else file
    args.json.write_text(json.dumps({"file": str(shown), "cores": os.cpu_count(), "rounds": args.rounds,
                                     "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "cases": result}, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
