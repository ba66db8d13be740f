"""From estimator rows to a published table: intervals, reliability flags, primary and complementary suppression.

A *table* is every row of one indicator and age band (and survey-wave, unless pooled) with one
breakdown: its groups, their total (group ``all``, over the respondents whose group is known) and
the margins over the ``--by`` dimensions (value ``all``); the total without a breakdown is a table
of its own. Its cells are additive: a margin's numerator Σw·y is the sum of its children's (a
``--by`` value that is missing is a cell, ``unknown``). Assuming the worst case — an
attacker who knows every cell's denominator and the respondents with missing values — a
suppressed cell is recoverable exactly when its unit vector lies in the row space of the
margin equations restricted to the suppressed cells. Primary suppression applies the rule; then,
while some suppressed cell is recoverable, the published cell with the fewest respondents in one
of its equations is suppressed too (complementary suppression), table by table until no table
changes. Tables of different breakdowns are joined where they hold the same cell, and by the
dependencies of their cells' *atoms* (:func:`atom_equations`: the respondents of one combination of
every breakdown's group): a cell of one breakdown that is a sum or difference of other breakdowns'
cells is an equation too.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from harmonise.reports.estimate import ALL, Rule, intervals
from harmonise.reports.exposure import Equation, Exposure, Linked

OUTPUT = ["source", "n", "n_eff", "item_nonresponse", "estimate", "se", "ci_low", "ci_high", "cv", "df", "reliability",
          "flags", "gap", "gap_se", "design"]
HIDDEN = ["estimate", "se", "ci_low", "ci_high", "cv", "gap", "gap_se"]


def _flags(f: pd.DataFrame, rule: Rule) -> tuple[list[list[str]], list[list[str]]]:
    """Primary suppression reasons (from published columns only) and low-reliability reasons, per row."""
    est = f["estimate"].to_numpy(dtype=float)
    supp = [((f["n"] > 0) & f["n_eff"].isna(), "weights_all_zero"),  # (Σw)²/Σw² is 0/0 only when every weight is 0
            (f["n"] < rule.min_n, f"n<{rule.min_n}"), (f["n_eff"].fillna(0) < rule.min_n_eff, f"n_eff<{rule.min_n_eff:g}"),
            (f["item_nonresponse"].fillna(0) > rule.suppress_nonresponse,
             f"item_nonresponse>{rule.suppress_nonresponse:g}"),
            (pd.Series(~np.isfinite(est), index=f.index), "no_estimate")]
    with np.errstate(invalid="ignore", divide="ignore"):
        width = (f["ci_high"] - f["ci_low"]) / f["estimate"].abs()
    share = f["share"].to_numpy(dtype=bool)
    low = [(f["n"] < rule.flag_n, f"n<{rule.flag_n}"), (f["cv"] > rule.flag_cv, f"cv>{rule.flag_cv:g}"),
           (width > rule.flag_rel_ci, f"rel_ci_width>{rule.flag_rel_ci:g}"),
           (f["item_nonresponse"].fillna(0) >= rule.flag_nonresponse, f"item_nonresponse>={rule.flag_nonresponse:g}"),
           (f["df"] < rule.flag_df, f"df<{rule.flag_df}"), (f["se"] == 0, "se=0"),
           (pd.Series(share & (est == 0), index=f.index), "share=0"),
           (pd.Series(share & (est == 1), index=f.index), "share=1")]

    def listed(checks: list[tuple[pd.Series, str]]) -> list[list[str]]:
        masks = [(m.fillna(False).to_numpy(dtype=bool), label) for m, label in checks]
        return [[label for m, label in masks if m[i]] for i in range(len(f))]

    return listed(supp), listed(low)


def equations(cells: pd.DataFrame, dims: Sequence[str]) -> list[tuple[int, list[int]]]:
    """Margin equations of one table: (parent row, child rows) for every margin and dimension.

    ``cells`` has the ``dims`` columns and ``group``; a dimension's margin has value ``all``, as
    has the breakdown total in ``group``. Rows are identified by their index labels.
    """
    axes = [*dims, "group"]
    return _equations(dict(zip(map(tuple, cells[axes].astype(str).itertuples(index=False)), map(int, cells.index))))


def _equations(coord: dict[tuple[str, ...], int]) -> list[tuple[int, list[int]]]:
    """Margin equations from each row's coordinates (dimension values, then group) → row."""
    children: dict[tuple[int, int], list[int]] = {}
    for key, i in coord.items():
        for a, value in enumerate(key):
            if value == ALL:
                continue
            parent = coord.get((*key[:a], ALL, *key[a + 1:]))
            if parent is not None:
                children.setdefault((parent, a), []).append(i)
    return [(p, kids) for (p, _), kids in children.items()]


def protect(cells: pd.DataFrame, dims: Sequence[str], suppressed: dict[int, str],
            eqs: list[tuple[int, list[int]]] | None = None) -> bool:
    """Complementary suppression in one table; ``suppressed`` (row → reason) grows. True when it grew.

    Plain leaks first, all at once: an equation whose only hidden cell has respondents gets its
    published cell with the fewest respondents hidden too. When none is left, a rank-revealing QR (kept and
    updated as cells are hidden: :class:`harmonise.reports.exposure.Exposure`) finds cells determined by a
    combination of equations, and one more cell is hidden for the first of them."""
    eqs = equations(cells, dims) if eqs is None else eqs
    n: dict[int, int] = dict(zip(map(int, cells.index), map(int, cells["n"])))
    margins = dict(zip(map(int, cells.index), map(int, (cells[[*dims, "group"]].astype(str) == ALL).sum(axis=1))))
    return _protect(n, margins, [_sum(p, kids) for p, kids in eqs], suppressed)


def _sum(parent: int, kids: Sequence[int], rep: Callable[[int], int] = int) -> Equation | None:
    """The margin equation parent − Σ kids = 0 over cells ``rep`` names (cells that are one cell merged: their
    coefficients add up); None when nothing is left."""
    return _combined([(rep(parent), 1.0), *((rep(k), -1.0) for k in kids)])


def _combined(terms: Sequence[tuple[int, float]]) -> Equation | None:
    """An equation from (cell, coefficient) terms, a cell's coefficients added up and zeros dropped."""
    coef: dict[int, float] = {}
    for cell, c in terms:
        coef[cell] = coef.get(cell, 0.0) + c
    kept = [(cell, c) for cell, c in coef.items() if abs(c) > TOLERANCE]
    return (tuple(c for c, _ in kept), tuple(v for _, v in kept)) if kept else None


TOLERANCE = 1e-9  # a coefficient smaller than this is a 0 rounded (the equations' coefficients are small integers)


def _protect(n: dict[int, int], margins: dict[int, int], eqs: Sequence[Equation | None],
             suppressed: dict[int, str], shared: Container[int] = (), keep: Container[int] = (),
             spare: Container[int] = ()) -> bool:
    """:func:`protect` over plain values: respondents and number of margin coordinates per row; ``shared``: cells
    of several tables, hidden last (hiding one hides it in every table that holds it); ``keep``: cells another
    table publishes (the stored table's), hidden only when nothing else can be; ``spare``: native cells no
    published group is compared with, hidden before totals and margins (which are hidden before groups)."""
    grew = False
    system = [eq for eq in eqs if eq is not None]
    kept = {i: "kept" for i in n if i in keep}  # what another table publishes: hiding it here protects nothing
    exposure = Exposure()  # the systems' decompositions, updated as cells are hidden

    def cheapest(pool: set[int]) -> int:  # totals and margins first: the groups are the point (unless spare)
        return min(pool, key=lambda i: (i in keep, i in shared, i not in spare, -margins[i], n[i], i))

    linked = Linked(system, (i for i in n if n[i] > 0 and i in suppressed))
    while True:
        rows = linked.equations()
        if not rows:
            return grew
        added = False
        for e in rows:  # an equation with one hidden cell gives it away
            if linked.count[e] == 1:
                pool = {i for i in system[e][0] if i not in suppressed and n[i] > 0}
                if pool:
                    pick = cheapest(pool)
                    suppressed[pick] = "complementary"
                    linked.hide(pick)
                    added = True
        if added:
            grew = True
            continue
        exposed = exposure.exposed(linked.parts())
        # first the nearest cells of this table's own to hide, however far; another table's only when none is left
        equations = [system[e] for e in rows]
        pool = _nearest_published(exposed, equations, {**kept, **suppressed}, n) if kept else set()
        pool = pool or _nearest_published(exposed, equations, suppressed, n)
        if not pool:  # nothing exposed, or nothing published is linked to what is
            return grew
        pick = cheapest(pool)
        suppressed[pick] = "complementary"
        linked.hide(pick)
        grew = True


def _nearest_published(exposed: list[int], rows: list[Equation], suppressed: dict[int, str],
                       n: dict[int, int]) -> set[int]:
    """Published cells with respondents in the equations nearest to the exposed cells: their own
    equations first, then those of the hidden cells these reach, and so on."""
    seen, frontier = set(exposed), set(exposed)
    while frontier:
        near = [members for members, _ in rows if frontier.intersection(members)]
        pool = {i for members in near for i in members if i not in suppressed and n[i] > 0}
        if pool:
            return pool
        frontier = {i for members in near for i in members} - seen
        seen |= frontier
    return set()


def publish(frame: pd.DataFrame, table_keys: Sequence[str], dims: Sequence[str], rule: Rule, lonely: str,
            atoms: pd.DataFrame | None = None, fixed: Mapping[int, bool] | None = None) -> pd.DataFrame:
    """Estimator rows (see :func:`harmonise.reports.estimate.estimate_sql`, plus a boolean ``share``
    and a ``breakdown`` column) → published rows: intervals, flags, suppression, gaps.

    ``table_keys`` identify a table (e.g. indicator, ages, survey, wave); ``dims`` are the
    margin dimensions (their value ``all`` is the margin). ``atoms``: the respondents with an answer per
    table key, dimension value (no margin) and combination of every breakdown's group (a column per breakdown;
    :func:`harmonise.reports.indicators.atoms_sql`): the cells of different breakdowns that are sums and
    differences of each other (born in the country = native + second generation) are protected together.
    ``fixed``: rows that are cells of another published table (the stored one) → whether it hides them: those it
    hides are hidden here, those it publishes are hidden here only when nothing else can be."""
    f = frame.reset_index(drop=True).copy()
    est = f["estimate"].to_numpy(dtype=float)
    f["se"] = np.where(np.isfinite(est), np.sqrt(f["variance"].to_numpy(dtype=float)), np.nan)
    low, high = intervals(est, f["se"].to_numpy(), f["n"].to_numpy(), f["df"].to_numpy(), f["share"].to_numpy())
    f["ci_low"], f["ci_high"] = low, high
    with np.errstate(invalid="ignore", divide="ignore"):
        f["cv"] = np.where(np.isfinite(est) & (est != 0), f["se"] / np.abs(est), np.nan)
    primary, low_flags = _flags(f, rule)
    suppressed = {i: "primary" for i, reasons in enumerate(primary) if reasons}
    coords = _texts(f, [*dims, "group"])
    counts = list(map(int, f["n"]))
    same = _same_cells(f, table_keys, coords, counts)
    kept = {i for i, hidden in (fixed or {}).items() if not hidden}
    suppressed.update({i: "complementary" for i, hidden in (fixed or {}).items() if hidden and i not in suppressed})
    spare = _spare_natives(f, table_keys, coords, counts, suppressed)
    links = atom_equations(f, table_keys, dims, atoms) if atoms is not None else []
    # suppression only grows within the tables joined by a shared cell or an equation of atoms, so tables without
    # a primary suppression never change
    joined = _joined_tables(_tables(f, table_keys), same, [[i for i, _ in eq] for eq in links])
    with one_blas_thread():
        _protect_tables(joined, suppressed, coords, counts, same, links, kept, spare)
        while atoms is not None:  # hiding a share at 0 or 1 may expose another cell to the margins: until neither does
            extra = bound_exposed(f, table_keys, dims, atoms, suppressed, kept)
            if not extra:
                break
            suppressed.update(dict.fromkeys(extra, "complementary"))
            again = [t for t in joined if any(i in extra for rows in t for i in rows)]
            held = {i for t in again for rows in t for i in rows}
            _protect_tables(again, suppressed, coords, counts, same, [eq for eq in links if eq[0][0] in held], kept,
                            spare)
    sup = np.zeros(len(f), dtype=bool)
    sup[list(suppressed)] = True
    f["flags"] = ["; ".join(primary[i] if i in suppressed and primary[i] else ["complementary"] if i in suppressed
                            else low_flags[i]) for i in range(len(f))]
    f["reliability"] = np.where(sup, "suppressed", np.where([bool(x) for x in low_flags], "low", "ok"))
    native_sup = _native_suppressed(f, sup, table_keys, dims)
    show_gap = ~f["is_native"].to_numpy(dtype=bool) & f["has_native"].to_numpy(dtype=bool) & ~sup & ~native_sup
    f["gap"] = np.where(show_gap, est - f["native_estimate"].to_numpy(dtype=float), np.nan)
    f["gap_se"] = np.where(show_gap, np.sqrt(f["gap_variance"].to_numpy(dtype=float)), np.nan)
    for c in HIDDEN:
        f.loc[sup, c] = np.nan
    f["design"] = f["design_kind"] + f"; lonely PSUs: {lonely}"
    f["df"] = f["df"].astype("Int64")
    out = f[[c for c in f.columns if c not in set(OUTPUT) | _INTERNAL] + OUTPUT]
    return out.astype(object).where(out.notna(), None)


def _protect_tables(joined: list[list[list[int]]], suppressed: dict[int, str], coords: list[tuple[str, ...]],
                    counts: list[int], same: dict[int, int], links: Sequence[Sequence[tuple[int, float]]] = (),
                    keep: Container[int] = (), spare: Container[int] = ()) -> None:
    """Complementary suppression in each set of ``joined`` tables (row labels) that holds a suppressed cell;
    ``suppressed`` (row → reason) grows. ``links``: equations between rows of different tables (of atoms);
    ``keep``: rows hidden only when nothing else can be (:func:`_protect`); ``spare``: native rows no published
    group is compared with (:func:`_spare_natives`), hidden before totals (a cell several tables hold is spare
    when every row of it is)."""
    system_of = {i: k for k, tables in enumerate(joined) for t in tables for i in t}
    linked: dict[int, list[Sequence[tuple[int, float]]]] = {}
    for eq in links:
        linked.setdefault(system_of[eq[0][0]], []).append(eq)
    for k, tables in enumerate(joined):
        rows = [i for t in tables for i in t]
        if not any(i in suppressed for i in rows):
            continue
        rep = {i: same.get(i, i) for i in rows}
        n = {rep[i]: counts[i] for i in rows}
        margins: dict[int, int] = {}
        for i in rows:
            margins[rep[i]] = max(margins.get(rep[i], 0), coords[i].count(ALL))
        eqs = [_sum(p, kids) for t in tables for p, kids in _equations({coords[i]: rep[i] for i in t})]
        eqs += [_combined([(rep[i], c) for i, c in eq]) for eq in linked.get(k, [])]
        hidden = {rep[i]: suppressed[i] for i in rows if i in suppressed}  # the system's rows, not every hidden one
        cheap = {rep[i] for i in rows if i in spare} - {rep[i] for i in rows if i not in spare}
        _protect(n, margins, eqs, hidden, {rep[i] for i in rows if i in same}, {rep[i] for i in rows if i in keep},
                 cheap)
        for i in rows:  # a cell suppressed in one of its tables is suppressed in all
            if rep[i] in hidden:
                suppressed.setdefault(i, "complementary")


def _spare_natives(f: pd.DataFrame, table_keys: Sequence[str], coords: list[tuple[str, ...]], counts: list[int],
                   hidden: Container[int]) -> set[int]:
    """Native rows no other group of their table is compared with: at their coordinates every group but the native
    and the total is ``hidden`` already or has no respondents. Hiding such a cell costs no gap, while hiding its
    table's total hides the headline estimate in every table that holds it: ESS8 Poland's employment rate
    (n = 1,246) was hidden to protect its 4 foreign-born, beside 1,242 native-born, in 10 of 17 such totals."""
    keys = _texts(f, [*table_keys, "breakdown"])
    native = f["is_native"].to_numpy(dtype=bool)
    compared = {(keys[i], coords[i][:-1]) for i in range(len(f))
                if not native[i] and coords[i][-1] != ALL and counts[i] > 0 and i not in hidden}
    return {i for i in np.flatnonzero(native).tolist() if (keys[i], coords[i][:-1]) not in compared}


def atom_equations(f: pd.DataFrame, table_keys: Sequence[str], dims: Sequence[str], atoms: pd.DataFrame
                   ) -> list[list[tuple[int, float]]]:
    """Equations between cells of different breakdowns at the same coordinates (every dimension a value, no
    margin): each cell's respondents with an answer are a set of ``atoms`` (the respondents of one combination of
    every breakdown's group), so a cell that is a sum or difference of others' cells (born in the country = native
    + second generation, when every one born in the country has an origin group) can be derived from them. A
    basis of the dependencies of the cells' atom vectors, each as (row, coefficient) terms; margins are sums of
    these coordinates' cells, so with the tables' margin equations the basis is every dependency there is."""
    coded = _Coded(f, atoms, dims)
    known = set(atoms.columns)
    breakdown, n = coded.breakdown.tolist(), f["n"].tolist()
    out = []
    for rows, held in _samples(f, atoms, table_keys).values():
        v = coded.members(rows, held)
        at: dict[tuple[int, ...], list[int]] = {}  # the cells of each coordinate without a margin
        for r, i in enumerate(rows):
            coord = tuple(coded.cell_dims[i].tolist())
            if n[i] > 0 and -1 not in coord and (breakdown[i] == "total" or breakdown[i] in known):
                at.setdefault(coord, []).append(r)
        atoms_at: dict[tuple[int, ...], list[int]] = {}
        for a, j in enumerate(held):
            atoms_at.setdefault(tuple(coded.atom_dims[j].tolist()), []).append(a)
        for coord, members in at.items():
            columns = atoms_at.get(coord)
            if columns is None or len(members) < 2:
                continue
            for y in dependencies(v[np.ix_(members, columns)].astype(float)):
                out.append([(rows[members[j]], float(y[j])) for j in np.flatnonzero(np.abs(y) > TOLERANCE)])
    return out


def _samples(f: pd.DataFrame, atoms: pd.DataFrame, table_keys: Sequence[str],
             only: Container[tuple[str, ...]] | None = None) -> dict[tuple[str, ...], tuple[list[int], list[int]]]:
    """The rows of ``f`` and of ``atoms`` of each sample (one indicator × age band × keys: ``table_keys``), of the
    samples in ``only`` (default: every one)."""
    out: dict[tuple[str, ...], tuple[list[int], list[int]]] = {}
    for i, key in enumerate(_texts(f, table_keys)):
        if only is None or key in only:
            out.setdefault(key, ([], []))[0].append(i)
    for j, key in enumerate(_texts(atoms, table_keys)):
        if key in out:
            out[key][1].append(j)
    return out


def bound_exposed(f: pd.DataFrame, table_keys: Sequence[str], dims: Sequence[str], atoms: pd.DataFrame,
                  suppressed: dict[int, str], keep: Container[int] = ()) -> list[int]:
    """Published cells to hide because a share they publish at 0 or 1 gives hidden cells away: every respondent of a
    share at 0 answered 0 (at 1, 1) — as every respondent of a mean whose answers are all one value (``constant``
    from the estimator: a trust of 10 for everyone) gave that value — so each atom it holds is known, and a hidden
    cell is known when what is left of it, its unknown atoms, is a combination of what is left of the published
    cells (born in the country at 0 among
    female early leavers: second generation, its subset, is 0; a breakdown's total hidden beside another's published
    total, the respondents one has and the other not in a group at 0). Until no hidden cell is: of the atoms the
    combination misses, the one the fewest published cells at 0 or 1 hold is made unknown by hiding those. Rows of
    one indicator × age band × keys (``table_keys``) at a time, as ``atoms`` gives them; the equations of
    :func:`_protect_tables` hold, so only samples with a published share at 0 or 1 and a hidden cell are read."""
    est = f["estimate"].to_numpy(dtype=float)
    n = f["n"].to_numpy()
    if "constant" in f.columns:  # the estimator's: every answer the same (a share at 0 or 1, a mean at one value)
        bound = f["constant"].to_numpy(dtype=bool) & (n > 0)
    else:
        bound = f["share"].to_numpy(dtype=bool) & (n > 0) & ((np.abs(est) < TOLERANCE) | (np.abs(est - 1) < TOLERANCE))
    keys = _texts(f, table_keys)
    wanted = {keys[i] for i in np.flatnonzero(bound) if i not in suppressed}
    wanted &= {keys[i] for i in suppressed if n[i] > 0}
    if not wanted:
        return []
    samples = _samples(f, atoms, table_keys, wanted)
    coded = _Coded(f, atoms, dims)
    out: set[int] = set()
    for key in sorted(wanted):
        rows, held = samples[key]
        v = coded.members(rows, held)
        hidden = np.array([(i in suppressed and n[i] > 0) for i in rows], dtype=bool) & v.any(axis=1)
        at_bound = bound[rows]
        published = ~hidden & np.array([i not in suppressed for i in rows], dtype=bool)
        while True:  # the cells hidden here are protected by the margins in the next round (see publish)
            shown = published & at_bound
            unknown = ~v[shown].any(axis=0)
            given = _given_away(v[published].astype(float), v[hidden].astype(float), unknown)
            if given is None:
                break
            # the fewest cells to hide, then the first rows (the atoms come in no set order)
            # (cells another table publishes, ``keep``, last)
            hide = min((np.flatnonzero(shown & v[:, a]) for a in np.flatnonzero(given)),
                       key=lambda r: (sum(rows[x] in keep for x in r), len(r), list(r)))
            out.update(rows[r] for r in hide)
            published[hide] = False
    return sorted(out)


def _given_away(published: np.ndarray, hidden: np.ndarray, unknown: np.ndarray) -> np.ndarray | None:
    """For the first hidden cell (rows of ``hidden``, atoms as columns) whose ``unknown`` atoms are a combination of
    the published cells' unknown atoms: the known atoms where that combination and the cell differ. None when no
    hidden cell is (one the margins alone give away, which :func:`_protect_tables` prevents, is not this one's)."""
    if not len(hidden):
        return None
    target = hidden[:, unknown]
    # the minimum-norm combination, solved without the published cells that hold no unknown atom (their
    # coefficients are 0) and the unknown atoms no published cell holds (no combination reaches them): the same
    # solution of a system about a sixth smaller on each side in the demo's fine queries
    share = published[:, unknown]
    rows, cols = share.any(axis=1), share.any(axis=0)
    x = np.zeros((len(published), len(hidden)))
    if rows.any():
        x[rows] = _least_squares(share[np.ix_(rows, cols)].T, target[:, cols].T)
    fitted = (published.T @ x).T
    for h in range(len(hidden)):
        if np.abs(fitted[h, unknown] - target[h]).max(initial=0.0) < 1e-7:
            differ = (np.abs(fitted[h] - hidden[h]) > 1e-7) & ~unknown
            if differ.any():
                return differ
    return None


def _least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The minimum-norm least-squares solution of a x = b: numpy's (an SVD); where LAPACK's SVD does not converge
    (it happened once to a protection's SVD on the real ESS files: :func:`harmonise.reports.exposure.singular`),
    the complete orthogonal factorisation's, the same solution — with numpy's rank cutoff (ε · the larger side):
    at scipy's default (ε) the demo's 850 × 740 systems of atoms, of rank ~630, kept singular values of 1e-15 and
    gave solutions of 1e13 whose fits were 0.3 off."""
    try:
        return np.linalg.lstsq(a, b, rcond=None)[0]
    except np.linalg.LinAlgError:
        from scipy.linalg import lstsq  # type: ignore[import-untyped]

        return lstsq(a, b, lapack_driver="gelsy", cond=np.finfo(float).eps * max(a.shape))[0]


class _Coded:
    """The cells' and the atoms' values as integer codes, once for all their samples: per dimension (codes shared
    by cells and atoms, the same for the same text; a cell's margin ``all`` is -1), each cell's breakdown, and its
    group as a code of its breakdown's atom column (the total ``all`` -1; an atom's missing group -2). Coding each
    sample's rows again took most of a query's disclosure control (pandas per column and sample). Rows and atoms
    are told by position."""

    def __init__(self, cells: pd.DataFrame, atoms: pd.DataFrame, dims: Sequence[str]) -> None:
        self.cell_dims = np.empty((len(cells), len(dims)), dtype=np.int64)
        self.atom_dims = np.empty((len(atoms), len(dims)), dtype=np.int64)
        for k, d in enumerate(dims):
            self.cell_dims[:, k], self.atom_dims[:, k] = _codes(_texts(cells, [d]), _texts(atoms, [d]))
        self.breakdown = np.array([b for (b,) in _texts(cells, ["breakdown"])], dtype=object)
        self.group = np.full(len(cells), -3, dtype=np.int64)
        self.atom_groups: dict[str, np.ndarray] = {}
        groups = _texts(cells, ["group"])
        for b in set(self.breakdown.tolist()) - {"total"}:
            if b not in atoms.columns or b in dims:
                continue  # no atom is in it (see members)
            rows = np.flatnonzero(self.breakdown == b)
            self.group[rows], self.atom_groups[b] = _codes([groups[i] for i in rows], _texts(atoms, [b], missing=True))

    def members(self, rows: Sequence[int], held: Sequence[int]) -> np.ndarray:
        """Which atoms (``held``) each cell (``rows``) holds (cells × atoms): its dimension values (a margin ``all``
        holds every value), and in its breakdown its group (the total ``all``: every known group; breakdown
        ``total``: every atom)."""
        cell, atom = self.cell_dims[rows], self.atom_dims[held]
        v = np.ones((len(rows), len(held)), dtype=bool)
        for k in range(cell.shape[1]):
            v &= (cell[:, k, None] == atom[None, :, k]) | (cell[:, k] == -1)[:, None]
        breakdown = self.breakdown[rows]
        for b in set(breakdown.tolist()) - {"total"}:
            mine = np.flatnonzero(breakdown == b)
            if b not in self.atom_groups:
                v[mine] = False
                continue
            group, of = self.group[np.asarray(rows)[mine]], self.atom_groups[b][held]
            v[mine] &= np.where((group == -1)[:, None], (of >= 0)[None, :], group[:, None] == of[None, :])
        return v


def _codes(cells: Sequence[tuple[str, ...]], atoms: Sequence[tuple[str | None, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """One column's values as integer codes, the same for the same text: a cell's margin ``all`` is -1, an atom's
    missing value -2; a cell's value no atom has gets a code of its own (it holds no atom, and is no other
    cell's coordinate)."""
    code: dict[str, int] = {}
    atom = np.array([-2 if x is None else code.setdefault(x, len(code)) for (x,) in atoms], dtype=np.int64)
    cell = np.array([-1 if x == ALL else code.setdefault(x, len(code)) for (x,) in cells], dtype=np.int64)
    return cell, atom


def _texts(frame: pd.DataFrame, columns: Sequence[str], missing: bool = False) -> list[tuple[str, ...]]:
    """The rows of ``columns`` as tuples of text (column by column: pandas' row iteration is slow); with
    ``missing``, a missing value stays None."""
    def text(v: object) -> str | None:
        return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)

    if not columns:
        return [()] * len(frame)
    return list(zip(*(list(map(text if missing else str, frame[c].to_numpy(dtype=object).tolist())) for c in columns)))


def dependencies(v: np.ndarray) -> list[np.ndarray]:
    """A basis of the rows' linear dependencies (y with y · v = 0), sparse: one per row that is a combination of
    rows before it, by Gauss–Jordan elimination of vᵀ with partial pivoting (entries 0 and 1: exact enough)."""
    a = v.T.copy()
    m, k = a.shape
    pivots: list[int] = []
    r = 0
    for c in range(k):
        if r == m:
            break
        p = r + int(np.argmax(np.abs(a[r:, c])))
        if abs(a[p, c]) < TOLERANCE:
            continue
        if p != r:
            a[[r, p]] = a[[p, r]]
        a[r] /= a[r, c]
        factors = a[:, c].copy()
        factors[r] = 0.0
        a -= np.outer(factors, a[r])
        pivots.append(c)
        r += 1
    out = []
    for free in (c for c in range(k) if c not in pivots):
        y = np.zeros(k)
        y[free] = 1.0
        for row, c in enumerate(pivots):
            y[c] = -a[row, free]
        out.append(y)
    return out


_BLAS = threading.Lock()
_blas_users: list[object] = []  # the limit in force (threadpoolctl's), once per caller inside one_blas_thread


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Linear algebra on one BLAS thread inside the block, the previous setting back when the last caller leaves
    (callers run in several threads of a build). The decompositions here are of matrices of a few hundred cells, which a
    second BLAS thread slows down — and with a build's workers on the cores, BLAS threads waiting for a core
    cost the build's main process ~40 % more CPU-seconds (28.9 against 18.1 on the 298 ESS files)."""
    with _BLAS:
        if not _blas_users:
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

            _blas_users.append(threadpool_limits(limits=1, user_api="blas"))
        else:
            _blas_users.append(_blas_users[0])
    try:
        yield
    finally:
        with _BLAS:
            limit = _blas_users.pop()
            if not _blas_users:
                limit.restore_original_limits()  # type: ignore[attr-defined]


_INTERNAL = {"is_native", "variance", "native_estimate", "has_native", "gap_variance", "design_kind", "share",
             "constant"}


def _tables(f: pd.DataFrame, table_keys: Sequence[str]) -> list[list[int]]:
    """Row labels of each table: one breakdown's rows (its groups and their total) for the same keys."""
    keys = [*table_keys, "breakdown"]
    return [part.index.tolist() for _, part in f.groupby(keys, sort=False, dropna=False)]


def _same_cells(f: pd.DataFrame, table_keys: Sequence[str], coords: list[tuple[str, ...]], counts: list[int]
                ) -> dict[int, int]:
    """Rows of different tables that are the same cell (row → the first such row): at the same coordinates, the
    same respondents with an answer — a breakdown's total and the total when no group is unknown (its respondents
    are a subset of the total's), two breakdowns' totals that leave out the same respondents, a group two
    breakdowns share (born in the country in `birthplace` and in `origin_group`). Told by what they publish: the
    same n, estimate and effective n (rounded, as sums of the same terms in another order may differ in the last
    digit). Two different cells that agree on all three are joined too: one more cell hidden, never one less.
    Such a cell is one unknown in every table that holds it: hidden in one, it is hidden in all (decision 69)."""
    keys = ["\x1f".join(r) for r in _texts(f, table_keys)]
    breakdowns = [b for (b,) in _texts(f, ["breakdown"])]
    est, neff = f["estimate"].to_numpy(dtype=float), f["n_eff"].to_numpy(dtype=float)
    first: dict[tuple[object, ...], int] = {}
    holders: dict[int, set[str]] = {}
    out = {}
    for i in range(len(f)):
        if counts[i] <= 0 or not np.isfinite(est[i]):
            continue
        sign = (keys[i], coords[i][:-1], counts[i], float(f"{est[i]:.11g}"),
                float(f"{neff[i]:.9g}") if np.isfinite(neff[i]) else None)
        rep = first.setdefault(sign, i)
        if rep == i:
            holders[i] = {breakdowns[i]}
        elif breakdowns[i] not in holders[rep]:  # one cell per table: a table's own twins are its equations'
            holders[rep].add(breakdowns[i])
            out[i] = rep
    return out


def _joined_tables(tables: list[list[int]], same: dict[int, int], links: Sequence[Sequence[int]] = ()
                   ) -> list[list[list[int]]]:
    """``tables`` grouped into sets joined by a shared cell (``same``: row → the row it is the same cell as) or by
    an equation between their rows (``links``: each equation's rows)."""
    parent = list(range(len(tables)))

    def root(t: int) -> int:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    holder: dict[int, int] = {}
    table_of: dict[int, int] = {}
    for t, rows in enumerate(tables):
        for i in rows:
            table_of[i] = t
            cell = same.get(i, i)
            if cell in holder:
                parent[root(t)] = root(holder[cell])
            else:
                holder[cell] = t
    for members in links:
        for i in members[1:]:
            parent[root(table_of[i])] = root(table_of[members[0]])
    joined: dict[int, list[list[int]]] = {}
    for t, rows in enumerate(tables):
        joined.setdefault(root(t), []).append(rows)
    return list(joined.values())


def _native_suppressed(f: pd.DataFrame, sup: np.ndarray, table_keys: Sequence[str], dims: Sequence[str]) -> np.ndarray:
    """Per row: whether the native cell it is compared with is suppressed."""
    cols = [*table_keys, "breakdown", *dims]
    key = ["\x1f".join(r) for r in _texts(f, cols)]
    native = {k: s for k, s, nat in zip(key, sup.tolist(), f["is_native"].to_numpy(dtype=object).tolist()) if nat}
    return np.array([native.get(k, False) for k in key], dtype=bool)
