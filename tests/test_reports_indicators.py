"""Indicators end to end: an independent re-implementation, comparability (no silent pooling), quality flags.

The reference here does not call the estimator: it evaluates each indicator's stored definition per
respondent (the compiled population and outcome, the definition rather than the method) and computes
ratios, linearised scores and the stratified variance with R survey's lonely.psu = "adjust" in pandas.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from harmonise import connect, indicators
from harmonise.reports.estimate import Rule
from harmonise.reports.indicator_table import WaveEstimates, create_indicators, store_indicators
from harmonise.spec.project import load_project
from tests.conftest import ROOT, keep_named, run

OPEN = Rule(min_n=0, min_n_eff=0, suppress_nonresponse=1, flag_n=0, flag_cv=1e9, flag_rel_ci=1e9, flag_nonresponse=1,
            flag_df=0)
KEY = ["survey", "wave", "country", "group"]


def respondents(db: Path, indicator: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The indicator's population (answered or item non-response) with y, w, PSU ids and every breakdown's
    group, and the PSU count of every stratum of the database."""
    con = connect(db)
    try:
        lo, hi, pop, out, reason = con.execute(
            "SELECT age_low, age_high, population_sql, outcome_sql, outcome_reason_sql FROM indicator_definitions "
            "WHERE name = ?", [indicator]).fetchone()
        groups = con.execute("SELECT name, sql FROM indicator_breakdowns").fetchall()
        frame = con.execute(
            f"SELECT survey, wave, country, survey || '|' || wave || '|' || country || '|' || coalesce(stratum, '') "
            f"AS stratum, coalesce('p:' || psu, 'r:' || respondent_id) AS psu, CAST(weight AS DOUBLE) AS w, "
            f"CAST({out} AS DOUBLE) AS y{''.join(f', {sql} AS g_{name}' for name, sql in groups)} FROM respondents "
            f"WHERE weight IS NOT NULL AND age BETWEEN {lo} AND {hi} AND coalesce({pop}, FALSE) AND "
            f"(({out}) IS NOT NULL OR coalesce({reason}, '') NOT IN ('not_asked', 'not_applicable'))").df()
        n_h = dict(con.execute("SELECT survey || '|' || wave || '|' || country || '|' || coalesce(stratum, ''), "
                               "count(DISTINCT coalesce('p:' || psu, 'r:' || respondent_id)) FROM respondents "
                               "GROUP BY 1").fetchall())
    finally:
        con.close()
    keys = [c for c in frame.columns if c not in ("w", "y")]
    return frame.astype(dict.fromkeys(keys, "category")), n_h  # grouping by categories, not by strings: 2.5x faster


def reference(frame: pd.DataFrame, n_h: dict[str, int], breakdowns: list[str]) -> pd.DataFrame:
    """Estimate and SE of every (breakdown, survey, wave, country or 'all', group) cell, every breakdown of one
    indicator stacked into one frame ('total': everyone, group 'all')."""
    f = frame[frame["y"].notna()]
    parts = []
    for breakdown in breakdowns:
        if breakdown == "total":
            parts.append(f.assign(breakdown=breakdown, group="all"))
        else:  # a breakdown's table: respondents whose group is known, by group and in all ('all')
            known = f[f[f"g_{breakdown}"].notna()]
            parts += [known.assign(breakdown=breakdown, group=known[f"g_{breakdown}"].astype(str)),
                      known.assign(breakdown=breakdown, group="all")]
    cells = pd.concat(parts, ignore_index=True)[["breakdown", *KEY, "stratum", "psu", "w", "y"]]
    cells = pd.concat([cells, cells.assign(country="all")], ignore_index=True)
    cells = cells.astype(dict.fromkeys(["breakdown", *KEY, "stratum", "psu"], "category"))
    key = ["breakdown", *KEY]
    cells["wy"] = cells["w"] * cells["y"]
    by = cells.groupby(key, sort=False, observed=True)
    sw = by["w"].transform("sum")
    cells["z"] = cells["w"] * (cells["y"] - by["wy"].transform("sum") / sw) / sw
    psu = cells.groupby([*key, "stratum", "psu"], sort=False, observed=True)["z"].sum().rename("zhp").reset_index()
    psu["zhp2"] = psu["zhp"] ** 2
    strata = psu.groupby([*key, "stratum"], sort=False, observed=True).agg(s1=("zhp", "sum"), s2=("zhp2", "sum"))
    strata = strata.reset_index()
    strata["n_h"] = strata["stratum"].astype(str).map(n_h).astype("int64")
    per_cell = strata.groupby(key, sort=False, observed=True)
    c = per_cell["s1"].transform("sum") / per_cell["n_h"].transform("sum")  # the grand mean ("adjust")
    several = strata["n_h"] > 1
    strata["v"] = np.where(several, strata["n_h"] / (strata["n_h"] - 1).clip(lower=1)
                           * (strata["s2"] - strata["s1"] ** 2 / strata["n_h"]),
                           strata["s2"] - 2 * c * strata["s1"] + c * c)
    tot = by.agg(sw=("w", "sum"), swy=("wy", "sum"))
    tot["r"] = tot["swy"] / tot["sw"]
    tot["se"] = np.sqrt(strata.groupby(key, sort=False, observed=True)["v"].sum().clip(lower=0))
    return tot


def check_database(db: Path) -> int:
    con = connect(db)
    try:
        not_by = dict(con.execute("SELECT name, not_by FROM indicator_definitions ORDER BY position").fetchall())
        breakdowns = [r[0] for r in con.execute("SELECT name FROM indicator_breakdowns ORDER BY position").fetchall()]
        # survey-waves whose weights sum to each country's weighted respondents get no margin over countries
        sums = con.execute("SELECT survey, wave, country, sum(weight), count(weight) FROM respondents "
                           "GROUP BY ALL").fetchall()
    finally:
        con.close()
    countries: dict[tuple[str, str], list[bool]] = {}
    for s, w, _, total, n in sums:
        countries.setdefault((str(s), str(w)), []).append(bool(n) and abs(float(total or 0) - n) <= 1e-3 * n)
    flat = {sw for sw, normalised in countries.items() if len(normalised) > 1 and all(normalised)}
    est = pd.concat([pd.DataFrame(indicators(db, None, ["country"], g, rule=OPEN).records())
                     for g in (None, *breakdowns)])
    checked = 0
    for name, excluded in not_by.items():
        frame, n_h = respondents(db, name)
        tables = ["total", *(g for g in breakdowns if g not in excluded.split(","))]
        ref = reference(frame, n_h, tables).reset_index()
        ref = ref.astype(dict.fromkeys(["breakdown", *KEY], str)).set_index(["breakdown", *KEY])
        for breakdown in tables:
            got = est[(est["indicator"] == name) & (est["breakdown"] == breakdown) & est["estimate"].notna()]
            keys = [(breakdown, *map(str, k)) for k in got[KEY].itertuples(index=False, name=None)]
            assert set(keys) == {k for k in ref.index[ref["sw"] > 0] if k[0] == breakdown
                                 and not (k[3] == "all" and (k[1], k[2]) in flat)}, (name, breakdown)
            r = ref.loc[keys]
            np.testing.assert_allclose(got["estimate"].astype(float), r["r"], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(got["se"].astype(float), r["se"], rtol=1e-9, atol=1e-12)
            checked += len(got)
    return checked


def test_independent_reimplementation_ess8_france(fr_db: Path) -> None:
    assert check_database(fr_db) > 100


def test_independent_reimplementation_demo(small_demo_db: Path) -> None:
    assert check_database(small_demo_db) > 1000


def test_no_ok_row_with_zero_se_and_share_intervals_inside_unit_interval(small_demo_db: Path) -> None:
    rows = indicators(small_demo_db, None, ["country"], "birthplace", rule=OPEN).records()
    shares = {r[0] for r in connect(small_demo_db).execute(
        "SELECT name FROM indicator_definitions WHERE unit = 'share'").fetchall()}
    shown = [r for r in rows if r["estimate"] is not None]
    assert len(shown) > 1000
    zero = [r for r in shown if r["se"] == 0]
    assert zero and all(r["reliability"] == "low" and "se=0" in str(r["flags"]) for r in zero)
    for r in shown:
        if r["indicator"] in shares:
            assert 0 <= r["ci_low"] <= r["estimate"] <= r["ci_high"] <= 1, r  # type: ignore[operator]
            if r["estimate"] in (0, 1):
                assert r["reliability"] == "low" and f"share={int(r['estimate'])}" in str(r["flags"])  # type: ignore[call-overload]


def test_lonely_psus_are_declared_and_change_ses(small_demo_db: Path) -> None:
    """Demo strata with one PSU (as in the real designs): 'adjust' gives them variance, 'certainty' none;
    the design column says which; cells without a lonely stratum are the same under every method."""
    con = connect(small_demo_db)
    try:
        lonely = {tuple(r) for r in con.execute(
            "SELECT survey, wave, country FROM (SELECT survey, wave, country, stratum, count(DISTINCT psu) AS k "
            "FROM respondents WHERE psu IS NOT NULL GROUP BY ALL) GROUP BY ALL HAVING min(k) = 1").fetchall()}
    finally:
        con.close()
    assert lonely

    def ses(method: str) -> dict[tuple[object, ...], float]:
        rows = indicators(small_demo_db, ["trust_parliament"], ["country"], lonely_psu=method, rule=OPEN).records()
        assert {r["design"] for r in rows if (r["survey"], r["wave"], r["country"]) in lonely} == {
            f"stratum/psu; lonely PSUs: {method}"}
        return {(r["survey"], r["wave"], r["country"]): float(r["se"]) for r in rows  # type: ignore[arg-type]
                if r["se"] is not None and r["group"] == "all"}

    adjust, certainty, collapse = ses("adjust"), ses("certainty"), ses("collapse")
    hit = [k for k in adjust if k in lonely]
    assert hit and all(adjust[k] >= certainty[k] - 1e-15 for k in hit)
    assert any(adjust[k] > certainty[k] for k in hit) and any(collapse[k] != adjust[k] for k in hit)
    assert all(adjust[k] == certainty[k] for k in adjust if k[:2] == ("ess", "8"))  # respondents as PSUs


def test_rows_never_mix_surveys_unless_pooled(small_demo_db: Path) -> None:
    code, out, err = run("indicators", "--db", str(small_demo_db), "--by", "country", "--indicator", "employment_rate",
                         "--format", "json")
    assert code == 0, err
    import json

    data = json.loads(out)
    rows = data["rows"]
    con = connect(small_demo_db)
    try:
        waves = set(con.execute("SELECT DISTINCT survey, wave FROM respondents").fetchall())
    finally:
        con.close()
    assert {(r["survey"], r["wave"]) for r in rows} == waves  # rows per survey x wave x country
    assert all(r["source"] in (None, f"{r['survey']} {r['wave']}") for r in rows)
    assert data["pooling"] is None
    pooled = indicators(small_demo_db, ["employment_rate"], ["country"], pool=True).records()
    assert "survey" not in pooled[0] and "wave" not in pooled[0]
    fr = next(r for r in pooled if r["country"] == "FR" and r["breakdown"] == "total")
    sources = str(fr["source"]).split(", ")
    assert len({s.split(" ")[0] for s in sources}) > 1  # the pooled France cell names every survey it mixes
    assert all(tuple(s.split(" ", 1)) in waves for s in sources)
    per_wave = [r for r in indicators(small_demo_db, ["employment_rate"], ["country"]).records()
                if r["country"] == "FR" and r["breakdown"] == "total"]
    assert sum(int(r["n"]) for r in per_wave) == fr["n"]  # type: ignore[call-overload]


def test_quality_flags_reach_the_rows(small_demo_db: Path) -> None:
    rows = indicators(small_demo_db, ["employment_rate", "trust_parliament"], ["country"], rule=OPEN).records()
    quality = {(r["indicator"], r["survey"], r["wave"]): str(r["quality"]) for r in rows}
    assert "approximate: labour_status" in quality[("employment_rate", "ess", "10")]  # always an approximation
    assert "trust_parliament" in quality[("trust_parliament", "evs", "2017")]  # 1-4 rescaled to 0-10
    assert "trust_parliament" not in quality[("trust_parliament", "ess", "10")]
    assert "partly non-probability sample (eumidis survey descriptor)" in quality[("employment_rate", "eumidis", "I")]
    assert "approximate: labour_status, weight" in quality[("employment_rate", "eumidis", "I")]  # the wave-I weight
    con = connect(small_demo_db)
    try:
        stored = con.execute("SELECT DISTINCT quality FROM indicators WHERE indicator = 'employment_rate' AND "
                             "survey = 'eumidis' AND wave = 'I' AND breakdown = 'total'").fetchall()
    finally:
        con.close()
    assert stored == [(quality[("employment_rate", "eumidis", "I")],)]


def test_citizenship_share_not_published_by_citizenship_group(fr_db: Path) -> None:
    rows = indicators(fr_db, ["citizenship_share", "employment_rate"], ["country"], "citizenship_group").records()
    assert not [r for r in rows if r["indicator"] == "citizenship_share"]
    assert "citizenship_group" in {r["breakdown"] for r in rows if r["indicator"] == "employment_rate"}


def test_a_pooled_query_gives_the_same_digits_every_time(demo_db: Path) -> None:
    """DuckDB sums in parallel in any order: the pooled weights' per-wave totals are compensated sums, so
    repeating a pooled query repeats every digit (with a plain sum, about a third of the demo's rows moved
    in their last digits; the lonely-PSU centre is checked by the rebuild test of tests/test_store_cache.py)."""
    first = indicators(demo_db, None, ["country"], pool=True).records()
    assert indicators(demo_db, None, ["country"], pool=True).records() == first


def test_waves_estimated_while_harmonising_give_the_stored_rows(small_demo_db: Path, tmp_path: Path) -> None:
    """A build estimates waves ahead while it waits for its workers (WaveEstimates); the table it then stores
    is the one it stores estimating every wave at the end."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(small_demo_db, db)
    con = duckdb.connect(str(db))
    try:
        stored = con.execute("SELECT * FROM indicators").fetchall()
        for table in ("indicators", "indicator_definitions", "indicator_breakdowns", "survey_sampling"):
            con.execute(f"DROP TABLE {table}")
        con.execute("DELETE FROM build_info WHERE key = 'indicator_age_bands'")
        waves = [(str(s), str(w)) for s, w in con.execute("SELECT DISTINCT survey, wave FROM respondents "
                                                          "ORDER BY ALL").fetchall()]
        ahead = WaveEstimates(con, load_project(ROOT), ("1GB", "1GB"))
        complete = waves[::2]  # every other wave ahead, the rest at the end
        while ahead.idle(complete):
            pass
        assert sorted(ahead.frames) == complete and len(complete) > 1
        store_indicators(con, load_project(ROOT), None, ahead)
        assert con.execute("SELECT * FROM indicators").fetchall() == stored
        assert ahead.frames == {}  # every wave estimated ahead was taken
    finally:
        con.close()


_ONE_ESTIMATE: dict[Path, tuple[Any, pd.DataFrame, list[tuple[object, ...]]]] = {}


def _one_estimate(con: duckdb.DuckDBPyConnection, defs: Any) -> tuple[pd.DataFrame, list[tuple[object, ...]]]:
    """One estimate of every wave of ``con``'s respondents, and its rows in the table's order."""
    import harmonise.reports.indicators as ind

    whole = ind.estimate_frame(con, defs, None, ind.DEFAULT_BY, (None, *defs.breakdowns))
    one = duckdb.connect()
    try:
        create_indicators(one, [whole], lambda: whole)
        return whole, one.execute("SELECT * FROM indicators").fetchall()
    finally:
        one.close()


def _stored_and_one_estimate(con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch,
                             spy: Callable[..., pd.DataFrame], copy_of: Path | None = None
                             ) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], Any, pd.DataFrame]:
    """The indicators of ``con``'s respondents stored afresh (``spy`` standing for the estimator meanwhile): the
    stored rows, the rows one estimate of every wave gives in the table's order, the definitions and that
    estimate. ``copy_of``: the database ``con`` is an unchanged copy of (read-only), whose one estimate is made
    once per module (with definitions equal to those stored afresh)."""
    import harmonise.reports.indicator_table as table_of
    import harmonise.reports.indicators as ind

    real = ind.estimate_frame
    for table in ("indicators", "indicator_definitions", "indicator_breakdowns", "survey_sampling"):
        con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM build_info WHERE key = 'indicator_age_bands'")
    monkeypatch.setattr(table_of, "estimate_frame", spy)
    store_indicators(con, load_project(ROOT))
    monkeypatch.setattr(table_of, "estimate_frame", real)
    stored = con.execute("SELECT * FROM indicators").fetchall()
    defs = ind.read_definitions(con)
    if copy_of is None:
        whole, rows = _one_estimate(con, defs)
        return stored, rows, defs, whole
    if copy_of not in _ONE_ESTIMATE:
        original = duckdb.connect(str(copy_of), read_only=True)
        try:
            kept = ind.read_definitions(original)
            _ONE_ESTIMATE[copy_of] = (kept, *_one_estimate(original, kept))
        finally:
            original.close()
    kept, whole, rows = _ONE_ESTIMATE[copy_of]
    assert defs == kept  # the definitions stored afresh are the copied database's
    return stored, rows, defs, whole


@pytest.mark.parametrize("batch", [None, 1], ids=["two-at-a-time", "each-alone"])
def test_waves_estimated_at_once_give_the_rows_of_one_estimate_of_all(small_demo_db: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        batch: int | None) -> None:
    """The waves left at the end of a build are estimated ESTIMATORS at a time, on cursors of their own (those
    with design PSUs alone, in two halves of the indicators), and a wave of more than ESTIMATE_BATCH
    respondents alone, before them, with all of DuckDB's memory: the table is the one a single estimate of
    every wave gives, in its order."""
    import threading

    import harmonise.reports.indicator_table as table_of
    import harmonise.reports.indicators as ind

    if batch is not None:
        monkeypatch.setattr(table_of, "ESTIMATE_BATCH", batch)  # every wave holds more: each is estimated alone
    db = tmp_path / "demo.duckdb"
    shutil.copy(small_demo_db, db)
    con = duckdb.connect(str(db))
    seen: list[tuple[str, list[tuple[str, str]], object]] = []
    real = ind.estimate_frame

    def spy(c: duckdb.DuckDBPyConnection, *args: object, **kw: object) -> pd.DataFrame:
        seen.append((threading.current_thread().name, list(kw.get("sample") or []),  # type: ignore[call-overload]
                     args[1]))
        return real(c, *args, **kw)  # type: ignore[arg-type]

    try:
        designed = {(str(s), str(w)) for s, w in con.execute("SELECT DISTINCT survey, wave FROM respondents "
                                                             "WHERE psu IS NOT NULL").fetchall()}
        table, expected, defs, whole = _stored_and_one_estimate(con, monkeypatch, spy, small_demo_db)
    finally:
        con.close()
    assert table == expected and len(table) > 1000
    batches = [b for _, b, _ in seen]
    waves = sorted({(str(s), str(w)) for s, w in whole[["survey", "wave"]].itertuples(index=False)})
    assert all(len(b) == 1 for b in batches if set(b) & designed) and designed
    if batch is None:
        assert len({name for name, _, _ in seen}) == table_of.ESTIMATORS  # two threads shared the batches
        # a wave with design PSUs in two halves of the indicators, every other wave once with all of them
        for sw in waves:
            names = [n for _, b, n in seen if sw in b]
            if sw in designed:
                assert len(names) == 2 and sorted(n for part in names for n in part) == sorted(defs.indicators)  # type: ignore[attr-defined]
            else:
                assert names == [None]
    else:
        assert sorted(sw for b in batches for sw in b) == waves
        assert {name for name, _, _ in seen} == {threading.current_thread().name} and all(len(b) == 1 for b in batches)


class _Stored:
    """Rows a table holds already, as a rebuild's previous database holds a kept wave's."""

    def __init__(self, con: duckdb.DuckDBPyConnection, wave: str, readable: bool = True) -> None:
        self.con, self.wave, self.readable, self.reads = con, wave, readable, 0

    @property
    def sql(self) -> str:
        return f"SELECT * FROM kept WHERE wave = '{self.wave}'"

    def frame(self) -> pd.DataFrame:
        assert self.readable, "read as a frame although its types matched"
        self.reads += 1
        return self.con.execute(self.sql).df()


def _parts_table(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return con.execute("SELECT * FROM indicators").fetchall()


COLUMNS = ["indicator", "ages", "survey", "wave", "country", "breakdown", "group", "estimate"]


def _kept(con: duckdb.DuckDBPyConnection, *rows: str) -> None:
    """The stored table ``kept`` (an estimate of type DOUBLE) with these VALUES rows."""
    con.execute("CREATE TABLE kept (" + ", ".join(f'"{c}" VARCHAR' for c in COLUMNS[:-1]) + ", estimate DOUBLE)")
    con.execute("INSERT INTO kept VALUES " + ", ".join(rows))


def test_stored_rows_are_copied_in_sql_when_their_types_are_the_estimated_ones() -> None:
    con = duckdb.connect()
    _kept(con, "('emp', '15-64', 'ess', '1', 'AT', 'all', 'all', 0.5)", "('emp', '15-64', 'ess', '1', 'BE', 'all', 'all', 0.25)")
    fresh = pd.DataFrame([["emp", "15-64", "ess", "2", "AT", "all", "all", 0.75],
                          ["emp", "15-64", "ess", "0", "AT", "all", "all", 0.125]], columns=COLUMNS)
    create_indicators(con, [fresh, _Stored(con, "1", readable=False)], lambda: pd.DataFrame())
    assert _parts_table(con) == [("emp", "15-64", "ess", "0", "AT", "all", "all", 0.125),
                                 ("emp", "15-64", "ess", "1", "AT", "all", "all", 0.5),
                                 ("emp", "15-64", "ess", "1", "BE", "all", "all", 0.25),
                                 ("emp", "15-64", "ess", "2", "AT", "all", "all", 0.75)]


def test_stored_rows_are_read_as_frames_when_the_estimated_ones_have_other_types() -> None:
    """An estimate whose column came out as integers: the table is made from frames, as a full build makes it
    (pandas unifies the types), not from a SQL union that would take the stored table's."""
    con = duckdb.connect()
    _kept(con, "('emp', '15-64', 'ess', '1', 'AT', 'all', 'all', 0.5)")
    fresh = pd.DataFrame([["emp", "15-64", "ess", "2", "AT", "all", "all", 1]], columns=COLUMNS)
    stored = _Stored(con, "1")
    create_indicators(con, [stored, fresh], lambda: pd.DataFrame())
    assert stored.reads == 1
    assert _parts_table(con) == [("emp", "15-64", "ess", "1", "AT", "all", "all", 0.5),
                                 ("emp", "15-64", "ess", "2", "AT", "all", "all", 1.0)]
    assert con.execute("SELECT data_type FROM duckdb_columns() WHERE table_name = 'indicators' "
                       "AND column_name = 'estimate'").fetchall() == [("DOUBLE",)]


def test_only_stored_rows_make_the_table_from_sql_alone() -> None:
    con = duckdb.connect()
    _kept(con, "('emp', '15-64', 'ess', '1', 'AT', 'all', 'all', 0.5)")
    create_indicators(con, [_Stored(con, "1", readable=False)], lambda: pd.DataFrame())
    assert _parts_table(con) == [("emp", "15-64", "ess", "1", "AT", "all", "all", 0.5)]


def test_a_single_wave_with_design_psus_is_estimated_in_two_halves(small_demo_db: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild whose edit changed one wave with design PSUs estimates only that wave: its two halves of the
    indicators run at once (decision 57), and the table is the one a single estimate gives."""
    import harmonise.reports.indicators as ind

    db = tmp_path / "one.duckdb"
    shutil.copy(small_demo_db, db)
    con = duckdb.connect(str(db))
    names: list[object] = []
    real = ind.estimate_frame

    def spy(c: duckdb.DuckDBPyConnection, *args: object, **kw: object) -> pd.DataFrame:
        names.append(args[1])
        return real(c, *args, **kw)  # type: ignore[arg-type]

    try:
        (survey, wave), *_ = con.execute("SELECT survey, wave FROM respondents WHERE psu IS NOT NULL GROUP BY ALL "
                                         "ORDER BY count(*)").fetchall()
        con.execute("DELETE FROM respondents WHERE NOT (survey = ? AND wave = ?)", [survey, wave])
        table, expected, defs, _ = _stored_and_one_estimate(con, monkeypatch, spy)
    finally:
        con.close()
    assert table == expected and len(table) > 100
    assert len(names) == 2 and sorted(n for part in names for n in part) == sorted(defs.indicators)  # type: ignore[attr-defined]


def test_pooled_sources_are_in_wave_order(small_demo_db: Path) -> None:
    """A pooled row's `source` listed the survey-waves in SQL's text order (`ess 1, ess 11, ess 4`), unlike the
    chart caption; now by survey, then wave number, as docs/indicators.md shows."""
    from harmonise.reports.indicators import in_wave_order

    assert in_wave_order("ess 11, ess 4, eumidis II, ess 1, eumidis I, evs 2017, evs 2008") == \
        "ess 1, ess 4, ess 11, eumidis I, eumidis II, evs 2008, evs 2017"
    assert in_wave_order(None) is None
    pooled = indicators(small_demo_db, ["employment_rate"], ["sex"], pool=True).records()
    margin = next(r for r in pooled if r["sex"] == "all" and r["breakdown"] == "total")
    ess = [int(s.split(" ")[1]) for s in str(margin["source"]).split(", ") if s.startswith("ess ")]
    assert len(ess) > 2 and ess == sorted(ess)


def test_a_query_with_the_builds_options_reads_the_stored_rows(fr_db: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A query by country with the build's weight, ages, rule and lonely-PSU handling reads the stored table's
    rows when this code built the database — the rows an estimate gives, value for value and in their order —
    and estimates otherwise (another harmonise built it, or other options)."""
    import harmonise.reports.indicators as ind

    estimates: list[object] = []
    real = ind.estimate_frame

    def counted(*args: Any, **kwargs: Any) -> pd.DataFrame:
        estimates.append(kwargs.get("weight"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ind, "estimate_frame", counted)
    queries = [(None, None), (["trust_parliament", "employment_rate"], None), (None, "birthplace"),
               (["neet_rate"], "migrant_generation")]
    read = [indicators(fr_db, names, group=group) for names, group in queries]
    # by country alone is by survey, wave and country (survey and wave lead unless pooled): the same rows, read
    assert [indicators(fr_db, None, by).rows for by in (["country"], ["country", "wave"])] == [read[0].rows] * 2
    assert estimates == []
    with monkeypatch.context() as m:
        m.setattr(ind, "_stored_rows", lambda *args: None)
        estimated = [indicators(fr_db, names, group=group) for names, group in queries]
    assert len(estimates) == len(queries)
    for a, b in zip(read, estimated):
        assert a.columns == b.columns and a.unestimated == b.unestimated
        assert [tuple(map(repr, r)) for r in a.rows] == [tuple(map(repr, r)) for r in b.rows]  # types too
    assert {r["breakdown"] for r in read[2].records()} == {"birthplace"} and len(read[1].rows) == 4
    estimates.clear()
    indicators(fr_db, None, weight="none")
    indicators(fr_db, None, ["country", "sex"])
    assert estimates == ["none", "weight"]
    other = tmp_path / "other.duckdb"
    shutil.copy(fr_db, other)
    with duckdb.connect(str(other)) as con:
        con.execute("UPDATE build_info SET value = 'another harmonise' WHERE key = 'harmonise_code'")
    estimates.clear()
    assert indicators(other).rows == read[0].rows
    assert estimates == ["weight"]
    from harmonise.store.identity import code_digest

    with duckdb.connect(str(other)) as con:  # this harmonise, another DuckDB: estimated too
        con.execute("UPDATE build_info SET value = ? WHERE key = 'harmonise_code'", [code_digest()])
        con.execute("UPDATE build_info SET value = '0.0.1' WHERE key = 'duckdb_version'")
    estimates.clear()
    assert indicators(other).rows == read[0].rows
    assert estimates == ["weight"]
    with duckdb.connect(str(other)) as con:
        con.execute("UPDATE build_info SET value = ? WHERE key = 'duckdb_version'", [duckdb.__version__])
    estimates.clear()
    assert indicators(other).rows == read[0].rows
    assert estimates == []


def test_moments_held_once_give_the_same_rows_and_leave_no_table(fr_db: Path) -> None:
    """The finest moments stored once for the estimates and the atoms (the build's stored table, a wave at a time)
    give the rows of the two queries that read the respondents each, to the last digit; the temporary table is
    gone afterwards, also on a read-only connection."""
    from harmonise.reports.indicators import DEFAULT_BY, estimate_frame, read_definitions

    con = connect(fr_db)
    try:
        defs = read_definitions(con)
        every = (None, *defs.breakdowns)
        for sample in ([("ess", "8")], None):
            plain = estimate_frame(con, defs, None, DEFAULT_BY, every, sample=sample)
            held = estimate_frame(con, defs, None, DEFAULT_BY, every, sample=sample, materialise=True)
            assert len(plain) > 100
            pd.testing.assert_frame_equal(plain, held, check_exact=True)
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall() == [(0,)]
    finally:
        con.close()


class _Rebuild:
    """What :class:`WaveEstimates` reads of a rebuild's cache: a previous build holding every wave, whose rows are
    the same as this build's for the waves in ``same``."""

    previous = Path("previous.duckdb")

    def __init__(self, same: set[tuple[str, str]]) -> None:
        self.same, self.compared = same, list[tuple[str, str]]()
        self.columns: list[str] | None = None

    def previous_wave(self, survey: str, wave: str) -> tuple[str, list[str]]:
        return "key", []

    def same_rows(self, con: duckdb.DuckDBPyConnection, survey: str, wave: str, only: list[str] | None) -> bool:
        self.compared.append((survey, wave))
        self.columns = only
        return (survey, wave) in self.same


def test_a_rebuilds_unchanged_wave_is_not_estimated_while_waiting(small_demo_db: Path, tmp_path: Path) -> None:
    """While a rebuild waits for its workers, a complete wave whose rows are the previous database's (in the columns
    the estimates read) is passed over, as its stored rows will be kept; a changed wave is estimated, and without a
    previous build every wave is."""
    from harmonise.reports.indicators import stored_inputs

    db = tmp_path / "demo.duckdb"
    shutil.copy(small_demo_db, db)
    con = duckdb.connect(str(db))
    try:
        con.execute("DROP TABLE survey_sampling")
        waves = [(str(s), str(w)) for s, w in con.execute(
            "SELECT DISTINCT survey, wave FROM respondents ORDER BY ALL LIMIT 3").fetchall()]
        cache = _Rebuild({waves[0], waves[2]})
        ahead = WaveEstimates(con, load_project(ROOT), ("1GB", "1GB"), cache)  # type: ignore[arg-type]
        assert all(ahead.idle(waves) for _ in waves) and not ahead.idle(waves)
        assert list(ahead.frames) == [waves[1]] and len(ahead.frames[waves[1]]) > 0
        assert cache.compared == waves and cache.columns == stored_inputs(ahead.defs)  # what the estimates read
        con.execute("DROP TABLE survey_sampling")
        fresh = WaveEstimates(con, load_project(ROOT), ("1GB", "1GB"))
        assert all(fresh.idle(waves) for _ in waves) and list(fresh.frames) == waves
    finally:
        con.close()


def test_a_wave_whose_every_cell_is_suppressed_keeps_the_tables_column_types(ess8: Path, fr_db: Path,
                                                                             tmp_path: Path) -> None:
    """40 respondents: every cell is suppressed, so every estimate is null; the stored columns keep the types of a
    table with estimates (DuckDB gave an all-null column the type NULL, which exports and frames then carried)."""
    import pyreadstat

    df, meta = pyreadstat.read_sav(str(ess8), user_missing=True)
    small = tmp_path / "data" / "ESS8FR.sav"
    small.parent.mkdir()
    pyreadstat.write_sav(df.head(40), str(small), column_labels=meta.column_labels,
                         variable_value_labels=meta.variable_value_labels, missing_ranges=meta.missing_ranges)
    db = tmp_path / "small.duckdb"
    code, _, err = run("build", "--data", str(small.parent), "--db", str(db))
    assert code == 0, err
    types = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'indicators' " \
            "ORDER BY ordinal_position"
    with connect(db) as con:
        assert con.execute("SELECT count(*), count(estimate), count(se), count(gap) FROM indicators").fetchall() == [
            (con.execute("SELECT count(*) FROM indicators").fetchall()[0][0], 0, 0, 0)]
        got = con.execute(types).fetchall()
    with connect(fr_db) as con:
        assert got == con.execute(types).fetchall()


def test_a_countrys_pooled_figure_depends_on_its_own_samples_only(small_demo_db: Path, tmp_path: Path) -> None:
    """Pooled by country, the weights were rescaled within each survey-wave over every country in the database, so a
    country's waves counted by the whole wave's sample: removing another country's respondents changed France's
    pooled figures (an audit of real files: ESS 8 + 9 Poland moved from 0.7052 to 0.7116 with France and the Nordic
    files beside it). Now rescaled within survey-wave and country, with no margin over countries; a pooled query
    without country keeps the survey-wave rescaling."""
    fewer = tmp_path / "fewer.duckdb"
    shutil.copy(small_demo_db, fewer)
    con = duckdb.connect(str(fewer))
    try:
        others = [c for (c,) in con.execute("SELECT DISTINCT country FROM respondents WHERE country NOT IN ('FR') "
                                            "AND survey IN (SELECT survey FROM respondents WHERE country = 'FR') "
                                            "ORDER BY ALL").fetchall()]
        assert len(others) > 2
        con.execute("DELETE FROM respondents WHERE country = ?", [others[0]])
    finally:
        con.close()
    names = ["employment_rate", "trust_parliament"]
    every = indicators(small_demo_db, names, ["country"], "birthplace", pool=True, rule=OPEN)
    some = indicators(fewer, names, ["country"], "birthplace", pool=True, rule=OPEN)
    fr = [r for r in every.records() if r["country"] == "FR"]
    assert fr and fr == [r for r in some.records() if r["country"] == "FR"]
    assert {r["country"] for r in every.records()} == {r["country"] for r in some.records()} | {others[0]}
    assert "all" not in {r["country"] for r in every.records()}
    assert every.pooling is not None and "rescaled within each survey-wave and country" in every.pooling
    by_sex = indicators(small_demo_db, names, ["sex"], pool=True)
    assert by_sex.pooling is not None and "rescaled within each survey-wave to sum" in by_sex.pooling


def test_a_cell_without_answers_names_its_survey_wave(ess8: Path, tmp_path: Path) -> None:
    """A file whose income item is empty in every row (ESS7 Estonia's `hinctnta`): the low-income cells have n = 0,
    and their `source` was blank, so the chart caption left the survey-wave out."""
    import pyreadstat

    df, meta = pyreadstat.read_sav(str(ess8), user_missing=True)
    df = keep_named(df)  # the variables the ESS declarations name (72 of 539): indicators read no other
    df["hinctnta"] = float("nan")
    data = tmp_path / "data" / "ESS8FR.sav"
    data.parent.mkdir()
    pyreadstat.write_sav(df, str(data), column_labels={k: v for k, v in meta.column_names_to_labels.items() if k in df},
                         variable_value_labels={k: v for k, v in meta.variable_value_labels.items() if k in df},
                         missing_ranges={k: v for k, v in meta.missing_ranges.items() if k in df})
    db = tmp_path / "h.duckdb"
    code, _, err = run("build", "--data", str(data.parent), "--db", str(db))
    assert code == 0, err
    rows = indicators(db, ["low_income"], None, "birthplace").records()
    assert rows and {(r["n"], r["source"], r["reliability"]) for r in rows} == {(0, "ess 8", "suppressed")}


def test_weights_scaled_to_each_countrys_sample_give_no_margin_over_countries(small_demo_db: Path) -> None:
    """EU-MIDIS II's person weight (as modelled) sums to each country's sample size: its margin over countries
    weighted France, Germany and the Netherlands alike whatever their migrant populations (an audit recomputed it
    with population-scaled weights: 0.6225, published 0.6319). A survey-wave whose every country's weights sum to
    its weighted respondents gets no such margin; one whose weights carry population sizes (ESS) keeps it."""
    from harmonise.reports.indicators import unmargined

    con = connect(small_demo_db)
    try:
        sums = con.execute("SELECT survey, wave, country, sum(weight), count(weight) FROM respondents "
                           "GROUP BY ALL").fetchall()
        got = unmargined(con, "weight")
        assert unmargined(con, "none") == [] and unmargined(con, "weight_design") == []
    finally:
        con.close()
    countries: dict[tuple[str, str], list[bool]] = {}
    for s, w, _, total, n in sums:
        countries.setdefault((str(s), str(w)), []).append(bool(n) and abs(float(total or 0) - n) <= 1e-3 * n)
    flat = sorted(sw for sw, normalised in countries.items() if len(normalised) > 1 and all(normalised))
    assert got == flat and ("eumidis", "II") in flat and not any(s == "ess" for s, _ in flat)
    rows = indicators(small_demo_db, ["employment_rate"], ["country"]).records()
    margins = {(r["survey"], r["wave"]) for r in rows if r["country"] == "all"}
    several = {sw for sw, c in countries.items() if len(c) > 1}
    assert margins == several - set(flat)


def test_a_surveys_native_group_from_a_sample_of_selected_groups_is_said(small_demo_db: Path) -> None:
    """EU-MIDIS samples minorities only: its `native_background` group is Roma born in Slovakia and the like, and its
    gaps "vs natives" were published against them without a word (an audit of EU-MIDIS layouts). Every breakdown row
    of a survey whose descriptor's target population is not the general population says so; ESS's do not."""
    rows = indicators(small_demo_db, ["employment_rate"], ["country"], "migrant_generation").records()
    said = "native group from a sample of selected groups, not of the population's natives (eumidis survey descriptor)"
    eumidis = [r for r in rows if r["survey"] == "eumidis"]
    assert eumidis and all(said in str(r["quality"]) for r in eumidis)
    assert not any("native group from a sample" in str(r["quality"]) for r in rows if r["survey"] in ("ess", "evs"))
    totals = indicators(small_demo_db, ["employment_rate"], ["country"]).records()
    assert not any("native group from a sample" in str(r["quality"]) for r in totals)
