"""Lookup tables (countries, languages, cities, NUTS regions) and column comments of a built database."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harmonise import connect
from harmonise.spec.project import load_project
from harmonise.store.lookups import TABLES
from tests.conftest import ROOT


def read_yaml(path: Path) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rows(fr_db: Path):  # type: ignore[no-untyped-def]
    con = connect(fr_db)
    try:
        def q(sql: str) -> list[tuple[object, ...]]:
            return con.execute(sql).fetchall()
        yield q
    finally:
        con.close()


def test_countries_and_languages_are_the_shipped_tables(rows) -> None:  # type: ignore[no-untyped-def]
    countries = read_yaml(ROOT / "mappings" / "tables" / "countries.yaml")["rows"]
    got = {r[0]: r[1:] for r in rows("SELECT code, name, eu27_2020_group, eu27_2020, former FROM countries")}
    assert len(got) == len(countries)
    assert {c["code"]: (c["name"], c["eu27_2020_group"], c["eu27_2020"], c.get("former", False))
            for c in countries} == got
    gb = next(c for c in countries if c["code"] == "GB")
    assert rows("SELECT name, eu27_2020_group, eu_from::VARCHAR, eu_until::VARCHAR FROM countries "
                "WHERE code = 'GB'") == [(gb["name"], "non_eu", "1973-01-01", "2020-01-31")]
    langs = read_yaml(ROOT / "mappings" / "tables" / "languages.yaml")
    assert dict(rows("SELECT code, name FROM languages")) == {r["code"]: r["name"] for r in langs["rows"]}
    host = rows("SELECT country, language FROM host_languages ORDER BY country, position")
    assert host == [(c, lang) for c in sorted(langs["host_languages"]) for lang in langs["host_languages"][c]]


def test_every_code_in_the_data_has_a_name(rows) -> None:  # type: ignore[no-untyped-def]
    for column in ("country", "country_of_birth", "citizenship", "father_country_of_birth"):
        assert rows(f"SELECT DISTINCT r.{column} FROM respondents r LEFT JOIN countries c ON c.code = r.{column} "
                    f"WHERE r.{column} IS NOT NULL AND c.name IS NULL") == [], column
    assert rows("SELECT DISTINCT r.home_language FROM respondents r LEFT JOIN languages l "
                "ON l.code = r.home_language WHERE r.home_language IS NOT NULL AND l.name IS NULL") == []
    unnamed = rows("SELECT DISTINCT r.region_nuts FROM respondents r LEFT JOIN nuts_regions n "
                   "ON n.code = r.region_nuts WHERE r.region_nuts IS NOT NULL AND n.name IS NULL")
    assert unnamed == []
    top = rows("SELECT n.code, n.name, n.level, n.country, n.eu27_2020_group, n.named_by, count(*) AS n "
               "FROM respondents r JOIN nuts_regions n ON n.code = r.region_nuts GROUP BY ALL ORDER BY n DESC LIMIT 1")
    expected = rows("SELECT region_nuts, count(*) FROM respondents GROUP BY 1 ORDER BY 2 DESC LIMIT 1")[0]
    assert top == [(expected[0], "Île de France", 2, "FR", "eu", "ess-8 ess8_reg", expected[1])]


def test_nuts_regions_of_cities_and_eurostat_prefixes(rows) -> None:  # type: ignore[no-untyped-def]
    cities = read_yaml(ROOT / "mappings" / "cities.yaml")["rows"]
    assert len(rows("SELECT * FROM cities")) == len(cities)
    paris = next(c for c in cities if c["name"] == "Paris")
    assert rows(f"SELECT name, country, eu27_2020_group, region_proxy, sampled_by FROM cities "
                f"WHERE code = '{paris['code']}'") == [
        ("Paris", "FR", "eu", paris["region_proxy"]["nuts"],
         "; ".join(f"{s['survey']}-{s['wave']}" for s in paris["sampled_by"]))]
    codes = {str(c[k]) for c in cities for k in ("nuts2", "nuts3") if c.get(k)}
    have = {r[0] for r in rows("SELECT code FROM nuts_regions")}
    assert codes <= have
    levels = rows("SELECT DISTINCT level = length(code) - 2 FROM nuts_regions")
    assert levels == [(True,)]
    # Eurostat's prefixes become ISO codes (UK -> GB; EL -> GR likewise, though round 8 has no Greece)
    assert rows("SELECT DISTINCT left(code, 2), country FROM nuts_regions WHERE left(code, 2) <> country") \
        == [("UK", "GB")]


def test_every_column_has_a_comment(rows) -> None:  # type: ignore[no-untyped-def]
    schema = load_project(ROOT).schema
    comments = dict(rows("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'respondents'"))
    for v in schema.variables:
        assert comments.pop(v.name) == v.label
        if v.has_missing_column:
            assert comments.pop(v.missing_column) == (f"Why {v.name} is missing (a missing_reasons.reason); "
                                                      "null when it has a value")
    assert comments == {"source_row": "Row of the respondent in the source file (1 = first)",
                        "source_file": "Name of the source file the respondent was read from"}
    for table, (text, columns) in TABLES.items():
        assert rows(f"SELECT comment FROM duckdb_tables() WHERE table_name = '{table}'") == [(text,)]
        assert rows(f"SELECT column_name, comment FROM duckdb_columns() WHERE table_name = '{table}' "
                    "ORDER BY column_index") == [(c, t) for c, _, t in columns]



def test_respondents_comments_are_written_where_they_differ_only() -> None:
    """A rebuild keeps the previous respondents table with its comments: only a comment that differs from the
    schema's (a label edited since) is written again, and a table commented already takes no statement."""
    import duckdb

    from harmonise.store.lookups import RESPONDENTS_COMMENT, comment_respondents
    from harmonise.store.respondents import respondents_ddl

    schema = load_project(ROOT).schema
    assert schema is not None
    con = duckdb.connect()
    con.execute(respondents_ddl(schema))
    comment_respondents(con, schema)
    first = con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'respondents' "
                        "ORDER BY column_index").fetchall()
    assert all(c is not None for _, c in first)
    con.execute("COMMENT ON COLUMN respondents.sex IS 'an old label'")
    con.execute("COMMENT ON TABLE respondents IS NULL")

    class Recording:
        def __init__(self) -> None:
            self.said: list[str] = []

        def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
            self.said.append(sql)
            return con.execute(sql, *args)

    again = Recording()
    comment_respondents(again, schema)  # type: ignore[arg-type]
    assert [s for s in again.said if s.startswith("COMMENT")] == [
        f"COMMENT ON TABLE respondents IS '{RESPONDENTS_COMMENT}'",
        f"COMMENT ON COLUMN respondents.\"sex\" IS '{next(v.label for v in schema.variables if v.name == 'sex')}'"]
    assert con.execute("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'respondents' "
                       "ORDER BY column_index").fetchall() == first
    still = Recording()
    comment_respondents(still, schema)  # type: ignore[arg-type]
    assert [s for s in still.said if s.startswith("COMMENT")] == []

def test_nuts_regions_hold_no_city_codes_the_city_surveys_map_to_nuts(small_demo_db: Path) -> None:
    """ICS, LOCALMULTIDEM and TIES map their city variable to NUTS codes: its codes ('BER' Berlin) were read as
    NUTS regions ('BER' in country BE) and the regions the data holds had no name."""
    con = connect(small_demo_db)
    try:
        sources = {str(c) for (c,) in con.execute(
            "SELECT DISTINCT source_code FROM harmonisation_report WHERE target = 'region_nuts' AND survey IN "
            "('ics', 'ties', 'localmultidem') AND source_code IS NOT NULL").fetchall()}
        assert {"BER", "AMS"} <= sources  # the city variables' own codes, mapped to NUTS codes by the rules
        assert {str(c) for (c,) in con.execute("SELECT code FROM nuts_regions").fetchall()} & sources == set()
        mapped = con.execute("SELECT DISTINCT region_nuts FROM respondents WHERE survey IN ('ics', 'ties', "
                             "'localmultidem') AND region_nuts IS NOT NULL").fetchall()
        assert mapped and con.execute("SELECT count(*) FROM nuts_regions WHERE code IN (SELECT region_nuts FROM "
                                      "respondents WHERE survey IN ('ics', 'ties', 'localmultidem'))").fetchone() \
            == (len(mapped),)
    finally:
        con.close()
