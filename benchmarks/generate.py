"""Generate ESS-scale benchmark files: ESS round 8 as declared, widened with filler variables.

The mapped variables come from the project's fixture generator (real ESS names,
labels and user-missing declarations, values drawn by inverting the crosswalk);
filler variables in the ESS style (0–10 and 1–5 scales with labelled endpoints,
77/88/99 declared missing) widen the file to ``--columns``. A base block is
generated once and repeated with fresh respondent numbers: the first block is
written by pyreadstat (uncompressed, as in the issue's 240 MB reference file),
later blocks are appended to the data section and the case count patched, so a
16× file never has to fit in memory.

The many-files case is the ESS as it ships country by country: one file per round and country
(``ESS9FI.sav``), each drawn by the fixture generator for that country alone at ``--many-rows``
respondents, for up to ``--many-countries`` countries per round (those its declared codebook
labels: 22–30, 290 files), every declared round; widened with filler items to ``--many-columns``
variables and row-compressed, as the real country files are.

    python benchmarks/generate.py --out benchmarks/data --scales 1 4 16
    python benchmarks/generate.py --out benchmarks/data --many     # also benchmarks/data/many/ (290 files)
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harmonise.fixtures import generate as fixtures

BASE_ROWS = 50_000
COLUMNS = 600
FILE_NAME = "ESS8e02_1.sav"          # matches the ESS round 8 file pattern of mappings/ess.yaml
NCASES_OFFSET = 80                   # int32 case count in the SPSS file header
DICT_END = struct.pack("<ii", 999, 0)  # dictionary termination record right before the data
MISSING_LABELS = {77.0: "Refusal", 88.0: "Don't know", 99.0: "No answer"}


def ess_base(rows: int, seed: int = 1) -> tuple[pd.DataFrame, object]:
    """ESS round 8 fixture rows (every variable the crosswalk maps) and their pyreadstat metadata."""
    with tempfile.TemporaryDirectory() as tmp:
        path = fixtures(ROOT, Path(tmp), survey="ess", wave="8", rows=rows, seed=seed)[0]
        return pyreadstat.read_sav(str(path), user_missing=True)


def fillers(n: int, rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, str], dict[str, dict[float, str]]]:
    """``n`` ESS-style filler items: values, variable labels, value labels (most variables labelled)."""
    rng = np.random.default_rng(seed)
    data, labels, values = {}, {}, {}
    for i in range(n):
        name = f"fill{i + 1:03d}"
        kind = i % 5
        if kind == 4:                      # unlabelled continuous (hours, amounts)
            col = np.round(rng.gamma(2.0, 20.0, rows), 1)
            labels[name] = f"Filler amount {i + 1}"
        else:
            top = 10 if kind < 3 else 5
            col = rng.integers(0 if top == 10 else 1, top + 1, rows).astype("float64")
            miss = rng.random(rows)
            col[miss < 0.02] = 88.0
            col[(miss >= 0.02) & (miss < 0.03)] = 77.0
            labels[name] = f"Filler scale item {i + 1}"
            ends = {0.0: "Extremely bad", 10.0: "Extremely good"} if top == 10 else \
                {1.0: "Agree strongly", 5.0: "Disagree strongly"}
            values[name] = {**ends, **MISSING_LABELS}
        data[name] = col
    return pd.DataFrame(data), labels, values


def write_scaled(path: Path, block: pd.DataFrame, meta: object, extra: tuple[pd.DataFrame, dict, dict] | None,
                 blocks: int) -> None:
    """Write ``blocks`` copies of ``block`` (idno renumbered) as one uncompressed .sav file."""
    df = block if extra is None else pd.concat([block, extra[0]], axis=1)
    labels = [meta.column_names_to_labels.get(c) or "" for c in block.columns]  # type: ignore[attr-defined]
    value_labels = dict(meta.variable_value_labels)  # type: ignore[attr-defined]
    ranges = {k: v for k, v in meta.missing_ranges.items() if v}  # type: ignore[attr-defined]
    if extra is not None:
        labels += [extra[1][c] for c in extra[0].columns]
        value_labels.update(extra[2])
        ranges.update({c: [{"lo": 77.0, "hi": 99.0}] for c in extra[2]})
    path.parent.mkdir(parents=True, exist_ok=True)
    pyreadstat.write_sav(df, str(path), column_labels=labels, variable_value_labels=value_labels,
                         missing_ranges=ranges)
    rows = len(df)
    _, written = pyreadstat.read_sav(str(path), metadataonly=True)
    types, widths = written.readstat_variable_types, written.variable_storage_width
    segments = [-(-max(widths.get(c, 8), 1) // 8) if types.get(c) == "string" else 1 for c in df.columns]
    row_bytes = 8 * sum(segments)
    size = path.stat().st_size
    start = size - rows * row_bytes
    with path.open("r+b") as fh:
        fh.seek(start - len(DICT_END))
        if fh.read(len(DICT_END)) != DICT_END:
            raise RuntimeError(f"{path}: unexpected .sav layout (no dictionary end before the data)")
        fh.seek(start)
        raw = np.frombuffer(fh.read(rows * row_bytes), dtype="<f8").reshape(rows, sum(segments))
        idno_seg = sum(segments[: list(df.columns).index("idno")])
        fh.seek(0, 2)
        for b in range(1, blocks):
            chunk = raw.copy()
            chunk[:, idno_seg] = np.arange(b * rows + 1, (b + 1) * rows + 1, dtype="float64")
            fh.write(chunk.tobytes())
        fh.seek(NCASES_OFFSET)
        fh.write(struct.pack("<i", rows * blocks))


def generate(out: Path, scales: list[int], rows: int = BASE_ROWS, columns: int = COLUMNS, seed: int = 1,
             narrow: bool = True) -> dict[str, Path]:
    """Write ``<out>/wide-<k>x/`` (``columns`` wide) per scale and ``<out>/narrow-1x/`` (mapped only).

    Returns name → folder. Files already present with the right header row count are kept.
    """
    base, meta = ess_base(min(rows, 10_000), seed)
    reps = -(-rows // len(base))
    block = pd.concat([base] * reps, ignore_index=True).iloc[:rows].copy()
    block["idno"] = np.arange(1, rows + 1, dtype="float64")
    extra = fillers(max(columns - block.shape[1], 0), rows, seed)
    made: dict[str, Path] = {}
    plan = [(f"wide-{k}x", k, extra) for k in scales] + ([("narrow-1x", 1, None)] if narrow else [])
    for name, k, ext in plan:
        path = out / name / FILE_NAME
        if not _complete(path, rows * k, None if ext is None else columns):
            write_scaled(path, block, meta, ext, k)
        made[name] = path.parent
    return made


MANY_COUNTRIES = 30
MANY_ROWS = 2_000
MANY_COLUMNS = 550  # the real ESS country files under ../shared/data/ess_real have 534-624 variables
MANY_FOLDER = "many"
MANY_DONE = ".complete"  # written last, holding the parameters: a folder without it is generated again


def many_plan(countries: int = MANY_COUNTRIES, rounds: list[str] | None = None) -> dict[str, list[str]]:
    """ESS round → the countries of its files: the first ``countries`` the round's declared codebook
    labels in ``cntry`` (ESS 1 has 22, ESS 4 31). A country a round does not label cannot be drawn for
    it: the generator writes only labelled codes."""
    from harmonise.spec.project import load_project

    project = load_project(ROOT)
    out: dict[str, list[str]] = {}
    for w in project.crosswalks["ess"].waves:
        cb = project.codebooks.get(("ess", w.wave))
        if cb is None or (rounds is not None and w.wave not in rounds):
            continue
        out[w.wave] = [str(k) for v in cb.variables if v.name == "cntry" for k in v.labels][:countries]
    return out


def widen(source: Path, target: Path, columns: int, seed: int) -> None:
    """``source`` (a fixture file) with ESS-style filler items up to ``columns`` variables, written
    row-compressed as the ESS ships its .sav files."""
    df, meta = pyreadstat.read_sav(str(source), user_missing=True)
    extra, labels, values = fillers(max(columns - df.shape[1], 0), len(df), seed)
    value_labels = {**meta.variable_value_labels, **values}
    ranges = {**{k: v for k, v in meta.missing_ranges.items() if v}, **{c: [{"lo": 77.0, "hi": 99.0}] for c in values}}
    pyreadstat.write_sav(pd.concat([df, extra], axis=1), str(target), row_compress=True,
                         column_labels=[meta.column_names_to_labels.get(c) or "" for c in df.columns]
                         + [labels[c] for c in extra.columns],
                         variable_value_labels=value_labels, missing_ranges=ranges)


def generate_many(out: Path, countries: int = MANY_COUNTRIES, rows: int = MANY_ROWS, seed: int = 1,
                  rounds: list[str] | None = None, columns: int = MANY_COLUMNS) -> Path:
    """``<out>/many/ESS<round><country>.sav`` for every round and country of :func:`many_plan` (``columns``
    variables each: the round's declared ones and fillers); returns the folder. Kept when a previous
    run wrote it with the same parameters."""
    folder = out / MANY_FOLDER
    plan = many_plan(countries, rounds)
    params = json.dumps({"countries": countries, "rows": rows, "seed": seed, "plan": plan, "columns": columns,
                         "content": "essround",  # each file's essround its round's (not random)
                         "codebooks": _declared_digest()}, sort_keys=True)  # made again when a codebook changes
    done = folder / MANY_DONE
    if done.is_file() and done.read_text() == params:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    from harmonise.spec.project import load_project

    project = load_project(ROOT)
    files = {w: project.codebooks[("ess", w)].file for w in plan}
    every = sorted({c for cs in plan.values() for c in cs})
    with tempfile.TemporaryDirectory(prefix="harmonise-many-") as tmp:
        for i, country in enumerate(every):
            waves = [w for w, cs in plan.items() if country in cs]
            target = Path(tmp) / country
            # one call per country: each round's file of that country alone, its own seed
            fixtures(ROOT, target, survey="ess", rows=rows, seed=seed * 1000 + i, editions=False,
                     countries=[country])
            for w in waves:
                widen(target / "ess" / files[w], folder / f"ESS{w}{country}.sav", columns, seed * 1000 + i)
            shutil.rmtree(target)
    done.write_text(params)
    return folder


def _declared_digest() -> str:
    """A digest of the ESS declared codebooks the files are generated from."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((ROOT / "surveys" / "ess").glob("codebook_*.yaml")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@functools.cache
def _round8_variables() -> frozenset[str]:
    """The variables of the declared round-8 codebook (the wide files' round), read once."""
    from harmonise.spec.project import load_project

    return frozenset(v.name for v in load_project(ROOT).codebooks[("ess", "8")].variables)


def _complete(path: Path, rows: int, columns: int | None) -> bool:
    """The file is there with its rows and columns, every variable of the declared round-8 codebook, and its
    round is its wave's (files the generator wrote before it gave ``essround`` the wave's value held random
    codes: harmonise refuses them now)."""
    if not path.is_file():
        return False
    _, m = pyreadstat.read_sav(str(path), metadataonly=True)
    if m.number_rows != rows or (columns is not None and m.number_columns != columns):
        return False
    if not _round8_variables() <= set(m.column_names):
        return False
    head, _ = pyreadstat.read_sav(str(path), usecols=["essround"], row_limit=100)
    return bool((head["essround"] == 8).all())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data")
    ap.add_argument("--scales", type=int, nargs="*", default=[1, 4, 16],
                    help="multiples of --rows (none: no scale file, e.g. with --many for the country files only)")
    ap.add_argument("--rows", type=int, default=BASE_ROWS, help="rows at scale 1")
    ap.add_argument("--columns", type=int, default=COLUMNS, help="width of the wide files")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--many", action="store_true", help="also write the many-files case (one file per round and country)")
    ap.add_argument("--many-countries", type=int, default=MANY_COUNTRIES, help="countries per round")
    ap.add_argument("--many-rows", type=int, default=MANY_ROWS, help="respondents per country file")
    ap.add_argument("--many-columns", type=int, default=MANY_COLUMNS, help="variables per country file")
    args = ap.parse_args(argv)
    if args.many:
        folder = generate_many(args.out, args.many_countries, args.many_rows, args.seed, columns=args.many_columns)
        files = sorted(folder.glob("*.sav"))
        print(f"many: {folder} ({len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:,.0f} MB)")
    scaled = generate(args.out, args.scales, args.rows, args.columns, args.seed) if args.scales else {}
    for name, folder in scaled.items():
        f = folder / FILE_NAME
        print(f"{name}: {f} ({f.stat().st_size / 1e6:,.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
