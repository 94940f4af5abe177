"""``clear``: solve, check with an AC power flow, re-linearise, price, settle, assemble.

The engine is a short loop of steps on values:

1. **linearise** at a starting operating point — the previous clearing's AC point when there
   is one (a re-clear, the next interval of a study), else the profiles' (every bid accepted);
2. **solve** the linear program (on infeasibility: solve it elastic and say where it had to
   shed, curtail or relax);
3. **AC check** the dispatch with the AC power flow;
4. stop when the limits hold and the linear losses agree with the AC ones (``converged``), at
   ``max_iterations`` (``iteration-limit``), or when a further step cannot reduce the violations
   (``no-improvement``); otherwise **re-linearise** around the AC result — voltage offsets, the
   loss planes (replaced, never piled up), re-rated ratings, thermal cuts, thermal rows where
   branches came near their limits, or a new AC expansion on a meshed feeder — and solve again;
5. **price** from the duals, **settle**, and **assemble** the result of the best iteration.

The linearisation state (:class:`OperatingPoint`) is plain data, so an elastic re-solve or a
meshed rebuild re-applies it to a freshly built program.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from feederdao.domain.clearing import (
    AcCheck,
    ClearingOptions,
    ClearingResult,
    Setpoint,
    SolverStats,
    WholesalePrices,
)
from feederdao.domain.market import Bid, Participant, Side
from feederdao.domain.network import NetworkView
from feederdao.domain.params import GridParameters
from feederdao.domain.powerflow import AcChecker, Linearisation, Lineariser, PowerFlowResult
from feederdao.domain.profiles import Profiles
from feederdao.errors import InfeasibleClearingError, NetworkDataError
from feederdao.optimizer.data import MarketData, prepare
from feederdao.optimizer.devices import add_capability_rows, update_pv_offers
from feederdao.optimizer.highs import LARGE_WINDOW_ROWS, Basis
from feederdao.optimizer.limits import (
    add_thermal_cuts,
    add_thermal_rows,
    allowed_loading_percent,
)
from feederdao.optimizer.lp import FloatArray
from feederdao.optimizer.market import block_cost
from feederdao.optimizer.model import ClearingModel, Dispatch, Extension, build
from feederdao.optimizer.network import loss_plane, relinearise_losses, set_reactive_losses
from feederdao.optimizer.prices import decompose, decompose_meshed
from feederdao.optimizer.settlement import settle
from feederdao.optimizer.topology import Topology, topology


@dataclass
class OperatingPoint:
    """Where the linear model is linearised: the AC flows it was corrected with, the thermal
    rows written so far and the ratings they hold, and (meshed) the net consumption the AC
    expansion was taken at."""

    flow: PowerFlowResult | None = None
    v_lp: FloatArray | None = None  # the LP's |V|² at that point (radial)
    thermal_keys: frozenset[tuple[int, int]] = frozenset()
    s_eff: FloatArray | None = None
    consumption: tuple[FloatArray, FloatArray] | None = None
    #: the flow is the profiles' (not a cleared dispatch's): its losses are taken as they are,
    #: without the planes' slopes, which would point the wrong way far from the dispatch
    guess: bool = False
    #: the AC flows of the step before (radial): the loss planes become secants through both
    previous: PowerFlowResult | None = None
    #: [t, k] branch-periods whose last solve sat where its loss line crossed zero
    pinned: npt.NDArray[np.bool_] | None = None
    #: (period, unit) pairs with storage capability rows
    capability_keys: frozenset[tuple[int, int]] = frozenset()
    #: optimised storage (radial): the net power (charge − discharge, MW ``[t, unit]``) of the
    #: step before and how far the next solve may move from it. Free in a clearing's first
    #: solve, the band narrows by ``BAND_SHRINK`` at every re-linearisation: without it the
    #: storage follows each new set of loss lines to other periods and back, and the loop
    #: never settles
    storage_band: tuple[FloatArray, FloatArray] | None = None
    #: optimised storage held at a dispatch (charge, discharge, state of charge ``[t, unit]``)
    #: from the solve within its first band on: nothing links the periods then, and the
    #: program splits into one small program per period (the band is what a hold falls back
    #: to when a period cannot be met with the storage held, and what the loop's last solve
    #: lets it go within)
    storage_hold: tuple[FloatArray, FloatArray, FloatArray] | None = None
    #: [n, 3] tangent cuts (k, t, angle) of the thermal circles, in the order they were found
    thermal_cuts: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))


def bus_consumption(data: MarketData, d: Dispatch) -> tuple[FloatArray, FloatArray]:
    """Net consumption per [period, bus] of a dispatch, for the AC check."""
    p = data.fixed_p_mw - d.shed_mw + d.spill_mw
    q = data.fixed_q_mvar.copy()
    bl = data.blocks
    np.add.at(p, (bl.period, bl.bus_pos), np.where(bl.is_buy, 1.0, -1.0) * d.accepted_mw)
    st = np.array([u.bus_pos for u in data.storage], dtype=np.int64)
    np.add.at(p.T, st, (d.charge_mw - d.discharge_mw).T)
    np.add.at(q.T, st, -d.q_storage_mvar.T)
    np.add.at(p.T, np.array([f.bus_pos for f in data.flex], dtype=np.int64), d.flex_mw.T)
    np.add.at(q.T, np.array([i.bus_pos for i in data.inverters], dtype=np.int64), -d.q_pv_mvar.T)
    return p, q


def profile_consumption(data: MarketData) -> tuple[FloatArray, FloatArray]:
    """Net bus consumption with every bid fully accepted and storage idle: the operating point
    the profiles describe, where the first linearisation is taken."""
    p = data.fixed_p_mw.copy()
    bl = data.blocks
    np.add.at(p, (bl.period, bl.bus_pos), np.where(bl.is_buy, 1.0, -1.0) * bl.quantity)
    return p, data.fixed_q_mvar.copy()


_P = ParamSpec("_P")
_R = TypeVar("_R")


#: how the storage band narrows: both its half-width after a free solve (a share of each
#: converter's rating) and at every re-linearisation after (a share of the last). A quarter,
#: against the half it was: on ten 1-MV-semiurb--2-sw days (January, April, July) with 114
#: units optimised the loop took 4-5 iterations instead of 6-8 and the days 0.24-0.85 of the
#: time (each re-solve moves the storage less; with the lifted-line test of ``_marginal``),
#: for 0.004-0.036 % less welfare (the band holds the storage nearer the first solve's
#: dispatch)
BAND_SHRINK = 0.25
#: simplex iterations per storage unit and period of a solve within a band beyond which the
#: storage is held (1-MV-semiurb--2-sw, 114 units: 2,300-8,600 iterations after the first
#: re-linearisation on fourteen days, which took 0.72 of the time held; 1-MV-urban--2-sw's
#: bench day 268, its next re-solve 457, where holding and letting go cost 0.7 s more)
HOLD_ITERATIONS = 0.05

_gc_lock = threading.Lock()
_gc_holders = 0  # clearings running now, in any thread
_gc_resume = False  # whether the collector ran before the first of them paused it


def _gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with the cyclic garbage collector paused (as Pyomo pauses it while it builds
    a model). A clearing allocates tens of thousands of objects that outlive it (bids' blocks,
    setpoints, result rows) and frees hardly any cycles, and the collector's full passes over
    everything else the process holds (networks, profiles, books) fell inside it: on
    1-MV-semiurb--2-sw one clearing in three read its result in 0.25-0.33 s instead of
    0.05-0.13 s. The collector is process-wide: it is paused by the first clearing that starts
    and runs again when the last one running (in any thread) returns or fails, unless it was
    paused before. Reference counting frees what a clearing drops meanwhile."""

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        global _gc_holders, _gc_resume
        with _gc_lock:
            if _gc_holders == 0:
                _gc_resume = gc.isenabled()
                gc.disable()
            _gc_holders += 1
        try:
            return fn(*args, **kwargs)
        finally:
            with _gc_lock:
                _gc_holders -= 1
                if _gc_holders == 0 and _gc_resume:
                    gc.enable()

    return paused


class ClearingEngine:
    """A clearing kept for one feeder and window; ``run`` clears, ``rebid`` re-clears."""

    @_gc_paused
    def __init__(
        self,
        view: NetworkView,
        profiles: Profiles,
        bids: Sequence[Bid],
        participants: Sequence[Participant],
        params: GridParameters | None = None,
        wholesale: WholesalePrices | None = None,
        options: ClearingOptions | None = None,
        extensions: Sequence[Extension] = (),
        start: PowerFlowResult | None = None,
        warm: Basis | None = None,
    ) -> None:
        self.view = view
        self.participants = tuple(participants)
        self.params = params or GridParameters()
        self.options = options or ClearingOptions()
        self.extensions = tuple(extensions)
        self.notes: tuple[str, ...] = profiles.notes
        if wholesale is None:
            first = (profiles.start.hour * 60 + profiles.start.minute) // profiles.resolution_min
            wholesale = WholesalePrices.day_shape(profiles.n_periods, first)
            self.notes += (
                "no wholesale prices given: a placeholder day shape was used for the substation's "
                "import and export prices",
            )
        self.bids = tuple(bids)
        self._profiles = profiles
        self.data = prepare(
            view, profiles, self.bids, self.participants, self.params, wholesale, self.options
        )
        self.topo: Topology = topology(view)
        self.point = OperatingPoint(flow=start)
        self.model: ClearingModel | None = None
        #: where a new program's first solve starts: the basis of the program it replaces, or
        #: one given (the same feeder's clearing of the day before: :meth:`basis`)
        self._warm = warm
        self._lin_source: Lineariser | None = None
        self._checking = False
        self._hash = _provenance_hash(
            view, self.bids, self.params, wholesale, self.options, self.extensions
        )

    # -- public ---------------------------------------------------------------------------

    def basis(self) -> Basis | None:
        """The basis the last solve ended with: the next clearing of this feeder (the next
        day's, a new book's) starts its first solve from it (``warm``)."""
        model = self.model
        if model is None or model.solver is None:
            return None
        if model.solver.split and model.window_basis is not None:
            return model.window_basis  # the window's, not its periods' with the storage held
        return model.solver.basis()

    @_gc_paused
    def rebid(self, bids: Sequence[Bid], ac: AcChecker | None) -> ClearingResult:
        """Clear a new book on the same feeder and window, starting from the last AC point.

        When the book has the same shape (blocks at the same buses, periods, sides and devices:
        the rolling-interval case) only quantities and prices change in the kept program and in
        HiGHS; otherwise the program is rebuilt."""
        new = prepare(
            self.view,
            self._profiles,
            tuple(bids),
            self.participants,
            self.params,
            self.data.wholesale,
            self.options,
        )
        old = self.data.blocks
        same = (
            len(new.blocks) == len(old)
            and np.array_equal(new.blocks.bus_pos, old.bus_pos)
            and np.array_equal(new.blocks.period, old.period)
            and np.array_equal(new.blocks.is_buy, old.is_buy)
            and new.blocks.device == old.device
            and new.blocks.participant == old.participant
            and np.array_equal(new.fixed_p_mw, self.data.fixed_p_mw)
        )
        self.bids = tuple(bids)
        self.data = new
        self._hash = _provenance_hash(
            self.view, self.bids, self.params, new.wholesale, self.options, self.extensions
        )
        model = self.model
        if same and model is not None and model.radial is not None:
            model.data = new
            model.lp.set_cols(
                model.bids, upper=new.blocks.quantity, cost=new.period_hours * block_cost(new)
            )
            update_pv_offers(model.lp, new, model.inverters, model.ties)
        else:
            self._warm = self.basis() or self._warm
            self.model = None
        return self.run(ac)

    @_gc_paused
    def run(self, ac: AcChecker | None) -> ClearingResult:
        t_start = time.perf_counter()
        opts, view, data = self.options, self.view, self.data
        allowed = allowed_loading_percent(view, data)
        meshed = not view.is_radial
        lineariser = _lineariser(ac) if meshed else None
        if meshed and lineariser is None:
            raise NetworkDataError(
                f"network {view.name!r} is meshed: its clearing is linearised around an AC "
                "operating point and needs an AC evaluator (it is never treated as radial)"
            )
        checking = ac is not None and opts.ac_check
        self._lin_source = lineariser
        self._checking = checking
        timer = _Timer()
        # 1. linearise at the starting point
        with timer("ac"):
            start = self._starting_point(ac, lineariser, checking)
        model = self._model(start, timer)
        point = best_point = start  # where the program was linearised, and the best one's
        # 2.–4. solve, check, re-linearise
        best: tuple[float, Dispatch, PowerFlowResult | None, AcCheck, tuple[str, ...]] | None
        best = None
        iterations, solves, stopped = 0, 0, "not-checked"
        previous: float | None = None
        previous_merit: float | None = None
        merits: list[float] = []
        added, stalled, released, let_go = False, 0, False, False
        notes: list[str] = []
        status = "optimal"
        while True:
            iterations += 1
            dispatch, shortfalls, model = self._solve(model, timer)
            solves += 1
            notes.extend(dispatch.retried)
            if model.is_elastic and dispatch.elastic_used:
                status = "elastic"
            if not (checking or meshed) or ac is None:
                check = AcCheck(False, 0, float("nan"), float("nan"), float("nan"), ())
                best = (0.0, dispatch, None, check, shortfalls)
                break
            with timer("ac"):
                flow = ac(*bus_consumption(data, dispatch))
            check = self._evaluate(model, dispatch, flow, allowed, iterations)
            merit = _merit(model, check, flow, allowed, opts)
            progress = previous is None or merit < previous * (1.0 - 1e-3) - 1e-12
            # back at a merit of an earlier step that was not the best: the linearisation goes
            # round a cycle (1-MV-comm--2-no_sw's re-clear alternated between two dispatches
            # until the iteration limit)
            # (meshed only: a radial program also carries re-ratings, cuts and a storage band
            # from step to step, so an equal merit need not mean an equal program)
            cycled = (
                meshed
                and best is not None
                and merit > best[0]
                and any(abs(merit - m) <= 1e-9 * max(abs(m), 1e-12) for m in merits[:-1])
            )
            merits.append(merit)
            previous_merit, previous = previous, merit
            if best is None or merit <= best[0]:
                best = (merit, dispatch, flow, check, shortfalls)
                # with the capability rows its solve wrote (kept on the engine's point)
                best_point = replace(point, capability_keys=self.point.capability_keys)
            near = self._near_thermal(model, flow, allowed, 0.9)
            marginal = (
                self._marginal(model, dispatch, flow)
                and not _pinned(dispatch, flow, opts.loss_tolerance_mw).any()
            )
            rated = not self._under_rated(model, dispatch, flow, allowed).any()
            # held storage is a price-taker: the loop lets it go within its band for its last
            # solve, so that where a unit is marginal its value sets the prices
            held = self.point.storage_hold is not None
            ready = check.feasible and not near and marginal and rated
            if ready and not held:
                if released:  # the result is the solve that let the storage go
                    best = (merit, dispatch, flow, check, shortfalls)
                stopped = "converged"
                break
            if iterations >= opts.max_iterations:
                stopped = "iteration-limit"
                break
            # two steps in a row that only moved the linearisation and did not help will not
            # help next time (a step that added thermal rows changed the problem: no guide)
            # (a dispatch within every limit is never stalled: what is left — loss factors not
            # yet marginal, a line at its zero crossing — each step moves on)
            stalled = 0 if progress or added or merit == 0.0 else stalled + 1
            stuck = stalled >= 2 or (stalled and merit == previous_merit) or (cycled and not added)
            # a hold needs a step held and one more to let the storage go: where the loop would
            # stop on a held solve (ready, stuck, or one step left) the storage is let go, and
            # held no more in this run (else it would go round holding and letting go)
            no_room = iterations + 2 > opts.max_iterations
            release = held and (ready or stuck or no_room)
            if stuck and not release:
                stopped = "no-improvement"
                break
            if release:
                stalled = 0
            let_go = let_go or release
            added, released = bool(near), release
            with timer("ac"):
                self.point = self._next_point(
                    model, dispatch, flow, allowed, near, lineariser, let_go or no_room
                )
            point = self.point
            model = self._model(self.point, timer)
        assert best is not None
        _, dispatch, final, check, shortfalls = best
        if check.performed:
            check = replace(check, iterations=iterations, stopped=stopped)
        if final is not None and stopped == "converged" and model.radial is not None:
            # a re-clear starts from the program as it converged: its loss lines and voltage
            # offsets already agree with the AC flows, so a book that moves little converges at
            # the first solve (re-linearised at the result's AC point instead, the same book
            # took three)
            self.point = replace(
                self.point,
                consumption=bus_consumption(data, dispatch),
                storage_band=None,
                storage_hold=None,
            )
        elif final is not None and model.radial is None and stopped != "converged":
            # a meshed loop that did not converge: a re-clear starts where its best program was
            # linearised (from the result's AC point, 1-MV-comm--2-no_sw's re-clear of a new
            # book ended with three times the loss error of a fresh clearing of that book)
            self.point = replace(best_point, storage_band=None, storage_hold=None)
        elif final is not None:
            # otherwise a re-clear starts at the result's AC point
            self.point = replace(
                self.point,
                previous=self.point.flow if model.radial is not None else None,
                guess=False,
                flow=final,
                v_lp=dispatch.v_pu2 if model.radial is not None else None,
                consumption=bus_consumption(data, dispatch),
                storage_band=None,
                storage_hold=None,
            )
        t_read = time.perf_counter()
        result = self._result(model, dispatch, final, check, shortfalls, status, notes)
        timer.add("read", time.perf_counter() - t_read)
        n_var, n_con = model.size
        stats = SolverStats(
            build_s=timer.get("build"),
            solve_s=timer.get("solve"),
            ac_check_s=timer.get("ac"),
            total_s=time.perf_counter() - t_start,
            iterations=max(iterations, 1),
            n_variables=n_var,
            n_constraints=n_con,
            load_s=timer.get("load"),
            read_s=timer.get("read"),
            solves=solves,
            blocks=model.solver.parts if model.solver is not None else 1,
        )
        return replace(result, stats=stats)

    # -- steps ----------------------------------------------------------------------------

    def _starting_point(
        self, ac: AcChecker | None, lineariser: Lineariser | None, checking: bool
    ) -> OperatingPoint:
        """The point of the first linearisation: the kept one, or the profiles'."""
        point = self.point
        if lineariser is not None:
            if point.consumption is None:
                point = replace(point, consumption=profile_consumption(self.data))
            return point
        if not checking or ac is None:
            return point
        flow = point.flow if point.flow is not None else ac(*profile_consumption(self.data))
        v_lp = point.v_lp
        if v_lp is None:
            v_lp = _lindistflow_voltages(self.view, self.topo, flow)
        point = replace(point, flow=flow, v_lp=v_lp, guess=self.point.flow is None)
        allowed = allowed_loading_percent(self.view, self.data)
        near = flow.branch_loading_percent >= 0.5 * allowed[None, :]
        keys = {(int(k), int(t)) for t, k in zip(*np.nonzero(near), strict=True)}
        self.point = replace(point, thermal_keys=point.thermal_keys | frozenset(keys))
        return self.point

    def _model(
        self, point: OperatingPoint, timer: _Timer, elastic: bool | None = None
    ) -> ClearingModel:
        """The program linearised at ``point``: the kept one when it can be updated in place
        (radial), else a new one."""
        data, view = self.data, self.view
        elastic = self.options.elastic if elastic is None else elastic
        model = self.model
        lin = None
        if not view.is_radial:
            assert point.consumption is not None
            lineariser = self._lineariser
            with timer("ac"):
                lin = lineariser.linearise(*point.consumption)
            model = None
        if model is None or model.is_elastic != elastic:
            self._warm = self.basis() or self._warm
            with timer("build"):
                model = build(
                    view, data, self.topo, lin, elastic, self.extensions, self.options.threads
                )
            model.warm = self._warm
        self.model = model
        with timer("build"):
            self._apply(model, point)
        if model.warm is None and model.solver is None:
            model.warm = self._held_basis(model, point, lin, timer)
        return model

    def _held_basis(
        self, model: ClearingModel, point: OperatingPoint, lin: Linearisation | None, timer: _Timer
    ) -> Basis | None:
        """For a large storage-optimised window with no basis to start from: the basis of the
        same program with the storage held at its profile, which splits into one small program
        per period and solves in a fraction of the window's time. The window starts from it
        (the storage's own rows basic, its state of charge at a bound) instead of nothing: on
        1-MV-semiurb--2-sw's day (185,000 rows) 0.5 s for the held program and 2.4 s for the
        window's first solve from its basis (107 dual simplex iterations), against 8.9 s for
        the interior point method and 10 s for the dual simplex from nothing."""
        lp = model.lp
        if (
            self.options.storage != "optimise"
            or model.storage.soc is None
            or self.extensions  # a user's rows may name the storage's state of charge
            or lp.n_rows <= LARGE_WINDOW_ROWS
        ):
            return None
        data = replace(self.data, options=replace(self.options, storage="profile"))
        with timer("build"):
            held = build(
                self.view, data, self.topo, lin, model.is_elastic, (), self.options.threads
            )
            self._apply(held, point)
        if not held.lp.decomposable:  # flexible energy links the periods too
            return None
        t0 = time.perf_counter()
        solved = held.solve()
        self._account(held, timer, t0, True)
        return held.solver.basis() if solved is not None and held.solver is not None else None

    @property
    def _lineariser(self) -> Lineariser:
        if self._lin_source is None:
            raise NetworkDataError("a meshed view needs an AC evaluator that can linearise")
        return self._lin_source

    def _apply(self, model: ClearingModel, point: OperatingPoint) -> None:
        """Write the operating point into the program: voltage offsets, loss planes, reactive
        losses (radial), ratings and thermal rows (both)."""
        lp, view, data, topo = model.lp, self.view, self.data, self.topo
        th = model.thermal
        if point.s_eff is not None:
            th.s_eff = point.s_eff.copy()
        if model.radial is not None and point.flow is not None:
            flow = point.flow
            v_lp = point.v_lp if point.v_lp is not None else flow.vm_pu**2
            model.voltage_offset = flow.vm_pu**2 - v_lp
            model.voltage.apply(lp, model.voltage_offset)
            plane = loss_plane(
                view,
                topo,
                flow.branch_p_from_mw,
                flow.vm_pu[:, topo.from_pos],
                flow.losses_per_branch_p,
                point.previous.branch_p_from_mw if point.previous is not None else None,
                point.pinned,
            )
            if point.guess:
                plane = (flow.losses_per_branch_p, 0.0 * plane[1])
            relinearise_losses(lp, model.radial.flows, model.radial.losses, plane)
            model.loss_factor = plane[1]
            set_reactive_losses(lp, model.balance, data, topo, flow.losses_per_branch_q)
        if not self._checking and model.radial is not None:
            # nothing will find the branches near their limits: write every eligible row
            ts, ks = np.nonzero(th.eligible)
            add_thermal_rows(lp, th, model.flows, zip(ks.tolist(), ts.tolist(), strict=True))
        add_thermal_rows(lp, th, model.flows, point.thermal_keys)
        add_thermal_cuts(lp, th, model.flows, point.thermal_cuts)
        th.apply(lp)
        add_capability_rows(lp, model.storage, point.capability_keys)
        self._apply_storage_band(model, point.storage_band, point.storage_hold)

    @property
    def _storage_p_max(self) -> FloatArray:
        """[1, unit] the storage converters' ratings (MW)."""
        return np.array([u.p_max_mw for u in self.data.storage])[None, :]

    def _apply_storage_band(
        self,
        model: ClearingModel,
        band: tuple[FloatArray, FloatArray] | None,
        hold: tuple[FloatArray, FloatArray, FloatArray] | None = None,
    ) -> None:
        st = model.storage
        if st.soc is None:
            return
        if hold is not None:
            ch, dis, soc = hold
            model.lp.set_cols(st.ch, ch, ch)
            model.lp.set_cols(st.dis, dis, dis)
            model.lp.set_cols(st.soc, soc, soc)
            return
        p_max, units = self._storage_p_max, self.data.storage
        model.lp.set_cols(
            st.soc,
            np.array([u.soc_min_mwh for u in units])[None, :],
            np.array([u.soc_max_mwh for u in units])[None, :],
        )
        if band is None:
            model.lp.set_cols(st.ch, 0.0, p_max)
            model.lp.set_cols(st.dis, 0.0, p_max)
            return
        net, width = band
        lo, hi = np.maximum(net - width, -p_max), np.minimum(net + width, p_max)
        model.lp.set_cols(st.ch, np.maximum(lo, 0.0), np.maximum(hi, 0.0))
        model.lp.set_cols(st.dis, np.maximum(-hi, 0.0), np.maximum(-lo, 0.0))

    def _solve(
        self, model: ClearingModel, timer: _Timer
    ) -> tuple[Dispatch, tuple[str, ...], ClearingModel]:
        """Solve; where a storage converter's (P, Q) left its polygon, write the polygon's rows
        there (cuts: the solver keeps its basis) and solve again; from the fourth round on,
        every period of a unit that left its polygon gets them, and from the seventh every unit's
        (so the eighth solve is inside every polygon)."""
        iterations = 0
        for round_ in range(8):
            d, shortfalls, model = self._solve_once(model, timer)
            iterations += d.iterations
            d = replace(d, iterations=iterations)
            cap = model.storage.capability
            keys = cap.outside(d.charge_mw - d.discharge_mw, d.q_storage_mvar) if cap else set()
            if not keys or cap is None:
                return d, shortfalls, model
            if round_ >= 3:
                units = {u for _, u in keys} if round_ < 6 else set(range(cap.s_mva.size))
                keys = {(t, u) for u in units for t in range(self.data.n_periods)} - cap.written
            add_capability_rows(model.lp, model.storage, keys)
            self.point = replace(
                self.point, capability_keys=self.point.capability_keys | frozenset(keys)
            )
        return d, shortfalls, model

    def _solve_once(
        self, model: ClearingModel, timer: _Timer
    ) -> tuple[Dispatch, tuple[str, ...], ClearingModel]:
        """Solve; when infeasible, solve elastic and raise (or, elastic, return) where it had to
        relax the problem."""
        first_load = model.solver is None
        t0 = time.perf_counter()
        d = model.solve()
        self._account(model, timer, t0, first_load)
        if self.point.storage_hold is not None and (
            d is None or (model.is_elastic and d.elastic_used)
        ):
            # a period that the held storage cannot meet (or, elastic, meets only by shedding,
            # curtailing or relaxing a limit): let it go again, within its band
            self.point = replace(self.point, storage_hold=None)
            self._apply_storage_band(model, self.point.storage_band)
            t0 = time.perf_counter()
            d = model.solve()
            self._account(model, timer, t0, False)
        if d is not None:
            return d, (_shortfalls(self.view, d) if model.is_elastic else ()), model
        elastic = self._model(self.point, timer, elastic=True)
        t0 = time.perf_counter()
        d = elastic.solve()
        self._account(elastic, timer, t0, True)
        if d is None:
            raise InfeasibleClearingError(
                "the clearing is infeasible even with load shedding, curtailment and voltage "
                "slack allowed (check the substation voltage against the voltage band)"
            )
        where = _shortfalls(self.view, d)
        if not self.options.elastic:
            self.model = None
            raise InfeasibleClearingError(
                "no dispatch satisfies the bids, devices and limits; an elastic re-solve needs: "
                + ("; ".join(where) or "nothing it could name"),
                where,
            )
        return d, where, elastic

    @staticmethod
    def _account(model: ClearingModel, timer: _Timer, t0: float, first: bool) -> None:
        total = time.perf_counter() - t0
        solver = model.solver
        load = solver.load_s if solver is not None else 0.0
        if solver is not None:
            solver.load_s = 0.0
        timer.add("load", load)
        timer.add("solve", max(total - load, 0.0))
        del first

    def _marginal(self, model: ClearingModel, d: Dispatch, flow: PowerFlowResult) -> bool:
        """The loss part of the prices is marginal: priced with the marginal loss factors of
        the dispatch's own AC flows (the tangents 2·a·p) bought at their receiving ends' prices
        instead of the loss lines it was solved with at their rows' duals, no bus's price moves
        by more than ``loss_price_tolerance`` of its period's energy price.

        A line's slope rarely lands on its tangent exactly: where two offers at different buses
        are nearly level, the linear program moves the marginal one from a vertex to the next as
        the line follows it, and the slope swings between the two flows' tangents. What matters
        to a buyer is the price that difference makes. A row's dual is its receiving end's price
        wherever the branch loses anything; where its line fell below zero and the loss slack
        lifted it, the dual is the slack's price (the price cap), and the branch's slope prices
        its losses at the cap. That, too, counts by the price it makes: a line lifted by a
        fraction of a watt on a branch whose slope is nearly zero moves no price (on
        1-MV-semiurb--2-sw such a line, lifted by 0.2 W, had kept the loop going to its
        iteration limit)."""
        if model.radial is None or d.loss_dual is None:
            return True  # the AC expansion is taken at each point
        topo, dt = self.topo, self.data.period_hours
        a = topo.r_pu[None, :] / (
            self.view.base_mva * np.maximum(flow.vm_pu[:, topo.from_pos], 0.5) ** 2
        )
        tangent = 2 * a * flow.branch_p_from_mw
        bought = d.balance_p[:, topo.to_pos]  # [t, k]: the receiving end's price
        off = (d.loss_factor * d.loss_dual - tangent * bought) / dt
        moved = np.abs(topo.path @ off.T)  # [bus, t]
        energy = np.abs(d.balance_p[:, topo.root_of].T / dt)  # [bus, t]
        tol = self.options.loss_price_tolerance
        return bool((moved <= tol * energy + 1e-6).all())

    def _near_thermal(
        self, model: ClearingModel, flow: PowerFlowResult, allowed: FloatArray, share: float
    ) -> set[tuple[int, int]]:
        """Eligible branch-periods without rows whose AC loading reaches ``share`` of their
        limit."""
        near = flow.branch_loading_percent >= share * allowed[None, :]
        keys = {(int(k), int(t)) for t, k in zip(*np.nonzero(near), strict=True)}
        eligible = model.thermal.eligible
        return {(k, t) for k, t in keys if eligible[t, k]} - set(model.thermal.written)

    def _ratings(
        self, model: ClearingModel, d: Dispatch, flow: PowerFlowResult, allowed: FloatArray
    ) -> FloatArray:
        """The ratings of the next solve (MVA ``[t, k]``): each modelled branch-period the AC
        check found overloaded, or whose row binds while its AC loading stays more than
        ``loading_tolerance_percent`` below the limit, is re-rated by the ratio of the two, so
        that its flow lands just inside the limit as pandapower measures it.

        A rating is a current: the MVA a branch may carry is its rating at nominal voltage
        times the voltage where it is measured. Held to the MVA, an exporting feeder at
        1.025 pu stops 2.4 % short of its transformer's limit (1-LV-rural1--2-sw: 97.9 %, the
        window's welfare 1.1 % below pandapower's AC OPF). Re-rated, never above the limit
        at the band's highest voltage."""
        th = model.thermal
        loading = flow.branch_loading_percent
        over = loading > allowed[None, :]
        under = self._under_rated(model, d, flow, allowed)
        move = (over & th.modelled) | under
        target = th.s_eff * allowed[None, :] / np.maximum(loading, 1e-9) * 0.999
        return np.where(move, np.minimum(target, self._rating_cap(model)), th.s_eff)

    def _rating_cap(self, model: ClearingModel) -> FloatArray:
        """[K]: the highest rating a branch is re-rated to: its limit at the band's top."""
        return model.thermal.limit * max(float(_band(model)[1].max(initial=1.0)), 1.0)

    def _under_rated(
        self, model: ClearingModel, d: Dispatch, flow: PowerFlowResult, allowed: FloatArray
    ) -> npt.NDArray[np.bool_]:
        """[t, k]: modelled branch-periods whose thermal row binds while the AC loading is
        more than ``loading_tolerance_percent`` below the limit, and that a re-rating can still
        loosen."""
        th = model.thermal
        binding = th.modelled & (np.abs(d.thermal[:, :, 2]) > 1e-9)
        slack = (
            flow.branch_loading_percent < allowed[None, :] - self.options.loading_tolerance_percent
        )
        return binding & slack & (th.s_eff < self._rating_cap(model)[None, :] * (1 - 1e-9))

    def _cuts(self, model: ClearingModel, d: Dispatch, flow: PowerFlowResult) -> FloatArray:
        """The point's thermal cuts and a new one, the circle's tangent at the AC flow's angle,
        for every branch-period whose thermal row binds, unless a row of it already lies
        within a hundredth of a radian of that angle."""
        th, old = model.thermal, self.point.thermal_cuts
        t, k = np.nonzero(th.modelled & (np.abs(d.thermal[:, :, 2]) > 1e-9))
        if not t.size:
            return old
        phi = np.arctan2(flow.branch_q_from_mvar[t, k], flow.branch_p_from_mw[t, k])
        sides = np.arctan2(th.shape.sin, th.shape.cos)
        near = _angle_gap(phi[:, None], sides[None, :]).min(axis=1) < 0.01
        if len(old):
            n_k = th.eligible.shape[1]
            same = (t * n_k + k)[:, None] == (old[:, 1] * n_k + old[:, 0])[None, :]
            gap = np.where(same, _angle_gap(phi[:, None], old[None, :, 2]), np.inf)
            near |= gap.min(axis=1) < 0.01
        new = np.column_stack([k, t, phi])[~near]
        return np.concatenate([old, new]) if len(new) else old

    def _next_point(
        self,
        model: ClearingModel,
        d: Dispatch,
        flow: PowerFlowResult,
        allowed: FloatArray,
        near: set[tuple[int, int]],
        lineariser: Lineariser | None,
        unheld: bool = False,
    ) -> OperatingPoint:
        """Re-linearise around the AC result: re-rate the modelled branches the AC check found
        overloaded or short of a binding limit, cut binding circles at the AC angle, add rows
        where branches came near their limits, and move the expansion point to the dispatch
        just checked."""
        s_eff = self._ratings(model, d, flow, allowed)
        keys = frozenset(model.thermal.written) | frozenset(near)
        cuts = self._cuts(model, d, flow)
        if lineariser is not None:
            return OperatingPoint(
                flow,
                None,
                keys,
                s_eff,
                bus_consumption(self.data, d),
                thermal_cuts=cuts,
                capability_keys=self.point.capability_keys,
            )
        pinned = _pinned(d, flow)
        return OperatingPoint(
            flow,
            d.v_pu2,
            keys,
            s_eff,
            None,
            previous=self.point.flow,
            pinned=pinned,
            thermal_cuts=cuts,
            capability_keys=self.point.capability_keys,
            storage_band=self._next_band(model, d),
            storage_hold=None if unheld else self._next_hold(model, d),
        )

    def _next_band(self, model: ClearingModel, d: Dispatch) -> tuple[FloatArray, FloatArray] | None:
        """The storage band of the next solve: around this dispatch, a quarter as wide as
        the last (a quarter of the converter's rating after a free solve)."""
        if model.storage.soc is None or not self.data.storage:
            return None
        last = self.point.storage_band
        wide = np.broadcast_to(self._storage_p_max, d.charge_mw.shape) if last is None else last[1]
        return d.charge_mw - d.discharge_mw, BAND_SHRINK * wide

    def _next_hold(
        self, model: ClearingModel, d: Dispatch
    ) -> tuple[FloatArray, FloatArray, FloatArray] | None:
        """Hold the storage at this dispatch when its solve within a band moved the window
        (more than ``HOLD_ITERATIONS`` simplex iterations per unit and period), or keep
        holding it where it is held. Held from the free first solve on instead, ten
        1-MV-semiurb--2-sw days took 0.71 of the time again for 0.03-0.09 % less welfare
        (against 0.005-0.02 %)."""
        if model.storage.soc is None or not self.data.storage or d.soc_mwh is None:
            return None
        if self.data.flex or self.extensions:
            return None  # flexible energy (or an extension's rows) would link the periods still
        if self.point.storage_hold is not None:
            return self.point.storage_hold
        if self.point.storage_band is None or d.iterations <= HOLD_ITERATIONS * d.soc_mwh.size:
            return None
        if model.lp.n_rows <= LARGE_WINDOW_ROWS:
            # a small window re-solves in less than loading its periods apart costs
            # (1-LV-rural1--2-sw, 5 units: 0.31 s a day as a window, 0.46 s held)
            return None
        return d.charge_mw.copy(), d.discharge_mw.copy(), d.soc_mwh.copy()

    def _evaluate(
        self,
        model: ClearingModel,
        d: Dispatch,
        flow: PowerFlowResult,
        allowed: FloatArray,
        iteration: int,
    ) -> AcCheck:
        view, opts = self.view, self.options
        lo, hi = _band(model)
        nonslack = model.voltage.pos >= 0
        vm = flow.vm_pu
        violations: list[str] = []
        hi_m = (vm > hi[None, :] + opts.voltage_tolerance_pu) & nonslack[None, :]
        lo_m = (vm < lo[None, :] - opts.voltage_tolerance_pu) & nonslack[None, :]
        for mask, word, bound in ((hi_m, "above", hi), (lo_m, "below", lo)):
            for b in np.flatnonzero(mask.any(axis=0)):
                ts = np.flatnonzero(mask[:, b])
                worst = vm[ts, b].max() if word == "above" else vm[ts, b].min()
                violations.append(
                    f"voltage {word} {bound[b]:.3f} pu at {view.buses[b].name} in {len(ts)} "
                    f"period(s) (worst {worst:.4f} pu)"
                )
        over = flow.branch_loading_percent > allowed[None, :] + opts.loading_tolerance_percent
        for k in np.flatnonzero(over.any(axis=0)):
            ts = np.flatnonzero(over[:, k])
            violations.append(
                f"{view.branches[k].kind} {view.branches[k].name} loaded "
                f"{flow.branch_loading_percent[ts, k].max():.1f} % > {allowed[k]:.1f} % in "
                f"{len(ts)} period(s)"
            )
        lp_loss, ac_loss = d.losses_mw, flow.losses_mw
        err = np.abs(lp_loss - ac_loss)
        agree = bool(
            err.max(initial=0.0) <= opts.loss_tolerance_mw
            or abs(lp_loss.sum() - ac_loss.sum())
            <= opts.loss_tolerance_fraction * abs(ac_loss.sum())
        )
        return AcCheck(
            performed=True,
            iterations=iteration,
            max_voltage_error_pu=float(np.abs(d.vm_pu - vm).max(initial=0.0)),
            max_loading_percent=float(flow.branch_loading_percent.max(initial=0.0)),
            loss_error_mw=float(err.max(initial=0.0)),
            violations=tuple(violations),
            losses_agree=agree,
        )

    def _result(
        self,
        model: ClearingModel,
        d: Dispatch,
        flow: PowerFlowResult | None,
        check: AcCheck,
        shortfalls: tuple[str, ...],
        status: str,
        notes: list[str],
    ) -> ClearingResult:
        view, data = self.view, self.data
        if model.radial is not None:
            assert d.voltage_drop is not None
            assert d.loss_dual is not None
            prices = decompose(
                view, self.topo, d, d.loss_factor, d.voltage_drop, d.loss_dual, data.period_hours
            )
        else:
            assert d.lin is not None
            prices = decompose_meshed(view, d.lin, d, data.period_hours)
        settlement = settle(data, self.participants, prices, d, d.s_eff)
        accepted: dict[str, list[float]] = {}
        for bid_id, x in zip(data.blocks.bid_ids, np.round(d.accepted_mw, 9).tolist(), strict=True):
            accepted.setdefault(bid_id, []).append(x)
        rating = np.array([br.rating_mva or np.inf for br in view.branches])
        lp_loading = np.hypot(d.branch_p_mw, d.branch_q_mvar) / rating[None, :] * 100.0
        notes = list(dict.fromkeys([*self.notes, *notes]))
        if view.unsupplied_buses:
            notes.append(
                f"{len(view.unsupplied_buses)} bus(es) not connected to a substation are left "
                f"out of the clearing: {', '.join(view.unsupplied_buses[:10])}"
                + (" …" if len(view.unsupplied_buses) > 10 else "")
            )
        if view.unsupplied_devices:
            notes.append(
                f"{len(view.unsupplied_devices)} device(s) on those buses are left out: "
                + ", ".join(view.unsupplied_devices[:10])
                + (" …" if len(view.unsupplied_devices) > 10 else "")
            )
        return ClearingResult(
            network=view.name,
            status="elastic" if status == "elastic" else "optimal",
            parameters=self.params,
            period_hours=data.period_hours,
            bus_indices=tuple(b.index for b in view.buses),
            bus_names=tuple(b.name for b in view.buses),
            branch_ids=tuple(b.branch_id for b in view.branches),
            branch_names=tuple(b.name for b in view.branches),
            welfare_eur=d.welfare_eur,
            prices=prices,
            accepted_mw={k: tuple(v) for k, v in accepted.items()},
            setpoints=_setpoints(view, data, d),
            lp_vm_pu=d.vm_pu,
            lp_branch_p_mw=d.branch_p_mw,
            lp_branch_q_mvar=d.branch_q_mvar,
            lp_loading_percent=lp_loading,
            ac_vm_pu=flow.vm_pu if flow is not None else None,
            ac_loading_percent=flow.branch_loading_percent if flow is not None else None,
            ac_losses_mw=flow.losses_mw if flow is not None else None,
            ac_slack_p_mw=flow.slack_p_mw if flow is not None else None,
            slack_import_mw=d.import_mw - d.export_mw,
            settlement=settlement,
            ac_check=check,
            binding=_binding(view, d),
            shortfalls=shortfalls,
            stats=SolverStats(0, 0, 0, 0, 0, 0, 0),
            provenance_hash=self._hash,
            notes=tuple(notes),
            storage_soc_mwh=(
                {
                    u.device_id: tuple(np.round(d.soc_mwh[:, i], 9).tolist())
                    for i, u in enumerate(data.storage)
                }
                if d.soc_mwh is not None
                else {}
            ),
        )


def clear(
    view: NetworkView,
    profiles: Profiles,
    bids: Sequence[Bid],
    participants: Sequence[Participant],
    params: GridParameters | None = None,
    wholesale: WholesalePrices | None = None,
    options: ClearingOptions | None = None,
    ac: AcChecker | None = None,
    extensions: Sequence[Extension] = (),
) -> ClearingResult:
    """Clear ``bids`` on ``view`` for the profiles' window; AC-check with ``ac`` if given.

    ``extensions`` are functions that add Pyomo variables, constraints and costs to the
    clearing (:mod:`feederdao.optimizer.extension`)."""
    engine = ClearingEngine(
        view, profiles, bids, participants, params, wholesale, options, extensions
    )
    return engine.run(ac)


# -- helpers ------------------------------------------------------------------------------


class _Timer:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def add(self, key: str, s: float) -> None:
        self.t[key] = self.t.get(key, 0.0) + s

    def get(self, key: str) -> float:
        return self.t.get(key, 0.0)

    def __call__(self, key: str) -> _Span:
        return _Span(self, key)


class _Span:
    def __init__(self, timer: _Timer, key: str) -> None:
        self.timer, self.key = timer, key

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timer.add(self.key, time.perf_counter() - self.t0)


def _lineariser(ac: AcChecker | None) -> Lineariser | None:
    return ac if ac is not None and hasattr(ac, "linearise") else None  # type: ignore[return-value]


def _merit(
    model: ClearingModel,
    check: AcCheck,
    flow: PowerFlowResult,
    allowed: FloatArray,
    opts: ClearingOptions,
) -> float:
    """How far an AC-checked dispatch is from acceptable (0: it is). Limits first: voltage
    beyond the band's tolerance (pu, summed over bus-periods) and loading beyond its tolerance
    (fractions of the limit, summed over branch-periods), weighted 1000; then the largest loss
    error beyond its tolerance (MW), when the losses do not agree."""
    if check.feasible:
        return 0.0
    lo, hi = _band(model)
    keep = model.voltage.pos >= 0
    vm, lo, hi = flow.vm_pu[:, keep], lo[keep], hi[keep]
    tol = opts.voltage_tolerance_pu
    volt = float((np.clip(vm - hi - tol, 0, None) + np.clip(lo - tol - vm, 0, None)).sum())
    fin = np.isfinite(allowed)
    limit = allowed[fin] + opts.loading_tolerance_percent
    over = float(np.clip(flow.branch_loading_percent[:, fin] / limit - 1.0, 0, None).sum())
    loss = 0.0 if check.losses_agree else max(check.loss_error_mw - opts.loss_tolerance_mw, 0.0)
    return 1000.0 * (volt + over) + loss + 1e-9


def _pinned(d: Dispatch, flow: PowerFlowResult, floor_mw: float = 1e-7) -> npt.NDArray[np.bool_]:
    """[t, k]: the solve put no loss where the AC flow of its own dispatch loses more than
    ``floor_mw`` — it sat at its loss line's zero crossing. (Any loss at all moves the line;
    only a loss beyond the loss tolerance keeps the loop from stopping.)"""
    ac = flow.losses_per_branch_p
    return np.asarray((d.branch_loss_mw <= 1e-9) & (ac > floor_mw))


def _angle_gap(a: FloatArray, b: FloatArray) -> FloatArray:
    """|a − b| between angles (rad), in [0, π]."""
    return np.asarray(np.abs(np.angle(np.exp(1j * (a - b)))), dtype=np.float64)


def _band(model: ClearingModel) -> tuple[FloatArray, FloatArray]:
    return model.voltage.lower_pu, model.voltage.upper_pu


def _lindistflow_voltages(view: NetworkView, topo: Topology, flow: PowerFlowResult) -> FloatArray:
    """|V|² the LinDistFlow equations give for the AC branch flows ([T, bus])."""
    v = np.zeros_like(flow.vm_pu)
    v[:, topo.slack_pos] = flow.vm_pu[:, topo.slack_pos] ** 2
    for j in range(len(view.buses)):  # parents first: the view is breadth-first
        k = view.parent_branch[j]
        if k < 0:
            continue
        i = topo.from_pos[k]
        v[:, j] = (
            v[:, i] / topo.ratio[k] ** 2
            - 2
            * (
                topo.r_pu[k] * flow.branch_p_from_mw[:, k]
                + topo.x_pu[k] * flow.branch_q_from_mvar[:, k]
            )
            / view.base_mva
        )
    return v


def _shortfalls(view: NetworkView, d: Dispatch) -> tuple[str, ...]:
    out = []
    for arr, word in ((d.shed_mw, "load shed"), (d.spill_mw, "injection curtailed")):
        for b in np.flatnonzero(arr.max(axis=0, initial=0.0) > 1e-7):
            ts = np.flatnonzero(arr[:, b] > 1e-7)
            out.append(
                f"{word} at {view.buses[b].name}: up to {arr[:, b].max() * 1000:.2f} kW in "
                f"{len(ts)} period(s)"
            )
    for b in np.flatnonzero(d.voltage_slack.max(axis=0, initial=0.0) > 1e-7):
        out.append(f"voltage band relaxed at {view.buses[b].name}")
    return tuple(out)


def _binding(view: NetworkView, d: Dispatch) -> tuple[str, ...]:
    out = []
    tol = 1e-7
    th = np.abs(d.thermal[:, :, 2]) > tol
    for k in np.flatnonzero(th.any(axis=0)):
        br = view.branches[k]
        out.append(f"{br.kind} {br.name}: thermal limit in {int(th[:, k].sum())} period(s)")
    for word, mask in (("upper", d.voltage < -tol), ("lower", d.voltage > tol)):
        for b in np.flatnonzero(mask.any(axis=0)):
            out.append(
                f"bus {view.buses[b].name}: {word} voltage limit in {int(mask[:, b].sum())} "
                "period(s)"
            )
    for s, slack in enumerate(view.slacks):
        if slack.max_import_mw is not None:
            n = int((d.import_mw[:, s] >= slack.max_import_mw - 1e-7).sum())
            if n:
                out.append(f"substation {view.bus_name(slack.bus)}: import limit in {n} period(s)")
    return tuple(out)


def _setpoints(view: NetworkView, data: MarketData, d: Dispatch) -> tuple[Setpoint, ...]:
    out: list[Setpoint] = []
    bl = data.blocks
    n_t = data.n_periods
    x = d.accepted_mw
    unsold = np.zeros((n_t, len(data.inverters)))
    inv_of = {inv.device_id: i for i, inv in enumerate(data.inverters)}
    inv_idx = np.array(
        [
            -1 if buy or dev is None else inv_of.get(dev, -1)
            for dev, buy in zip(bl.device, bl.is_buy, strict=True)
        ],
        dtype=np.int64,
    )
    tied = inv_idx >= 0
    np.add.at(unsold, (bl.period[tied], inv_idx[tied]), bl.quantity[tied] - x[tied])
    # loads grouped by owner (in the order owners first appear): a group's share of what its
    # owner bought is then one array operation, not one per owner and period (10,453 buses:
    # 0.44 s so)
    groups: dict[str, list[int]] = {}
    for k, load in enumerate(data.loads):
        groups.setdefault(load.owner, []).append(k)
    group_pos = {owner: g for g, owner in enumerate(groups)}
    # what each group's owner produces with its own PV, per period
    own_pv = np.zeros((len(groups), n_t))
    if data.inverters:
        available = np.array([inv.available_mw for inv in data.inverters], dtype=float).T
        rep_pv = np.array([inv.represented for inv in data.inverters], dtype=bool).T
        p_pv = np.maximum(available - np.where(rep_pv, unsold, 0.0), 0.0)
        inv_group = np.full(len(data.inverters), -1, dtype=np.int64)
        for i, inv in enumerate(data.inverters):
            owner = data.owner_of_device.get(inv.device_id)
            if owner is not None:
                inv_group[i] = group_pos.get(owner, -1)
        owned = inv_group >= 0
        np.add.at(own_pv, inv_group[owned], np.where(rep_pv, p_pv, 0.0).T[owned])
        p_rows, q_rows = p_pv.T.tolist(), d.q_pv_mvar.T.tolist()
        for i, inv in enumerate(data.inverters):
            bus = view.buses[inv.bus_pos].index
            p_i, q_i = p_rows[i], q_rows[i]
            out.extend(Setpoint(inv.device_id, bus, t, p_i[t], q_i[t]) for t in range(n_t))
    if groups:
        out.extend(_load_setpoints(view, data, x, groups, own_pv))
    for s, u in enumerate(data.storage):
        bus = view.buses[u.bus_pos].index
        net = (d.charge_mw[:, s] - d.discharge_mw[:, s]).tolist()
        q_st = (-d.q_storage_mvar[:, s]).tolist()
        out.extend(Setpoint(u.device_id, bus, t, net[t], q_st[t]) for t in range(n_t))
    for f, fl in enumerate(data.flex):
        bus = view.buses[fl.bus_pos].index
        flex = d.flex_mw[:, f].tolist()
        out.extend(Setpoint(fl.device_id, bus, t, flex[t], 0.0) for t in range(n_t))
    return tuple(out)


def _load_setpoints(
    view: NetworkView,
    data: MarketData,
    x: FloatArray,
    groups: dict[str, list[int]],
    own_pv: FloatArray,
) -> list[Setpoint]:
    """Loads of participants represented by bids consume what was bought (``x``: each
    block's accepted MW), less what was sold, plus what their own PV produces (``own_pv``:
    [group, period]); shared among the owner's loads in proportion to their profiles."""
    bl, n_t, n_g = data.blocks, data.n_periods, len(groups)
    group_pos = {owner: g for g, owner in enumerate(groups)}
    bought = np.zeros((n_g, n_t))
    blk_group = np.array([group_pos.get(pid, -1) for pid in bl.participant], dtype=np.int64)
    mine = blk_group >= 0
    signed = np.where(bl.is_buy, 1.0, -1.0) * x
    np.add.at(bought, (blk_group[mine], bl.period[mine]), signed[mine])
    total = (bought + own_pv).T  # [period, group]
    loads = data.loads
    group_of = np.empty(len(loads), dtype=np.int64)
    for g, ks in enumerate(groups.values()):
        group_of[ks] = g
    weights = np.maximum(np.array([ld.profile_mw for ld in loads], dtype=float).T, 0.0)
    sums = np.zeros((n_g, n_t))
    np.add.at(sums, group_of, weights.T)
    per_load = sums.T[:, group_of]
    size = np.bincount(group_of, minlength=n_g)[group_of]
    share = np.where(per_load > 0, weights / np.where(per_load > 0, per_load, 1.0), 1.0 / size)
    p = np.maximum(total[:, group_of] * share, 0.0).tolist()
    q = np.array([ld.profile_mvar for ld in loads], dtype=float).T.tolist()
    buses = [view.buses[ld.bus_pos].index for ld in loads]
    out: list[Setpoint] = []
    for ks in groups.values():
        # an owner's loads follow the market in the periods its first load is represented
        for t in np.flatnonzero(np.asarray(loads[ks[0]].represented, dtype=bool)).tolist():
            p_t, q_t = p[t], q[t]
            out.extend(Setpoint(loads[k].device_id, buses[k], t, p_t[k], q_t[k]) for k in ks)
    return out


_SIDE_REPR = {side: repr(side) for side in Side}
_BLOCK = "PriceBlock(price_eur_per_mwh=%r, quantity_mw=%r)"
_BID = "Bid(bid_id=%r, participant_id=%r, bus=%r, period=%r, side=%s, blocks=(%s), device_id=%r)"


def _book_repr(bids: Sequence[Bid]) -> str:
    """``repr(list(bids))``, written out: the dataclasses' own repr guards every call against
    recursion, and took 70-95 ms of each clearing of an 11,040-bid day (1-MV-semiurb--2-sw,
    30,514 blocks) against 35-60 ms for this."""
    out = []
    for b in bids:
        blocks = ", ".join([_BLOCK % (x.price_eur_per_mwh, x.quantity_mw) for x in b.blocks])
        if len(b.blocks) == 1:
            blocks += ","
        side = _SIDE_REPR[b.side] if type(b.side) is Side else repr(b.side)
        out.append(_BID % (b.bid_id, b.participant_id, b.bus, b.period, side, blocks, b.device_id))
    return "[" + ", ".join(out) + "]"


def _provenance_hash(
    view: NetworkView,
    bids: tuple[Bid, ...],
    params: GridParameters,
    wholesale: WholesalePrices,
    options: ClearingOptions,
    extensions: tuple[Extension, ...] = (),
) -> str:
    h = hashlib.sha256()
    h.update(repr((view.name, view.buses, view.branches, view.slacks, view.devices)).encode())
    # the bids' repr, unambiguous and unchanged since results were first stored: an auditor's
    # re-clear of a stored interval compares the hash too
    h.update(_book_repr(sorted(bids, key=lambda b: b.bid_id)).encode())
    h.update(json.dumps(params.values(), sort_keys=True).encode())
    h.update(wholesale.import_eur_per_mwh.tobytes() + wholesale.export_eur_per_mwh.tobytes())
    h.update(json.dumps(asdict(options), sort_keys=True).encode())
    for fn in extensions:
        h.update(
            f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}".encode()
        )
    return h.hexdigest()
