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
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

CASES = ("floor", "copy", "recode", "build")


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


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one process; raises when it fails."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", choices=("copy", "recode"), help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, default=None, help="a .sav of ESS round 8 (default: the wide-1x file)")
    ap.add_argument("--data", type=Path, default=HERE / "data", help="folder of the generated files")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", type=Path, default=HERE / "bounds.json")
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, *map(Path, args.rest))
        return 0

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
                runs[kind].append(timed(commands[kind]))
            print(f"  round {r + 1}: " + ", ".join(f"{k} {runs[k][-1][0]:.2f} s" for k in CASES), flush=True)
    floor = [w for w, _ in runs["floor"]]
    result = {k: {"seconds": round(statistics.median(w for w, _ in v), 3),
                  "ratio": round(statistics.median(w / f for (w, _), f in zip(v, floor)), 3),
                  "cpu_seconds": round(statistics.median(c for _, c in v), 3),
                  "runs": [[round(w, 3), round(c, 3)] for w, c in v]} for k, v in runs.items()}
    print(f"\n{file.name}: {len(columns)} source columns; on {os.cpu_count()} core(s), medians of {args.rounds} rounds")
    print(f"{'case':<8} {'wall s':>7} {'x floor':>8} {'CPU s':>6}")
    for k, v in result.items():
        print(f"{k:<8} {v['seconds']:>7.2f} {v['ratio']:>8.2f} {v['cpu_seconds']:>6.2f}")
    shown = file.resolve().relative_to(ROOT) if file.resolve().is_relative_to(ROOT) else file
    args.json.write_text(json.dumps({"file": str(shown), "cores": os.cpu_count(), "rounds": args.rounds,
                                     "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "cases": result}, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
