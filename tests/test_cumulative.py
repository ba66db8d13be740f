"""A cumulative file (rows of several rounds in one file, as the ESS data wizard writes it) is harmonised wave by
wave: each round's rows with that round's rules, as if they came in files of their own. A file sorted by round
shows one round in the rows discovery reads; the rows of the next round stop the first run, and the build starts
again reading the file wave by wave."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyreadstat
import pytest
from conftest import ROOT, keep_named, read_in_chunks_from, run

FI = ROOT.parent / "shared" / "data" / "ess_real" / "ess9_nordic" / "ESS9FI.sav"
pytestmark = pytest.mark.skipif(not FI.is_file(), reason="../shared/data/ess_real not present")


@pytest.fixture(scope="module")
def finland() -> tuple[pd.DataFrame, Any]:
    """The Finnish file's variables that the ESS declarations name (conftest.keep_named) and its metadata: writing
    its ~600 variables row by row was most of this module's time, and the others are named by no declaration."""
    df, meta = pyreadstat.read_sav(str(FI), user_missing=True)
    return keep_named(df), meta


def _write(frame: pd.DataFrame, meta: Any, path: Path) -> Path:
    """``frame`` with the real file's labels and missing declarations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pyreadstat.write_sav(frame, str(path), column_labels=[meta.column_names_to_labels.get(c) for c in frame.columns],
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in frame},
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in frame})
    return path


def _rounds(finland: tuple[pd.DataFrame, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Round 8 and round 9 rows of the Finnish file (fresh ids), as a data wizard writes
    them: the same variables in both (round 8's rules find round 9's names missing: not available)."""
    df, _ = finland
    nine = df.reset_index(drop=True)
    nine["idno"] = range(1, len(nine) + 1)
    eight = nine.head(len(nine) // 3).assign(essround=8.0)
    eight["idno"] = eight["idno"] + 10**6
    return eight, nine


def _table(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# The "read-in-chunks" variants lower the size from which a file is read in chunks to 1,000 rows
# (conftest.read_in_chunks_from) instead of writing 7 copies of the Finnish file: its 1,755 rows (585 of round 8)
# fall on either side of 1,000 as the 7 copies' 12,285 (4,095) fell on either side of 10,000, so the same files
# are read whole and the same in chunks.
CHUNKED_MIN_ROWS = 1_000


@pytest.fixture(scope="module")
def own_files(finland: tuple[pd.DataFrame, Any], tmp_path_factory: pytest.TempPathFactory
              ) -> Callable[[str, tuple[int, ...]], Path]:
    """``own(fmt, rounds)``: the database built from one file per round (``rounds`` of 7, 8, 9, as
    :func:`_rounds` and the tests make them) written as ``fmt``; built once per module for the tests that
    compare a cumulative file of those rounds with them, read whole or in chunks (the thresholds as shipped)."""
    built: dict[tuple[str, tuple[int, ...]], Path] = {}

    def own(fmt: str, rounds: tuple[int, ...]) -> Path:
        if (fmt, rounds) not in built:
            eight, nine = _rounds(finland)
            seven = eight.assign(essround=7.0, idno=eight["idno"] + 10**6)
            folder = tmp_path_factory.mktemp(f"own-{fmt}-" + "-".join(map(str, rounds)))
            write = _write if fmt == "sav" else _write_dta
            for n in rounds:
                write({7: seven, 8: eight, 9: nine}[n], finland[1], folder / "apart" / f"ESS{n}-part.{fmt}")
            code, _, err = run("build", "--data", str(folder / "apart"), "--db", str(folder / "own.duckdb"),
                               "--jobs", "1")
            assert code == 0, err
            built[fmt, rounds] = folder / "own.duckdb"
        return built[fmt, rounds]

    return own


RESPONDENTS = "SELECT * EXCLUDE (source_file, source_row) FROM respondents ORDER BY wave, respondent_id"
REPORT = ("SELECT * EXCLUDE (file_name) FROM harmonisation_report ORDER BY ALL")


@pytest.mark.parametrize("chunked", [False, True], ids=["read-whole", "read-in-chunks"])
def test_a_file_sorted_by_round_is_harmonised_as_the_rounds_own_files_are(finland: tuple[pd.DataFrame, Any],
                                                                          tmp_path: Path, chunked: bool,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          own_files: Callable[..., Path]) -> None:
    two = own_files("sav", (8, 9))
    read = read_in_chunks_from(monkeypatch, CHUNKED_MIN_ROWS) if chunked else None
    eight, nine = _rounds(finland)
    meta = finland[1]
    cumulative = _write(pd.concat([eight, nine], ignore_index=True), meta, tmp_path / "wizard" / "ESS-wizard.sav")
    one = tmp_path / "one.duckdb"
    code, _, err = run("build", "--data", str(cumulative), "--db", str(one), "--jobs", "2")
    assert code == 0, err
    assert (f"note: ess: {cumulative}: holds rows of ess waves 8 ({len(eight):,} rows), 9 ({len(nine):,} rows) by "
            "its essround: each wave's rows are harmonised with that wave's rules") in err.splitlines()
    if read is not None:  # by forked readers: the file as round 8's until round 9's rows stop that run, then once
        # for both rounds
        assert read == [("ESS-wizard.sav", True), ("ESS-wizard.sav", True)], read
    assert _table(one, RESPONDENTS) == _table(two, RESPONDENTS)
    assert _table(one, REPORT) == _table(two, REPORT)
    # the rows keep their numbers in the file; the sources say each wave's rows
    assert _table(one, "SELECT wave, min(source_row), max(source_row), any_value(source_file) FROM respondents "
                       "GROUP BY wave ORDER BY wave") == [
        ("8", 1, len(eight), "ESS-wizard.sav"), ("9", len(eight) + 1, len(eight) + len(nine), "ESS-wizard.sav")]
    assert _table(one, "SELECT wave, file_name, rows FROM sources ORDER BY wave") == [
        ("8", "ESS-wizard.sav", len(eight)), ("9", "ESS-wizard.sav", len(nine))]
    assert _table(one, "SELECT count(*) FROM conservation WHERE NOT ok") == [(0,)]
    # a rebuild keeps both waves' rows (nothing changed) and equals the full build
    kept = tmp_path / "kept.duckdb"
    one.rename(kept)
    (tmp_path / "one.duckdb.cache").rename(tmp_path / "kept.duckdb.cache")
    code, _, err = run("build", "--data", str(cumulative), "--db", str(kept), "--jobs", "2")
    assert code == 0, err
    assert _table(kept, RESPONDENTS) == _table(two, RESPONDENTS)
    assert _table(kept, REPORT) == _table(two, REPORT)


def test_validate_reads_a_cumulative_file_wave_by_wave_too(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    eight, nine = _rounds(finland)
    cumulative = _write(pd.concat([eight, nine], ignore_index=True), finland[1], tmp_path / "ESS-wizard.sav")
    code, out, err = run("validate", "--data", str(cumulative))
    assert (code, err) == (0, "")
    assert (f"note: ess: {cumulative}: holds rows of ess waves 8 ({len(eight):,} rows), 9 ({len(nine):,} rows) by "
            "its essround: each wave's rows are harmonised with that wave's rules") in out.splitlines()
    assert out.splitlines()[-1].endswith(f"2 file(s), {len(eight) + len(nine):,} rows")


def test_rows_of_no_known_round_stop_the_build(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """A row without a round, or of a round the crosswalk lacks, would be stored by no wave: an error naming them."""
    eight, nine = _rounds(finland)
    rows = pd.concat([eight, nine], ignore_index=True)
    rows.loc[[200, 201], "essround"] = float("nan")  # past the first rows (those make a file unmatched)
    rows.loc[[300], "essround"] = 12.0
    cumulative = _write(rows, finland[1], tmp_path / "ESS-wizard.sav")
    db = tmp_path / "h.duckdb"
    code, out, err = run("build", "--data", str(cumulative), "--db", str(db))
    assert (code, out) == (1, "")
    assert (f"error: ess: {cumulative}: holds rows of ess waves 8 ({len(eight) - 3:,} rows), 9 ({len(nine):,} rows) "
            "by its essround, and 1 row(s) of essround = 12; 2 row(s) without a value: rows of no known wave, which no "
            "wave would store — give those rows their wave's essround, or remove them; a round the crosswalk lacks "
            "needs its wave first") in err.splitlines()
    assert not db.exists()


def test_diff_counts_only_the_rows_of_the_changed_round(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """`diff --data` on a cumulative file counts the changed wave's rows only, whatever the file's name: a file
    named like round 9's files counted every round's rows as round 9's, and one named like no round none."""
    eight, nine = _rounds(finland)
    rows = pd.concat([eight, nine], ignore_index=True)
    text = (ROOT / "mappings" / "ess.yaml").read_text(encoding="utf-8")
    line = "      year_of_arrival: {range: [1900, 2020]}\n"
    assert text.count(line) == 1
    new = tmp_path / "ess.yaml"
    new.write_text(text.replace(line, line + '      sex: {source: gndr, map: {1: female, 2: male}, quality: exact}\n'),
                   encoding="utf-8")
    swapped = int(nine["gndr"].isin([1, 2]).sum())
    assert swapped < len(rows) - 2
    for name in ("ESS9-wizard.sav", "ESS-wizard.sav"):
        cumulative = _write(rows, finland[1], tmp_path / name)
        code, out, err = run("diff", str(ROOT / "mappings" / "ess.yaml"), str(new), "--data", str(cumulative),
                             "--format", "json")
        assert (code, err) == (0, ""), name
        data = json.loads(out)
        assert data["respondents"] == [{"wave": "9", "target": "sex", "changed": swapped}], name
        assert data["files"] == {"9": str(cumulative)}, name
        cumulative.unlink()


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_adapt_says_a_cumulative_file_needs_no_adapting(finland: tuple[pd.DataFrame, Any], tmp_path: Path,
                                                        order: str) -> None:
    """`adapt --like` names one wave; a file of several waves' rows is no edition of one wave. The error told the
    user to drop --survey/--wave, options adapt has not, and a block of overrides was drafted that no override
    could make right."""
    eight, nine = _rounds(finland)
    rows = pd.concat([eight, nine], ignore_index=True)
    if order == "shuffled":
        rows = rows.sample(frac=1, random_state=1).reset_index(drop=True)
    cumulative = _write(rows, finland[1], tmp_path / "ESS-wizard.sav")
    code, out, err = run("adapt", "--like", "ess:9", str(cumulative))
    assert (code, out) == (1, "")
    hint = ("adapt checks a file of one wave (--like ess:9): give it that wave's rows only; a file of several waves' "
            "rows needs no adapting to be built — `harmonise build` and `validate --data` read it wave by wave, each "
            "wave's rows with that wave's rules")
    if order == "shuffled":
        assert err.splitlines() == [
            (f"error: ess: {cumulative}: it holds essround = 8, 9: rows of several waves, which would all be stored as "
            f"one wave — {hint}"), "ESS-wizard.sav: no rule to adapt; the 1 error(s) above remain"]
    else:
        assert err.splitlines() == [
            (f"error: ess wave 9: {cumulative}: essround = 9 at row {len(eight) + 1:,}, but the essround values of its "
            f"first 100 rows are 8: rows of several waves, which would all be stored as ess wave 9 (given by --like "
            f"ess:9) — {hint}"), "the file holds rows of several waves: 1 error(s)"]


def test_sql_data_says_the_query_reads_every_round(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """`sql --data` on a cumulative file: the query reads every row as the wave's, where a build keeps the wave's
    rows only; it said nothing of the other rounds."""
    eight, nine = _rounds(finland)
    rows = pd.concat([eight, nine], ignore_index=True).sample(frac=1, random_state=2).reset_index(drop=True)
    cumulative = _write(rows, finland[1], tmp_path / "ESS-wizard.sav")
    code, out, err = run("sql", "ess", "8", "--data", str(cumulative))
    assert code == 0, err
    assert out.startswith(("WITH ", "SELECT "))
    assert ("note: ESS-wizard.sav holds rows of ess waves 8, 9: the SQL above reads every row as wave 8's; a build "
            "harmonises only its rows of ess wave 8 (essround = 8) with it") in err.splitlines()
    code, _, err = run("sql", "ess", "11", "--data", str(cumulative))
    assert code == 0, err
    assert ("note: ESS-wizard.sav holds rows of ess waves 8, 9: the SQL above reads every row as wave 11's; it holds "
            "no rows of ess wave 11") in err.splitlines()
    code, _, err = run("sql", "ess", "9", "--data", str(FI))
    assert code == 0, err
    assert "holds rows of" not in err


def test_a_rounds_empty_variables_are_not_its_own(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """A cumulative file holds every round's variables; those of another round are empty in this round's rows. They
    counted as present, so the rule's alternative was not used: round 9 rows of an edition without post-stratified
    weights (anweight, pspwght empty) beside round 8 rows that have them got no weight at all, where their own file
    gets dweight * pweight (the audit of helper branch fixH2)."""
    eight, nine = _rounds(finland)
    nine = nine.assign(anweight=float("nan"), pspwght=float("nan"))
    cumulative = _write(pd.concat([eight, nine], ignore_index=True), finland[1], tmp_path / "wizard" / "ESS-wizard.sav")
    own = _write(nine.drop(columns=["anweight", "pspwght"]), finland[1], tmp_path / "own" / "ESS9-e12.sav")
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    for data, db in ((cumulative, one), (own, two)):
        code, _, err = run("build", "--data", str(data), "--db", str(db))
        assert code == 0, err
    weights = ("SELECT respondent_id, weight, weight_missing FROM respondents WHERE wave = '9' ORDER BY respondent_id")
    assert _table(one, weights) == _table(two, weights)
    assert _table(one, "SELECT count(*), count(weight) FROM respondents WHERE wave = '9'") == [(len(nine), len(nine))]
    expected = (nine["dweight"] * nine["pweight"]).tolist()
    assert [w for (w,) in _table(one, "SELECT weight FROM respondents WHERE wave = '9' ORDER BY source_row")] == \
        pytest.approx(expected, rel=1e-12)
    lineage = "SELECT file_name, target, kind, source_variables FROM lineage WHERE wave = '9' AND target = 'weight'"
    assert [r[1:] for r in _table(one, lineage)] == [r[1:] for r in _table(two, lineage)]


def _write_dta(frame: pd.DataFrame, meta: Any, path: Path) -> Path:
    """``frame`` as a Stata file with the real file's numeric value labels (Stata's labels: 80 characters)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pyreadstat.write_dta(frame, str(path),
                         column_labels=[(meta.column_names_to_labels.get(c) or "")[:80] for c in frame.columns],
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items()
                                                if k in frame and pd.api.types.is_numeric_dtype(frame[k])})
    return path


@pytest.mark.parametrize("fmt", ["sav", "dta"])
@pytest.mark.parametrize("chunked", [False, True], ids=["read-whole", "read-in-chunks"])
def test_a_cumulative_file_is_read_once_for_all_its_rounds(finland: tuple[pd.DataFrame, Any], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, chunked: bool,
                                                           fmt: str, own_files: Callable[..., Path]) -> None:
    """Each round of a cumulative file read the whole file (a file of 9 rounds was read 9 times, each read parsing
    every row of the columns needed and keeping one round's), and discovery read it twice (its round variable,
    then the variables the rounds' rules read, to find those empty in a round's rows). Now discovery reads it
    once and harmonising once (counted as pyreadstat's reads from the first row, in this process: no forked
    reader, one worker), and a shuffled file of three rounds is harmonised as the rounds' own files are."""
    from harmonise.readers import files, prefetch

    two = own_files(fmt, (7, 8, 9))
    read_in_chunks = read_in_chunks_from(monkeypatch, CHUNKED_MIN_ROWS) if chunked else None
    eight, nine = _rounds(finland)
    seven = eight.assign(essround=7.0, idno=eight["idno"] + 10**6)
    write = _write if fmt == "sav" else _write_dta
    rows = pd.concat([seven, eight, nine], ignore_index=True).sample(frac=1, random_state=3).reset_index(drop=True)
    cumulative = write(rows, finland[1], tmp_path / "wizard" / f"ESS-wizard.{fmt}")
    passes: list[list[str]] = []
    read = files._read

    def counted(fmt: str, path: str, **kw: Any) -> Any:
        if path == str(cumulative) and not kw.get("metadataonly") and kw.get("row_offset", 0) == 0 \
                and kw.get("row_limit", 0) > 100:  # a pass over the file (not the first rows discovery reads)
            passes.append(list(kw.get("usecols") or []))
        return read(fmt, path, **kw)

    monkeypatch.setattr(files, "_read", counted)
    monkeypatch.setattr(prefetch, "can_prefetch", lambda: False)
    one = tmp_path / "one.duckdb"
    code, _, err = run("build", "--data", str(cumulative), "--db", str(one), "--jobs", "1")
    assert code == 0, err
    assert (f"note: ess: {cumulative}: holds rows of ess waves 7 ({len(seven):,} rows), 8 ({len(eight):,} rows), "
            f"9 ({len(nine):,} rows) by its essround: each wave's rows are harmonised with that wave's rules"
            ) in err.splitlines()
    assert len(passes) == 2, passes
    assert passes[0][0] == "essround" and "idno" in passes[0]  # discovery: the rows of each round, its variables
    assert "essround" in passes[1] and "idno" in passes[1]  # harmonising: every round's columns at once
    if read_in_chunks is not None:  # no forked reader (as patched above), in chunks all the same
        assert read_in_chunks == [(f"ESS-wizard.{fmt}", False)], read_in_chunks
    assert _table(one, RESPONDENTS) == _table(two, RESPONDENTS)
    assert _table(one, REPORT) == _table(two, REPORT)
    assert _table(one, "SELECT count(*) FROM conservation WHERE NOT ok") == [(0,)]


SHARED = "(the value labels and missing declarations are the file's, one set for all its waves)"


def test_inspect_says_its_frequencies_count_every_round(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """`inspect` on a cumulative file counted every round's rows together without saying so."""
    eight, nine = _rounds(finland)
    cumulative = _write(pd.concat([eight, nine], ignore_index=True), finland[1], tmp_path / "ESS-wizard.sav")
    code, out, err = run("inspect", str(cumulative), "--match", "gndr")
    assert code == 0
    assert err.splitlines() == [(
        f"warning: {cumulative}: holds the rows of several ess waves, by its essround: essround = 8 ({len(eight):,} "
        f"rows), 9 ({len(nine):,} rows); the frequencies count every wave's rows together {SHARED}; `harmonise "
        "scaffold FILE --survey ess --wave W` drafts from wave W's rows only")]
    males = int((eight["gndr"] == 1).sum() + (nine["gndr"] == 1).sum())
    assert f"             1      {males:,} 'Male'" in out.splitlines()
    code, out, err = run("inspect", str(cumulative), "--match", "gndr", "--format", "json")
    assert (code, json.loads(out)["rounds"]) == (0, {"survey": "ess", "variable": "essround", "rows": [
        {"value": "8", "rows": len(eight)}, {"value": "9", "rows": len(nine)}]})
    code, out, err = run("inspect", str(FI), "--match", "gndr", "--format", "json")  # one round: nothing to say
    assert (code, err, json.loads(out)["rounds"]) == (0, "", None)
    code, out, err = run("inspect", str(cumulative), "--match", "gndr", project=tmp_path)  # no project, no crosswalk
    assert (code, err) == (0, "")
    assert f"             1      {males:,} 'Male'" in out.splitlines()


def test_scaffold_drafts_from_the_rows_of_its_wave(finland: tuple[pd.DataFrame, Any], tmp_path: Path) -> None:
    """`scaffold --wave 8` on a cumulative file counted the codes of every round's rows as wave 8's, without saying
    so; it drafts from the wave's rows now (the draft a file of them alone gives), and says which rows it read."""
    eight, nine = _rounds(finland)
    cumulative = _write(pd.concat([eight, nine], ignore_index=True), finland[1], tmp_path / "ESS-wizard.sav")
    alone = _write(eight, finland[1], tmp_path / "alone" / "ESS-wizard.sav")
    listing = f"holds the rows of several ess waves, by its essround: essround = 8 ({len(eight):,} rows), 9 ({len(nine):,} rows)"
    code, out, err = run("scaffold", str(cumulative), "--survey", "ess", "--wave", "8")
    assert code == 0
    assert err.splitlines()[0] == (f"warning: {cumulative}: {listing}; the draft for ess wave 8 counts the codes of its "
                                   f"{len(eight):,} rows of essround = 8 only {SHARED}")
    code, own, err = run("scaffold", str(alone), "--survey", "ess", "--wave", "8")
    assert code == 0 and "warning" not in err
    assert out.split("\nsurvey:", 1)[1] == own.split("\nsurvey:", 1)[1]
    note = " ".join(line[2:] for line in out.split("\nsurvey:", 1)[0].splitlines()
                    if line.startswith("# ") and not own.count(line))
    assert note.endswith(f"The file {listing}; the draft for ess wave 8 counts the codes of its {len(eight):,} rows "
                         f"of essround = 8 only {SHARED}.")
    code, _, err = run("scaffold", str(cumulative), "--survey", "ess", "--wave", "12")
    assert code == 0
    assert err.splitlines()[0] == (f"warning: {cumulative}: {listing}; no row holds ess wave 12's essround (12), so "
                                   f"the draft counts the codes of every wave's rows together {SHARED}; to draft from "
                                   "one wave's rows, give --wave a wave whose rows the file holds")


def test_validating_again_in_the_server_keeps_each_rounds_rows(finland: tuple[pd.DataFrame, Any], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation server keeps a small file's frames by its bytes and the columns read; rounds 6 and 7 read the
    same columns. One round's rows, read once for both rounds, must not be kept as the file's frames: validating
    again recalled round 6's rows for round 7, which then had none of its own."""
    from harmonise import discover
    from harmonise.readers import prefetch

    monkeypatch.setattr(discover, "_REMEMBERED", {})  # as harmonise.warm sets them up
    monkeypatch.setattr(prefetch, "_FRAMES", {})
    eight, nine = _rounds(finland)
    six, seven = eight.assign(essround=6.0), nine.assign(essround=7.0, idno=nine["idno"] + 2 * 10**6)
    rows = pd.concat([six, seven], ignore_index=True).sample(frac=1, random_state=4).reset_index(drop=True)
    cumulative = _write(rows, finland[1], tmp_path / "ESS-wizard.sav")
    outputs = [run("validate", "--data", str(cumulative)) for _ in range(2)]
    assert outputs[0] == outputs[1]
    code, out, err = outputs[1]
    assert (code, err) == (0, "")
    assert (f"note: ess: {cumulative}: holds rows of ess waves 6 ({len(six):,} rows), 7 ({len(seven):,} rows) by "
            "its essround: each wave's rows are harmonised with that wave's rules") in out.splitlines()
    assert out.splitlines()[-1].endswith(f"2 file(s), {len(rows):,} rows")


def test_a_cumulative_file_read_once_is_held_a_chunk_at_a_time(finland: tuple[pd.DataFrame, Any], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the rounds in one pass keeps memory flat: the file is read a chunk at a time, and each round is
    harmonised from what that pass left on disk, a chunk at a time, never the file's rows at once."""
    from harmonise import pipeline
    from harmonise.pipeline import batch

    chunk = 300  # the Finnish file's 2,340 rows of two rounds read in 8 chunks, round 9's 1,755 handed in 6 or more
    forked = read_in_chunks_from(monkeypatch, CHUNKED_MIN_ROWS)  # read by forked readers ahead, as a file of 10,000 rows or more is
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", chunk)  # the chunks harmonised
    monkeypatch.setattr(batch, "CHUNK_ROWS", chunk)  # the chunks read
    read: list[int] = []
    handed: list[int] = []
    prefetched, spilled = batch.prefetched_chunks, batch._spilled

    def reader(src: Any, columns: list[str], chunksize: int, enabled: bool = True) -> Any:
        read.append(chunksize)
        return prefetched(src, columns, chunksize, enabled)

    def frames(path: Path, chunksize: int) -> Any:
        for frame in spilled(path, chunksize):
            handed.append(len(frame))
            yield frame

    monkeypatch.setattr(batch, "prefetched_chunks", reader)
    monkeypatch.setattr(batch, "_spilled", frames)
    eight, nine = _rounds(finland)
    assert len(nine) > 5 * chunk
    rows = pd.concat([eight, nine], ignore_index=True).sample(frac=1, random_state=6).reset_index(drop=True)
    cumulative = _write(rows, finland[1], tmp_path / "ESS-wizard.sav")
    code, out, err = run("validate", "--data", str(cumulative), "--jobs", "1")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].endswith(f"2 file(s), {len(rows):,} rows")
    assert read == [chunk]  # one pass over the file, for both rounds
    assert forked == [("ESS-wizard.sav", True)]
    assert sum(handed) == len(rows) and max(handed) <= chunk  # a shuffled file: some rows of each chunk per round


def test_a_handful_of_another_rounds_rows_is_a_warning_not_a_note(finland: tuple[pd.DataFrame, Any],
                                                                   tmp_path: Path) -> None:
    """Found by the semantic fuzz audit: 20 rows of a Polish round-8 file with `essround` 9 (a slip) were stored as
    round 9 with only the read-by-wave note. A wave with fewer than 5 % of the file's rows is now a warning saying
    so; a cumulative file's waves of their own size stay a note."""
    df, meta = finland
    slip = df.assign(essround=[10.0 if i < 20 else 9.0 for i in range(len(df))])
    path = _write(slip, meta, tmp_path / "slip" / "ESS9FI.sav")
    code, out, err = run("validate", "--data", str(path.parent))
    assert code == 0, out + err
    assert [line for line in (out + err).splitlines() if "holds rows of" in line] == [
        (f"warning: ess: {path}: holds rows of ess waves 9 ({len(df) - 20:,} rows), 10 (20 rows) by its essround: 20 "
        f"rows of wave 10 among {len(df):,} is few for a wave's sample; each wave's rows are harmonised with that "
        "wave's rules — if essround is wrong in those rows (a slip, not another round's respondents), give them their "
        "wave's value; any other finding about those waves may follow from it")]
    even = df.assign(essround=[10.0 if i % 2 else 9.0 for i in range(len(df))])
    path = _write(even, meta, tmp_path / "even" / "ESS9FI.sav")
    code, out, err = run("validate", "--data", str(path.parent))
    assert [line.split(":", 1)[0] for line in (out + err).splitlines() if "holds rows of" in line] == ["note"]
