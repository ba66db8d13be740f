"""Exports: Parquet, CSV, SPSS and Stata round trips (values, labels and missing reasons)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyreadstat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise import connect, export
from harmonise.errors import UsageError
from harmonise.reports.export import read_export
from tests.conftest import run

ORDER = "ORDER BY survey, wave, respondent_id"


def stored(db: Path) -> pd.DataFrame:
    con = connect(db)
    try:
        return con.execute(f"SELECT * FROM respondents {ORDER}").df()
    finally:
        con.close()


def assert_same(got: pd.DataFrame, exp: pd.DataFrame) -> None:
    assert list(got.columns) == list(exp.columns) and len(got) == len(exp)
    for c in exp.columns:
        a = exp[c].astype(object).where(exp[c].notna(), None).tolist()
        b = got[c].astype(object).where(got[c].notna(), None).tolist()
        assert a == b, c


def types_of(db: Path) -> dict[str, str]:
    con = connect(db)
    try:
        return {r[0]: r[1] for r in con.execute("DESCRIBE respondents").fetchall()}
    finally:
        con.close()


def test_parquet_partitioned_round_trip(fr_db: Path, tmp_path: Path) -> None:
    code, out, _ = run("export", "--format", "parquet", "--out", str(tmp_path), "--db", str(fr_db))
    assert code == 0
    assert out.splitlines() == [str(tmp_path / "respondents" / "survey=ess" / "wave=8" / "data_0.parquet")]
    con = duckdb.connect()
    back = con.execute(f"SELECT * FROM read_parquet('{tmp_path}/respondents/*/*/*.parquet', "
                       "hive_partitioning = true, hive_types = {'survey': VARCHAR, 'wave': VARCHAR}) " + ORDER).df()
    assert_same(back[list(stored(fr_db).columns)], stored(fr_db))
    (tmp_path / "respondents" / "survey=ess" / "wave=8" / "data_0.parquet").write_bytes(b"stale")
    code, out, _ = run("export", "--format", "parquet", "--out", str(tmp_path), "--db", str(fr_db))
    assert code == 0  # an earlier export is replaced as a whole
    assert (tmp_path / "respondents" / "survey=ess" / "wave=8" / "data_0.parquet").read_bytes()[:4] == b"PAR1"
    other = tmp_path / "other"
    (other / "respondents").mkdir(parents=True)
    code, _, err = run("export", "--format", "parquet", "--out", str(other), "--db", str(fr_db), "--force")
    assert code == 2 and err == f"error: {other / 'respondents'}: is a folder harmonise did not write — move them " \
                                "away or choose another --out folder\n"


def test_csv_round_trip(fr_db: Path, tmp_path: Path) -> None:
    assert export(fr_db, tmp_path, "csv") == [tmp_path / "respondents.csv", tmp_path / "respondents.codebook.csv"]
    cols = ", ".join(f"'{k}': '{v}'" for k, v in types_of(fr_db).items())
    back = duckdb.connect().execute(f"SELECT * FROM read_csv('{tmp_path}/respondents.csv', "
                                    f"header = true, columns = {{{cols}}}) {ORDER}").df()
    assert_same(back, stored(fr_db))


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_spss_and_stata_round_trip(fr_db: Path, tmp_path: Path, fmt: str) -> None:
    code, out, _ = run("export", "--format", fmt, "--out", str(tmp_path), "--db", str(fr_db))
    path = tmp_path / f"respondents.{fmt}"
    assert code == 0 and out.strip() == str(path)
    assert_same(read_export(path, fr_db), stored(fr_db))
    raw, meta = (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path), user_missing=True)
    con = connect(fr_db)
    try:
        labels = dict(con.execute("SELECT name, label FROM schema_variables").fetchall())
        refused, dont_know = con.execute("SELECT count(*) FILTER (WHERE trust_parliament_missing = 'refused'), "
                                         "count(*) FILTER (WHERE trust_parliament_missing = 'dont_know') "
                                         "FROM respondents").fetchone()
    finally:
        con.close()
    assert {k: v for k, v in meta.column_names_to_labels.items() if k in labels} == labels
    lab = meta.variable_value_labels["labour_status"]
    code_refused, code_dk = (-3.0, -4.0) if fmt == "sav" else ("c", "d")
    assert (lab[1], lab[2], lab[3], lab[code_refused]) == ("Employed", "Unemployed", "Inactive", "Refused")
    assert meta.variable_value_labels["born_in_country"][1] == "Yes"
    assert meta.variable_value_labels["country_of_birth_missing"][code_dk] == "Don't know"
    assert refused > 0 and dont_know > 0
    assert (raw["trust_parliament"] == code_refused).sum() == refused
    assert (raw["trust_parliament"] == code_dk).sum() == dont_know
    if fmt == "sav":
        assert meta.missing_ranges["trust_parliament"] == [{"lo": -8.0, "hi": -1.0}]
    else:
        assert sorted(meta.missing_user_values["trust_parliament"]) == ["c", "d"]  # the letters in use
        assert "father_country_of_birth_mr" in raw.columns  # shortened for Stata's label-set names


def test_round_trip_of_a_clustered_city_sample(tmp_path: Path) -> None:
    from harmonise.fixtures import generate
    from tests.conftest import ROOT

    generate(ROOT, tmp_path / "data", survey="ics", rows=100, seed=2)
    db = tmp_path / "ics.duckdb"
    code, _, err = run("build", "--data", str(tmp_path / "data"), "--db", str(db))
    assert code == 0, err
    for fmt in ("sav", "dta"):
        export(db, tmp_path / fmt, fmt)
        assert_same(read_export(tmp_path / fmt / f"respondents.{fmt}", db), stored(db))


@pytest.fixture(scope="session")
def letters_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ESS rounds 1 and 10 (fixtures): round 1 has no ISCED education, round 10 has. Built once per run."""
    from harmonise.fixtures import generate
    from tests.conftest import ROOT, built_once

    def make(folder: Path) -> None:
        for wave in ("1", "10"):
            generate(ROOT, folder / "data", survey="ess", wave=wave, rows=150, editions=False)
        code, _, err = run("build", "--data", str(folder / "data"), "--db", str(folder / "e.duckdb"))
        assert code == 0, err

    return built_once(tmp_path_factory, "letters_db", make) / "e.duckdb"


def test_stata_round_trip_when_a_column_starts_with_missing_letters(letters_db: Path, tmp_path: Path) -> None:
    # The first rows (ESS round 1) have no ISCED education etc., so these columns open with letters;
    # pyreadstat took such an object column for text and failed on the numbers below.
    first = stored(letters_db).head(100)
    assert first["education_isced"].isna().all() and stored(letters_db)["education_isced"].notna().any()
    assert export(letters_db, tmp_path, "dta") == [tmp_path / "respondents.dta"]
    assert_same(read_export(tmp_path / "respondents.dta", letters_db), stored(letters_db))
    _, meta = pyreadstat.read_dta(str(tmp_path / "respondents.dta"), metadataonly=True)
    assert meta.readstat_variable_types["education_isced"] == "double"


@pytest.mark.parametrize("fmt", ["sav", "csv"])
def test_export_of_a_database_harmonise_did_not_build(tmp_path: Path, fmt: str) -> None:
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    code, out, err = run("export", "--format", fmt, "--out", str(tmp_path / "out"), "--db", str(other))
    tables = "respondents, schema_variables, value_labels, missing_reasons, build_info, sources tables"
    assert (code, out) == (2, "")
    assert err == (f"error: {other}: not a database harmonise built (no {tables}); build one with "
                   "`harmonise build`, or pass the --db that it wrote\n")
    assert not (tmp_path / "out").exists()


def test_bad_format_and_missing_database(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown export format 'xlsx'; choose from parquet, csv, sav, dta"):
        export(tmp_path / "x.duckdb", tmp_path, "xlsx")
    code, _, err = run("export", "--format", "sav", "--out", str(tmp_path), "--db", str(tmp_path / "none.duckdb"))
    assert code == 2 and err.startswith(f"error: {tmp_path / 'none.duckdb'}: no such database")


def test_export_beside_an_open_read_only_connection_says_what_to_do(fr_db: Path, tmp_path: Path) -> None:
    con = connect(fr_db)
    try:
        with pytest.raises(UsageError, match="holds a harmonise.connect\\(\\) connection to the same file"):
            export(fr_db, tmp_path / "out", "csv")
    finally:
        con.close()
    assert export(fr_db, tmp_path / "out", "csv")[0] == tmp_path / "out" / "respondents.csv"


def build_facts(db: Path) -> tuple[dict[str, str], list[tuple[object, ...]], int]:
    con = connect(db)
    try:
        info = dict(con.execute("SELECT key, value FROM build_info").fetchall())
        sources = con.execute("SELECT survey, wave, file_name, sha256, rows FROM sources").fetchall()
        last_row = con.execute("SELECT max(source_row) FROM respondents").fetchone()[0]
    finally:
        con.close()
    return info, sources, last_row


def test_spss_and_stata_files_carry_formats_measures_and_provenance(fr_db: Path, tmp_path: Path) -> None:
    """SPSS showed every number as F8.2 (sex 1.00) with an unknown measurement level, Stata files were release
    119, neither had a file label, and source_row was dropped."""
    from harmonise.spec.project import load_project
    from tests.conftest import ROOT

    schema = load_project(ROOT).schema
    info, sources, last_row = build_facts(fr_db)
    label = f"ess-8 (harmonise {info['harmonise_version']}, {info['built_at'][:10]})"
    export(fr_db, tmp_path, "sav")
    _, sav = pyreadstat.read_sav(str(tmp_path / "respondents.sav"), metadataonly=True)
    assert sav.file_label == label
    assert sav.notes[0] == (f"Harmonised by harmonise {info['harmonise_version']}, schema version "
                            f"{info['schema_version']}, built {info['built_at']}.")
    assert [(s, w, f, h, n) for s, w, f, h, n in sources] == [("ess", "8", "ESS8FR.sav", sav.notes[2].strip(), 2070)]
    formats = sav.original_variable_types
    assert (formats["survey"], formats["sex"], formats["age"], formats["year"], formats["trust_parliament"],
            formats["education_isced"]) == ("F1.0", "F2.0", "F3.0", "F4.0", "F5.2", "F2.0")
    assert formats["source_row"] == f"F{len(str(last_row))}.0"
    measures = {v.name: v.measurement for v in schema.variables}
    assert {k: sav.variable_measure[k] for k in measures} == measures
    assert (measures["age"], measures["trust_parliament"], measures["sex"], measures["education_level"]) == \
        ("scale", "scale", "nominal", "ordinal")
    assert sav.column_names_to_labels["source_row"] == "Row of the respondent in the source file (1 = first)"

    export(fr_db, tmp_path, "dta")
    assert (tmp_path / "respondents.dta").read_bytes()[:40] == b"<stata_dta><header><release>118</release"
    raw, dta = pyreadstat.read_dta(str(tmp_path / "respondents.dta"))
    assert dta.file_label == label
    assert (dta.original_variable_types["sex"], dta.original_variable_types["age"],
            dta.original_variable_types["trust_parliament"]) == ("%2.0f", "%3.0f", "%5.2f")
    assert raw["source_row"].tolist() == stored(fr_db)["source_row"].tolist()


def test_parquet_and_csv_carry_the_labels(fr_db: Path, tmp_path: Path) -> None:
    import csv
    import json

    info, sources, _ = build_facts(fr_db)
    export(fr_db, tmp_path / "pq", "parquet")
    con = duckdb.connect()
    meta = {k.decode(): json.loads(v) for _, k, v in con.execute(
        f"SELECT * FROM parquet_kv_metadata('{tmp_path}/pq/respondents/*/*/*.parquet')").fetchall()}
    assert sorted(meta) == ["harmonise.columns", "harmonise.missing_reasons", "harmonise.provenance"]
    columns = meta["harmonise.columns"]
    assert list(columns) == list(stored(fr_db).columns)
    assert columns["sex"] == {"label": "Sex", "type": "category", "measure": "nominal",
                              "values": {"male": "Male", "female": "Female", "other": "Other"}}
    assert columns["sex_missing"]["values"]["dont_know"] == meta["harmonise.missing_reasons"]["dont_know"]
    assert meta["harmonise.provenance"] == {"build_info": info, "sources": [
        {"survey": s, "wave": w, "file": f, "sha256": h, "rows": n} for s, w, f, h, n in sources]}

    export(fr_db, tmp_path / "csv", "csv")
    with (tmp_path / "csv" / "respondents.codebook.csv").open(encoding="utf-8", newline="") as fh:
        book = list(csv.DictReader(fh))
    assert [r["column"] for r in book if not r["value"]] == list(columns)
    assert [(r["value"], r["value_label"]) for r in book if r["column"] == "sex" and r["value"]] == \
        [("male", "Male"), ("female", "Female"), ("other", "Other")]
    assert {(r["column"], r["label"], r["measure"]) for r in book if r["column"] == "age" and not r["value"]} == \
        {("age", "Age", "scale")}


def test_file_label_of_many_waves_and_of_synthetic_data() -> None:
    from harmonise.reports.export_layout import SPSS_LABEL, STATA_LABEL, Provenance

    sources = [(s, w, f"{s}{w}.sav", "0" * 64, 100) for s, w in [("ess", str(r)) for r in range(1, 12)]]
    prov = Provenance({"harmonise_version": "0.1.0", "built_at": "2026-12-02T10:00:00", "synthetic": "true"}, sources)
    assert prov.label(SPSS_LABEL) == "SYNTHETIC 11 survey-waves (harmonise 0.1.0, 2026-12-02)"
    assert prov.label(STATA_LABEL) == prov.label(SPSS_LABEL)
    assert prov.lines()[0].startswith("SYNTHETIC DATA")
    assert all(len(line.encode()) <= 80 for line in prov.lines())
    one = Provenance({"harmonise_version": "0.1.0", "built_at": "2026-12-02T10:00:00"}, sources[:2])
    assert one.label(SPSS_LABEL) == "ess-1, ess-2 (harmonise 0.1.0, 2026-12-02)"


SECRET = "harmonise-export-secret-7f3a"


@pytest.mark.parametrize("tamper", [
    ["ALTER TABLE respondents RENAME TO kept",
     "CREATE VIEW respondents AS SELECT k.* REPLACE ((SELECT content FROM read_text({secret})) AS city) FROM kept k"],
    ["CREATE MACRO coalesce(a, b) AS (SELECT content FROM read_text({secret}))"],  # replaces DuckDB's own coalesce
    ["CREATE MACRO lower(a) AS (SELECT content FROM read_text({secret}))",  # and macros that would hide it
     "CREATE MACRO duckdb_functions() AS TABLE SELECT 'x' AS function_name, TRUE AS internal, 'x' AS database_name",
     "CREATE MACRO current_database() AS 'elsewhere'"],
], ids=["view", "macro-coalesce", "macro-lower-hidden"])
@pytest.mark.parametrize("fmt", ["csv", "sav"])
def test_export_refuses_a_database_holding_code_that_would_run_with_file_access(
        fr_db: Path, tmp_path: Path, tamper: list[str], fmt: str) -> None:
    """export opens the database with file access (COPY needs it): a view or macro stored in a database someone
    sent read any file into the export (here a secret file, through the view over respondents)."""
    import shutil

    from harmonise.compile.sqltext import sql_literal

    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    db = tmp_path / "sent.duckdb"
    shutil.copy(fr_db, db)
    con = duckdb.connect(str(db))
    for sql in tamper:
        con.execute(sql.format(secret=sql_literal(str(secret))))
    con.close()
    out = tmp_path / "out"
    code, _, err = run("export", "--format", fmt, "--out", str(out), "--db", str(db))
    assert code == 2 and f"{db}: not a database harmonise built: it holds " in err, err
    assert "which would run with file access while exporting" in err
    assert not any(SECRET in p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300))
def test_a_provenance_line_is_wrapped_whole_within_the_byte_limit(line: str) -> None:
    """SPSS documents hold 80 bytes a line: a long (non-ASCII) file name was cut there, and the row count and the
    hash label after it with it. Wrapped, every part fits and nothing but the spaces at the breaks is lost."""
    from harmonise.reports.export_layout import DOCUMENT_LINE, _wrapped

    parts = _wrapped(line, DOCUMENT_LINE)
    assert all(len(p.encode("utf-8")) <= DOCUMENT_LINE for p in parts)
    assert all(p.startswith("  ") for p in parts[1:])
    joined = parts[0] + "".join(p[2:] for p in parts[1:])
    assert "".join(joined.split(" ")) == "".join(line.split(" "))
    if len(line.encode("utf-8")) <= DOCUMENT_LINE:
        assert parts == [line]
