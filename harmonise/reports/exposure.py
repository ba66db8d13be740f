"""Which hidden cells a linked system of equations determines, asked again after each cell hidden.

A hidden cell is determined (an attacker who knows the published cells can compute it) when its unit
vector lies in the row space of the equations restricted to the hidden cells: when every vector of their
null space is 0 there. Complementary suppression hides one cell at a time and asks after each. One
decomposition of a large system (ESS9 Nordic by NUTS region × urbanisation × origin group: 1,600 equations
in 900 hidden cells, 0.12 s) is cheap; 106 of them per indicator were 13 of a query's 15 seconds.

:class:`Exposure` keeps a *base* per system: the pivoted QR decomposition of its equations A and an
orthonormal basis N of their null space. Hiding cells T adds columns C (the base equations' coefficients of
T) and equations B over T alone (an equation new to the system had no hidden cell before), so the null
space becomes {(x, t): A x + C t = 0, B t = 0}. The base's triangular factor splits each column of C into
its part in A's range, A u, and a residual ρ (linear in the column, 0 exactly when it is in the range); t
must satisfy ρ t = 0 and B t = 0 (a problem of |T| unknowns; W a basis of its solutions), and then x = −U t
+ N z. The null space is spanned by [[N, −U W], [0, W]]: the new directions are made orthogonal to N (whose
rows' norms are the base's shares), and each cell's share is its norm in that orthonormal basis, as :func:`null_shares`
gives it. A new base is taken when T outgrows :func:`rebase_after` (decomposing it costs what one full
decomposition does). A LAPACK SVD that does not converge is computed by the other driver (:func:`singular`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

Equation = tuple[tuple[int, ...], tuple[float, ...]]  # cells and their coefficients: Σ coefficient · numerator = 0
DETERMINED = 1e-5  # a cell whose null-space share is below this is determined
RANK = 1e-9  # a pivot (or singular value) below this share of the largest is 0: the matrices are small integers


def rebase_after(base: int) -> int:
    """The number of cells hidden since a base after which a new base is decomposed."""
    return max(64, base // 4)


def null_shares(a: np.ndarray) -> np.ndarray:
    """Norm of each column's share in the null space of ``a`` (0: the unknown is determined).

    An orthonormal basis of the row space comes from a QR decomposition of ``a``'s transpose with column
    pivoting (rank-revealing: the rank is the number of pivots above the tolerance); a column's null-space
    share is 1 minus its squared norm there (no square matrix of the null space is formed, so a wide table
    stays cheap). Half the time of the reduced SVD it replaces, with the same cells determined (the matrices
    are small integers: margins and atoms)."""
    if a.shape[0] == 0:
        return np.ones(a.shape[1])
    q, _, _, rank = _factored(a, "economic")
    return _shares(q, rank)


def _factored(a: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The pivoted QR of ``a``'s transpose (``mode``: scipy's) and ``a``'s numerical rank."""
    from scipy.linalg import qr  # type: ignore[import-untyped]

    q, r, perm = qr(a.T, mode=mode, pivoting=True)
    return q, r, perm, _rank(np.abs(np.diag(r)))


def _shares(q: np.ndarray, rank: int) -> np.ndarray:
    """Each unknown's null-space share: 1 minus its squared norm in the row space (the first ``rank`` columns)."""
    return np.sqrt(np.clip(1.0 - (q[:, :rank] ** 2).sum(axis=1), 0.0, None))


def _rank(diag: np.ndarray) -> int:
    """The number of pivots (decreasing) or singular values above :data:`RANK` of the largest."""
    return int((diag > RANK * max(1.0, float(diag[0]) if diag.size else 1.0)).sum())


def matrix(unknown: Sequence[int], rows: Sequence[Equation]) -> np.ndarray:
    """The equations' coefficients of the ``unknown`` cells (rows × unknowns; other cells are known)."""
    col = {i: j for j, i in enumerate(unknown)}
    a = np.zeros((len(rows), len(unknown)))
    for e, (members, coefs) in enumerate(rows):
        for i, c in zip(members, coefs):
            j = col.get(i)
            if j is not None:
                a[e, j] = c
    return a


def determined(unknown: Sequence[int], rows: Sequence[Equation]) -> list[int]:
    """The ``unknown`` cells the equations ``rows`` determine, in their order (one decomposition)."""
    return [unknown[int(j)] for j in np.flatnonzero(null_shares(matrix(unknown, rows)) < DETERMINED)]


@dataclass
class _Base:
    """A decomposed system: its cells, equations (by identity), the pivoted QR of its matrix's transpose and
    what was derived from it for cells hidden since (their particular solutions and residuals)."""

    cells: list[int]
    rows: list[Equation]
    q: np.ndarray  # k × k orthonormal: the first ``rank`` columns span the row space, the rest the null space
    r11: np.ndarray  # rank × rank upper triangular
    r12: np.ndarray  # rank × (m − rank)
    perm: np.ndarray  # the equations in pivot order
    rank: int
    shares: np.ndarray  # each cell's null-space share
    ids: set[int] = field(default_factory=set)
    held: set[int] = field(default_factory=set)
    solved: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # cell → (u, ρ)

    def __post_init__(self) -> None:
        self.ids = {id(eq) for eq in self.rows}
        self.held = set(self.cells)

    def solve(self, cells: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per cell hidden since: U (k × |cells|, A U = the columns' parts in A's range) and ρ ((m − rank) ×
        |cells|, the residuals), each cell's solved once."""
        from scipy.linalg import solve_triangular  # type: ignore[import-untyped]

        todo = [c for c in cells if c not in self.solved]
        if todo:
            c = matrix(todo, self.rows)[self.perm]
            z = solve_triangular(self.r11, c[:self.rank], trans="T") if self.rank else np.zeros((0, len(todo)))
            rho = c[self.rank:] - self.r12.T @ z
            u = self.q[:, :self.rank] @ z
            for j, cell in enumerate(todo):
                self.solved[cell] = (u[:, j], rho[:, j])
        k, rest = len(self.cells), len(self.rows) - self.rank
        if not cells:
            return np.zeros((k, 0)), np.zeros((rest, 0))
        return (np.column_stack([self.solved[c][0] for c in cells]),
                np.column_stack([self.solved[c][1] for c in cells]))


def _decomposed(unknown: Sequence[int], rows: Sequence[Equation]) -> _Base:
    """The base of a system: its pivoted QR (the whole Q: its last columns are the null space), with the shares
    :func:`null_shares` gives."""
    a = matrix(unknown, rows)
    q, r, perm, rank = _factored(a, "full")
    return _Base(list(unknown), list(rows), q, r[:rank, :rank], r[:rank, rank:a.shape[0]], perm, rank,
                 _shares(q, rank))


class Exposure:
    """:func:`determined`, asked of systems that grow (cells hidden, their equations added), from a base
    decomposition updated for the cells hidden since (see the module docstring). The equations are told apart
    by identity: the same objects throughout one complementary suppression."""

    def __init__(self) -> None:
        self.bases: list[_Base] = []
        self.updated = False  # whether a call since this was last set False answered from an update

    def __call__(self, unknown: Sequence[int], rows: Sequence[Equation]) -> list[int]:
        """The ``unknown`` cells ``rows`` determine, in their order."""
        if not rows:
            return []
        held, ids = set(unknown), {id(eq) for eq in rows}
        base = next((b for b in sorted(self.bases, key=lambda b: -len(b.cells))
                     if b.held <= held and b.ids <= ids and len(held) - len(b.held) <= rebase_after(len(b.cells))), None)
        new_rows = [eq for eq in rows if id(eq) not in base.ids] if base is not None else []
        if base is None or any(i in base.held for eq in new_rows for i in eq[0]):
            return self.exact(unknown, rows)
        added = [i for i in unknown if i not in base.held]
        if not added and not new_rows:
            shares = dict(zip(base.cells, base.shares))
        else:
            shares = dict(zip([*base.cells, *added], _grown(base, added, new_rows)))
            self.updated = True
        return [i for i in unknown if shares[i] < DETERMINED]

    def exposed(self, parts: Sequence[tuple[Sequence[int], Sequence[Equation]]]) -> list[int]:
        """The cells each part's equations determine (the parts of :meth:`Linked.parts`); that none is, which ends a
        protection, is always said by decompositions of the whole parts, never by an update."""
        self.updated = False
        out = [i for cells, rows in parts for i in self(cells, rows)]
        if not out and self.updated:
            out = [i for cells, rows in parts for i in self.exact(cells, rows)]
        return out

    def exact(self, unknown: Sequence[int], rows: Sequence[Equation]) -> list[int]:
        """:meth:`__call__` by a decomposition of the whole system, which becomes a base (replacing those it holds)."""
        if not rows:
            return []
        base = _decomposed(unknown, rows)
        self.bases = [b for b in self.bases if not b.held <= base.held] + [base]
        return [i for i, s in zip(base.cells, base.shares) if s < DETERMINED]


def _grown(base: _Base, added: list[int], new_rows: Sequence[Equation]) -> np.ndarray:
    """The null-space shares of the base's cells and then the ``added`` ones, in the system of the base's
    equations (now with the added cells' coefficients) and ``new_rows`` (over added cells only)."""
    from scipy.linalg import qr

    u, rho = base.solve(added)
    small = np.vstack([rho, matrix(added, new_rows)])
    if small.shape[0] > small.shape[1]:  # tall (rows of ρ): its triangular factor has the same null space
        small = qr(small, mode="r")[0][:small.shape[1]]
    if small.shape[0] and small.shape[1]:
        s, vt = singular(small)
        w = vt[_rank(s):].T
    else:
        w = np.eye(len(added))
    shares = np.concatenate([base.shares ** 2, np.zeros(len(added))])
    if w.shape[1]:  # the new directions, made orthogonal to the base's null space (twice: enough in floating point)
        null = base.q[:, base.rank:]
        top = -u @ w
        for _ in range(2):
            top -= null @ (null.T @ top)
        q = qr(np.vstack([top, w]), mode="economic")[0]
        shares += (q ** 2).sum(axis=1)
    return np.sqrt(shares)


def singular(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The singular values of ``a`` and its right singular vectors (all of them, as rows). LAPACK's
    divide-and-conquer driver (gesdd) fails to converge on some matrices (a 119 × 119 one of the real ESS files
    by sex × age band × country × urbanisation: "SVD did not converge", the query ended in an internal error);
    the QR-iteration driver (gesvd) then answers."""
    from scipy.linalg import LinAlgError, svd  # type: ignore[import-untyped]

    try:
        _, s, vt = svd(a, full_matrices=True)
    except LinAlgError:
        _, s, vt = svd(a, full_matrices=True, lapack_driver="gesvd")
    return s, vt


class Linked:
    """The hidden cells of one complementary suppression and the equations holding one, in the sets no equation
    links to each other (the system is block diagonal, so each block's null space is found alone: tables joined by
    shared cells made the blocks' union large), kept as cells are hidden (a union of sets per cell, not a pass over
    every equation after each)."""

    def __init__(self, system: Sequence[Equation], hidden: Iterable[int]) -> None:
        self.system = system
        self.of_cell: dict[int, list[int]] = {}
        for e, (members, _) in enumerate(system):
            for i in members:
                self.of_cell.setdefault(i, []).append(e)
        self.count = [0] * len(system)  # each equation's hidden cells
        self.anchor: dict[int, int] = {}  # an equation holding a hidden cell → its first
        self.parent: dict[int, int] = {}
        self.cells: dict[int, list[int]] = {}  # a set's root → its hidden cells
        self.rows: dict[int, list[int]] = {}  # a set's root → its equations
        for i in sorted(hidden):
            self.hide(i)

    def hide(self, cell: int) -> None:
        """``cell`` is hidden now."""
        if cell in self.parent:
            return
        self.parent[cell] = cell
        self.cells[cell], self.rows[cell] = [cell], []
        for e in self.of_cell.get(cell, ()):
            self.count[e] += 1
            first = self.anchor.get(e)
            if first is None:
                self.anchor[e] = cell
                self.rows[self._root(cell)].append(e)
            else:
                self._join(first, cell)

    def equations(self) -> list[int]:
        """The equations holding a hidden cell, in the system's order."""
        return sorted(self.anchor)

    def parts(self) -> list[tuple[list[int], list[Equation]]]:
        """Each set's hidden cells (in order) and equations (in the system's order), the sets by their first cell."""
        sets = sorted((sorted(cells), root) for root, cells in self.cells.items())
        return [(cells, [self.system[e] for e in sorted(self.rows[root])]) for cells, root in sets]

    def _root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def _join(self, a: int, b: int) -> None:
        ra, rb = self._root(a), self._root(b)
        if ra == rb:
            return
        if len(self.cells[ra]) < len(self.cells[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.cells[ra] += self.cells.pop(rb)
        self.rows[ra] += self.rows.pop(rb)
