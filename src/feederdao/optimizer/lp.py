"""The linear program as numpy data: column families, row families, and typed handles to them.

A formulation function adds one family of columns (variables) or rows (constraints) and gets a
handle back; nothing is a Python object per row or per element. A family of rows is a sparse
block: CSR data over global column indices, with lower and upper activity bounds. Constants
stay on the bounds (the right-hand sides), so the duals of the rows read as prices.

Every column and row carries the period it belongs to (``-1``: it links periods). When no row
links periods the program splits into one independent block per period
(:attr:`LinearProgram.decomposable`), which the solver exploits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
INF = float("inf")
#: how far a row that links periods may miss its bounds at fixed values and still be left out
#: of a program split by period (a solver's own feasibility tolerance is 1e-7)
LINK_TOL = 1e-6


@dataclass(frozen=True)
class Cols:
    """A family of columns, laid out row-major in ``shape`` (periods first where it has them)."""

    name: str
    start: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def idx(self) -> IntArray:
        """Global column index of every element, in ``shape``."""
        return np.arange(self.start, self.start + self.size, dtype=np.int64).reshape(self.shape)

    def of(self, values: FloatArray) -> FloatArray:
        """This family's part of a full column-length array, in ``shape``."""
        return np.asarray(values[self.start : self.start + self.size]).reshape(self.shape)


@dataclass(frozen=True)
class Rows:
    """A family of rows, laid out row-major in ``shape``."""

    name: str
    start: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def idx(self) -> IntArray:
        return np.arange(self.start, self.start + self.size, dtype=np.int64).reshape(self.shape)

    def of(self, values: FloatArray) -> FloatArray:
        return np.asarray(values[self.start : self.start + self.size]).reshape(self.shape)


class Terms:
    """Coefficients of a row family collected as (local row, global column, value) triplets;
    every ``add`` broadcasts its three arguments against each other."""

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self._r: list[IntArray] = []
        self._c: list[IntArray] = []
        self._v: list[FloatArray] = []

    def add(self, rows: npt.ArrayLike, cols: npt.ArrayLike, values: npt.ArrayLike = 1.0) -> Terms:
        r, c, v = np.broadcast_arrays(
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            np.asarray(values, dtype=np.float64),
        )
        self._r.append(r.ravel())
        self._c.append(c.ravel())
        self._v.append(v.ravel())
        return self

    def csr(self, n_cols: int) -> sp.csr_matrix:
        """The coefficients as a CSR matrix (duplicates summed, exact zeros dropped)."""
        if self._r:
            r, c, v = np.concatenate(self._r), np.concatenate(self._c), np.concatenate(self._v)
        else:
            r = c = np.zeros(0, dtype=np.int64)
            v = np.zeros(0)
        m = sp.csr_matrix((v, (r, c)), shape=(self.n_rows, n_cols))
        m.sum_duplicates()
        m.eliminate_zeros()
        return m


@dataclass
class RowBlock:
    """One family's rows: coefficients, bounds, and the period of each row."""

    rows: Rows
    matrix: sp.csr_matrix
    lower: FloatArray
    upper: FloatArray
    period: IntArray
    version: int = 0


@dataclass
class LinearProgram:
    """Columns (bounds, costs, periods) and row families of one minimisation."""

    n_periods: int
    col_lower: FloatArray = field(default_factory=lambda: np.zeros(0))
    col_upper: FloatArray = field(default_factory=lambda: np.zeros(0))
    cost: FloatArray = field(default_factory=lambda: np.zeros(0))
    col_period: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    col_names: list[Cols] = field(default_factory=list)
    blocks: list[RowBlock] = field(default_factory=list)
    n_rows: int = 0
    offset: float = 0.0

    @property
    def n_cols(self) -> int:
        return int(self.col_lower.shape[0])

    def add_cols(
        self,
        name: str,
        shape: tuple[int, ...],
        lower: npt.ArrayLike = -INF,
        upper: npt.ArrayLike = INF,
        cost: npt.ArrayLike = 0.0,
        period: npt.ArrayLike | None = None,
    ) -> Cols:
        """A family of ``shape`` columns. ``period`` defaults to the first axis when ``shape``
        is ``(n_periods, …)``; pass it for other layouts (e.g. one column per bid block)."""
        cols = Cols(name, self.n_cols, tuple(int(s) for s in shape))
        n = cols.size

        def full(x: npt.ArrayLike) -> FloatArray:
            return np.broadcast_to(np.asarray(x, dtype=np.float64), cols.shape).ravel().copy()

        if period is None:
            if not shape or shape[0] != self.n_periods:
                raise ValueError(f"column family {name}: give the period of its columns")
            per = np.broadcast_to(
                np.arange(self.n_periods).reshape((-1,) + (1,) * (len(shape) - 1)), shape
            ).ravel()
        else:
            per = np.broadcast_to(np.asarray(period, dtype=np.int64), cols.shape).ravel()
        self.col_lower = np.concatenate([self.col_lower, full(lower)])
        self.col_upper = np.concatenate([self.col_upper, full(upper)])
        self.cost = np.concatenate([self.cost, full(cost)])
        self.col_period = np.concatenate([self.col_period, per.astype(np.int64)])
        self.col_names.append(cols)
        assert self.n_cols == cols.start + n
        return cols

    def add_rows(
        self,
        name: str,
        shape: tuple[int, ...],
        terms: Terms,
        lower: npt.ArrayLike = -INF,
        upper: npt.ArrayLike = INF,
    ) -> Rows:
        """A family of rows ``lower ≤ Σ coefficient · column ≤ upper`` (equal bounds: an
        equality). Each row's period is the one its columns share (-1 when they differ)."""
        rows = Rows(name, self.n_rows, tuple(int(s) for s in shape))
        if terms.n_rows != rows.size:
            raise ValueError(f"row family {name}: {terms.n_rows} rows of terms for {rows.size}")
        block = self._block(rows, terms, lower, upper)
        self.blocks.append(block)
        self.n_rows += rows.size
        return rows

    def replace_rows(
        self,
        rows: Rows,
        terms: Terms,
        lower: npt.ArrayLike = -INF,
        upper: npt.ArrayLike = INF,
    ) -> None:
        """New coefficients and bounds for an existing family (same rows, same periods)."""
        k = self._find(rows)
        old = self.blocks[k]
        new = self._block(rows, terms, lower, upper)
        if not np.array_equal(new.period, old.period):
            raise ValueError(f"row family {rows.name}: the new rows change their periods")
        new.version = old.version + 1
        self.blocks[k] = new

    def set_row_bounds(
        self, rows: Rows, lower: npt.ArrayLike | None = None, upper: npt.ArrayLike | None = None
    ) -> None:
        block = self.blocks[self._find(rows)]
        if lower is not None:
            block.lower = np.broadcast_to(np.asarray(lower, float), rows.shape).ravel().copy()
        if upper is not None:
            block.upper = np.broadcast_to(np.asarray(upper, float), rows.shape).ravel().copy()

    def set_cols(
        self,
        cols: Cols,
        lower: npt.ArrayLike | None = None,
        upper: npt.ArrayLike | None = None,
        cost: npt.ArrayLike | None = None,
    ) -> None:
        """Change a family's bounds or costs in place (the solver pushes what changed)."""
        sl = slice(cols.start, cols.start + cols.size)
        for arr, x in ((self.col_lower, lower), (self.col_upper, upper), (self.cost, cost)):
            if x is not None:
                arr[sl] = np.broadcast_to(np.asarray(x, dtype=np.float64), cols.shape).ravel()

    def row_block(self, rows: Rows) -> RowBlock:
        return self.blocks[self._find(rows)]

    @property
    def decomposable(self) -> bool:
        """No row links periods and every column belongs to one: one block per period."""
        if (self.col_period < 0).any():
            return False
        return all(not (b.period < 0).any() for b in self.blocks)

    @property
    def separable(self) -> bool:
        """The program splits by period: it is :attr:`decomposable`, or what links its periods
        is fixed (every column of a linking row, and every column of no period, has equal
        bounds) and holds at those values, so that the linking rows can be left out. Optimised
        storage held at a dispatch links its periods so: its state of charge is fixed with
        its charge and discharge."""
        if self.decomposable:
            return True
        fixed = self.col_lower == self.col_upper
        if not fixed[self.col_period < 0].all():
            return False
        for b in self.blocks:
            link = np.flatnonzero(b.period < 0)
            if not link.size:
                continue
            m = b.matrix[link]
            if not fixed[m.indices].all():
                return False
            act = m @ self.col_lower
            if (act < b.lower[link] - LINK_TOL).any() or (act > b.upper[link] + LINK_TOL).any():
                return False
        return True

    def _find(self, rows: Rows) -> int:
        for k, b in enumerate(self.blocks):
            if b.rows.start == rows.start and b.rows.name == rows.name:
                return k
        raise KeyError(rows.name)

    def _block(
        self, rows: Rows, terms: Terms, lower: npt.ArrayLike, upper: npt.ArrayLike
    ) -> RowBlock:
        matrix = terms.csr(self.n_cols)
        n = rows.size
        lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), rows.shape).ravel().copy()
        hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), rows.shape).ravel().copy()
        per = self.col_period[matrix.indices]
        counts = np.diff(matrix.indptr)
        period = np.full(n, -1, dtype=np.int64)
        has = counts > 0
        if per.size:
            starts = matrix.indptr[:-1][has]
            first = per[starts]
            pmin = np.minimum.reduceat(per, starts)
            pmax = np.maximum.reduceat(per, starts)
            period[has] = np.where(pmin == pmax, first, -1)
        # an empty row constrains nothing but its bounds: it belongs to period 0
        period[~has] = 0
        return RowBlock(rows, matrix, lo, hi, period)
