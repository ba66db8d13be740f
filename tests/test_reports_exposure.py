"""Which hidden cells a growing system of equations determines: the updated decompositions against whole ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise.reports.exposure import Equation, Exposure, Linked, determined, null_shares, rebase_after, singular


def _parts(system: list[Equation], hidden: set[int]) -> list[tuple[list[int], list[Equation]]]:
    """The linked sets of hidden cells and their equations, computed afresh (what :class:`Linked` keeps)."""
    rows = [eq for eq in system if any(i in hidden for i in eq[0])]
    sets: list[set[int]] = [{i} for i in sorted(hidden)]
    for members, _ in rows:
        held = [s for s in sets if s & set(members)]
        sets = [s for s in sets if s not in held] + [set().union(*held)]
    ordered = sorted(sorted(s) for s in sets)
    return [(cells, [eq for eq in rows if set(eq[0]) & set(cells)]) for cells in ordered]


@st.composite
def systems(draw: st.DrawFn) -> tuple[list[Equation], list[int]]:
    """Equations of 2–6 cells among up to 24, small-integer coefficients (margins: 1 and −1; atoms: up to 2),
    some repeated or combined; and an order in which cells are hidden."""
    cells = draw(st.integers(4, 24))
    eqs: list[Equation] = []
    for _ in range(draw(st.integers(1, 30))):
        members = draw(st.lists(st.integers(0, cells - 1), min_size=2, max_size=6, unique=True))
        coefs = draw(st.lists(st.sampled_from([-2.0, -1.0, 1.0, 2.0]), min_size=len(members), max_size=len(members)))
        eqs.append((tuple(members), tuple(coefs)))
    if len(eqs) > 1 and draw(st.booleans()):  # a sum of two equations: a dependent row, as margins give
        coef: dict[int, float] = {}
        for members, coefs in eqs[:2]:
            for i, c in zip(members, coefs):
                coef[i] = coef.get(i, 0.0) + c
        kept = [(i, c) for i, c in coef.items() if c]
        if kept:
            eqs.append((tuple(i for i, _ in kept), tuple(c for _, c in kept)))
    order = draw(st.permutations(list(range(cells))))
    return eqs, order[:draw(st.integers(1, cells))]


@settings(max_examples=150, deadline=None)
@given(case=systems(), first=st.integers(1, 6))
def test_updated_decompositions_find_what_whole_ones_find(case: tuple[list[Equation], list[int]], first: int) -> None:
    """Cells hidden one at a time after a first few: at every step, each linked set's determined cells are those a
    decomposition of the whole set finds, and the sets are those computed afresh."""
    system, order = case
    linked = Linked(system, order[:first])
    exposure = Exposure()
    hidden = set(order[:first])
    for cell in [None, *order[first:]]:
        if cell is not None:
            linked.hide(cell)
            hidden.add(cell)
        parts = linked.parts()
        assert parts == _parts(system, hidden)
        assert linked.equations() == [e for e, eq in enumerate(system) if set(eq[0]) & hidden]
        for unknown, rows in parts:
            assert exposure(unknown, rows) == determined(unknown, rows)


def test_an_update_is_used_until_the_cells_hidden_since_outgrow_the_base() -> None:
    """A chain of margins x_k = x_{k+1} + p_k (p published), x_0 … x_n hidden one by one (each determined by the
    equation to the next, still published): the first call decomposes, the next ones update, and a base is
    decomposed again only once :func:`rebase_after` cells were hidden since."""
    n = 150
    system: list[Equation] = [((k, k + 1, 1000 + k), (1.0, -1.0, -1.0)) for k in range(n)]
    linked = Linked(system, [0, 1])
    exposure = Exposure()
    decomposed = []
    for k in range(2, n):
        linked.hide(k)
        [(unknown, rows)] = linked.parts()
        exposure.updated = False
        assert exposure(unknown, rows) == determined(unknown, rows) == list(range(k + 1))
        decomposed.append(not exposure.updated)
    assert decomposed[0] and decomposed.index(True, 1) == rebase_after(3) + 1


def test_null_shares_of_a_system_without_equations() -> None:
    """No equation: nothing is determined."""
    assert null_shares(np.zeros((0, 3))).tolist() == [1.0, 1.0, 1.0]
    assert Exposure()([1, 2], []) == []


def test_an_svd_that_does_not_converge_is_computed_by_the_other_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """LAPACK's gesdd failed to converge on a 119 × 119 matrix of an update (the real ESS files built together, the
    employment rate by sex, age band, country and urbanisation with --group birthplace): `harmonise indicators` ended
    in "internal error: LinAlgError: SVD did not converge". Such a matrix is decomposed by gesvd: the update finds
    what a whole decomposition finds."""
    import scipy.linalg

    svd = scipy.linalg.svd
    drivers: list[str] = []

    def failing(a: np.ndarray, *args: object, lapack_driver: str = "gesdd", **kw: object) -> object:
        drivers.append(lapack_driver)
        if lapack_driver == "gesdd":
            raise scipy.linalg.LinAlgError("SVD did not converge")
        return svd(a, *args, lapack_driver=lapack_driver, **kw)

    monkeypatch.setattr(scipy.linalg, "svd", failing)
    s, vt = singular(np.array([[1.0, 1.0], [2.0, 2.0]]))
    assert drivers == ["gesdd", "gesvd"]
    assert s.round(9).tolist() == [3.162277660, 0.0] and vt.shape == (2, 2)
    n = 10  # the chain of test_an_update_is_used_until_the_cells_hidden_since_outgrow_the_base: updates use an SVD
    system: list[Equation] = [((k, k + 1, 1000 + k), (1.0, -1.0, -1.0)) for k in range(n)]
    linked = Linked(system, [0, 1])
    exposure = Exposure()
    for k in range(2, n):
        linked.hide(k)
        [(unknown, rows)] = linked.parts()
        assert exposure(unknown, rows) == list(range(k + 1))
    assert exposure.updated and drivers.count("gesvd") > 1


def test_that_nothing_is_determined_is_said_by_a_whole_decomposition(monkeypatch: pytest.MonkeyPatch) -> None:
    """The protection ends when no hidden cell is determined: that answer never rests on an update. An update made
    to say (wrongly) that nothing is determined is checked by a decomposition of the whole system."""
    from harmonise.reports import exposure as module

    system: list[Equation] = [((0, 1, 2), (1.0, 1.0, 1.0)), ((2, 3, 11), (1.0, -1.0, -1.0)), ((3, 12), (1.0, -1.0))]
    exposure = Exposure()
    assert exposure.exposed([([0, 1], system[:1])]) == []  # a base: x0 + x1 + x2 with x2 published
    monkeypatch.setattr(module, "_grown", lambda base, added, rows: np.ones(len(base.cells) + len(added)))
    # 2 and 3 hidden: x3 = p12, so x3 and then x2 are determined (x0 + x1 stays known as a sum only)
    assert exposure.exposed([([0, 1, 2, 3], system)]) == determined([0, 1, 2, 3], system) == [2, 3]
    assert exposure.updated  # the update was asked first, and then the whole decomposition
