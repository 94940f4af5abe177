"""Assemble the clearing model in a fixed order and keep it for re-solves.

A :class:`ClearingModel` is built once per feeder and window; re-linearisation and new bids
only change mutable parameters, bounds and fixed values, so the persistent HiGHS interface
updates the loaded LP instead of rebuilding it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.common.errors import ApplicationError
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from feederdao.domain.network import NetworkView
from feederdao.domain.powerflow import Linearisation
from feederdao.errors import SolverError
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.devices import (
    add_elastic,
    add_flex_loads,
    add_pv_inverters,
    add_storage,
    set_elastic,
)
from feederdao.optimizer.limits import (
    add_slack_limits,
    add_thermal_limits,
    add_thermal_rows,
    add_voltage_limits,
    flow_bounds,
)
from feederdao.optimizer.market import add_bid_blocks, add_objective, add_pv_offer_caps
from feederdao.optimizer.meshed import (
    add_linearised_balance,
    add_linearised_flows,
    add_voltage_limits_meshed,
)
from feederdao.optimizer.network import (
    Injections,
    add_flows_and_voltages,
    add_nodal_balance,
    add_slack_voltage,
    add_voltage_drop,
)
from feederdao.optimizer.topology import Topology, topology

FloatArray = np.ndarray


class BatchedHighs(Highs):  # type: ignore[misc]
    """Pyomo's persistent HiGHS interface, loading all variables in one batch.

    The stock interface adds the variables of each constraint as it meets them, one HiGHS call
    per constraint; adding every variable of the model first makes loading several times
    faster. Behaviour is otherwise unchanged.
    """

    def add_block(self, block: Any) -> None:
        known = self._referenced_variables
        self.add_variables(
            [
                v
                for v in block.component_data_objects(pyo.Var, descend_into=True)
                if id(v) not in known
            ]
        )
        super().add_block(block)

    def _check_for_new_vars(self, variables: list[Any]) -> None:
        known = self._referenced_variables
        new = {id(v): v for v in variables if id(v) not in known}
        if new:
            self.add_variables(list(new.values()))


def build_model(
    view: NetworkView,
    data: MarketData,
    topo: Topology,
    lin: Linearisation | None = None,
    lazy: bool = False,
) -> pyo.ConcreteModel:
    """Add every family of variables and constraints, in a fixed order: LinDistFlow for a
    radial view, the AC expansion ``lin`` for a meshed one. ``lazy`` leaves the thermal rows
    to be added where AC checks find branches near their limits."""
    m = pyo.ConcreteModel(name=f"clearing:{view.name}")
    m.T = pyo.Set(initialize=range(data.n_periods))
    m.B = pyo.Set(initialize=range(len(view.buses)))
    m.K = pyo.Set(initialize=range(len(view.branches)))
    injections = Injections()
    if lin is None:
        add_flows_and_voltages(m, view, data)
        add_voltage_drop(m, view, data, topo)
        add_slack_voltage(m, view, topo)
        add_voltage_limits(m, view, data, topo)
        add_thermal_limits(m, view, data, flow_bounds(view, data, topo), lazy)
    else:
        add_linearised_flows(m, view, data, lin)
        add_voltage_limits_meshed(m, view, data, lin)
        add_thermal_limits(m, view, data, None, lazy)
    add_bid_blocks(m, data, injections)
    add_pv_offer_caps(m, data)
    add_pv_inverters(m, data, injections)
    add_storage(m, data, injections)
    add_flex_loads(m, data, injections)
    add_elastic(m, data, injections)
    if lin is None:
        add_nodal_balance(m, view, data, topo, injections)
    else:
        add_linearised_balance(m, view, lin, injections)
    add_slack_limits(m, view)
    add_objective(m, data)
    set_elastic(m, data.options.elastic)
    return m


@dataclass
class Solution:
    """Primal values and duals of one solve, as arrays in view order ([T, row])."""

    objective: float
    welfare: float
    p: FloatArray
    q: FloatArray
    v: FloatArray
    imp: FloatArray
    exp: FloatArray
    x: FloatArray
    q_pv: FloatArray
    ch: FloatArray
    dis: FloatArray
    q_st: FloatArray
    p_flex: FloatArray
    loss_p: FloatArray
    shed: FloatArray
    spill: FloatArray
    vs: FloatArray
    dual_p: FloatArray
    dual_q: FloatArray
    dual_v_upper: FloatArray
    dual_v_lower: FloatArray
    dual_thermal: FloatArray  # [T, K, 3]: Σ_s y·cos θ_s, Σ_s y·sin θ_s and Σ_s y
    solve_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def _values(comp: Any, shape: tuple[int, ...]) -> FloatArray:
    """Values of an indexed variable or expression ``[a, t]`` as an array ``[t, a]``."""
    out = np.zeros(shape)
    for idx, c in comp.items():
        val = pyo.value(c, exception=False)
        if val is not None:
            out[idx[::-1] if isinstance(idx, tuple) else idx] = val
    return out


class ClearingModel:
    """A built model with its persistent HiGHS instance."""

    def __init__(
        self,
        view: NetworkView,
        data: MarketData,
        lin: Linearisation | None = None,
        lazy: bool = False,
    ) -> None:
        t0 = time.perf_counter()
        self.view = view
        self.data = data
        self.lin = lin
        self.topo = topology(view)
        self.m = build_model(view, data, self.topo, lin, lazy)
        self.build_s = time.perf_counter() - t0
        self._new_solver()
        self.elastic = data.options.elastic

    def _new_solver(self) -> None:
        self.solver = BatchedHighs()
        self.solver.config.raise_exception_on_nonoptimal_result = False
        self.solver.config.load_solutions = False
        self.solver.config.solver_options = {"presolve": "on"}
        # parameters change between solves; the structure only changes through set_elastic
        # and add_rows, which tell the solver themselves
        updates = self.solver.config.auto_updates
        updates.check_for_new_or_removed_constraints = False
        updates.check_for_new_or_removed_vars = False
        updates.check_for_new_or_removed_params = False
        updates.check_for_new_objective = False
        updates.update_constraints = False
        updates.update_vars = False
        updates.update_named_expressions = False
        updates.update_objective = False
        self._loaded = False

    @property
    def size(self) -> tuple[int, int]:
        return (
            self.m.nvariables(),
            self.m.nconstraints(),
        )

    def set_elastic(self, on: bool) -> None:
        set_elastic(self.m, on)
        self.elastic = on
        if self._loaded:
            self._new_solver()  # fixing/unfixing is not picked up incrementally: reload

    def add_rows(self, rows: list[Any], params: list[Any] | None = None) -> None:
        """Tell the loaded solver about constraints (and the mutable parameters in them) added
        to the model since it was loaded."""
        if self._loaded and params:
            self.solver.add_parameters(params)
        if self._loaded and rows:
            self.solver.add_constraints(rows)

    def add_thermal(self, keys: Any) -> int:
        """Write the thermal rows of ``keys`` (branch, period) and load them; return how many
        branch-periods were new."""
        before = len(self.m.thermal_rows)
        rows, params = add_thermal_rows(self.m, keys)
        self.add_rows(rows, params)
        return len(self.m.thermal_rows) - before

    def solve(self) -> Solution | None:
        """Solve; ``None`` when infeasible. Raises :class:`SolverError` for anything else."""
        t0 = time.perf_counter()
        try:
            res = self.solver.solve(self.m)
            self._loaded = True
        except ApplicationError as exc:
            raise SolverError(f"HiGHS failed: {exc}") from exc
        solve_s = time.perf_counter() - t0
        tc = res.termination_condition
        if tc in (
            TerminationCondition.provenInfeasible,
            TerminationCondition.infeasibleOrUnbounded,
        ):
            return None
        if tc != TerminationCondition.convergenceCriteriaSatisfied:
            raise SolverError(f"HiGHS stopped without an optimal solution: {tc.name}")
        res.solution_loader.load_vars()
        duals = res.solution_loader.get_duals()
        return self._extract(duals, solve_s)

    def _extract(self, duals: Any, solve_s: float) -> Solution:
        m, d = self.m, self.data
        n_t, n_b, n_k = d.n_periods, len(self.view.buses), len(self.view.branches)
        n_s = len(self.view.slacks)

        def dual_array(con: Any, shape: tuple[int, int]) -> FloatArray:
            out = np.zeros(shape)
            for (a, t), c in con.items():
                out[t, a] = duals.get(c, 0.0)
            return out

        thermal = np.zeros((n_t, n_k, 3))
        dirs = m.thermal_directions
        for (k, t, s), c in m.thermal.items():
            y = duals.get(c, 0.0)
            if y:
                thermal[t, k, 0] += y * dirs[s][0]
                thermal[t, k, 1] += y * dirs[s][1]
                thermal[t, k, 2] += y
        x = np.array([m.x[n].value or 0.0 for n in range(len(d.blocks))])
        extra: dict[str, Any] = {}
        if self.lin is not None:
            n_aux = len(m.AUX)
            aux = list(m.AUX)
            extra["dual_aux_p"] = np.zeros((n_t, n_aux))
            extra["dual_aux_q"] = np.zeros((n_t, n_aux))
            for j, i in enumerate(aux):
                for t in range(n_t):
                    extra["dual_aux_p"][t, j] = duals.get(m.balance_aux_p[i, t], 0.0)
                    extra["dual_aux_q"][t, j] = duals.get(m.balance_aux_q[i, t], 0.0)
            extra["aux_rows"] = aux
            n_int = self.lin.n_internal
            extra["dva"] = _values(m.dva, (n_t, n_int))
            extra["dvm"] = _values(m.dvm, (n_t, n_int))
        vs = _values(m.vs_hi, (n_t, n_b)) + _values(m.vs_lo, (n_t, n_b))
        return Solution(
            objective=float(pyo.value(m.obj)),
            welfare=float(pyo.value(m.welfare_expr)),
            p=_values(m.p, (n_t, n_k)),
            q=_values(m.q, (n_t, n_k)),
            v=_values(m.v, (n_t, n_b)),
            imp=_values(m.imp, (n_t, n_s)),
            exp=_values(m.exp, (n_t, n_s)),
            x=x,
            q_pv=_values(m.q_pv, (n_t, len(d.inverters))),
            ch=_values(m.ch, (n_t, len(d.storage))),
            dis=_values(m.dis, (n_t, len(d.storage))),
            q_st=_values(m.q_st, (n_t, len(d.storage))),
            p_flex=_values(m.p_flex, (n_t, len(d.flex))),
            loss_p=_values(m.loss_p, (n_t, n_k)) if hasattr(m, "loss_p") else np.zeros((n_t, n_k)),
            shed=_values(m.shed, (n_t, n_b)),
            spill=_values(m.spill, (n_t, n_b)),
            vs=vs,
            dual_p=dual_array(m.balance_p, (n_t, n_b)),
            dual_q=dual_array(m.balance_q, (n_t, n_b)),
            dual_v_upper=dual_array(m.v_upper, (n_t, n_b)),
            dual_v_lower=dual_array(m.v_lower, (n_t, n_b)),
            dual_thermal=thermal,
            solve_s=solve_s,
            extra=extra,
        )
