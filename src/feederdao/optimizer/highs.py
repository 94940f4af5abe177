"""Load a :class:`~feederdao.optimizer.lp.LinearProgram` into HiGHS in bulk, keep it there, and
solve it again after changes, pushing only what changed.

When no row links periods the program is split into one HiGHS instance per period; the
instances are solved on a small thread pool (HiGHS releases the interpreter while it solves).
Bounds and costs are compared with what each instance holds and changed in bulk; a row family
whose coefficients were replaced gets the ones that differ in place, or is deleted and added
again (its rows keeping their basis status) where that costs less: coefficients that appear or
go in a large instance move the rest of its matrix each. New families are added. Every
re-solve starts warm from the last basis, and a new program can start from another's
(:class:`Basis`: the same feeder's clearing of the day before). Results come back as whole
arrays: primal values, row duals and reduced costs, and the objective as HiGHS computed it.

A solve that ends in neither an optimum nor a proof of infeasibility (HiGHS's "unknown" or
"not set" after a warm start) is retried once from scratch with presolve; only then is it an
error, which names the period and the status.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from highspy._core import _Highs

from feederdao.errors import SolverError
from feederdao.optimizer.lp import Cols, FloatArray, IntArray, LinearProgram, RowBlock, Rows

_OPTIMAL = highspy.HighsModelStatus.kOptimal
#: a whole window with more rows than this starts with the interior point method when it has
#: no basis to start from (see _run)
LARGE_WINDOW_ROWS = 40_000
_INFEASIBLE = (
    highspy.HighsModelStatus.kInfeasible,
    highspy.HighsModelStatus.kUnboundedOrInfeasible,
)


#: HiGHS's basis statuses by their value (kLower, kBasic, kUpper, kZero, kNonbasic)
_STATUSES = np.array(
    sorted(highspy.HighsBasisStatus.__members__.values(), key=lambda s: int(s.value)),
    dtype=object,
)
_BASIC = int(highspy.HighsBasisStatus.kBasic.value)
_LOWER = int(highspy.HighsBasisStatus.kLower.value)
_UPPER = int(highspy.HighsBasisStatus.kUpper.value)
_ZERO = int(highspy.HighsBasisStatus.kZero.value)

#: a family: its name, how many families of that name came before it, and its shape
FamilyKey = tuple[str, int, tuple[int, ...]]


@dataclass(frozen=True, eq=False)
class Basis:
    """Where a program's last solve ended: each column's and row's basis status, by family.

    Another program whose families have the same names and shapes (the same feeder's
    clearing of the next day: other profiles and bids, the same model) starts from it
    (:meth:`HighsSolver.start_from`); a family with no match starts nonbasic at a bound
    (columns) or basic (rows), and HiGHS completes the basis. On 1-MV-semiurb--2-sw with
    storage optimised (91k rows) the first solve of a day took 0.5–0.7 s from the day
    before's basis, against 8–10 s from nothing."""

    cols: Mapping[FamilyKey, npt.NDArray[np.int8]]
    rows: Mapping[FamilyKey, npt.NDArray[np.int8]]


def _keyed(families: list[Any]) -> list[FamilyKey]:
    seen: dict[str, int] = {}
    keys = []
    for fam in families:
        keys.append((fam.name, seen.get(fam.name, 0), fam.shape))
        seen[fam.name] = seen.get(fam.name, 0) + 1
    return keys


def _codes(statuses: list[Any]) -> npt.NDArray[np.int8]:
    return np.fromiter(map(int, statuses), dtype=np.int8, count=len(statuses))


@dataclass(frozen=True)
class Solution:
    """Primal values, row duals (∂objective/∂bound of each row) and reduced costs of one
    solve, over the whole program, with the objective HiGHS reports."""

    objective: float
    primal: FloatArray
    row_dual: FloatArray
    col_dual: FloatArray
    solve_s: float
    retried: tuple[str, ...] = ()
    #: simplex iterations of the solve, over every instance
    iterations: int = 0

    def value(self, cols: Cols) -> FloatArray:
        return cols.of(self.primal)

    def dual(self, rows: Rows) -> FloatArray:
        return rows.of(self.row_dual)

    def reduced_cost(self, cols: Cols) -> FloatArray:
        return cols.of(self.col_dual)


def _new_highs() -> Any:
    # the bare binding: highspy.Highs's constructor registers callbacks before any option can
    # be set, and that prints HiGHS's banner on the process's stdout
    h = _Highs()
    _quiet(h)
    return h


def _quiet(h: Any) -> None:
    # HiGHS's own thread count is left at its default: its task scheduler is one per process,
    # sized by the first instance that runs, and an instance asking for another size fails
    # (with "not set") — whoever else in the process uses HiGHS
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)


@dataclass
class _Part:
    """One HiGHS instance and the part of the program it holds."""

    period: int  # -1: the whole program
    highs: Any  # highspy._core._Highs
    cols: IntArray  # global column ids, in the instance's order
    rows: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lower: FloatArray = field(default_factory=lambda: np.zeros(0))
    upper: FloatArray = field(default_factory=lambda: np.zeros(0))
    cost: FloatArray = field(default_factory=lambda: np.zeros(0))
    row_lower: FloatArray = field(default_factory=lambda: np.zeros(0))
    row_upper: FloatArray = field(default_factory=lambda: np.zeros(0))
    versions: dict[int, int] = field(default_factory=dict)  # family start → version loaded
    status: str = ""
    #: solves run on this instance
    solves: int = 0
    #: the first solve starts from a basis given to it (not from nothing)
    seeded: bool = False
    #: a family's coefficients were replaced since the last solve
    replaced: bool = False
    #: the instance holds a window of periods that its rows link (storage, flexible energy)
    coupled: bool = False


class HighsSolver:
    """The program loaded into HiGHS; :meth:`solve` syncs changes and solves."""

    def __init__(self, lp: LinearProgram, threads: int = 2, decompose: bool = True) -> None:
        self.lp = lp
        self.threads = max(1, threads)
        self.split = self.splits(lp, decompose)
        self._parts: list[_Part] = []
        self._local = np.zeros(0, dtype=np.int64)
        #: columns in no instance (split: fixed, of no period), read at their fixed value
        self._outside = np.zeros(0, dtype=np.int64)
        #: each family's coefficients as loaded (family start → matrix)
        self._loaded: dict[int, sp.csr_matrix] = {}
        self.load_s = 0.0
        self._load()

    @staticmethod
    def splits(lp: LinearProgram, decompose: bool = True) -> bool:
        """Whether ``lp`` is loaded as one instance per period (:attr:`LinearProgram.
        separable`): the rows that link its periods, when their columns are all fixed, are
        left out."""
        return bool(decompose and lp.n_periods > 1 and lp.separable)

    @property
    def parts(self) -> int:
        return len(self._parts)

    # -- loading --------------------------------------------------------------------------

    def _load(self) -> None:
        t0 = time.perf_counter()
        lp = self.lp
        n = lp.n_cols
        if self.split:
            order = np.argsort(lp.col_period, kind="stable")
            bounds = np.searchsorted(lp.col_period[order], np.arange(lp.n_periods + 1))
            groups = [order[bounds[t] : bounds[t + 1]] for t in range(lp.n_periods)]
            periods = list(range(lp.n_periods))
        else:
            groups, periods = [np.arange(n, dtype=np.int64)], [-1]
        self._local = np.full(n, -1, dtype=np.int64)
        for t, cols in zip(periods, groups, strict=True):
            self._local[cols] = np.arange(cols.size)
            part = _Part(t, _new_highs(), cols.astype(np.int64), coupled=t < 0 and lp.n_periods > 1)
            part.lower, part.upper = lp.col_lower[cols].copy(), lp.col_upper[cols].copy()
            part.cost = lp.cost[cols].copy()
            h = part.highs
            h.addVars(cols.size, part.lower, part.upper)
            if cols.size:
                h.changeColsCost(cols.size, np.arange(cols.size, dtype=np.int32), part.cost)
            self._parts.append(part)
        self._outside = np.flatnonzero(self._local < 0)
        for block in lp.blocks:
            self._add_block(block)
        self.load_s += time.perf_counter() - t0

    def _add_block(self, block: RowBlock) -> None:
        """Add a family's rows to the instances that hold them: the rows sorted by period
        once, each instance's share a contiguous slice of the sorted matrix."""
        n = block.rows.size
        self._loaded[block.rows.start] = block.matrix
        matrix = sp.csr_matrix(
            (block.matrix.data, block.matrix.indices, block.matrix.indptr),
            shape=(n, self.lp.n_cols),
        )
        if self.split:
            order = np.argsort(block.period, kind="stable")
            matrix = matrix[order]
            bounds = np.searchsorted(block.period[order], np.arange(len(self._parts) + 1))
        else:
            order, bounds = np.arange(n, dtype=np.int64), np.array([0, n])
        indptr = matrix.indptr.astype(np.int64)
        local_cols = self._local[matrix.indices].astype(np.int32)
        for k, part in enumerate(self._parts):
            part.versions[block.rows.start] = block.version
            a, b = int(bounds[k]), int(bounds[k + 1])
            if a == b:
                continue
            local_rows = order[a:b]
            first, last = indptr[a], indptr[b]
            lo, hi = block.lower[local_rows], block.upper[local_rows]
            part.highs.addRows(
                b - a,
                lo,
                hi,
                int(last - first),
                (indptr[a:b] - first).astype(np.int32),
                local_cols[first:last],
                matrix.data[first:last],
            )
            part.rows = np.concatenate([part.rows, block.rows.start + local_rows])
            part.row_lower = np.concatenate([part.row_lower, lo])
            part.row_upper = np.concatenate([part.row_upper, hi])

    def _delete_block(self, block: RowBlock) -> None:
        lo, hi = block.rows.start, block.rows.start + block.rows.size
        for part in self._parts:
            where = np.flatnonzero((part.rows >= lo) & (part.rows < hi))
            if where.size:
                part.highs.deleteRows(where.size, where.astype(np.int32))
                keep = np.ones(part.rows.size, dtype=bool)
                keep[where] = False
                part.rows = part.rows[keep]
                part.row_lower = part.row_lower[keep]
                part.row_upper = part.row_upper[keep]

    def _replace_block(self, block: RowBlock) -> None:
        """Replace a family's rows (new coefficients, same rows) and keep each instance's
        basis, the rows keeping the status they had. HiGHS drops its basis when rows are
        deleted, and starting again from the slack basis cost as many simplex iterations as a
        cold solve (case33bw, the loss rows of 96 periods re-linearised: 5,400 iterations
        against 6 for new bid prices; 1-MV-semiurb--2-sw with storage optimised, one 91k-row
        window: 10-11 s per re-solve from scratch with presolve against 0.3-2 s warm).

        Where that costs less (:func:`_in_place_pays`), only the coefficients that changed (a
        loss line's new slope) are written, in place; HiGHS keeps the basis as it is."""
        if self._change_coefficients(block):
            return
        lo, hi = block.rows.start, block.rows.start + block.rows.size
        saved = []
        for part in self._parts:
            where = np.flatnonzero((part.rows >= lo) & (part.rows < hi))
            basis = part.highs.getBasis() if where.size else None
            saved.append((where, basis if basis is not None and basis.valid else None))
        self._delete_block(block)
        self._add_block(block)
        for part, (where, basis) in zip(self._parts, saved, strict=True):
            part.replaced = part.replaced or bool(where.size)
            if basis is None:
                continue
            status = np.array(basis.row_status, dtype=object)
            keep = np.ones(status.size, dtype=bool)
            keep[where] = False
            # the family's rows went to the end of the instance, in the order they had
            basis.row_status = np.concatenate([status[keep], status[where]]).tolist()
            part.highs.setBasis(basis)

    def _change_coefficients(self, block: RowBlock) -> bool:
        """Write the coefficients in which ``block`` differs from what was loaded into the
        instances in place (a zero removes one); ``False`` when deleting the rows and adding
        them again costs less (:func:`_in_place_pays`)."""
        old, new = self._loaded.get(block.rows.start), block.matrix
        if old is None or old.shape != new.shape:
            return False
        diff = (new - old).tocoo()
        changed = diff.data != 0
        row, gcol = diff.row[changed].astype(np.int64), diff.col[changed].astype(np.int64)
        if not row.size:
            self._mark_loaded(block)
            return True
        value = np.asarray(new[row, gcol]).ravel()
        # a coefficient that appears or goes moves every one after it in HiGHS's matrix
        moved = (np.asarray(old[row, gcol]).ravel() == 0) | (value == 0)
        lo, hi = block.rows.start, block.rows.start + block.rows.size
        part_of = np.full(block.rows.size, -1, dtype=np.int64)
        local_row = np.zeros(block.rows.size, dtype=np.int64)
        for k, part in enumerate(self._parts):
            where = np.flatnonzero((part.rows >= lo) & (part.rows < hi))
            part_of[part.rows[where] - lo] = k
            local_row[part.rows[where] - lo] = where
        parts = part_of[row]
        inside = parts >= 0  # a row left out of a split program (it links fixed columns)
        row, gcol, value, moved, parts = (
            row[inside],
            gcol[inside],
            value[inside],
            moved[inside],
            parts[inside],
        )
        touched = np.unique(parts).tolist()
        n_changed = np.bincount(parts, minlength=len(self._parts))
        n_moved = np.bincount(parts[moved], minlength=len(self._parts))
        nnz = np.array([self._parts[k].highs.getNumNz() for k in touched], dtype=np.int64)
        if not _in_place_pays(n_changed[touched], n_moved[touched], nnz, block.rows.size):
            return False
        col = self._local[gcol]
        for k in touched:
            at = np.flatnonzero(parts == k)
            part = self._parts[k]
            change = part.highs.changeCoeff
            for r, c, v in zip(
                local_row[row[at]].tolist(), col[at].tolist(), value[at].tolist(), strict=True
            ):
                change(r, c, v)
            part.replaced = True
        self._mark_loaded(block)
        return True

    def _mark_loaded(self, block: RowBlock) -> None:
        for part in self._parts:
            part.versions[block.rows.start] = block.version
        self._loaded[block.rows.start] = block.matrix

    # -- bases ----------------------------------------------------------------------------

    def basis(self) -> Basis | None:
        """The basis every instance ended its last solve with (``None`` before a solve, or
        when an instance has none)."""
        lp = self.lp
        cols = np.full(lp.n_cols, _LOWER, dtype=np.int8)
        rows = np.full(lp.n_rows, _BASIC, dtype=np.int8)
        for part in self._parts:
            b = part.highs.getBasis()
            if not b.valid or part.solves == 0:
                return None
            cols[part.cols] = _codes(b.col_status)
            if part.rows.size:
                rows[part.rows] = _codes(b.row_status)
        return Basis(
            {
                k: cols[c.start : c.start + c.size]
                for k, c in zip(_keyed(lp.col_names), lp.col_names, strict=True)
            },
            {
                k: rows[b.rows.start : b.rows.start + b.rows.size]
                for k, b in zip(_keyed([b.rows for b in lp.blocks]), lp.blocks, strict=True)
            },
        )

    def start_from(self, basis: Basis) -> bool:
        """Give every instance ``basis`` (:class:`Basis`: matched by family) to start its first
        solve from; ``False`` when no family matched or HiGHS refused it (the solve then starts
        from nothing, as without one)."""
        lp = self.lp
        cols = np.where(
            np.isfinite(lp.col_lower), _LOWER, np.where(np.isfinite(lp.col_upper), _UPPER, _ZERO)
        ).astype(np.int8)
        rows = np.full(lp.n_rows, _BASIC, dtype=np.int8)
        matched = 0
        for key, c in zip(_keyed(lp.col_names), lp.col_names, strict=True):
            got = basis.cols.get(key)
            if got is not None:
                cols[c.start : c.start + c.size] = got
                matched += 1
        for key, b in zip(_keyed([b.rows for b in lp.blocks]), lp.blocks, strict=True):
            got = basis.rows.get(key)
            if got is not None:
                rows[b.rows.start : b.rows.start + b.rows.size] = got
                matched += 1
        if not matched:
            return False
        self.sync()
        for part in self._parts:
            if part.solves:
                continue
            seed = highspy.HighsBasis()
            seed.col_status = _STATUSES[cols[part.cols]].tolist()
            seed.row_status = _STATUSES[rows[part.rows]].tolist()
            basic = int((cols[part.cols] == _BASIC).sum() + (rows[part.rows] == _BASIC).sum())
            seed.alien = basic != part.rows.size  # not square: HiGHS makes it a basis
            seed.valid = True
            if part.highs.setBasis(seed) != highspy.HighsStatus.kOk:
                part.highs.clearSolver()
                return False
            part.seeded = True
        return True

    # -- changes --------------------------------------------------------------------------

    def sync(self) -> None:
        """Push every change made to the program since the last solve."""
        t0 = time.perf_counter()
        lp = self.lp
        if lp.n_cols != self._local.size:
            raise SolverError("columns were added after the program was loaded")
        first = self._parts[0].versions if self._parts else {}
        for block in lp.blocks:
            loaded = first.get(block.rows.start)
            if loaded is None:
                self._add_block(block)
            elif loaded != block.version:
                self._replace_block(block)
        row_lower = np.concatenate([b.lower for b in lp.blocks]) if lp.blocks else np.zeros(0)
        row_upper = np.concatenate([b.upper for b in lp.blocks]) if lp.blocks else np.zeros(0)
        for part in self._parts:
            h, cols = part.highs, part.cols
            lo, hi, c = lp.col_lower[cols], lp.col_upper[cols], lp.cost[cols]
            changed = np.flatnonzero((lo != part.lower) | (hi != part.upper))
            if changed.size:
                h.changeColsBounds(changed.size, changed.astype(np.int32), lo[changed], hi[changed])
                part.lower, part.upper = lo, hi
            changed = np.flatnonzero(c != part.cost)
            if changed.size:
                h.changeColsCost(changed.size, changed.astype(np.int32), c[changed])
                part.cost = c
            rlo, rhi = row_lower[part.rows], row_upper[part.rows]
            changed = np.flatnonzero((rlo != part.row_lower) | (rhi != part.row_upper))
            if changed.size:
                h.changeRowsBounds(  # type: ignore[attr-defined]
                    changed.size, changed.astype(np.int32), rlo[changed], rhi[changed]
                )
                part.row_lower, part.row_upper = rlo, rhi
        self.load_s += time.perf_counter() - t0

    # -- solving --------------------------------------------------------------------------

    def solve(self) -> Solution | None:
        """Solve every part; ``None`` when the program is infeasible. Raises
        :class:`SolverError` when HiGHS reaches neither an optimum nor infeasibility, even
        after a cold retry."""
        self.sync()
        t0 = time.perf_counter()
        parts = self._parts
        if len(parts) > 1 and self.threads > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                statuses = list(pool.map(_run, parts))
        else:
            statuses = [_run(p) for p in parts]
        retried: list[str] = []
        for part, status in zip(parts, statuses, strict=True):
            if status == _OPTIMAL or status in _INFEASIBLE:
                continue
            first = part.highs.modelStatusToString(status)
            status = _run(part, cold=True)
            where = f"period {part.period}" if part.period >= 0 else "the window"
            if status != _OPTIMAL and status not in _INFEASIBLE:
                raise SolverError(
                    f"HiGHS stopped without an optimal solution for {where}: "
                    f"{part.highs.modelStatusToString(status)} (first {first}, then again from "
                    "scratch with presolve)"
                )
            retried.append(f"{where}: {first}, solved again from scratch")
            statuses[parts.index(part)] = status
        solve_s = time.perf_counter() - t0
        if any(s in _INFEASIBLE for s in statuses):
            return None
        return self._read(solve_s, tuple(retried))

    def infeasible_periods(self) -> tuple[int, ...]:
        """Periods whose part was infeasible in the last solve (-1: the whole window)."""
        return tuple(p.period for p in self._parts if p.status == "infeasible")

    def _read(self, solve_s: float, retried: tuple[str, ...]) -> Solution:
        lp = self.lp
        primal = np.zeros(lp.n_cols)
        col_dual = np.zeros(lp.n_cols)
        # rows left out of a split program (linking fixed columns) price nothing
        row_dual = np.zeros(lp.n_rows)
        out = self._outside
        primal[out] = lp.col_lower[out]
        objective = lp.offset + float(lp.cost[out] @ primal[out])
        iterations = 0
        for part in self._parts:
            sol = part.highs.getSolution()
            primal[part.cols] = sol.col_value
            col_dual[part.cols] = sol.col_dual
            if part.rows.size:
                row_dual[part.rows] = sol.row_dual
            info = part.highs.getInfo()
            objective += info.objective_function_value
            iterations += int(info.simplex_iteration_count)
        return Solution(float(objective), primal, row_dual, col_dual, solve_s, retried, iterations)


#: seconds per coefficient changed in place, per coefficient moved in an instance's matrix
#: when one appears or goes, and per row deleted and added again (reading and writing back
#: its basis status is most of it), as measured: 1-MV-semiurb--2-sw's loss rows re-linearised
#: (11,424 rows in 96 instances of ~3,400 coefficients) took 41 ms in place and 63 ms deleted
#: and added again; the 10,453-bus network's first re-linearisation (10,452 coefficients
#: appearing in one instance of 178,029) 1.33 s in place and 57 ms the other way, its next
#: ones (values only) 13 ms in place
_CHANGE_S, _SHIFT_S, _READD_S = 1.2e-6, 7e-10, 5.5e-6


def _in_place_pays(
    changed: npt.NDArray[np.int64],
    moved: npt.NDArray[np.int64],
    nnz: npt.NDArray[np.int64],
    rows: int,
) -> bool:
    """Whether changing a family's coefficients in place (``changed`` per instance, ``moved``
    of them appearing or going in an instance of ``nnz`` coefficients) costs less than
    deleting its ``rows`` and adding them again (which also moves each instance's matrix once
    to take them out and once to put them back)."""
    in_place = _CHANGE_S * float(changed.sum()) + _SHIFT_S * float((moved * nnz).sum())
    again = _READD_S * rows + 2 * _SHIFT_S * float(nnz.sum())
    return in_place <= again


def _run(part: _Part, cold: bool = False) -> highspy.HighsModelStatus:
    h = part.highs
    if cold:
        # from scratch: no basis, default options (a limit set on the instance goes too)
        h.clearSolver()
        h.resetOptions()
        _quiet(h)
        h.setOptionValue("presolve", "on")
    # a large whole window's first solve has no basis to start from: the interior point
    # method with crossover (its cleanup priced with Devex, below). On the 10,453-bus network's
    # period it took 3.0-3.2 s at noon (50,566 rows) and 3.3-3.5 s at midnight (41,810 rows);
    # the dual simplex with Devex 4.2-4.8 s (18,249 iterations) and 2.6-2.8 s (13,001): the
    # interior point method's time varies less with the program. On 1-MV-semiurb--2-sw's
    # storage window (91k rows) the two were level (10.7 s against 10.1 s); the dual simplex
    # with its default steepest edge took 4.0 s on the large period and 86 s on an earlier form
    # of that window
    first_whole = (
        part.period < 0
        and part.solves == 0
        and not part.seeded
        and not cold
        and h.getNumRow() > LARGE_WINDOW_ROWS
    )
    if first_whole:
        h.setOptionValue("solver", "ipm")
    # a re-solve starts from the last optimum, most often a few hundred iterations away:
    # Devex pricing, whose weights cost nothing to set up. The default dual steepest edge first
    # computes exact weights for the whole basis: 0.3-0.4 s of a 0.45 s cut round on
    # 1-MV-semiurb--2-sw's storage window (100k rows), 2.5 s of a re-linearised solve of 8
    # iterations on the 10,453-bus network's one period. Only a window whose periods are linked
    # moves far when its loss lines are re-linearised (the storage follows them from period to
    # period: thousands of iterations); there the steepest edge's fewer iterations are worth
    # its set-up
    devex = (part.solves > 0 or first_whole) and not cold and not (part.replaced and part.coupled)
    h.setOptionValue("simplex_dual_edge_weight_strategy", 1 if devex else -1)
    h.run()
    if first_whole:
        h.setOptionValue("solver", "choose")
    part.solves += 1
    part.replaced = False
    status: highspy.HighsModelStatus = h.getModelStatus()
    part.status = (
        "optimal" if status == _OPTIMAL else "infeasible" if status in _INFEASIBLE else "other"
    )
    return status
