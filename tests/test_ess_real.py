"""Issue 2 acceptance on the real ESS8 France file: clean harmonisation and figures equal to the raw file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyreadstat
import pytest
from conftest import ESS8_SAID, run

from harmonise import connect


def test_validate_against_real_file_exits_0(ess8: Path) -> None:
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(ess8.parent))
    assert (code, err) == (0, "")
    assert out.splitlines() == ESS8_SAID


def test_build_rows_no_unmapped_no_failures(fr_db: Path) -> None:
    con = connect(fr_db)
    assert con.execute("SELECT count(*) FROM respondents").fetchone() == (2070,)
    assert con.execute("SELECT count(*) FROM harmonisation_report WHERE missing_reason = '__unmapped__'").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM validation_failures").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM conservation WHERE NOT ok").fetchone() == (0,)
    assert con.execute("SELECT count(DISTINCT respondent_id) FROM respondents").fetchone() == (2070,)
    src = con.execute("SELECT file_name, rows, sha256 FROM sources").fetchall()
    assert src == [("ESS8FR.sav", 2070, "9b940edf12b6d0e44193bdee9f77593100aa533dbd19be1127e388f8ae88bf83")]


def _raw(ess8: Path, cols: list[str]):  # type: ignore[no-untyped-def]
    df, _ = pyreadstat.read_sav(str(ess8), usecols=cols, user_missing=True)
    return df


def test_born_abroad_share_matches_raw_file(fr_db: Path, ess8: Path) -> None:
    code, out, _ = run("query", "SELECT sum(weight * (NOT born_in_country)::INT) / sum(weight) AS share "
                       "FROM respondents WHERE born_in_country IS NOT NULL", "--db", str(fr_db), "--format", "csv")
    assert code == 0
    via_query = float(out.splitlines()[1])
    df = _raw(ess8, ["brncntr", "pspwght"])
    ok = df.brncntr.isin([1, 2])
    direct = (df.pspwght[ok] * (df.brncntr[ok] == 2)).sum() / df.pspwght[ok].sum()
    assert via_query == pytest.approx(direct, abs=1e-12)
    assert via_query == pytest.approx(0.1068, abs=0.0005)


def test_employment_rate_20_64_matches_raw_file(fr_db: Path, ess8: Path) -> None:
    code, out, _ = run("query", "SELECT sum(weight * (labour_status = 'employed')::INT) / sum(weight) "
                       "FROM respondents WHERE age BETWEEN 20 AND 64", "--db", str(fr_db), "--format", "csv")
    assert code == 0
    via_query = float(out.splitlines()[1])
    df = _raw(ess8, ["pdwrk", "agea", "pspwght"])
    m = (df.agea >= 20) & (df.agea <= 64)
    direct = (df.pspwght[m] * (df.pdwrk[m] == 1)).sum() / df.pspwght[m].sum()
    assert via_query == pytest.approx(direct, abs=1e-12)
    assert via_query == pytest.approx(0.7091, abs=0.0005)


def _code_text(v: object) -> str:
    if isinstance(v, float):
        if np.isnan(v):
            return "."
        return str(int(v)) if v.is_integer() else str(v)
    return "." if v is None or v == "" else str(v).rstrip() or "."


def test_conservation_every_source_code_lands_where_the_crosswalk_says(fr_db: Path, ess8: Path) -> None:
    con = connect(fr_db)
    lineage = con.execute("SELECT target, source_variables, kind FROM lineage WHERE kind IN ('map', 'table')").fetchall()
    assert len(lineage) == 20  # temporary_contract, self_employed are expressions (the current job's, an employee's)
    for target, source, _kind in lineage:
        raw = _raw(ess8, [source])[source].map(_code_text).value_counts().to_dict()
        rep = con.execute("SELECT source_code, sum(n) FROM harmonisation_report WHERE target = ? GROUP BY 1",
                          [target]).fetchall()
        assert {c: int(n) for c, n in rep} == raw, target
        # each source code lands on exactly one target value or missing reason
        multi = con.execute("SELECT source_code FROM harmonisation_report WHERE target = ? GROUP BY 1 "
                            "HAVING count(*) > 1", [target]).fetchall()
        assert multi == [], target
        missing = f'count("{target}_missing")' if target != "country" else "0"
        total = con.execute(f'SELECT count("{target}") + {missing} FROM respondents').fetchone()
        assert total == (2070,), target


def test_specific_recodes_on_real_codes(fr_db: Path) -> None:
    con = connect(fr_db)
    rows = dict(con.execute("SELECT source_code, coalesce(target_value, missing_reason) FROM harmonisation_report "
                            "WHERE target = 'country_of_birth'").fetchall())
    assert rows["66"] == "not_applicable"
    assert rows["DZ"] == "DZ"
    isced = dict(con.execute("SELECT source_code, coalesce(target_value, missing_reason) FROM harmonisation_report "
                             "WHERE target = 'education_isced'").fetchall())
    assert isced == {"0": "*", "113": "*", "213": "*", "313": "*", "321": "*", "323": "*", "413": "*",
                     "421": "*", "510": "*", "520": "*", "610": "*", "620": "*", "710": "*", "720": "*",
                     "800": "*", "7777": "refused"}
    levels = dict(con.execute("SELECT education_isced, any_value(education_level) FROM respondents "
                              "WHERE education_isced IS NOT NULL GROUP BY 1").fetchall())
    assert levels == {0: "low", 1: "low", 2: "low", 3: "medium", 4: "medium", 5: "high", 6: "high", 7: "high",
                      8: "high"}


def test_missing_reasons_are_queryable_without_join(fr_db: Path) -> None:
    con = connect(fr_db)
    got = con.execute("SELECT count(*) FROM respondents WHERE income_decile_missing = 'refused'").fetchone()
    assert got == (127,)
    assert con.execute("SELECT count(*) FROM respondents WHERE labour_status = 'employed'").fetchone() == (963,)
    assert con.execute("SELECT count(*) FROM respondents WHERE reason_for_migration_missing = 'not_asked'"
                       ).fetchone() == (2070,)


def test_query_connection_is_read_only(fr_db: Path, tmp_path: Path) -> None:
    con = connect(fr_db)
    with pytest.raises(duckdb.Error):
        con.execute("DELETE FROM respondents")
    with pytest.raises(duckdb.Error):
        con.execute(f"COPY respondents TO '{tmp_path / 'x.csv'}'")
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM read_csv('/etc/passwd')")
    code, _, err = run("query", "DROP TABLE respondents", "--db", str(fr_db))
    assert code == 2 and "read-only" in err.lower()


def test_ilo_approximation_matches_the_raw_items(fr_db: Path, ess8: Path) -> None:
    """labour_status = employed if pdwrk, else unemployed if uempla, else inactive: row counts equal the raw file's."""
    df = _raw(ess8, ["idno", "pdwrk", "uempla"])
    expected = np.where(df.pdwrk == 1, "employed", np.where(df.uempla == 1, "unemployed", "inactive"))
    want = dict(zip(*np.unique(expected, return_counts=True)))
    con = connect(fr_db)
    got = dict(con.execute("SELECT labour_status, count(*) FROM respondents GROUP BY 1").fetchall())
    assert got == {k: int(v) for k, v in want.items()}
    assert con.execute("SELECT quality FROM lineage WHERE target = 'labour_status'").fetchone() == ("approximate",)


def test_round_8_weight_is_pspwght_times_pweight(fr_db: Path, ess8: Path) -> None:
    """Before round 9 anweight is derived as pspwght × pweight; the design weight is dweight."""
    df = _raw(ess8, ["idno", "pspwght", "pweight", "dweight"]).sort_values("idno")
    con = connect(fr_db)
    got = con.execute("SELECT weight, weight_design FROM respondents "
                      "ORDER BY CAST(split_part(respondent_id, '-', 2) AS BIGINT)").fetchnumpy()
    np.testing.assert_allclose(got["weight"], (df.pspwght * df.pweight).to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got["weight_design"], df.dweight.to_numpy(), rtol=1e-12)
