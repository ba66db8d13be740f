"""Disclosure control: no suppressed cell can be recovered from the published cells of its table.

The attack written here is independent of harmonise.reports.disclosure: it rebuilds the additive
relations of a published table from its rows (a margin 'all' is the sum of its children, the
breakdown total 'all' the sum of its groups: it covers the respondents whose group is known),
treats every suppressed cell with respondents as unknown and every other cell as known, and asks
numpy's least squares whether a unit vector of an unknown lies in the row space of the relations.
"""

from __future__ import annotations

import itertools
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise import indicators as harmonise_indicators
from harmonise.reports.disclosure import one_blas_thread, protect
from harmonise.reports.estimate import Rule
from harmonise.reports.exposure import null_shares
from tests.conftest import ROOT, folder_db

SAMPLE = ["indicator", "ages", "survey", "wave"]


@cache
def _estimated(db: Path, names: tuple[str, ...] | None, by: tuple[str, ...] | None, group: str | None, weight: str,
               rule: Rule | None, pool: bool) -> tuple[dict[str, object], ...]:
    return tuple(harmonise_indicators(db, names, by, group, weight=weight, rule=rule, pool=pool).records())


def indicators(db: Path, names: list[str] | None = None, by: list[str] | None = None, group: str | None = None, *,
               weight: str = "weight", rule: Rule | None = None, pool: bool = False) -> Rows:
    """``harmonise.indicators(...)``, estimated once per module for each set of arguments: several tests attack the
    same query's rows (by country and sex, unweighted, …), each its own way. The rows are fresh dicts."""
    return Rows(_estimated(db, None if names is None else tuple(names), None if by is None else tuple(by), group,
                           weight, rule, pool))


class Rows:
    """What the tests read of :class:`harmonise.reports.indicators.Estimates`: its records."""

    def __init__(self, records: tuple[dict[str, object], ...]) -> None:
        self._records = records

    def records(self) -> list[dict[str, object]]:
        return [dict(r) for r in self._records]


def recoverable(rows: pd.DataFrame, dims: list[str]) -> list[tuple[object, ...]]:
    """Suppressed cells of one table (rows of one breakdown, its total included) that a linear combination of
    the published cells determines."""
    axes = [*dims, "group"]
    coords = {tuple(map(str, r)): i for i, r in enumerate(rows[axes].itertuples(index=False))}
    hidden = [i for i, (rel, n) in enumerate(zip(rows["reliability"], rows["n"])) if rel == "suppressed" and n > 0]
    relations = []
    for key, parent in coords.items():
        for a in range(len(axes)):
            if key[a] != "all":
                continue
            kids = [i for k, i in coords.items() if k[a] != "all" and k[:a] == key[:a] and k[a + 1:] == key[a + 1:]]
            if kids:
                relations.append((parent, kids))
    if not hidden or not relations:
        return []
    return [tuple(rows.iloc[i][axes]) for i in determined(relations, hidden)]


def determined(relations: list[tuple[int, list[int]]], hidden: list[int]) -> list[int]:
    """The ``hidden`` unknowns the relations (parent = Σ kids) determine: least squares, the projection of each
    unknown's unit vector onto the relations' row space (pinv(a) @ a) is the vector itself exactly then."""
    col = {i: j for j, i in enumerate(hidden)}
    a = np.zeros((len(relations), len(hidden)))
    for e, (parent, kids) in enumerate(relations):
        if parent in col:
            a[e, col[parent]] += 1
        for k in kids:
            if k in col:
                a[e, col[k]] -= 1
    projection = np.linalg.pinv(a, rcond=1e-10) @ a
    return [i for j, i in enumerate(hidden) if abs(projection[j, j] - 1) < 1e-8]


def tables(rows: list[dict[str, object]]) -> list[pd.DataFrame]:
    """One table per indicator, age band, survey-wave and breakdown (the total without a breakdown is one)."""
    return [part for _, part in pd.DataFrame(rows).groupby([*SAMPLE, "breakdown"])]


def check(rows: list[dict[str, object]], dims: list[str]) -> int:
    hidden = 0
    for table in tables(rows):
        assert recoverable(table, dims) == []
        hidden += int((table["reliability"] == "suppressed").sum())
    for r in rows:  # a suppressed cell says why only from what is published (n, n_eff, item non-response)
        if r["reliability"] == "suppressed":
            reasons = set(str(r["flags"]).split("; "))
            assert reasons <= {"n<20", "n_eff<30", "item_nonresponse>0.5", "no_estimate", "complementary"}, r
            assert all(r[c] is None for c in ("estimate", "se", "ci_low", "ci_high", "cv", "gap", "gap_se"))
    return hidden


BREAKDOWNS = ["birthplace", "origin_group", "migrant_generation", "citizenship_group"]


@pytest.mark.parametrize("weight", ["weight", "none"])
def test_nothing_recoverable_by_country_and_sex_ess8_france(fr_db: Path, weight: str) -> None:
    hidden = 0
    for group in BREAKDOWNS:
        hidden += check(indicators(fr_db, None, ["country", "sex"], group, weight=weight).records(), ["country", "sex"])
    assert hidden > 50


@pytest.mark.parametrize("weight", ["weight", "none"])
def test_nothing_recoverable_by_country_and_sex_demo(small_demo_db: Path, weight: str) -> None:
    hidden = 0
    for group in BREAKDOWNS:
        rows = indicators(small_demo_db, ["employment_rate", "neet_rate", "trust_parliament"], ["country", "sex"],
                          group, weight=weight).records()
        hidden += check(rows, ["country", "sex"])
    assert hidden > 100


def test_the_differencing_example_of_the_issue_is_closed(fr_db: Path) -> None:
    """Unweighted, female foreign-born NEET (n = 13) was (136·0.198529 − 123·0.186992)/13 from the female total
    and native cells; one of those is now hidden too."""
    rows = indicators(fr_db, ["neet_rate"], ["sex"], "birthplace", weight="none").records()
    female = {r["group"]: r for r in rows if r["sex"] == "female"}
    assert (female["foreign_born"]["n"], female["foreign_born"]["reliability"]) == (13, "suppressed")
    assert "suppressed" in (female["all"]["reliability"], female["native_born"]["reliability"])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), rows=st.integers(1, 4), cols=st.integers(1, 4), groups=st.integers(1, 3))
def test_protect_leaves_nothing_recoverable_in_random_tables(data: st.DataObject, rows: int, cols: int,
                                                             groups: int) -> None:
    values = [[*map(str, range(k)), "all"] for k in (rows, cols, groups)]
    cells = pd.DataFrame(list(itertools.product(*values)), columns=["a", "b", "group"])
    leaves = cells[(cells != "all").all(axis=1)]
    counts = dict(zip(map(tuple, leaves.to_numpy()), data.draw(st.lists(st.integers(0, 60), min_size=len(leaves),
                                                                        max_size=len(leaves)))))
    cells["n"] = [sum(v for k, v in counts.items() if all(c in ("all", x) for c, x in zip(key, k)))
                  for key in map(tuple, cells[["a", "b", "group"]].to_numpy())]  # margins add up, as in a real table
    primary = data.draw(st.sets(st.sampled_from(range(len(cells))), max_size=len(cells)))
    suppressed = {i: "primary" for i in primary}
    protect(cells, ["a", "b"], suppressed)
    assert set(primary) <= set(suppressed)
    cells["reliability"] = ["suppressed" if i in suppressed else "ok" for i in range(len(cells))]
    assert recoverable(cells, ["a", "b"]) == []


def recoverable_across(rows: pd.DataFrame, dims: list[str], truth: dict[tuple[object, ...], object]
                       ) -> list[tuple[object, ...]]:
    """Suppressed cells of one indicator, age band and survey-wave that its tables together give away: every
    breakdown's table and the total table, where two cells of different tables at the same coordinates with the
    same respondents are one cell — told by their true n and estimate (``truth``: (breakdown, *coordinates,
    group) → estimate of an estimate suppressing nothing), as an attacker who knows the groups' definitions
    knows that born in the country in one breakdown is native in another."""
    rows = rows.reset_index(drop=True)
    axes = [*dims, "group"]
    coord = [tuple(map(str, r)) for r in rows[axes].itertuples(index=False)]
    sign: dict[tuple[object, ...], int] = {}
    holders: dict[int, set[object]] = {}
    cell = list(range(len(rows)))
    for i, (c, b, n, neff) in enumerate(zip(coord, rows["breakdown"], rows["n"], rows["n_eff"])):
        value = truth.get((b, *c))
        if n and isinstance(value, float):  # two tables' cells with the same respondents (a table's are its own)
            # told apart by their published effective n too: two cells of 2 respondents whose shares are both 0
            # (ESS9 Finland's generation 1.5 and EU citizens) are different respondents when their n_eff differ
            first = sign.setdefault((c[:-1], n, round(value, 10), None if neff is None else round(float(neff), 6)), i)
            if first != i and b not in holders[first]:
                holders[first].add(b)
                cell[i] = first
            elif first == i:
                holders[i] = {b}
    published = {cell[i] for i in range(len(rows)) if rows["reliability"][i] != "suppressed"}
    hidden = sorted({cell[i] for i in range(len(rows)) if cell[i] not in published and rows["n"][i] > 0})
    # a hidden cell that is the same as a published one is given away at once
    leaked = [tuple(rows.iloc[i][["breakdown", *axes]]) for i in range(len(rows))
              if rows["reliability"][i] == "suppressed" and rows["n"][i] > 0 and cell[i] in published]
    if leaked or not hidden:
        return leaked
    relations = []
    for _, table in rows.groupby("breakdown"):
        where = {coord[i]: cell[i] for i in table.index}
        for key, parent in where.items():
            for a in range(len(axes)):
                if key[a] == "all":
                    kids = [c for k, c in where.items() if k[a] != "all" and k[:a] == key[:a] and k[a + 1:] == key[a + 1:]]
                    if kids:
                        relations.append((parent, kids))
    if not relations:
        return []
    first = {c: i for i, c in reversed(list(enumerate(cell)))}
    return [tuple(rows.iloc[first[c]][["breakdown", *axes]]) for c in determined(relations, hidden)]


OPEN = Rule(min_n=0, min_n_eff=0, suppress_nonresponse=1)  # suppresses nothing: the true values


def check_across(rows: list[dict[str, object]], dims: list[str], truth: list[dict[str, object]]) -> int:
    """No suppressed cell of any indicator × age band × survey-wave is given away by its tables together;
    the number of hidden cells a table shares with another."""
    values = {}
    for r in truth:
        values[(r["indicator"], r["ages"], r["survey"], r["wave"], r["breakdown"], *(str(r[c]) for c in dims),
                r["group"])] = r["estimate"]
    joined = 0
    for sample, part in pd.DataFrame(rows).groupby(SAMPLE):
        mine = {k[4:]: v for k, v in values.items() if k[:4] == sample}
        assert recoverable_across(part, dims, mine) == []
        joined += int(((part["reliability"] == "suppressed") & (part["flags"] == "complementary")).sum())
    return joined


@pytest.mark.parametrize("weight", ["weight", "none"])
def test_no_suppressed_cell_given_away_by_another_breakdown_ess8_france(fr_db: Path, weight: str) -> None:
    """A breakdown's total hidden to protect one of its groups was published as the total without a breakdown
    and as other breakdowns' totals (the same respondents), in the stored table and across queries: the
    foreign-born value came back as (109·0.0550459 − 84·0.047619)/25. Every query of a breakdown now hides
    what the others hide."""
    rows = [r for g in [None, *BREAKDOWNS] for r in indicators(fr_db, None, ["country"], g, weight=weight).records()]
    truth = [r for g in [None, *BREAKDOWNS]
             for r in indicators(fr_db, None, ["country"], g, weight=weight, rule=OPEN).records()]
    assert check_across(rows, ["country"], truth) > 0


def test_the_stored_table_gives_no_suppressed_cell_away(fr_db: Path) -> None:
    import duckdb

    with duckdb.connect(str(fr_db), read_only=True) as con:
        frame = con.execute("SELECT * FROM indicators").df()
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    truth = [r for g in [None, *BREAKDOWNS] for r in indicators(fr_db, None, group=g, rule=OPEN).records()]
    assert check_across(rows, ["country"], truth) > 0


def test_queries_of_one_breakdown_hide_what_the_stored_table_hides(fr_db: Path) -> None:
    import duckdb

    with duckdb.connect(str(fr_db), read_only=True) as con:
        stored = {tuple(r[:-1]): r[-1] for r in con.execute(
            "SELECT indicator, ages, survey, wave, country, breakdown, \"group\", reliability FROM indicators").fetchall()}
    for g in [None, *BREAKDOWNS]:
        for r in indicators(fr_db, None, group=g).records():
            key = (r["indicator"], r["ages"], r["survey"], r["wave"], r["country"], r["breakdown"], r["group"])
            assert (r["reliability"] == "suppressed") == (stored[key] == "suppressed"), key


@pytest.mark.parametrize("pool", [False, True])
def test_no_suppressed_cell_given_away_by_another_breakdown_demo(small_demo_db: Path, pool: bool) -> None:
    names = ["employment_rate", "neet_rate", "trust_parliament"]
    rows = [r for g in [None, *BREAKDOWNS]
            for r in indicators(small_demo_db, names, ["country", "sex"], g, weight="none", pool=pool).records()]
    truth = [r for g in [None, *BREAKDOWNS]
             for r in indicators(small_demo_db, names, ["country", "sex"], g, weight="none", pool=pool, rule=OPEN).records()]
    if pool:  # pooled rows name their sources instead of one survey-wave
        for r in [*rows, *truth]:
            r["survey"], r["wave"] = "pooled", "pooled"
    assert check_across(rows, ["country", "sex"], truth) > 0


def test_one_blas_thread_lasts_until_the_last_caller_leaves() -> None:
    """The SVDs run on one BLAS thread (a second one, waiting for a core the build's workers hold, cost the main
    process ~40 % more CPU); callers in several threads of a build nest, and the setting comes back after the last."""
    from threadpoolctl import threadpool_info, threadpool_limits  # type: ignore[import-untyped]

    def blas() -> list[int]:
        return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]

    assert blas(), "numpy's BLAS is loaded"
    with threadpool_limits(limits=2, user_api="blas"):
        assert set(blas()) == {2}
        with one_blas_thread():
            with one_blas_thread():
                assert set(blas()) == {1}
            assert set(blas()) == {1}  # the inner caller leaving does not give the outer one two threads
        assert set(blas()) == {2}


def atom_vectors(part: pd.DataFrame, atoms: pd.DataFrame, dims: list[str]) -> np.ndarray:
    """Each published cell of one indicator × age band × survey-wave as the set of atoms (respondents of one
    combination of every breakdown's group at one coordinate) it sums: a margin 'all' sums every value of its
    dimension, a breakdown's total 'all' every atom whose group in it is known, the total without a breakdown all."""
    v = np.zeros((len(part), len(atoms)))
    for i, (_, r) in enumerate(part.iterrows()):
        m = np.ones(len(atoms), dtype=bool)
        for d in dims:
            if str(r[d]) != "all":
                m &= atoms[d].astype(str).to_numpy() == str(r[d])
        if r["breakdown"] != "total":
            col = atoms[r["breakdown"]]
            m &= col.notna().to_numpy() if r["group"] == "all" else (col.astype(str) == str(r["group"])).to_numpy()
        v[i] = m
    return v


def recoverable_from_atoms(db: Path, by: list[str], weight: str) -> tuple[list[tuple[object, ...]], int]:
    """Suppressed cells whose atom vector lies in the span of the published cells' of every breakdown: an attacker
    who knows how the breakdowns' groups overlap combines cells of several breakdowns (born in the country minus
    native = second generation). A published share at 0 or 1 gives each of its atoms away (every respondent in it
    answered 0, or 1): those atoms are known, and only the rest of each vector counts. Also checks that each cell's
    n is the sum of its atoms' n (the atoms are right)."""
    import duckdb

    from harmonise.reports.indicators import atoms_sql, read_definitions

    con = duckdb.connect(str(db), read_only=True)
    try:
        defs = read_definitions(con)
        atoms = con.execute(atoms_sql(defs, None, by, weight=weight)).df()
    finally:
        con.close()
    rows = pd.DataFrame([r for g in [None, *defs.breakdowns] for r in indicators(db, None, by, g, weight=weight).records()])
    dims = [c for c in by if c not in SAMPLE]
    found, hidden = [], 0
    for key, part in rows.groupby(SAMPLE):
        mine = atoms[(atoms[SAMPLE].astype(str) == pd.Series(key, index=SAMPLE).astype(str)).all(axis=1)]
        v = atom_vectors(part.reset_index(drop=True), mine.reset_index(drop=True), dims)
        assert (v @ mine["n"].to_numpy() == part["n"].to_numpy()).all()
        sup = (part["reliability"] == "suppressed").to_numpy() & (part["n"].to_numpy() > 0)
        hidden += int(sup.sum())
        if defs.indicators[key[0]].unit == "share":
            est = part["estimate"].astype(float).to_numpy()
            at_bound = ~sup & (part["n"].to_numpy() > 0) & ((est == 0) | (est == 1))
            v[:, v[at_bound].any(axis=0)] = 0  # known atoms: the unknowns are the others
        published = v[~sup]
        basis = np.zeros((0, v.shape[1]))
        if len(published):
            _, s, vt = np.linalg.svd(published, full_matrices=False)
            basis = vt[: int((s > 1e-9 * max(1.0, s[0])).sum())]
        for i in np.flatnonzero(sup):
            if not v[i].any() or np.abs(v[i] - basis.T @ (basis @ v[i])).max() < 1e-8:
                found.append((*key, *part.iloc[i][["breakdown", *dims, "group"]]))
    return found, hidden


@pytest.mark.parametrize("weight", ["weight", "none"])
def test_no_suppressed_cell_is_a_combination_of_other_breakdowns_cells_ess8_france(fr_db: Path, weight: str) -> None:
    """Second generation is born in the country (birthplace) minus native (origin group): 66 hidden cells of ESS8
    France by country and sex (46 unweighted, where the published n are the denominators) were such combinations
    of cells other breakdowns published."""
    found, hidden = recoverable_from_atoms(fr_db, ["country", "sex"], weight)
    assert found == [] and hidden > 700


def test_a_share_published_at_0_gives_no_hidden_cell_inside_it_away(fr_db: Path) -> None:
    """Female early leavers born in France (birthplace, n = 53) were published at 0: every one of them answered 0, so
    second generation (4), generation 2.5 (7) and native background (42), all born in France and hidden, were 0 too.
    Now that cell is hidden, and native (origin group, the same 53 respondents) with it."""
    rows = indicators(fr_db, ["early_leavers"], ["country", "sex"], "birthplace").records()
    female = {r["group"]: r for r in rows if (r["country"], r["sex"]) == ("FR", "female")}
    assert (female["native_born"]["n"], female["native_born"]["reliability"], female["native_born"]["flags"]) == \
        (53, "suppressed", "complementary")
    rows = indicators(fr_db, ["early_leavers"], ["country", "sex"], "origin_group").records()
    native = next(r for r in rows if (r["country"], r["sex"], r["group"]) == ("FR", "female", "native"))
    assert (native["n"], native["reliability"]) == (53, "suppressed")


def test_bound_exposed_hides_a_share_at_0_or_1_holding_a_hidden_cell() -> None:
    """Breakdown a's group x (30 respondents at share 0 or 1) holds breakdown b's group y (5 respondents, hidden):
    x is to be hidden; at 0.5 it gives nothing away; a hidden cell only partly inside it stays unknown."""
    from harmonise.reports.disclosure import bound_exposed

    atoms = pd.DataFrame({"indicator": ["i"] * 3, "sex": ["f"] * 3, "a": ["x", "x", "z"], "b": ["y", "w", "w"],
                          "n": [5, 25, 10]})
    cells = pd.DataFrame({"indicator": ["i"] * 3, "sex": ["f"] * 3, "breakdown": ["a", "b", "a"],
                          "group": ["x", "y", "z"], "n": [30, 5, 10], "share": [True] * 3})
    for value, hidden, expected in [(0.0, {1: "primary"}, [0]), (1.0, {1: "primary"}, [0]),
                                    (0.5, {1: "primary"}, []), (0.0, {}, [])]:
        cells["estimate"] = [value, np.nan, 0.4]
        assert bound_exposed(cells, ["indicator"], ["sex"], atoms, hidden) == expected
    atoms["b"] = ["y", "w", "y"]  # y: 5 respondents in x, 10 in z
    cells["n"] = [30, 15, 10]
    cells["estimate"] = [0.0, np.nan, 0.4]  # y's 5 in x answered 0, and its 10 in z are z: y is 4/15
    assert bound_exposed(cells, ["indicator"], ["sex"], atoms, {1: "primary"}) == [0]
    assert bound_exposed(cells, ["indicator"], ["sex"], atoms, {1: "primary", 2: "primary"}) == []  # y − z alone
    cells["estimate"] = [0.0, np.nan, 0.0]  # x or z to hide, one cell each: the first row, whatever the atoms' order
    for order in (atoms, atoms.iloc[::-1].reset_index(drop=True)):
        assert bound_exposed(cells, ["indicator"], ["sex"], order, {1: "primary"}) == [0]
    cells["share"] = False  # a mean at 0 or 1 is not at a bound
    assert bound_exposed(cells, ["indicator"], ["sex"], atoms, {1: "primary"}) == []
    cells["estimate"] = [7.0, np.nan, 3.5]  # unless the estimator says its every answer was the same (a trust of 7)
    cells["constant"] = [True, False, False]
    assert bound_exposed(cells, ["indicator"], ["sex"], atoms, {1: "primary"}) == [0]
    cells["constant"] = [False, False, False]  # a share of 0 that the estimator says varies cannot be one
    cells["share"], cells["estimate"] = True, [0.0, np.nan, 0.4]
    assert bound_exposed(cells, ["indicator"], ["sex"], atoms, {1: "primary"}) == []


def test_bound_exposed_without_breakdowns() -> None:
    """A project without breakdowns read no atoms, so a margin share at 0 gave its hidden children away: women's
    cell (5, hidden) inside all (35) at 0 is 0."""
    from harmonise.reports.disclosure import bound_exposed

    atoms = pd.DataFrame({"indicator": ["i", "i"], "sex": ["f", "m"], "n": [5, 30]})
    cells = pd.DataFrame({"indicator": ["i"] * 3, "sex": ["f", "m", "all"], "breakdown": ["total"] * 3,
                          "group": ["all"] * 3, "n": [5, 30, 35], "share": [True] * 3, "estimate": [np.nan, 0.0, 0.0]})
    assert bound_exposed(cells, ["indicator"], ["sex"], atoms, {0: "primary"}) == [2]


def test_a_countrys_cell_is_hidden_by_sex_as_in_the_stored_table(fr_db: Path) -> None:
    """A query by country and sex published a country's cell as its sex margin (sex = all) where the stored table
    (by country) hid it, and hid ones the stored table published: 80 of ESS8 France's 624 such cells, each read off
    the other table. Cells the stored table publishes are now hidden only when nothing else can be."""
    keys = ["indicator", "ages", "survey", "wave", "country", "breakdown", "group"]
    breakdowns = [None, *BREAKDOWNS]
    stored = pd.DataFrame([r for g in breakdowns for r in indicators(fr_db, None, ["country"], g).records()])
    by_sex = pd.DataFrame([r for g in breakdowns for r in indicators(fr_db, None, ["country", "sex"], g).records()])
    both = by_sex[by_sex["sex"] == "all"].merge(stored, on=keys, suffixes=("", "_stored"))
    assert len(both) == 624
    assert ((both["reliability"] == "suppressed") == (both["reliability_stored"] == "suppressed")).all()


@settings(max_examples=80, deadline=None)
@given(data=st.data(), rows=st.integers(1, 12), cols=st.integers(1, 12), rank=st.integers(1, 12))
def test_null_space_shares_are_those_of_the_reduced_svd(data: st.DataObject, rows: int, cols: int, rank: int) -> None:
    """The rank-revealing QR that finds determined cells agrees with the SVD it replaced, on small-integer systems
    of any rank (equations that repeat or combine others, as margins and atom equations do)."""
    base = np.array(data.draw(st.lists(st.integers(-2, 2), min_size=min(rank, rows) * cols,
                                       max_size=min(rank, rows) * cols))).reshape(min(rank, rows), cols)
    mix = np.array(data.draw(st.lists(st.integers(-1, 1), min_size=rows * len(base), max_size=rows * len(base))))
    a = (mix.reshape(rows, len(base)) @ base).astype(float)  # rank at most min(rank, rows)
    _, s, vt = np.linalg.svd(a, full_matrices=False)
    r = int((s > 1e-9 * max(1.0, float(s[0]) if s.size else 1.0)).sum())
    expected = np.sqrt(np.clip(1.0 - (vt[:r] ** 2).sum(axis=0), 0.0, None))
    got = null_shares(a)
    assert ((got < 1e-5) == (expected < 1e-5)).all()
    assert np.allclose(got, expected, atol=1e-7)


def test_a_cell_the_stored_table_publishes_protects_nothing_in_a_query(tmp_path_factory: pytest.TempPathFactory
                                                                       ) -> None:
    """A query by country and sex hid the country's margin, which the stored table publishes, as the complement
    that protected ESS6 Ireland's women among the unemployment rate's migrant generations: with the stored value
    the women's total was their country's minus the men's. The query's own cells are chosen first now (the
    stored table's only when nothing else is near): nothing in its tables is recoverable with the stored table's
    published cells known."""
    folder = ROOT.parent / "shared" / "data" / "ess_real" / "ess6_ie"
    if not folder.is_dir():
        pytest.skip("../shared/data/ess_real not present")
    db = folder_db(tmp_path_factory, folder)
    keys = ["indicator", "ages", "survey", "wave", "country", "breakdown", "group"]
    stored = pd.DataFrame(indicators(db, ["unemployment_rate"], ["country"], "migrant_generation").records())
    public = set(map(tuple, stored[stored["reliability"] != "suppressed"][keys].astype(str).to_numpy()))
    query = pd.DataFrame(indicators(db, ["unemployment_rate"], ["country", "sex"], "migrant_generation").records())
    known = [(r["sex"] == "all" and tuple(map(str, (r[k] for k in keys))) in public) for r in query.to_dict("records")]
    assert any(known)
    query.loc[known, "reliability"] = "ok"  # what the stored table publishes is known to anyone
    assert (query["reliability"] == "suppressed").sum() > 0
    assert recoverable(query, ["country", "sex"]) == []


def test_a_country_total_is_published_when_hiding_the_native_group_costs_no_comparison(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """ESS8 Poland has 4 foreign-born respondents of working age beside 1,242 native-born: protecting them hid
    the country's employment rate (n = 1,246), in every breakdown that holds it and without one, although no
    migrant group was published to compare with the natives. The native cell, which no published group needs,
    is hidden instead; nothing hidden can be recovered from what is published."""
    folder = ROOT.parent / "shared" / "data" / "ess_real" / "ess8_pl"
    if not folder.is_dir():
        pytest.skip("../shared/data/ess_real not present")
    db = folder_db(tmp_path_factory, folder)
    rows = [r for g in [None, *BREAKDOWNS] for r in indicators(db, ["employment_rate"], group=g).records()]
    seen = {(r["country"], r["breakdown"], r["group"]): (r["n"], r["reliability"], r["flags"]) for r in rows}
    assert seen[("PL", "total", "all")] == (1246, "ok", "")
    assert seen[("PL", "birthplace", "all")] == (1246, "ok", "")
    assert seen[("PL", "birthplace", "foreign_born")] == (4, "suppressed", "n<20; n_eff<30")
    assert seen[("PL", "birthplace", "native_born")] == (1242, "suppressed", "complementary")
    assert seen[("PL", "origin_group", "native")] == (1242, "suppressed", "complementary")  # the same cell
    every = [r for g in [None, *BREAKDOWNS] for r in indicators(db, None, group=g).records()]
    headline = [r for r in every if r["breakdown"] == "total" and r["country"] == "PL"]
    assert sum(r["reliability"] == "suppressed" for r in headline) == 1 and len(headline) == 17  # was 10 of 17
    truth = [r for g in [None, *BREAKDOWNS] for r in indicators(db, None, group=g, rule=OPEN).records()]
    assert check_across(every, ["country"], truth) > 0


def test_least_squares_where_the_svd_does_not_converge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack on shares at 0 or 1 solves least squares by an SVD; where LAPACK's does not converge, the complete
    orthogonal factorisation gives the same minimum-norm solution instead of an internal error."""
    from harmonise.reports import disclosure

    rng = np.random.default_rng(7)
    cells = (rng.random((60, 25)) < 0.3).astype(float)
    a = np.hstack([cells, cells[:, :15] + cells[:, 5:20]])  # 40 columns of rank 25: margins are sums of cells
    b = a @ rng.random((40, 6))
    b[:, :2] += rng.random((60, 2))  # two outside the range
    expected = np.linalg.lstsq(a, b, rcond=None)[0]

    def fails(*args: object, **kwargs: object) -> None:
        raise np.linalg.LinAlgError("SVD did not converge in Linear Least Squares")

    monkeypatch.setattr(disclosure.np.linalg, "lstsq", fails)
    assert np.allclose(disclosure._least_squares(a, b), expected, atol=1e-12)
