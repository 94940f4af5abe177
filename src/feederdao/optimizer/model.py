"""Assemble the clearing program in a fixed order, and read a solution back as typed arrays.

:func:`build` adds every family of columns and rows — LinDistFlow on a radial view, the AC
expansion on a meshed one — and returns a :class:`ClearingModel` holding a typed handle to each
family. :meth:`ClearingModel.solve` loads it into HiGHS (once), pushes what changed since, and
returns a :class:`Dispatch`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from feederdao.domain.network import NetworkView
from feederdao.domain.powerflow import Linearisation
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.devices import (
    Elastic,
    Inverters,
    Storage,
    add_elastic,
    add_flex_loads,
    add_generators,
    add_pv_inverters,
    add_storage,
)
from feederdao.optimizer.highs import Basis, HighsSolver, Solution
from feederdao.optimizer.limits import (
    FlowMap,
    Thermal,
    VoltageLimits,
    add_voltage_limits,
    flow_bounds,
    thermal,
)
from feederdao.optimizer.lp import Cols, FloatArray, LinearProgram, Rows
from feederdao.optimizer.market import PvTies, add_bid_blocks, add_pv_offer_caps
from feederdao.optimizer.meshed import (
    MeshedNetwork,
    add_linearised_network,
    lp_losses,
    voltage_offsets,
)
from feederdao.optimizer.network import (
    Balance,
    Flows,
    Injections,
    Losses,
    Substation,
    add_flows,
    add_losses,
    add_nodal_balance,
    add_substation,
    add_voltage_drop,
)
from feederdao.optimizer.topology import Topology

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from feederdao.optimizer.extension import ClearingExtension, CompiledExtension

Extension = Callable[["ClearingExtension"], None]


@dataclass(frozen=True)
class Radial:
    """LinDistFlow's families."""

    flows: Flows
    voltage_drop: Rows
    losses: Losses


@dataclass(frozen=True)
class Dispatch:
    """One solve read back as arrays in view order (``[t, row]``), with the duals that price it.

    Duals are ∂objective/∂right-hand side (EUR per unit and period): ``balance_p`` of a bus is
    its DLMP times the period's hours; ``voltage`` the voltage limits' (bounds or elastic rows);
    ``thermal[t, k]`` = (Σ_s y cos θ_s, Σ_s y sin θ_s, Σ_s y) over the branch's polygon rows.
    """

    objective_eur: float
    welfare_eur: float
    branch_p_mw: FloatArray
    branch_q_mvar: FloatArray
    vm_pu: FloatArray
    v_pu2: FloatArray  # the LP's |V|² (radial) or (|V|₀ + dvm)² (meshed)
    losses_mw: FloatArray  # [t]
    branch_loss_mw: FloatArray  # [t, k] (radial; zeros on a mesh)
    import_mw: FloatArray
    export_mw: FloatArray
    accepted_mw: FloatArray  # [block]
    q_pv_mvar: FloatArray
    charge_mw: FloatArray
    discharge_mw: FloatArray
    q_storage_mvar: FloatArray
    flex_mw: FloatArray
    shed_mw: FloatArray
    spill_mw: FloatArray
    voltage_slack: FloatArray
    balance_p: FloatArray
    balance_q: FloatArray
    voltage: FloatArray
    thermal: FloatArray
    aux_p: FloatArray | None
    aux_q: FloatArray | None
    dva: FloatArray | None
    dvm: FloatArray | None
    voltage_drop: FloatArray | None  # [t, k] duals of the voltage-drop rows (radial)
    loss_dual: FloatArray | None  # [t, k] duals of the loss rows (radial)
    loss_factor: FloatArray  # [t, k] c_p of the loss planes the solve used (radial)
    s_eff: FloatArray  # [t, k] ratings of the thermal rows (inf where none)
    lin: Linearisation | None  # the expansion the solve used (meshed)
    solve_s: float
    retried: tuple[str, ...] = ()
    #: simplex iterations the dispatch took (every solve round of one step)
    iterations: int = 0
    soc_mwh: FloatArray | None = None  # [t, unit] after each period (optimised storage)

    @property
    def elastic_used(self) -> bool:
        return bool(
            (self.shed_mw > 1e-7).any()
            or (self.spill_mw > 1e-7).any()
            or (self.voltage_slack > 1e-7).any()
        )


@dataclass
class ClearingModel:
    """A built program, its handles, and (once solved) its HiGHS instances."""

    view: NetworkView
    data: MarketData
    topo: Topology
    lp: LinearProgram
    substation: Substation
    bids: Cols
    ties: PvTies
    inverters: Inverters
    storage: Storage
    flex: Cols
    generators: Cols
    balance: Balance
    voltage: VoltageLimits
    flows: FlowMap
    thermal: Thermal
    radial: Radial | None
    meshed: MeshedNetwork | None
    elastic: Elastic | None
    extension: CompiledExtension | None
    build_s: float
    threads: int = 2
    solver: HighsSolver | None = field(default=None, repr=False)
    #: the basis the first solve starts from (another program's, matched by family)
    warm: Basis | None = field(default=None, repr=False)
    #: the last basis of the program as one window, kept when it came to split by period
    #: (its storage held): the next window (the next day's, a new book's) starts from it
    window_basis: Basis | None = field(default=None, repr=False)
    #: c_p of each branch's loss plane [t, k] (radial; zero before the first AC point)
    loss_factor: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    #: the AC-minus-linear error of |V|² the voltage limits are corrected by [t, bus] (radial)
    voltage_offset: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def is_elastic(self) -> bool:
        return self.elastic is not None

    @property
    def size(self) -> tuple[int, int]:
        return self.lp.n_cols, self.lp.n_rows

    @property
    def load_s(self) -> float:
        return self.solver.load_s if self.solver is not None else 0.0

    def solve(self) -> Dispatch | None:
        """Solve (loading the program on first use); ``None`` when infeasible.

        A program that came to split by period (its storage held: what linked its periods is
        fixed) or stopped splitting (let go again) is loaded anew, from the basis it had."""
        if self.solver is not None and self.solver.split != HighsSolver.splits(self.lp):
            last = self.solver.basis()
            if self.solver.split:
                # the periods' basis with the storage held: nearer the window's next optimum
                # than the window's own last basis (1-MV-semiurb--2-sw, a July day's storage
                # let go within its band: 12,619 iterations in 1.95 s against 7,089 in 4.6 s)
                self.warm = last or self.window_basis or self.warm
            else:
                self.window_basis = last
                self.warm = last or self.warm
            self.solver = None
        if self.solver is None:
            self.solver = HighsSolver(self.lp, self.threads)
            if self.warm is not None and not self.solver.start_from(self.warm):
                log.debug("the warm basis matched no family or HiGHS refused it: a cold start")
        sol = self.solver.solve()
        if sol is None:
            return None
        if self.extension is not None:
            self.extension.read(sol)
        return self.read(sol)

    def read(self, sol: Solution) -> Dispatch:
        lp, view = self.lp, self.view
        n_t, n_b = self.data.n_periods, len(view.buses)
        if self.radial is not None:
            fl = self.radial.flows
            p, q, v2 = sol.value(fl.p), sol.value(fl.q), sol.value(fl.v)
            # the voltage the linear model predicts for the AC network: |V|² plus its correction
            vm = np.sqrt(np.clip(v2 + self.voltage_offset, 0.0, None))
            branch_loss = sol.value(self.radial.losses.p)
            losses = branch_loss.sum(axis=1)
            dva = dvm = None
        else:
            assert self.meshed is not None
            net = self.meshed
            x = sol.primal[: self.flows.p.shape[1]]
            p = self.flows.p0 + (self.flows.p @ x).reshape(n_t, -1)
            q = self.flows.q0 + (self.flows.q @ x).reshape(n_t, -1)
            vm0, pos = voltage_offsets(net, view)
            dvm_all = sol.value(net.dvm)
            vm = vm0 + np.where(pos[None, :] >= 0, dvm_all[:, np.maximum(pos, 0)], 0.0)
            v2 = vm**2
            dva, dvm = sol.value(net.dva), dvm_all
            losses = lp_losses(net, dva, dvm)
            branch_loss = np.zeros((n_t, len(view.branches)))
        sub, st = self.substation, self.storage
        market = float(
            lp.cost[self.bids.start : self.bids.start + self.bids.size] @ sol.value(self.bids)
        )
        wholesale = float(
            (sol.value(sub.imp) * sub.imp.of(lp.cost)).sum()
            + (sol.value(sub.exp) * sub.exp.of(lp.cost)).sum()
        )
        zeros = np.zeros((n_t, n_b))
        el = self.elastic
        bal = self.balance
        return Dispatch(
            objective_eur=sol.objective,
            welfare_eur=-(market + wholesale),
            branch_p_mw=p,
            branch_q_mvar=q,
            vm_pu=vm,
            v_pu2=v2,
            losses_mw=np.asarray(losses),
            branch_loss_mw=branch_loss,
            import_mw=sol.value(sub.imp),
            export_mw=sol.value(sub.exp),
            accepted_mw=_snap(sol.value(self.bids), self.data.blocks.quantity),
            q_pv_mvar=sol.value(self.inverters.q_up) - sol.value(self.inverters.q_dn),
            charge_mw=sol.value(st.ch),
            discharge_mw=sol.value(st.dis),
            q_storage_mvar=sol.value(st.q_up) - sol.value(st.q_dn),
            flex_mw=sol.value(self.flex),
            shed_mw=sol.value(el.shed) if el else zeros,
            spill_mw=sol.value(el.spill) if el else zeros,
            voltage_slack=self.voltage.slack(sol.primal),
            balance_p=sol.dual(bal.p),
            balance_q=sol.dual(bal.q),
            voltage=self.voltage.duals(sol.col_dual, sol.row_dual),
            thermal=self.thermal.duals(sol.row_dual),
            aux_p=sol.dual(bal.aux_p) if bal.aux_p is not None else None,
            aux_q=sol.dual(bal.aux_q) if bal.aux_q is not None else None,
            dva=dva,
            dvm=dvm,
            voltage_drop=sol.dual(self.radial.voltage_drop) if self.radial else None,
            loss_dual=sol.dual(self.radial.losses.rows) if self.radial else None,
            loss_factor=self.loss_factor.copy(),
            s_eff=np.where(self.thermal.modelled, self.thermal.s_eff, np.inf),
            lin=self.meshed.lin if self.meshed is not None else None,
            solve_s=sol.solve_s,
            retried=sol.retried,
            iterations=sol.iterations,
            soc_mwh=sol.value(st.soc) if st.soc is not None else None,
        )


def build(
    view: NetworkView,
    data: MarketData,
    topo: Topology,
    lin: Linearisation | None = None,
    elastic: bool = False,
    extensions: Sequence[Extension] = (),
    threads: int = 2,
) -> ClearingModel:
    """Add every family, in a fixed order: substation, network columns (radial), bids, PV offer
    caps, inverters, storage, flexible loads, elastic slacks (when asked), the balances (with
    the network's expansion on a meshed view), the voltage band, the thermal limits (rows
    written lazily), then the user's extensions."""
    t0 = time.perf_counter()
    n_t, n_b = data.n_periods, len(view.buses)
    lp = LinearProgram(n_t)
    inj = Injections(n_t, n_b)
    sub = add_substation(lp, view, data)
    radial: Radial | None = None
    if lin is None:
        flows = add_flows(lp, view, data)
        radial = Radial(flows, add_voltage_drop(lp, view, topo, flows), add_losses(lp, data, flows))
    x = add_bid_blocks(lp, data, inj)
    ties = add_pv_offer_caps(lp, data, x)
    inverters = add_pv_inverters(lp, data, x, ties, inj)
    storage = add_storage(lp, data, inj)
    flex = add_flex_loads(lp, data, inj)
    generators = add_generators(lp, data, inj)
    el = add_elastic(lp, data, n_b, inj) if elastic else None
    meshed: MeshedNetwork | None = None
    if radial is not None:
        balance = add_nodal_balance(lp, view, data, topo, radial.flows, radial.losses, sub, inj)
        v = radial.flows.v
        slack = topo.slack_pos
        vm_slack = np.array([s.vm_pu for s in view.slacks])
        lp.col_lower[v.idx[:, slack]] = vm_slack**2
        lp.col_upper[v.idx[:, slack]] = vm_slack**2
        pos = np.arange(n_b, dtype=np.int64)
        pos[slack] = -1
        voltage = add_voltage_limits(lp, view, data, v, pos, True, elastic)
        voltage.apply(lp, np.zeros((n_t, n_b)))
        n_k = len(view.branches)
        ident = _identity_map(radial.flows, n_t, n_k, lp.n_cols)
        flow_map = ident
        th = thermal(view, data, flow_bounds(data, topo.path), data.options.polygon_sides)
    else:
        assert lin is not None
        meshed = add_linearised_network(lp, view, data, lin, sub, inj)
        balance = meshed.balance
        vm0, pos = voltage_offsets(meshed, view)
        voltage = add_voltage_limits(lp, view, data, meshed.dvm, pos, False, elastic)
        voltage.apply(lp, vm0)
        flow_map = meshed.flows
        th = thermal(view, data, None, data.options.polygon_sides)
    model = ClearingModel(
        view=view,
        data=data,
        topo=topo,
        lp=lp,
        substation=sub,
        bids=x,
        ties=ties,
        inverters=inverters,
        storage=storage,
        flex=flex,
        generators=generators,
        balance=balance,
        voltage=voltage,
        flows=flow_map,
        thermal=th,
        radial=radial,
        meshed=meshed,
        elastic=el,
        extension=None,
        build_s=0.0,
        threads=threads,
    )
    if extensions:
        from feederdao.optimizer.extension import compile_extensions

        model.extension = compile_extensions(model, extensions)
    model.loss_factor = np.zeros((n_t, len(view.branches)))
    model.voltage_offset = np.zeros((n_t, n_b))
    model.build_s = time.perf_counter() - t0
    return model


def _snap(x: FloatArray, upper: FloatArray, tol: float = 1e-7) -> FloatArray:
    """Accepted quantities within the solver's feasibility tolerance of a bound, on it."""
    x = np.clip(x, 0.0, upper)
    return np.where(x < tol, 0.0, np.where(upper - x < tol, upper, x))


def _identity_map(flows: Flows, n_t: int, n_k: int, n_cols: int) -> FlowMap:
    import scipy.sparse as sp

    rows = np.arange(n_t * n_k)
    ones = np.ones(n_t * n_k)
    p = sp.csr_matrix((ones, (rows, flows.p.idx.ravel())), shape=(n_t * n_k, n_cols))
    q = sp.csr_matrix((ones, (rows, flows.q.idx.ravel())), shape=(n_t * n_k, n_cols))
    zero = np.zeros((n_t, n_k))
    return FlowMap(zero, zero, p, q)
