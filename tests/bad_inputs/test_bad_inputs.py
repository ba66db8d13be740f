"""The bad-input corpus (cases.yaml): every case gives its exit code and a message naming the spot.

Crosswalk cases edit a throw-away copy of the project; data cases write small files generated
from a 200-row TIES fixture. No case may produce a traceback or an "internal error".
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml
from click.testing import CliRunner

from harmonise.cli import main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MANIFEST = yaml.safe_load((HERE / "cases.yaml").read_text())
CASES: list[dict[str, Any]] = MANIFEST["crosswalks"] + MANIFEST["data"] + MANIFEST["reliability"]
ROWS = 200


def _ties() -> dict[str, str]:
    """What an expected message says of the TIES crosswalk's waves (the cases edit rules all its waves share)."""
    from harmonise.spec.project import load_project

    names = [w.wave for w in load_project(ROOT).crosswalks["ties"].waves]
    return {"{ties_waves}": f"wave {names[0]}" if len(names) == 1 else f"waves {', '.join(names)}"}


TIES = _ties()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Any, Path]:
    """The TIES fixture (200 rows) as a frame, its metadata and its path."""
    from harmonise.fixtures import generate

    out = tmp_path_factory.mktemp("ties")
    path = generate(ROOT, out, survey="ties", rows=ROWS)[0]
    df, meta = pyreadstat.read_sav(str(path), user_missing=True)
    return df, meta, path


def _write_sav(df: pd.DataFrame, meta: Any, path: Path, labels: dict[str, dict[Any, str]] | None = None) -> Path:
    cols = list(df.columns)
    pyreadstat.write_sav(df, str(path), column_labels=[meta.column_names_to_labels.get(c) or c for c in cols],
                         variable_value_labels=labels or {k: v for k, v in meta.variable_value_labels.items()
                                                          if k in cols},
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in cols})
    return path


def _mutated(change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Callable[..., None]:
    def make(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
        frame = df.copy()
        changed = change(frame)
        _write_sav(frame if changed is None else changed, meta, out / "TIES_2007.sav")
    return make


def _set(col: str, value: object, rows: int = 3) -> Callable[[pd.DataFrame], None]:
    def change(df: pd.DataFrame) -> None:
        df.loc[df.index[:rows], col] = value
    return change


def _copy(src: Path, out: Path, name: str = "TIES_2007.sav", cut: slice | None = None) -> None:
    data = src.read_bytes()
    (out / name).write_bytes(data[cut] if cut else data)


def _latin1_labels(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    raw = src.read_bytes()
    i = raw.index(b"Vienna")
    (out / "TIES_2007.sav").write_bytes(raw[:i] + b"Vi\xe9nna" + raw[i + 6:])


def _duplicate_ids(df: pd.DataFrame) -> None:
    df.loc[df.index[:5], "resp_id"] = 1.0
    df.loc[df.index[:5], "city"] = "STO"


def _long_string_variable(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(notes_verbatim="Y" * 40_000)


def _stata(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    frame = df.astype({c: object for c in df.columns if df[c].dtype.kind == "f"})
    frame.at[frame.index[0], "sex"] = "e"
    frame.at[frame.index[1], "sex"] = "a"
    labels = {k: {int(c): v for c, v in lab.items()} for k, lab in meta.variable_value_labels.items()
              if all(isinstance(c, float) for c in lab)}
    pyreadstat.write_dta(frame, str(out / "TIES_2007.dta"), variable_value_labels=labels,
                         missing_user_values={"sex": ["a", "e"]})


def _case_twins(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """A Stata file (case-sensitive names) holding SEX (9 in every row) beside sex."""
    frame = df.copy()
    frame.insert(0, "SEX", 9.0)
    labels = {k: {int(c): v for c, v in lab.items()} for k, lab in meta.variable_value_labels.items()
              if all(isinstance(c, float) for c in lab)}
    pyreadstat.write_dta(frame, str(out / "TIES_2007.dta"), variable_value_labels=labels)


def _row_named(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """The id variable named __row (a name Stata allows), unique but unlike the row numbers."""
    frame = df.rename(columns={"resp_id": "__row"})
    frame["__row"] = 100000.0 - np.arange(len(frame))
    pyreadstat.write_dta(frame, str(out / "TIES_2007.dta"))


def _sex_code_labelled(df: pd.DataFrame, meta: Any, out: Path, label: str) -> None:
    """Three rows of an unmapped sex code 3, labelled ``label``."""
    df = df.copy()
    df.loc[df.index[:3], "sex"] = 3.0
    labels = {k: v for k, v in meta.variable_value_labels.items()}
    labels["sex"] = {1.0: "Male", 2.0: "Female", 3.0: label}
    _write_sav(df, meta, out / "TIES_2007.sav", labels)


def _sql_label(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    _sex_code_labelled(df, meta, out, "x'); DROP TABLE respondents; --")


def _escape_label(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """An unmapped code whose value label holds terminal escape sequences (retitle, clear the screen)."""
    _sex_code_labelled(df, meta, out, "\x1b]0;pwned\x07\x1b[2J")


def _line_break_label(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """An unmapped code whose value label holds a line break and what would pass for a verdict after it."""
    _sex_code_labelled(df, meta, out, "x\nok: 0 error(s), 0 warning(s)")


def _declared_missing_in_expression(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """cit_how (read by the naturalised expression) = -6 in three citizens' rows; the file declares -9, -8
    and -6 user-missing (SPSS allows three discrete values)."""
    df = df.copy()
    rows = df.index[df["cit_host"] == 1][:3]
    df.loc[rows, "cit_how"] = -6.0
    meta = copy.copy(meta)  # the read metadata is shared by every case
    meta.missing_ranges = {**meta.missing_ranges, "cit_how": [{"lo": v, "hi": v} for v in (-9.0, -8.0, -6.0)]}
    _write_sav(df, meta, out / "TIES_2007.sav")


def _infinite_missing_range(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """cit_how (read by the naturalised expression) = -8 in three citizens' rows, the file declaring
    LOWEST THRU -7 user-missing with an infinite lower bound (a crafted header; SPSS writes -DBL_MAX)."""
    df = df.copy()
    rows = df.index[df["cit_host"] == 1][:3]
    df.loc[rows, "cit_how"] = -8.0
    meta = copy.copy(meta)  # the read metadata is shared by every case
    meta.missing_ranges = {**meta.missing_ranges, "cit_how": [{"lo": float("-inf"), "hi": -7.0}]}
    _write_sav(df, meta, out / "TIES_2007.sav")


def _corrupt_name(compress: bool, name: bytes = b"\xff\x00\x1b[2J") -> Callable[[pd.DataFrame, Any, Path, Path], None]:
    """The first variable record's name (RESP_ID) overwritten with 8 bytes no SPSS name can hold."""
    def make(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
        path = out / ("TIES_2007.zsav" if compress else "TIES_2007.sav")
        pyreadstat.write_sav(df, str(path), compress=compress)
        raw = path.read_bytes()
        i = raw.index(b"RESP_ID ")
        path.write_bytes(raw[:i] + name + raw[i + 8:])
    return make


def _foreign_duckdb(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """A DuckDB database of the user's own (no build_info) at h.duckdb, and the source file."""
    _copy(src, out)
    con = duckdb.connect(str(out / "h.duckdb"))
    con.execute("CREATE TABLE results AS SELECT 42 AS answer, chr(27) || '[31m' AS escape")
    con.close()


def _glob_neighbours(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """Files whose names a glob of a --db named '*' would match."""
    _copy(src, out)
    (out / "thesis.tmp-backup.docx").write_text("the user's thesis")
    (out / "results.tmp-2024").mkdir()


def _release_files(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    """A real release file where `fixtures --out` would write its TIES file."""
    (out / "ties").mkdir()
    _copy(src, out / "ties")


def _foreign_codebook(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    (out / "cb").mkdir()
    (out / "cb" / "README.md").write_text("the user's own readme")


def _links(df: pd.DataFrame, meta: Any, src: Path, out: Path) -> None:
    (out / "dangling").symlink_to(out / "nowhere")
    (out / "cb" / "markdown").mkdir(parents=True)
    (out / "cb" / "ddi").symlink_to(out / "cb" / "markdown")


MAKERS: dict[str, Callable[[pd.DataFrame, Any, Path, Path], None]] = {
    "base": lambda df, meta, src, out: _copy(src, out),
    "zero_bytes": lambda df, meta, src, out: (out / "TIES_2007.sav").write_bytes(b""),
    "truncated_header": lambda df, meta, src, out: _copy(src, out, cut=slice(0, 3000)),
    "truncated_rows": lambda df, meta, src, out: _copy(src, out, cut=slice(0, src.stat().st_size - 9000)),
    "wrong_magic": lambda df, meta, src, out: (out / "TIES_2007.sav").write_bytes(b"PK\x03\x04" + b"\0" * 400),
    "wrong_extension": lambda df, meta, src, out: _copy(src, out, "TIES_2007.dta"),
    "csv_file": lambda df, meta, src, out: df.to_csv(out / "TIES_2007.csv"),
    "latin1_labels": _latin1_labels,
    "duplicate_ids": _mutated(_duplicate_ids),
    "no_resp_id": _mutated(lambda df: df.drop(columns=["resp_id"])),
    "no_sex": _mutated(lambda df: df.drop(columns=["sex"])),
    "all_missing": _mutated(_set("sex", np.nan, ROWS)),
    "out_of_range": _mutated(_set("age", 150.0)),
    "unlabelled_code": _mutated(_set("sex", 3.0)),
    "near_integer": _mutated(_set("sex", 1.0000001)),
    "long_string_code": _mutated(_set("city", "X" * 400)),
    "long_string_variable": _mutated(_long_string_variable),
    "stata_extended": _stata,
    "sql_label": _sql_label,
    "case_twins": _case_twins,
    "row_named": _row_named,
    "escape_label": _escape_label,
    "line_break_label": _line_break_label,
    "declared_missing_in_expression": _declared_missing_in_expression,
    "infinite_missing_range": _infinite_missing_range,
    "two_files": lambda df, meta, src, out: (_copy(src, out), _copy(src, out, "TIES_2007_copy.sav")),
    "unmatched_file": lambda df, meta, src, out: (_copy(src, out), _copy(src, out, "notes.sav")),
    "fifo": lambda df, meta, src, out: (_copy(src, out), os.mkfifo(out / "h.duckdb")),
    "huge_id": _mutated(_set("resp_id", 1e308, 1)),
    "negative_huge_id": _mutated(_set("resp_id", -1e308, 1)),
    "corrupt_name_sav": _corrupt_name(False),
    "corrupt_name_zsav": _corrupt_name(True),
    "nul_name_sav": _corrupt_name(False, b"\x00ESP_ID "),
    "nul_name_zsav": _corrupt_name(True, b"\x00ESP_ID "),
    "bel_name_sav": _corrupt_name(False, b"RESP_ID\x07"),
    "foreign_duckdb": _foreign_duckdb,
    "glob_neighbours": _glob_neighbours,
    "release_files": _release_files,
    "foreign_codebook": _foreign_codebook,
    "links": _links,
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the project's declarations; cases get hard-linked copies of it (cheap)."""
    proj = tmp_path_factory.mktemp("pristine")
    shutil.copytree(ROOT / "mappings", proj / "mappings")
    shutil.copytree(ROOT / "surveys", proj / "surveys")
    return proj


def _write(path: Path, data: bytes) -> None:
    path.unlink()  # break the hard link before writing: the pristine copy stays intact
    path.write_bytes(data)


def _apply(case: dict[str, Any], proj: Path) -> Path:
    """Break the project copy as the case says; returns the file whose lines {line} refers to."""
    target = proj / "mappings" / "ties.yaml"
    for e in case.get("edit", []):
        target = proj / e["file"]
        text = target.read_text()
        assert e["old"] in text, f"{case['id']}: {e['old']!r} not in {e['file']}"
        _write(target, text.replace(e["old"], e["new"], 1).encode())
    rep = case.get("replace")
    if rep:
        target = proj / rep["file"]
        if "with" in rep:
            _write(target, (HERE / "files" / rep["with"]).read_bytes())
        elif "bytes" in rep:
            _write(target, rep["bytes"].encode("latin-1"))
        else:
            _write(target, b"# padding\n" * (rep["pad"] // 10 + 1))
    return target


def _line(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if needle.rstrip("\n") in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def run_case(case: dict[str, Any], tmp: Path, base: tuple[pd.DataFrame, Any, Path],
             pristine: Path) -> tuple[int, str, Path, Path]:
    proj = tmp / "proj"
    shutil.copytree(pristine, proj, copy_function=os.link)
    edited = _apply(case, proj)
    data = tmp / "data"
    data.mkdir()
    if case.get("data"):
        df, meta, src = base
        MAKERS[case["data"]](df, meta, src, data)
    fill = {"{data}": str(data), "{project}": str(proj)}
    args = case.get("args") or (["validate", "{project}/mappings/ties.yaml"]
                                + (["--data", "{data}"] if case.get("data") else []))
    argv = [_fill(a, fill) for a in args]
    res = CliRunner().invoke(main, ["--project", str(proj), *argv], catch_exceptions=False)
    return res.exit_code, res.stdout + res.stderr, edited, data


def _fill(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace(k, v)
    return text


def test_corpus_is_large_and_documented() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 150 and len(set(ids)) == len(ids)
    readme = (HERE / "README.md").read_text()
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", readme, flags=re.MULTILINE))
    assert listed == set(ids), f"README.md out of date: missing {sorted(set(ids) - listed)}, extra {sorted(listed - set(ids))}"
    assert set(MAKERS) >= {c["data"] for c in CASES if c.get("data")}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case: dict[str, Any], tmp_path: Path, base: tuple[pd.DataFrame, Any, Path],
                   pristine: Path) -> None:
    code, output, edited, data = run_case(case, tmp_path, base, pristine)
    assert "Traceback" not in output and "internal error" not in output, output
    if "csv" not in case["id"]:  # only CSV keeps values byte-exact; messages and tables escape control characters
        assert "\x1b" not in output, output
    assert max(map(len, output.splitlines() or [""])) < 1000, "a message line floods the terminal"
    expect = _fill(case["expect"], {"{data}": str(data), **TIES})
    if "line" in case:
        expect = expect.replace("{line}", str(_line(edited, case["line"])))
    assert expect in output, f"{case['id']}: expected {expect!r} in:\n{output[:3000]}"
    assert code == case["exit"], f"{case['id']}: exit {code}, expected {case['exit']}:\n{output[:3000]}"
    if "query" in case:
        con = duckdb.connect(str(data / "h.duckdb"), read_only=True)
        try:
            assert [list(r) for r in con.execute(case["query"]).fetchall()] == case["result"]
        finally:
            con.close()
    if "unchanged" in case:
        assert (tmp_path / "proj" / case["unchanged"]).read_bytes() == (pristine / case["unchanged"]).read_bytes()
    assert not Path("/tmp/harmonise-pwned").exists()


@pytest.mark.parametrize("exc, code, message", [
    (OSError(28, "No space left on device", "/data/h.duckdb.tmp-1-ab"), 2,
     "error: /data/h.duckdb.tmp-1-ab: No space left on device; check the path, free space and permissions\n"),
    (KeyboardInterrupt(), 130, "interrupted; a database being built was not replaced\n"),
    (duckdb.IOException('IO Error: Could not write file "h.duckdb.tmp-1-ab": No space left on device'), 2,
     ('error: {db}: IO Error: Could not write file "h.duckdb.tmp-1-ab": No space left on device; check the path, '
     "free space and permissions\n")),
    (duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 16.0 MiB"), 2,
     ("error: {db}: DuckDB ran out of memory (Out of Memory Error: failed to allocate data of size 16.0 MiB); close "
     "other programs, or work on fewer rows\n")),
])
def test_system_failures_are_messages_not_tracebacks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     exc: BaseException, code: int, message: str) -> None:
    from harmonise import api

    def fail(*args: Any, **kwargs: Any) -> None:
        raise exc

    monkeypatch.setattr(api, "build", fail)
    res = CliRunner().invoke(main, ["--project", str(ROOT), "build", "--data", str(tmp_path), "--db",
                                    str(tmp_path / "h.duckdb")])
    assert (res.exit_code, res.stderr) == (code, message.replace("{db}", str(tmp_path / "h.duckdb")))
