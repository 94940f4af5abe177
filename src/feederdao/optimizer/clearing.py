"""``clear``: solve, check with an AC power flow, re-linearise, price and settle.

The loop: solve the linear model; run the AC power flow at its dispatch; if a voltage or
loading limit is violated beyond tolerance, or the linear losses are off, correct the model
around the AC result (voltage offsets, loss linearisation, tightened ratings) and solve again,
at most ``max_iterations`` times. The result states what the last AC check found.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from feederdao.domain.clearing import (
    AcCheck,
    ClearingOptions,
    ClearingResult,
    Setpoint,
    SolverStats,
    WholesalePrices,
)
from feederdao.domain.market import Bid, Participant
from feederdao.domain.network import NetworkView
from feederdao.domain.params import GridParameters
from feederdao.domain.powerflow import AcChecker, Linearisation, PowerFlowResult
from feederdao.domain.profiles import Profiles
from feederdao.errors import InfeasibleClearingError, NetworkDataError
from feederdao.optimizer.data import LoadDevice, MarketData, prepare
from feederdao.optimizer.limits import allowed_loading_percent, branch_limit_mva
from feederdao.optimizer.market import block_cost
from feederdao.optimizer.model import ClearingModel, Solution
from feederdao.optimizer.prices import decompose, decompose_meshed
from feederdao.optimizer.settlement import settle
from feederdao.optimizer.topology import Topology


def bus_consumption(data: MarketData, sol: Solution) -> tuple[np.ndarray, np.ndarray]:
    """Net consumption per [period, bus] of a solution, for the AC check."""
    p = data.fixed_p_mw - sol.shed + sol.spill
    q = data.fixed_q_mvar.copy()
    bl = data.blocks
    sign = np.where(bl.is_buy, 1.0, -1.0)
    np.add.at(p, (bl.period, bl.bus_pos), sign * sol.x)
    for s, u in enumerate(data.storage):
        p[:, u.bus_pos] += sol.ch[:, s] - sol.dis[:, s]
        q[:, u.bus_pos] -= sol.q_st[:, s]
    for f, fl in enumerate(data.flex):
        p[:, fl.bus_pos] += sol.p_flex[:, f]
    for i, inv in enumerate(data.inverters):
        q[:, inv.bus_pos] -= sol.q_pv[:, i]
    return p, q


#: branches losing less than this (MW) at the AC point get no loss cut; their losses are left
#: to the loss-error check (10 W per branch is far below any tolerance that matters)
LOSS_CUT_MIN_MW = 1e-5


class ClearingEngine:
    """A clearing model kept for one feeder and window; ``run`` clears (and re-clears)."""

    def __init__(
        self,
        view: NetworkView,
        profiles: Profiles,
        bids: Sequence[Bid],
        participants: Sequence[Participant],
        params: GridParameters | None = None,
        wholesale: WholesalePrices | None = None,
        options: ClearingOptions | None = None,
    ) -> None:
        self.view = view
        self.participants = tuple(participants)
        self.params = params or GridParameters()
        self.options = options or ClearingOptions()
        wholesale = wholesale or WholesalePrices.day_shape(profiles.n_periods)
        self.bids = tuple(bids)
        self._profiles = profiles
        self.data = prepare(
            view, profiles, self.bids, self.participants, self.params, wholesale, self.options
        )
        # a meshed view's model is built around an AC operating point, in run()
        self._lazy = self.options.ac_check
        self._thermal_keys: set[tuple[int, int]] = set()
        self.model = ClearingModel(view, self.data, None, self._lazy) if view.is_radial else None
        self._scale: np.ndarray | None = None  # meshed: rating tightening kept across rebuilds
        self._hash = _provenance_hash(view, self.bids, self.params, wholesale, self.options)

    def rebid(self, bids: Sequence[Bid], ac: AcChecker | None) -> ClearingResult:
        """Clear a new book on the same feeder and window.

        When the book has the same shape (blocks at the same buses, periods, sides and
        devices; the rolling-interval case) only prices and quantities change in the kept
        model and the loaded solver; otherwise the model is rebuilt.
        """
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
            and np.array_equal(new.fixed_p_mw, self.data.fixed_p_mw)
        )
        self.bids = tuple(bids)
        self.data = new
        self._hash = _provenance_hash(
            self.view, self.bids, self.params, new.wholesale, self.options
        )
        if not same or self.model is None or self.model.lin is not None:
            self._thermal_keys = set()
            self.model = (
                ClearingModel(self.view, new, None, self._lazy) if self.view.is_radial else None
            )
            return self.run(ac)
        m = self.model.m
        self.model.data = new
        for n in range(len(new.blocks)):
            m.qty[n].set_value(float(new.blocks.quantity[n]))
            m.price[n].set_value(block_cost(new, n))
        limit = branch_limit_mva(self.view, new)
        for (k, _t), par in m.s_eff.items():
            par.set_value(float(limit[k]))
        self.model.build_s = 0.0
        return self.run(ac)

    def run(self, ac: AcChecker | None) -> ClearingResult:
        t_start = time.perf_counter()
        opts, view, data = self.options, self.view, self.data
        allowed = allowed_loading_percent(view, data)
        solve_s = ac_s = 0.0
        status = "elastic" if opts.elastic else "optimal"
        meshed = not view.is_radial
        if meshed:
            if ac is None or not hasattr(ac, "linearise"):
                raise NetworkDataError(
                    f"network {view.name!r} is meshed: its clearing is linearised around an AC "
                    "operating point and needs an AC evaluator (it is never treated as radial)"
                )
            t0 = time.perf_counter()
            p0, q0 = profile_consumption(data)
            self._rebuild_meshed(ac.linearise(p0, q0))
            ac_s += time.perf_counter() - t0
        elif ac is not None and opts.ac_check:
            # start the linearisation at the profile operating point (every bid accepted)
            t0 = time.perf_counter()
            p0, q0 = profile_consumption(data)
            warm = ac(p0, q0)
            self._relinearise(None, warm, allowed)
            self._watch_thermal(warm, allowed, 0.5)
            ac_s += time.perf_counter() - t0
        if ac is None or not opts.ac_check:
            # nothing will find the branches near their limits: write every eligible row
            self._model.add_thermal(
                (k, t) for t, k in zip(*np.nonzero(self._model.m.thermal_eligible), strict=True)
            )
        build_s = self._model.build_s
        sol, shortfalls = self._solve_or_diagnose()
        solve_s += sol.solve_s
        if sol.extra.get("elastic"):
            status = "elastic"
        flow: PowerFlowResult | None = None
        check = AcCheck(False, 0, float("nan"), float("nan"), float("nan"), ())
        iterations = 0
        if ac is not None and (opts.ac_check or meshed):
            for it in range(1, opts.max_iterations + 1):
                iterations = it
                p, q = bus_consumption(data, sol)
                t0 = time.perf_counter()
                flow = ac(p, q)
                ac_s += time.perf_counter() - t0
                check = self._evaluate(sol, flow, allowed, it)
                settled = not check.violations and self._losses_agree(sol, flow)
                if settled and not self._watch_thermal(flow, allowed, 0.9, dry=True):
                    break
                if it == opts.max_iterations:
                    break
                # tighten the rows that were there when the overload happened, then add rows
                # where branches came near their limits
                if meshed:
                    t0 = time.perf_counter()
                    self._tighten(flow, allowed)
                    self._watch_thermal(flow, allowed, 0.9)
                    lin = ac.linearise(p, q)  # type: ignore[attr-defined]
                    ac_s += time.perf_counter() - t0
                    self._rebuild_meshed(lin)
                    build_s += self._model.build_s
                else:
                    self._relinearise(sol, flow, allowed)
                    self._watch_thermal(flow, allowed, 0.9)
                sol, more = self._solve_or_diagnose()
                shortfalls = more
                if sol.extra.get("elastic"):
                    status = "elastic"
                solve_s += sol.solve_s
        return self._result(
            sol,
            flow,
            check,
            shortfalls,
            status,
            iterations,
            build_s,
            solve_s,
            ac_s,
            time.perf_counter() - t_start,
        )

    # -- steps ---------------------------------------------------------------------------

    @property
    def _model(self) -> ClearingModel:
        if self.model is None:
            raise RuntimeError("the meshed model is built in run()")
        return self.model

    def _watch_thermal(
        self, flow: PowerFlowResult, allowed: np.ndarray, share: float, dry: bool = False
    ) -> int:
        """Branch-periods whose AC loading reaches ``share`` of their limit get thermal rows
        (lazily written rows); return how many are new (``dry``: only count them)."""
        near = flow.branch_loading_percent >= share * allowed[None, :]
        keys = {(int(k), int(t)) for t, k in zip(*np.nonzero(near), strict=True)}
        eligible = self._model.m.thermal_eligible
        keys = {(k, t) for k, t in keys if eligible[t, k]} - self._thermal_keys
        if dry or not keys:
            return len(keys)
        self._thermal_keys |= keys
        return self._model.add_thermal(sorted(keys))

    def _rebuild_meshed(self, lin: Linearisation) -> None:
        elastic = self.model.elastic if self.model is not None else self.options.elastic
        self.model = ClearingModel(self.view, self.data, lin, self._lazy)
        self.model.add_thermal(sorted(self._thermal_keys))
        if elastic != self.model.elastic:
            self.model.set_elastic(elastic)
        if self._scale is not None:
            for (k, t), par in self.model.m.s_eff.items():
                par.set_value(float(par.value) * self._scale[t, k])

    def _tighten(self, flow: PowerFlowResult, allowed: np.ndarray) -> None:
        """Meshed: remember a tighter rating where the AC check found an overload."""
        if self._scale is None:
            self._scale = np.ones_like(flow.branch_loading_percent)
        modelled = np.zeros(flow.branch_loading_percent.shape, dtype=bool)
        for k, t in self._thermal_keys:
            modelled[t, k] = True
        over = (flow.branch_loading_percent > allowed[None, :]) & modelled
        ratio = np.where(
            over, allowed[None, :] / np.maximum(flow.branch_loading_percent, 1e-9), 1.0
        )
        self._scale *= np.where(over, ratio * 0.999, 1.0)

    def _solve_or_diagnose(self) -> tuple[Solution, tuple[str, ...]]:
        cm = self._model
        sol = cm.solve()
        if sol is not None:
            return sol, _shortfalls(self.view, sol) if cm.elastic else ()
        cm.set_elastic(True)
        sol = cm.solve()
        if sol is None:
            raise InfeasibleClearingError(
                "the clearing is infeasible even with load shedding, curtailment and voltage "
                "slack allowed (check the substation voltage against the voltage band)"
            )
        where = _shortfalls(self.view, sol)
        if not self.options.elastic:
            cm.set_elastic(False)
            raise InfeasibleClearingError(
                "no dispatch satisfies the bids, devices and limits; an elastic re-solve needs: "
                + "; ".join(where),
                where,
            )
        sol.extra["elastic"] = True
        return sol, where

    def _evaluate(
        self, sol: Solution, flow: PowerFlowResult, allowed: np.ndarray, iteration: int
    ) -> AcCheck:
        view, p, opts = self.view, self.params, self.options
        slack = set(self._model.topo.slack_pos.tolist())
        nonslack = np.array([b not in slack for b in range(len(view.buses))])
        vm = flow.vm_pu
        violations: list[str] = []
        hi = (vm > p.v_max_pu + opts.voltage_tolerance_pu) & nonslack
        lo = (vm < p.v_min_pu - opts.voltage_tolerance_pu) & nonslack
        for mask, word, bound in ((hi, "above", p.v_max_pu), (lo, "below", p.v_min_pu)):
            for b in np.flatnonzero(mask.any(axis=0)):
                ts = np.flatnonzero(mask[:, b])
                worst = vm[ts, b].max() if word == "above" else vm[ts, b].min()
                violations.append(
                    f"voltage {word} {bound:.3f} pu at {view.buses[b].name} in {len(ts)} "
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
        lp_losses = _lp_losses(self._model, sol)
        return AcCheck(
            performed=True,
            iterations=iteration,
            max_voltage_error_pu=float(np.abs(np.sqrt(np.clip(sol.v, 0, None)) - vm).max()),
            max_loading_percent=float(flow.branch_loading_percent.max(initial=0.0)),
            loss_error_mw=float(np.abs(lp_losses - flow.losses_mw).max()),
            violations=tuple(violations),
        )

    def _losses_agree(self, sol: Solution, flow: PowerFlowResult) -> bool:
        """The linear losses match the AC ones: per period within ``loss_tolerance_mw`` or,
        over the window, within ``loss_tolerance_fraction`` of the AC losses."""
        lp, ac = _lp_losses(self._model, sol), flow.losses_mw
        opts = self.options
        if np.abs(lp - ac).max() <= opts.loss_tolerance_mw:
            return True
        return bool(abs(lp.sum() - ac.sum()) <= opts.loss_tolerance_fraction * abs(ac.sum()))

    def _relinearise(
        self, sol: Solution | None, flow: PowerFlowResult, allowed: np.ndarray
    ) -> None:
        """Correct the linear model around the AC operating point (see module docstring).

        Without a solution (before the first solve) the voltage offsets are those of the
        linear model's own voltages at the AC flows.
        """
        m, view, topo = self._model.m, self.view, self._model.topo
        base = view.base_mva
        vm2 = flow.vm_pu**2
        v_lp = sol.v if sol is not None else _lindistflow_voltages(view, topo, flow)
        voff = vm2 - v_lp
        for (b, t), par in m.voff.items():
            par.set_value(float(voff[t, b]))
        p0, q0 = flow.branch_p_from_mw, flow.branch_q_from_mvar
        v0 = vm2[:, topo.from_pos]
        ac_loss = flow.losses_per_branch_p
        # series losses r(p² + q²)/(base·v0) are convex: add their tangent plane at the AC
        # point, plus the no-load part (transformer iron, cable charging) the AC check found
        series = topo.r_pu[None, :] * (p0**2 + q0**2) / (base * v0)
        cp = 2 * topo.r_pu[None, :] * p0 / (base * v0)
        cq = 2 * topo.r_pu[None, :] * q0 / (base * v0)
        c0 = ac_loss - cp * p0 - cq * q0
        del series
        n_t, n_k = ac_loss.shape
        rows = []
        for t in range(n_t):
            for k in range(n_k):
                if ac_loss[t, k] > LOSS_CUT_MIN_MW:
                    rows.append(
                        m.loss_cuts.add(
                            m.loss_p[k, t]
                            >= float(c0[t, k])
                            + float(cp[t, k]) * m.p[k, t]
                            + float(cq[t, k]) * m.q[k, t]
                        )
                    )
        self._model.add_rows(rows)
        q_loss = flow.losses_per_branch_q
        for (k, t), par in m.loss_q.items():
            par.set_value(float(q_loss[t, k]))
        if sol is None:
            return  # ratings are only tightened where a cleared dispatch overloads
        for (k, t), par in m.s_eff.items():
            loading = flow.branch_loading_percent[t, k]
            if loading > allowed[k]:
                par.set_value(float(par.value) * allowed[k] / loading * 0.999)

    def _result(
        self,
        sol: Solution,
        flow: PowerFlowResult | None,
        check: AcCheck,
        shortfalls: tuple[str, ...],
        status: str,
        iterations: int,
        build_s: float,
        solve_s: float,
        ac_s: float,
        total_s: float,
    ) -> ClearingResult:
        view, data, model = self.view, self.data, self._model
        m = model.m
        if model.lin is None:
            prices = decompose(view, model.topo, sol, data.period_hours)
        else:
            prices = decompose_meshed(view, model.lin, sol, data.period_hours)
        s_eff = np.full((data.n_periods, len(view.branches)), np.inf)
        for (k, t), par in m.s_eff.items():
            s_eff[t, k] = par.value
        settlement = settle(data, self.participants, prices, sol, s_eff)
        accepted: dict[str, list[float]] = {}
        for n, bid_id in enumerate(data.blocks.bid_ids):
            accepted.setdefault(bid_id, []).append(round(float(sol.x[n]), 9))
        rating = np.array([br.rating_mva or np.inf for br in view.branches])
        lp_loading = np.hypot(sol.p, sol.q) / rating[None, :] * 100.0
        n_var, n_con = model.size
        return ClearingResult(
            network=view.name,
            status="elastic" if status == "elastic" else "optimal",
            parameters=self.params,
            period_hours=data.period_hours,
            bus_indices=tuple(b.index for b in view.buses),
            bus_names=tuple(b.name for b in view.buses),
            branch_ids=tuple(b.branch_id for b in view.branches),
            branch_names=tuple(b.name for b in view.branches),
            welfare_eur=sol.welfare,
            prices=prices,
            accepted_mw={k: tuple(v) for k, v in accepted.items()},
            setpoints=_setpoints(view, data, sol),
            lp_vm_pu=np.sqrt(np.clip(sol.v, 0, None)),
            lp_branch_p_mw=sol.p,
            lp_branch_q_mvar=sol.q,
            lp_loading_percent=lp_loading,
            ac_vm_pu=flow.vm_pu if flow is not None else None,
            ac_loading_percent=flow.branch_loading_percent if flow is not None else None,
            ac_losses_mw=flow.losses_mw if flow is not None else None,
            ac_slack_p_mw=flow.slack_p_mw if flow is not None else None,
            slack_import_mw=sol.imp - sol.exp,
            settlement=settlement,
            ac_check=check,
            binding=_binding(view, model, sol),
            shortfalls=shortfalls,
            stats=SolverStats(
                build_s=build_s,
                solve_s=solve_s,
                ac_check_s=ac_s,
                total_s=total_s,
                iterations=max(iterations, 1),
                n_variables=n_var,
                n_constraints=n_con,
            ),
            provenance_hash=self._hash,
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
) -> ClearingResult:
    """Clear ``bids`` on ``view`` for the profiles' window; AC-check with ``ac`` if given."""
    engine = ClearingEngine(view, profiles, bids, participants, params, wholesale, options)
    return engine.run(ac)


def profile_consumption(data: MarketData) -> tuple[np.ndarray, np.ndarray]:
    """Net bus consumption with every bid fully accepted and storage idle: the operating point
    the profiles describe, where the first linearisation is taken."""
    p = data.fixed_p_mw.copy()
    bl = data.blocks
    np.add.at(p, (bl.period, bl.bus_pos), np.where(bl.is_buy, 1.0, -1.0) * bl.quantity)
    return p, data.fixed_q_mvar.copy()


def _lindistflow_voltages(view: NetworkView, topo: Topology, flow: PowerFlowResult) -> np.ndarray:
    """|V|² the LinDistFlow equations give for the AC branch flows ([T, bus])."""
    v = np.zeros_like(flow.vm_pu)
    v[:, topo.slack_pos] = flow.vm_pu[:, topo.slack_pos] ** 2
    for j in range(len(view.buses)):
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


def _lp_losses(model: ClearingModel, sol: Solution) -> np.ndarray:
    """Losses of the linear model per period: the loss variables on a tree, the sum of all
    linearised injections on a mesh."""
    if model.lin is None:
        return np.asarray(sol.loss_p.sum(axis=1))
    lin = model.lin
    out = np.empty(sol.p.shape[0])
    for t, (jpa, jpv, _, _) in enumerate(lin.jacobian):
        out[t] = (
            lin.p0_mw[t].sum()
            + (jpa @ sol.extra["dva"][t]).sum()
            + (jpv @ sol.extra["dvm"][t]).sum()
        )
    return out


def _shortfalls(view: NetworkView, sol: Solution) -> tuple[str, ...]:
    out = []
    for arr, word in ((sol.shed, "load shed"), (sol.spill, "injection curtailed")):
        for b in np.flatnonzero(arr.max(axis=0) > 1e-7):
            ts = np.flatnonzero(arr[:, b] > 1e-7)
            out.append(
                f"{word} at {view.buses[b].name}: up to {arr[:, b].max() * 1000:.2f} kW in "
                f"{len(ts)} period(s)"
            )
    for b in np.flatnonzero(sol.vs.max(axis=0) > 1e-7):
        out.append(f"voltage band relaxed at {view.buses[b].name}")
    return tuple(out)


def _binding(view: NetworkView, model: ClearingModel, sol: Solution) -> tuple[str, ...]:
    out = []
    tol = 1e-7
    th = np.abs(sol.dual_thermal[:, :, 2]) > tol
    for k in np.flatnonzero(th.any(axis=0)):
        br = view.branches[k]
        out.append(f"{br.kind} {br.name}: thermal limit in {int(th[:, k].sum())} period(s)")
    for arr, word in ((sol.dual_v_upper, "upper"), (sol.dual_v_lower, "lower")):
        mask = np.abs(arr) > tol
        for b in np.flatnonzero(mask.any(axis=0)):
            out.append(
                f"bus {view.buses[b].name}: {word} voltage limit in {int(mask[:, b].sum())} "
                "period(s)"
            )
    for s, slack in enumerate(view.slacks):
        if slack.max_import_mw is not None:
            n = int((sol.imp[:, s] >= slack.max_import_mw - 1e-7).sum())
            if n:
                out.append(f"substation {view.bus_name(slack.bus)}: import limit in {n} period(s)")
    del model
    return tuple(out)


def _setpoints(view: NetworkView, data: MarketData, sol: Solution) -> tuple[Setpoint, ...]:
    out: list[Setpoint] = []
    bl = data.blocks
    tied: dict[tuple[str, int], list[int]] = {}
    for n in range(len(bl)):
        device = bl.device[n]
        if device is not None and not bl.is_buy[n]:
            tied.setdefault((device, int(bl.period[n])), []).append(n)
    pv_actual: dict[tuple[str, int], float] = {}
    for i, inv in enumerate(data.inverters):
        bus = view.buses[inv.bus_pos].index
        owner = data.owner_of_device.get(inv.device_id)
        for t in range(data.n_periods):
            p = float(inv.available_mw[t])
            blocks = tied.get((inv.device_id, t))
            if blocks and inv.represented[t]:
                p -= float(sum(bl.quantity[n] - sol.x[n] for n in blocks))
            p = max(p, 0.0)
            if owner is not None and inv.represented[t]:
                pv_actual[(owner, t)] = pv_actual.get((owner, t), 0.0) + p
            out.append(Setpoint(inv.device_id, bus, t, p, float(sol.q_pv[t, i])))
    # loads of participants represented by bids consume what was bought, less what was sold,
    # plus what their own PV produces; shared among their loads in proportion to the profile
    net_bought: dict[tuple[str, int], float] = {}
    for n in range(len(bl)):
        key = (bl.participant[n], int(bl.period[n]))
        net_bought[key] = net_bought.get(key, 0.0) + (1.0 if bl.is_buy[n] else -1.0) * sol.x[n]
    by_owner: dict[str, list[LoadDevice]] = {}
    for load in data.loads:
        by_owner.setdefault(load.owner, []).append(load)
    for owner, loads in by_owner.items():
        for t in range(data.n_periods):
            if not loads[0].represented[t]:
                continue
            total = net_bought.get((owner, t), 0.0) + pv_actual.get((owner, t), 0.0)
            weights = np.array([max(ld.profile_mw[t], 0.0) for ld in loads])
            share = (
                weights / weights.sum()
                if weights.sum() > 0
                else np.full(len(loads), 1 / len(loads))
            )
            for ld, w in zip(loads, share, strict=True):
                out.append(
                    Setpoint(
                        ld.device_id,
                        view.buses[ld.bus_pos].index,
                        t,
                        max(float(total * w), 0.0),
                        float(ld.profile_mvar[t]),
                    )
                )
    for s, u in enumerate(data.storage):
        bus = view.buses[u.bus_pos].index
        for t in range(data.n_periods):
            out.append(
                Setpoint(
                    u.device_id, bus, t, float(sol.ch[t, s] - sol.dis[t, s]), float(-sol.q_st[t, s])
                )
            )
    for f, fl in enumerate(data.flex):
        bus = view.buses[fl.bus_pos].index
        for t in range(data.n_periods):
            out.append(Setpoint(fl.device_id, bus, t, float(sol.p_flex[t, f]), 0.0))
    return tuple(out)


def _provenance_hash(
    view: NetworkView,
    bids: tuple[Bid, ...],
    params: GridParameters,
    wholesale: WholesalePrices,
    options: ClearingOptions,
) -> str:
    h = hashlib.sha256()
    h.update(repr((view.name, view.buses, view.branches, view.slacks, view.devices)).encode())
    h.update(repr(sorted(bids, key=lambda b: b.bid_id)).encode())
    h.update(json.dumps(params.values(), sort_keys=True).encode())
    h.update(wholesale.import_eur_per_mwh.tobytes() + wholesale.export_eur_per_mwh.tobytes())
    h.update(json.dumps(asdict(options), sort_keys=True).encode())
    return h.hexdigest()
