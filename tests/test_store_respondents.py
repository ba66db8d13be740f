"""store/respondents.py: the duplicate-id query against a count written out in Python."""

from __future__ import annotations

from collections import Counter

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise.store.respondents import duplicate_ids

ROWS = st.lists(st.tuples(st.sampled_from(["ess", "ties"]), st.sampled_from(["1", "2"]),
                          st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])),
                          st.sampled_from(["F1.sav", "F2.sav", "F3.dta"])), max_size=40)


def _expected(rows: list[tuple[str, str, str | None, str]], shown: int,
              keep: set[tuple[str, str]] | None) -> list[tuple[str, str, int, list[tuple[str, int, list[str]]]]]:
    count = Counter((s, w, i) for s, w, i, _ in rows if i is not None and (keep is None or (s, w) in keep))
    out = []
    for s, w in sorted({(s, w) for s, w, _ in count}):
        twice = sorted(i for (s2, w2, i), n in count.items() if (s2, w2) == (s, w) and n > 1)
        if twice:
            out.append((s, w, len(twice), [(i, count[(s, w, i)], sorted({f for s2, w2, i2, f in rows
                                                                          if (s2, w2, i2) == (s, w, i)}))
                                           for i in twice[:shown]]))
    return out


@settings(max_examples=40, deadline=None)  # each example opens a DuckDB database: its time is the machine load's
@given(ROWS, st.integers(1, 3), st.booleans())
def test_duplicate_ids_are_those_counted_twice_or_more_with_their_files(
        rows: list[tuple[str, str, str | None, str]], shown: int, only_ess1: bool) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE respondents (survey VARCHAR, wave VARCHAR, respondent_id VARCHAR, source_file VARCHAR)")
    if rows:
        con.executemany("INSERT INTO respondents VALUES (?, ?, ?, ?)", rows)
    assert duplicate_ids(con, shown) == _expected(rows, shown, None)
    waves = [("ess", "1")] if only_ess1 else []
    assert duplicate_ids(con, shown, waves) == _expected(rows, shown, set(waves))
    others = {(s, w) for s in ("ess", "ties") for w in ("1", "2")} - set(waves)
    assert duplicate_ids(con, shown, waves, other=True) == _expected(rows, shown, others)
