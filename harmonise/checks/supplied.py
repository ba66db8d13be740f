"""Checks of what the user supplied for a file (``--country``) against the file's own evidence: a file given
``--country FI`` whose NUTS regions are Norway's holds another country's rows, which would be stored as Finland's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from harmonise.compile.sqltext import sql_literal
from harmonise.errors import Issue, more
from harmonise.spec.codetables import EUROSTAT_COUNTRY

if TYPE_CHECKING:
    import duckdb

NUTS = re.compile(r"^[A-Z]{2}[0-9A-Z]{0,3}$")


def country_contradicted(con: duckdb.DuckDBPyConnection, supplied: Mapping[str, str],
                         table: str = "respondents") -> list[Issue]:
    """An error per file (``supplied``: file name → the country ``--country`` stood for) whose harmonised NUTS
    regions lie in another country: its rows are another country's, stored as the one given."""
    if not supplied:
        return []
    files = ", ".join(sql_literal(f) for f in supplied)
    rows = con.execute(f"SELECT source_file, survey, wave, region_nuts, count(*) FROM {table} "
                       f"WHERE source_file IN ({files}) AND region_nuts IS NOT NULL GROUP BY ALL "
                       "ORDER BY 1, 5 DESC, 4").fetchall()
    elsewhere: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
    for name, survey, wave, region, n in rows:
        if NUTS.match(region) and EUROSTAT_COUNTRY.get(region[:2], region[:2]) != supplied[name]:
            elsewhere.setdefault((name, survey, wave), []).append((region, n))
    out = []
    for (name, survey, wave), regions in elsewhere.items():
        country = supplied[name]
        shown = ", ".join(f"{code} ({n:,} row{'s' if n != 1 else ''})" for code, n in regions[:5]) + \
            more(len(regions) - 5)
        countries = sorted({EUROSTAT_COUNTRY.get(c[:2], c[:2]) for c, _ in regions})
        out.append(Issue(f"{name}: --country {country} stands for the file's country, but its regions lie in "
                         f"{', '.join(countries)}: {shown}; its rows would be stored as {country}'s",
                         code="country-contradicted", survey=survey, wave=wave,
                         extra={"regions": [c for c, _ in regions], "data_files": [name]},
                         hint=f"give each country's files in a run of their own with its --country (this file: "
                              f"--country {countries[0]}), or give the files their country variable"))
    return out
