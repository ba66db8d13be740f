"""Names in the database: lookup tables of countries, languages, cities and NUTS regions, and comments.

The respondents table stores codes (``country = 'FR'``, ``home_language = 'ARA'``,
``city = 'FR001C'``, ``region_nuts = 'FR10'``); these tables give their names and EU grouping,
from the shipped reference tables (``mappings/tables/countries.yaml``, ``languages.yaml``,
``mappings/cities.yaml``) and, for NUTS names, the value labels that the loaded files give the
variables that fed ``region_nuts`` (``store/editions.py`` reads them with the files' editions). ``COMMENT ON`` gives every respondents column its schema label, and every
lookup table and column a description, so ``duckdb_columns()`` and DuckDB's UI show them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harmonise.compile.sqltext import quote_ident, sql_literal
from harmonise.spec.codetables import EUROSTAT_COUNTRY
from harmonise.spec.schema import TargetSchema
from harmonise.store.editions import FileFacts, read_file_facts, write_source_editions
from harmonise.store.provenance import Table

if TYPE_CHECKING:
    import duckdb

    from harmonise.spec.project import Project

NUTS_CODE = re.compile(r"^[A-Z]{2}[0-9A-Z]{1,3}$")

Column = tuple[str, str, str]  # name, DuckDB type, comment

TABLES: dict[str, tuple[str, list[Column]]] = {
    "countries": (("Countries and country-like codes of country, country_of_birth, citizenship and the parents' "
                  "countries of birth (mappings/tables/countries.yaml)."), [
        ("code", "VARCHAR", ("ISO 3166-1 alpha-2 code (ISO 3166-3 four-letter code for a former state; XK, XX, ZZ "
                            "user-assigned)")),
        ("name", "VARCHAR", "English short name"),
        ("alpha3", "VARCHAR", "ISO 3166-1 alpha-3 code"),
        ("numeric", "INTEGER", "ISO 3166-1 numeric code"),
        ("eu27_2020", "BOOLEAN", "One of the 27 EU member states after 1 February 2020 (Eurostat's EU27_2020)"),
        ("eu27_2020_group", "VARCHAR", ("How the code groups when deriving EU-born and EU citizens: eu, non_eu or "
                                       "unknown")),
        ("eu_from", "DATE", "Date the state joined the EEC/EC/EU"),
        ("eu_until", "DATE", "Date the state left the EU"),
        ("former", "BOOLEAN", "A former state (ISO 3166-3) that survey files still carry"),
        ("user_assigned", "BOOLEAN", "A user-assigned code (XK Kosovo, XX stateless, ZZ other or unspecified)"),
        ("note", "VARCHAR", "Why the code groups as it does, where not obvious"),
    ]),
    "languages": (("Languages of home_language: ISO 639-2/B codes in upper case, as ESS writes them "
                  "(mappings/tables/languages.yaml)."), [
        ("code", "VARCHAR", "ISO 639-2 bibliographic code, upper case"),
        ("name", "VARCHAR", "English ISO 639-2 name"),
        ("iso639_1", "VARCHAR", "ISO 639-1 two-letter code, where one exists"),
        ("note", "VARCHAR", "Remarks on the code"),
    ]),
    "host_languages": (("Official languages of each country, in the form of languages.code "
                       "(mappings/tables/languages.yaml host_languages)."), [
        ("country", "VARCHAR", "ISO 3166-1 alpha-2 code of the country"),
        ("language", "VARCHAR", "A language official there (languages.code)"),
        ("position", "INTEGER", "Order in the declaration (1 = listed first)"),
    ]),
    "cities": (("Cities sampled by the city surveys and cities that a NUTS region can stand for "
               "(mappings/cities.yaml)."), [
        ("code", "VARCHAR", "Eurostat Urban Audit city code (PT_nnnn: a Portuguese municipality)"),
        ("name", "VARCHAR", "City name"),
        ("country", "VARCHAR", "ISO 3166-1 alpha-2 code of the country"),
        ("eu27_2020_group", "VARCHAR", "EU grouping of the country (countries.eu27_2020_group)"),
        ("nuts2", "VARCHAR", "NUTS 2016 level-2 region holding the city"),
        ("nuts3", "VARCHAR", "NUTS 2016 level-3 region holding the city"),
        ("region_proxy", "VARCHAR", "NUTS region that stands for the city in general-population surveys, if any"),
        ("sampled_by", "VARCHAR", "Survey-waves that sampled the city (survey-wave, semicolon separated)"),
        ("notes", "VARCHAR", "Why the city has or lacks a region proxy"),
    ]),
    "nuts_regions": (("NUTS regions of region_nuts and of the cities: the codes the built survey-waves' declared "
                     "codebooks label, the codes in the data and those of mappings/cities.yaml."), [
        ("code", "VARCHAR", "NUTS code as Eurostat writes it (EL for Greece, UK for the United Kingdom)"),
        ("name", "VARCHAR", "Region name from a loaded file's value label; null where none labels it"),
        ("level", "INTEGER", "NUTS level (1, 2 or 3)"),
        ("country", "VARCHAR", "ISO 3166-1 alpha-2 code of the country (GR for EL, GB for UK)"),
        ("eu27_2020_group", "VARCHAR", "EU grouping of the country (countries.eu27_2020_group)"),
        ("named_by", "VARCHAR", "Survey-wave and source variable whose value label gives the name"),
        ("cities", "VARCHAR", "Codes of the cities (cities.code) in the region or standing for it, comma separated"),
    ]),
}


def write_lookups(con: duckdb.DuckDBPyConnection, project: Project, encoding: str | None = None,
                  known: dict[tuple[str, str, str], FileFacts] | None = None) -> None:
    """Create and fill the lookup tables and ``source_editions`` (from the facts the build gathered, ``known``
    by survey, wave and path; any other loaded file read once more, one row), and comment them and the
    respondents columns. ``encoding``: the one the build read the files with."""
    facts = read_file_facts(con, project, encoding, known)
    write_source_editions(con, facts)
    groups = _country_groups(project)
    rows: dict[str, list[tuple[Any, ...]]] = {
        "countries": _reference_rows(project, "countries"),
        "languages": _reference_rows(project, "languages"),
        "host_languages": _host_languages(project),
        "cities": _cities(project, groups.get),
        "nuts_regions": _nuts_regions(con, project, facts, groups.get),
    }
    con.execute("BEGIN TRANSACTION")  # one commit for the ~200 statements, not one each
    for table, (comment, columns) in TABLES.items():
        lookup = Table(table, tuple((c, t) for c, t, _ in columns))
        con.execute(lookup.ddl())
        lookup.insert(con, rows[table])
        con.execute(f"COMMENT ON TABLE {table} IS {sql_literal(comment)}")
        for name, _, text in columns:
            con.execute(f"COMMENT ON COLUMN {table}.{quote_ident(name)} IS {sql_literal(text)}")
    if project.schema is not None:
        comment_respondents(con, project.schema)
    con.execute("COMMIT")


RESPONDENTS_COMMENT = ("One row per respondent and survey-wave (key survey, wave, respondent_id); codes as in the "
                       "schema_variables and value_labels tables")


def comment_respondents(con: duckdb.DuckDBPyConnection, schema: TargetSchema) -> None:
    """Every respondents column gets its schema label (``<name>_missing``: why it is missing). Only comments
    that differ from the table's are written: a rebuild keeps the previous table with its comments, and each
    ``COMMENT ON`` costs DuckDB ~0.5 ms (~80 ms for the schema's columns)."""
    wanted: dict[str | None, str] = {None: RESPONDENTS_COMMENT}
    for v in schema.variables:
        wanted[v.name] = v.label
        if v.has_missing_column:
            wanted[v.missing_column] = f"Why {v.name} is missing (a missing_reasons.reason); null when it has a value"
    wanted["source_row"] = "Row of the respondent in the source file (1 = first)"
    wanted["source_file"] = "Name of the source file the respondent was read from"
    have: dict[str | None, str | None] = dict(con.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'respondents'").fetchall())
    have[None] = next(iter(con.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = 'respondents'").fetchall()), (None,))[0]
    for name, text in wanted.items():
        if have.get(name) != text:
            target = "TABLE respondents" if name is None else f"COLUMN respondents.{quote_ident(name)}"
            con.execute(f"COMMENT ON {target} IS {sql_literal(text)}")


def _reference_rows(project: Project, name: str) -> list[tuple[Any, ...]]:
    ref = project.tables.tables.get(name)
    rows = getattr(ref, "rows", None) or []
    columns = [c for c, _, _ in TABLES[name][1]]
    out = []
    for r in rows:
        row = [r.get(c) for c in columns]
        if name == "countries":  # absent flags are false, not unknown
            for flag in ("former", "user_assigned"):
                row[columns.index(flag)] = bool(r.get(flag, False))
        out.append(tuple(row))
    return out


def _host_languages(project: Project) -> list[tuple[Any, ...]]:
    ref = project.tables.tables.get("languages")
    host: dict[str, list[str]] = getattr(ref, "host_languages", None) or {}
    return [(country, lang, i) for country in sorted(host) for i, lang in enumerate(host[country], 1)]


def _country_groups(project: Project) -> dict[str, str]:
    ref = project.tables.tables.get("countries")
    return {str(r["code"]): str(r["eu27_2020_group"]) for r in getattr(ref, "rows", None) or []
            if r.get("eu27_2020_group")}


def _cities(project: Project, group: Callable[[str], str | None]) -> list[tuple[Any, ...]]:
    ref = project.tables.cities
    out = []
    for r in ref.rows if ref is not None else []:
        proxy = r.get("region_proxy") or {}
        sampled = "; ".join(f"{s['survey']}-{s['wave']}" for s in r.get("sampled_by") or [])
        country = str(r.get("country", ""))
        out.append((r["code"], r.get("name"), country, group(country), r.get("nuts2"), r.get("nuts3"),
                    proxy.get("nuts"), sampled or None, r.get("notes")))
    return out


def _nuts_regions(con: duckdb.DuckDBPyConnection, project: Project, facts: list[FileFacts],
                  group: Callable[[str], str | None]) -> list[tuple[Any, ...]]:
    names = _nuts_names(con, facts)
    cities: dict[str, set[str]] = {}
    ref = project.tables.cities
    for r in ref.rows if ref is not None else []:
        for code in (r.get("nuts2"), r.get("nuts3"), (r.get("region_proxy") or {}).get("nuts")):
            if code:
                cities.setdefault(str(code), set()).add(str(r["code"]))
    stored = project.schema is not None and any(v.name == "region_nuts" for v in project.schema.variables)
    in_data = [r[0] for r in con.execute("SELECT DISTINCT region_nuts FROM respondents WHERE region_nuts IS NOT NULL")
               .fetchall()] if stored else []  # the respondents table has the schema's columns (create_all)
    codes = sorted({c for c in [*names, *cities, *in_data] if NUTS_CODE.match(c)})
    out = []
    for code in codes:
        country = EUROSTAT_COUNTRY.get(code[:2], code[:2])
        name, named_by = names.get(code, (None, None))
        out.append((code, name, len(code) - 2, country, group(country), named_by,
                    ", ".join(sorted(cities.get(code, ()))) or None))
    return out


def _nuts_names(con: duckdb.DuckDBPyConnection, facts: list[FileFacts]) -> dict[str, tuple[str, str]]:
    """NUTS code → (name, 'survey-wave variable'): the value labels, in the loaded files, of the variables that
    fed region_nuts; where several name a code, the latest survey-wave (by year) wins."""
    years = {(str(s), str(w)): y for s, w, y in con.execute(
        "SELECT survey, wave, max(year) FROM respondents GROUP BY ALL").fetchall()}
    out: dict[str, tuple[str, str]] = {}
    for f in sorted(facts, key=lambda f: (years.get((f.survey, f.wave)) or 0, f.survey, f.wave, f.file_name)):
        for var, labels in sorted(f.region_labels.items()):
            for code, label in sorted(labels.items()):
                if NUTS_CODE.match(code) and label:
                    out[code] = (label, f"{f.survey}-{f.wave} {var}")
    return out

