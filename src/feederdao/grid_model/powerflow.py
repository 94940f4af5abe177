"""AC power flow helper: pandapower's network model on a private copy, results as values.

:class:`AcEvaluator` copies the net once, replaces every device by one load per bus, and runs
pandapower once to obtain its admittance matrices (``Ybus``, ``Yf``, ``Yt``: lines, transformers
with taps, shunts, charging, fused bus-bus switches). Each further evaluation solves the AC
power flow equations on those matrices for all periods at once (a fixed-point Z-bus iteration
with one sparse factorisation, vectorised over periods) and computes flows, currents and
loadings exactly as pandapower's result functions do. A period that does not converge that way
is handed to ``pandapower.runpp`` itself; if that fails too, :class:`PowerFlowError` names it.
The caller's net is never modified.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from feederdao.domain.network import NetworkView, device_bus_consumption
from feederdao.domain.powerflow import Linearisation, PowerFlowResult
from feederdao.domain.profiles import FloatArray
from feederdao.errors import PowerFlowError

#: devices replaced by one load per bus; a voltage-controlled ``gen`` stays (at 0 MW) so that
#: pandapower's model makes its bus a PV bus, its P arriving through the bus's load
_DEVICE_TABLES = ("load", "sgen", "storage")
_BASE_KV = 9  # ppc bus column
_F_BUS, _T_BUS = 0, 1  # ppc branch columns


class AcEvaluator:
    """AC power flows of a view's network at given net bus consumptions."""

    max_iterations = 200
    tolerance_pu = 1e-9

    def __init__(self, net: Any, view: NetworkView) -> None:
        import pandapower as pp
        from threadpoolctl import ThreadpoolController

        self._pp = pp
        self._blas = ThreadpoolController()
        self.view = view
        self._source = net
        work = copy.deepcopy(net)
        for table in _DEVICE_TABLES:
            df = getattr(work, table)
            if len(df):
                df["in_service"] = False
        if len(work.gen):
            work.gen["p_mw"] = 0.0
        buses = [b.index for b in view.buses]
        self._load_idx = pp.create_loads(work, buses=buses, p_mw=0.0, q_mvar=0.0, name="feederdao")
        self._net = work
        self._runpp()
        internal = work._ppc["internal"]
        self._base_mva = float(internal["baseMVA"])
        ybus = internal["Ybus"].tocsr()
        n_bus = ybus.shape[0]
        ref = np.asarray(internal["ref"], dtype=np.int64)
        self._ref = ref
        self._pv = np.asarray(internal["pv"], dtype=np.int64)
        self._pq = np.asarray(internal["pq"], dtype=np.int64)
        self._non_ref = np.setdiff1d(np.arange(n_bus), ref)
        self._ybus = ybus
        self._yf = internal["Yf"].tocsr()
        self._yt = internal["Yt"].tocsr()
        if self._pv.size:
            self._newton = _Newton(ybus, ref, self._pv, self._pq)
        else:
            ynn = ybus[self._non_ref][:, self._non_ref].tocsc()
            self._lu = spla.splu(ynn)
            self._yns = ybus[self._non_ref][:, ref]
        self._v_ref = internal["V"][ref].copy()
        self._v0 = internal["V"].copy()
        self._s_base = internal["Sbus"].copy()
        lookup = work._pd2ppc_lookups["bus"]
        self._bus_row = np.asarray(lookup[np.array(buses)], dtype=np.int64)
        self._base_kv = internal["bus"][:, _BASE_KV].real
        self._branch_rows(work, internal)

    def _runpp(self) -> None:
        logger = logging.getLogger("pandapower")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # numba would compile for seconds to save milliseconds on one power flow
                self._pp.runpp(self._net, numba=False, calculate_voltage_angles=True)
        finally:
            logger.setLevel(level)

    def _branch_rows(self, work: Any, internal: Any) -> None:
        """Map each view branch's members to internal branch rows and rating data."""
        lookups = work._pd2ppc_lookups["branch"]
        in_service = np.asarray(internal["branch_is"], dtype=bool)
        internal_row = np.cumsum(in_service) - 1
        fb = internal["branch"][:, _F_BUS].real.astype(np.int64)
        tb = internal["branch"][:, _T_BUS].real.astype(np.int64)
        # each table's rows by element id and the columns read, as lists: one lookup per
        # member, not a pandas row (the 10,453-bus network's 10,458 branches took 1.4 s so)
        tables = {
            table: (
                {idx: pos for pos, idx in enumerate(frame.index.tolist())},
                {c: frame[c].tolist() for c in columns},
            )
            for table, columns in (
                ("line", ("from_bus", "max_i_ka", "df", "parallel")),
                ("trafo", ("hv_bus", "sn_mva", "parallel", "df", "vn_hv_kv", "vn_lv_kv")),
            )
            for frame in (getattr(work, table),)
        }
        members: list[tuple[int, int, bool, str, float, float, float]] = []
        owner: list[int] = []
        for k, br in enumerate(self.view.branches):
            for bid in br.parallel_ids or (br.branch_id,):
                table, element = bid.split(":")
                positions, col = tables[table]
                pos = positions[int(element)]
                start, _ = lookups[table]
                ppc_row = start + pos
                row = int(internal_row[ppc_row])
                if not in_service[ppc_row]:
                    raise PowerFlowError(f"{bid} is in the view but out of service in pandapower")
                if table == "line":
                    same = self.view.canonical_bus(int(col["from_bus"][pos])) == br.from_bus
                    i_max = (
                        float(col["max_i_ka"][pos])
                        * float(col["df"][pos])
                        * float(col["parallel"][pos])
                    )
                    members.append((row, k, same, table, i_max, 0.0, 0.0))
                else:
                    same = self.view.canonical_bus(int(col["hv_bus"][pos])) == br.from_bus
                    scale = (
                        math.sqrt(3)
                        / float(col["sn_mva"][pos])
                        / float(col["parallel"][pos])
                        / float(col["df"][pos])
                    )
                    members.append(
                        (
                            row,
                            k,
                            same,
                            table,
                            scale,
                            float(col["vn_hv_kv"][pos]),
                            float(col["vn_lv_kv"][pos]),
                        )
                    )
                owner.append(k)
        self._ids = [
            f"{'line' if m[3] == 'line' else 'trafo'}:{eid}"
            for m, eid in zip(
                members,
                [
                    bid.split(":")[1]
                    for br in self.view.branches
                    for bid in (br.parallel_ids or (br.branch_id,))
                ],
                strict=True,
            )
        ]
        rows = np.array([m[0] for m in members], dtype=np.int64)
        self._m_rows = rows
        self._m_owner = np.array(owner, dtype=np.int64)
        self._m_same = np.array([m[2] for m in members], dtype=bool)
        self._m_line = np.array([m[3] == "line" for m in members], dtype=bool)
        # a line's rated current (kA), a transformer's sqrt(3) / rated power (1/MVA)
        self._m_rating = np.array([m[4] for m in members], dtype=float)
        self._m_vn = np.array([(m[5], m[6]) for m in members], dtype=float).reshape(-1, 2)
        self._m_from_bus = fb[rows]
        self._m_to_bus = tb[rows]
        #: the entries of the first-order expansion's matrices, found at the first expansion
        self._expansion: _Expansion | None = None

    def __call__(self, p_mw: FloatArray, q_mvar: FloatArray) -> PowerFlowResult:
        return self.run(p_mw, q_mvar)

    def with_positions(self, positions: Mapping[str, int]) -> AcEvaluator:
        """An evaluator of the same network with tap changers (``trafo:<i>``) and shunt steps
        (``shunt:<i>``) at ``positions``; the caller's net stays as it is."""
        net = copy.deepcopy(self._source)
        for device_id, position in positions.items():
            table, element = device_id.split(":")
            column = {"trafo": "tap_pos", "shunt": "step"}[table]
            getattr(net, table).at[int(element), column] = position
        return AcEvaluator(net, self.view)

    @property
    def voltage_controlled(self) -> bool:
        """Whether the network has PV buses (pandapower ``gen`` holding their voltage)."""
        return bool(self._pv.size)

    def _solve(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Voltages for all columns of ``s`` ([bus, T] complex, pu injections): the Z-bus fixed
        point when every bus but the slack is a PQ bus, Newton–Raphson with PV buses."""
        n_t = s.shape[1]
        v = np.repeat(self._v0[:, None], n_t, axis=1)
        v[self._ref] = self._v_ref[:, None]
        if self._pv.size:
            return self._newton.solve(v, s, self.tolerance_pu)
        nr = self._non_ref
        rhs_ref = self._yns @ v[self._ref]
        converged = np.zeros(n_t, dtype=bool)
        for _ in range(self.max_iterations):
            current = np.conj(s[nr] / v[nr])
            v[nr] = self._lu.solve(np.asarray(current - rhs_ref))
            mismatch = v * np.conj(self._ybus @ v) - s
            err = np.abs(mismatch[nr]).max(axis=0) if len(nr) else np.zeros(n_t)
            converged = err < self.tolerance_pu
            if converged.all():
                break
        return v, converged

    def run(self, p_mw: FloatArray, q_mvar: FloatArray) -> PowerFlowResult:
        """AC power flow for each row of ``p_mw``/``q_mvar`` (``[period, view bus]``, net
        consumption in MW/Mvar).

        The many small sparse solves run on one BLAS thread: a threaded BLAS spends more time
        starting its threads than solving (measured: 0.08–5.6 s against milliseconds)."""
        p_mw = np.atleast_2d(np.asarray(p_mw, dtype=float))
        q_mvar = np.atleast_2d(np.asarray(q_mvar, dtype=float))
        n_t, n_b = p_mw.shape
        if n_b != len(self.view.buses) or q_mvar.shape != p_mw.shape:
            raise PowerFlowError(
                f"bus consumption is {p_mw.shape[1]} buses wide; the view has "
                f"{len(self.view.buses)} buses"
            )
        with self._blas.limit(limits=1, user_api="blas"):
            return self._run(p_mw, q_mvar, n_t)

    def _run(self, p_mw: FloatArray, q_mvar: FloatArray, n_t: int) -> PowerFlowResult:
        s = np.repeat(self._s_base[:, None], n_t, axis=1).astype(complex)
        np.add.at(s, self._bus_row, -(p_mw.T + 1j * q_mvar.T) / self._base_mva)
        v, converged = self._solve(s)
        for t in np.flatnonzero(~converged):
            v[:, t] = self._pandapower_period(p_mw[t], q_mvar[t], int(t), n_t)
        return self._results(v, p_mw, q_mvar)

    def _pandapower_period(self, p: np.ndarray, q: np.ndarray, t: int, n_t: int) -> np.ndarray:
        net = self._net
        net.load.loc[self._load_idx, "p_mw"] = p
        net.load.loc[self._load_idx, "q_mvar"] = q
        try:
            self._runpp()
        except Exception as exc:  # pandapower's LoadflowNotConverged and friends
            raise PowerFlowError(
                f"AC power flow did not converge for period {t} of {n_t} "
                f"(total net load {p.sum():.4f} MW): {exc}"
            ) from exc
        return np.asarray(net._ppc["internal"]["V"]).copy()

    def _results(self, v: np.ndarray, p_mw: FloatArray, q_mvar: FloatArray) -> PowerFlowResult:
        n_t = v.shape[1]
        base = self._base_mva
        rows = self._m_rows
        sf = (v[self._m_from_bus] * np.conj(self._yf[rows] @ v)) * base  # [member, T]
        st = (v[self._m_to_bus] * np.conj(self._yt[rows] @ v)) * base
        vm = np.abs(v)
        i_f = np.abs(sf) / (vm[self._m_from_bus] * self._base_kv[self._m_from_bus][:, None])
        i_t = np.abs(st) / (vm[self._m_to_bus] * self._base_kv[self._m_to_bus][:, None])
        i_f /= math.sqrt(3)
        i_t /= math.sqrt(3)
        # each member's loading [member, T]: a line's current against its rating (none when
        # unrated), a transformer's apparent power on either side against its rated power
        a = self._m_rating[:, None]
        rated = a > 0
        line_loading = np.where(rated, np.maximum(i_f, i_t) / np.where(rated, a, 1.0) * 100.0, 0.0)
        vn = self._m_vn
        trafo_loading = np.maximum(i_f * vn[:, :1], i_t * vn[:, 1:]) * a * 100.0
        loading = np.where(self._m_line[:, None], line_loading, trafo_loading)
        elements: dict[str, FloatArray] = dict(zip(self._ids, loading, strict=True))
        # a branch sums its parallel members' flows, in the from -> to sense of the view, and
        # is as loaded as its most loaded member (ufunc.at: in member order, as a loop would)
        n_br = len(self.view.branches)
        owner, same = self._m_owner, self._m_same[:, None]
        s_in = np.where(same, sf, st)
        s_out = np.where(same, st, sf)

        def per_branch(ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
            out = np.zeros((n_br, n_t))
            ufunc.at(out, owner, values)
            return np.ascontiguousarray(out.T)

        ld = per_branch(np.maximum, loading)
        pf, qf = per_branch(np.add, s_in.real), per_branch(np.add, s_in.imag)
        pt, qt = per_branch(np.add, s_out.real), per_branch(np.add, s_out.imag)
        bus_v = v[self._bus_row].T
        # what the substation supplies: the bus's net injection plus what is consumed there
        s_ref = v[self._ref] * np.conj(self._ybus[self._ref] @ v) * base
        here = np.zeros((self._ybus.shape[0], n_t), dtype=complex)
        np.add.at(here, self._bus_row, (p_mw + 1j * q_mvar).T)
        s_ref = s_ref + here[self._ref]
        slack_rows = [
            int(np.flatnonzero(self._ref == self._bus_row[self.view.bus_position(s.bus)])[0])
            for s in self.view.slacks
        ]
        return PowerFlowResult(
            vm_pu=np.abs(bus_v),
            va_degree=np.degrees(np.angle(bus_v)),
            branch_p_from_mw=pf,
            branch_q_from_mvar=qf,
            branch_p_to_mw=pt,
            branch_loading_percent=ld,
            slack_p_mw=s_ref[slack_rows].real.T,
            slack_q_mvar=s_ref[slack_rows].imag.T,
            element_loading_percent=elements,
            branch_q_to_mvar=qt,
        )

    def linearise(self, p_mw: FloatArray, q_mvar: FloatArray) -> Linearisation:
        """Solve the AC power flow at ``p_mw``/``q_mvar`` ([period, view bus], consumption) and
        expand it to first order there (MATPOWER's dSbus_dV and dSbr_dV, in MW and Mvar).

        Every period's derivatives fall on the same entries (the admittance matrices' and the
        diagonal), so they are computed for all periods at once on those entries, and each
        period's matrices hold one row of the result (1-MV-comm--2-no_sw's 96 periods: one
        chain of sparse products per period took 0.43-0.54 s per expansion)."""
        p_mw = np.atleast_2d(np.asarray(p_mw, dtype=float))
        q_mvar = np.atleast_2d(np.asarray(q_mvar, dtype=float))
        n_t = p_mw.shape[0]
        s = np.repeat(self._s_base[:, None], n_t, axis=1).astype(complex)
        np.add.at(s, self._bus_row, -(p_mw.T + 1j * q_mvar.T) / self._base_mva)
        v_all, converged = self._solve(s)
        for bad in np.flatnonzero(~converged):
            v_all[:, bad] = self._pandapower_period(p_mw[bad], q_mvar[bad], int(bad), n_t)
        base = self._base_mva
        n, n_k = self._ybus.shape[0], len(self.view.branches)
        if self._expansion is None:
            self._expansion = _Expansion(self)
        ex = self._expansion
        v = v_all.T  # [period, internal bus]
        vn = v / np.abs(v)
        ibus = (self._ybus @ v_all).T
        r, c, y = ex.y_row, ex.y_col, np.conj(ex.y)
        # dS/d|V| and dS/dθ: the admittance entries, then the diagonal
        d_vm = np.concatenate([v[:, r] * y * np.conj(vn[:, c]), np.conj(ibus) * vn], axis=1)
        d_va = np.concatenate([-1j * v[:, r] * y * np.conj(v[:, c]), 1j * v * np.conj(ibus)], 1)
        s_bus = v * np.conj(ibus) * base
        # what enters each view branch at its from bus: each member's flow at the end that
        # is the branch's from end (its admittance row's entries, then the end's bus)
        f_va, f_vm = [], []
        s_in = np.zeros((n_k, n_t), dtype=complex)
        for side in ex.sides:
            i_br = (side.admittance @ v_all).T  # [period, member]
            v_end = v[:, side.ends]
            y_e = np.conj(side.y)
            f_va += [-1j * v_end[:, side.y_member] * y_e * np.conj(v[:, side.y_col])]
            f_va += [1j * np.conj(i_br) * v_end]
            f_vm += [v_end[:, side.y_member] * y_e * np.conj(vn[:, side.y_col])]
            f_vm += [np.conj(i_br) * vn[:, side.ends]]
            np.add.at(s_in, side.owner, (v_end * np.conj(i_br) * base).T)
        fa, fv = np.concatenate(f_va, axis=1), np.concatenate(f_vm, axis=1)
        return Linearisation(
            n_internal=n,
            bus_rows=self._bus_row.copy(),
            slack_rows=np.array(
                [self._bus_row[self.view.bus_position(sl.bus)] for sl in self.view.slacks],
                dtype=np.int64,
            ),
            p0_mw=np.ascontiguousarray(s_bus.real),
            q0_mvar=np.ascontiguousarray(s_bus.imag),
            vm0_pu=np.abs(v_all).T.copy(),
            jacobian=ex.bus.matrices((d_va.real, d_vm.real, d_va.imag, d_vm.imag), base),
            flow_p0_mw=np.ascontiguousarray(s_in.real.T),
            flow_q0_mvar=np.ascontiguousarray(s_in.imag.T),
            flow_jacobian=ex.branch.matrices((fa.real, fv.real, fa.imag, fv.imag), base),
        )


class _Entries:
    """Where a family of sparse matrices, one per period, has its entries: ``rows``/``cols``
    of the values as computed (repeats allowed: they add up), kept as one CSR pattern."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> None:
        key = rows.astype(np.int64) * shape[1] + cols
        unique, at = np.unique(key, return_inverse=True)
        self.shape = shape
        self.indices = (unique % shape[1]).astype(np.int32)
        self.indptr = np.searchsorted(unique // shape[1], np.arange(shape[0] + 1)).astype(np.int32)
        # values as computed → values on the pattern, repeats added
        self.gather = sp.csr_matrix(
            (np.ones(key.size), (np.arange(key.size), at)), shape=(key.size, unique.size)
        )

    def matrices(
        self, values: tuple[np.ndarray, ...], scale: float
    ) -> tuple[tuple[sp.csr_matrix, ...], ...]:
        """Per period, one matrix of each of ``values`` ([period, entry] arrays) × ``scale``."""
        on = [np.ascontiguousarray((x @ self.gather) * scale) for x in values]
        return tuple(
            tuple(
                sp.csr_matrix((x[t], self.indices, self.indptr), shape=self.shape, copy=False)
                for x in on
            )
            for t in range(on[0].shape[0])
        )


class _Side:
    """One end of a view branch's members in the expansion: the members whose flow is the
    branch's (``member``), their admittance rows, end buses and owning branches, and the
    admittance entries as (member row, column, value)."""

    def __init__(self, admittance: sp.csr_matrix, ends: np.ndarray, owner: np.ndarray) -> None:
        self.admittance = admittance
        self.ends = ends
        self.owner = owner
        coo = admittance.tocoo()
        self.y_member = coo.row.astype(np.int64)
        self.y_col = coo.col.astype(np.int64)
        self.y = coo.data


class _Expansion:
    """The entries of the expansion's matrices, fixed for a network (see
    :meth:`AcEvaluator.linearise`)."""

    def __init__(self, ac: AcEvaluator) -> None:
        n, n_k = ac._ybus.shape[0], len(ac.view.branches)
        y = ac._ybus.tocoo()
        self.y_row, self.y_col, self.y = y.row.astype(np.int64), y.col.astype(np.int64), y.data
        diag = np.arange(n)
        self.bus = _Entries(np.concatenate([y.row, diag]), np.concatenate([y.col, diag]), (n, n))
        rows, same, owner = ac._m_rows, ac._m_same, ac._m_owner
        self.sides: list[_Side] = []
        branch_rows, branch_cols = [], []
        for keep, y_end, ends in (
            (same, ac._yf, ac._m_from_bus),
            (~same, ac._yt, ac._m_to_bus),
        ):
            side = _Side(y_end[rows[keep]].tocsr(), ends[keep], owner[keep])
            self.sides.append(side)
            branch_rows += [side.owner[side.y_member], side.owner]
            branch_cols += [side.y_col, side.ends]
        self.branch = _Entries(np.concatenate(branch_rows), np.concatenate(branch_cols), (n_k, n))


class _Newton:
    """Newton–Raphson on the polar power-flow equations (as MATPOWER's ``newtonpf``) for
    networks with PV buses, all periods at once: the periods' Jacobians form one
    block-diagonal sparse system per iteration. PV buses hold |V| at their set-point (the
    initial voltage pandapower gives them) and take whatever reactive power that needs, as
    pandapower's ``runpp`` does by default (``enforce_q_lims=False``)."""

    max_iterations = 30

    def __init__(self, ybus: sp.csr_matrix, ref: np.ndarray, pv: np.ndarray, pq: np.ndarray):
        self.ybus = ybus
        n = ybus.shape[0]
        self.pvpq = np.concatenate([pv, pq])
        self.pq = pq
        n_a, n_m = self.pvpq.size, pq.size
        self.m = n_a + n_m
        coo = ybus.tocoo()
        diag = np.arange(n)
        self.r = np.concatenate([coo.row, diag]).astype(np.int64)
        self.c = np.concatenate([coo.col, diag]).astype(np.int64)
        self.y = np.concatenate([coo.data, np.zeros(n)])
        self.off = np.arange(self.r.size) < coo.nnz
        row_p = np.full(n, -1, dtype=np.int64)
        row_p[self.pvpq] = np.arange(n_a)
        row_q = np.full(n, -1, dtype=np.int64)
        row_q[pq] = n_a + np.arange(n_m)
        # the four blocks (∂P/∂θ, ∂P/∂|V|, ∂Q/∂θ, ∂Q/∂|V|) as masks over the entries
        self.blocks = []
        for rows, cols, part_of in (
            (row_p, row_p, "a"),  # angle columns share the P rows' numbering (pv, pq)
            (row_p, row_q, "m"),
            (row_q, row_p, "a"),
            (row_q, row_q, "m"),
        ):
            keep = (rows[self.r] >= 0) & (cols[self.c] >= 0)
            self.blocks.append((keep, rows[self.r[keep]], cols[self.c[keep]], part_of))
        del ref

    def solve(self, v: np.ndarray, s: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
        n_t = v.shape[1]
        converged = np.zeros(n_t, dtype=bool)
        active = np.arange(n_t)
        for _ in range(self.max_iterations):
            va, vs = v[:, active], s[:, active]
            current = self.ybus @ va
            mis = va * np.conj(current) - vs
            f = np.vstack([mis[self.pvpq].real, mis[self.pq].imag])  # [m, T]
            done = np.abs(f).max(axis=0, initial=0.0) < tol
            converged[active[done]] = True
            if done.all():
                break
            active, va, current, f = active[~done], va[:, ~done], current[:, ~done], f[:, ~done]
            dx = self._step(va, current, f)
            angle = np.angle(va)
            mag = np.abs(va)
            n_a = self.pvpq.size
            angle[self.pvpq] -= dx[:n_a]
            mag[self.pq] -= dx[n_a:]
            v[:, active] = mag * np.exp(1j * angle)
        return v, converged

    def _step(self, v: np.ndarray, current: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Solve J·dx = F for every column (period) at once."""
        n_t = v.shape[1]
        r, c, y, off = self.r, self.c, self.y, self.off
        vn = v / np.abs(v)
        # entries [entry, T] of dS/d|V| and dS/dθ (MATPOWER's dSbus_dV, polar)
        d_vm = np.where(off[:, None], v[r] * np.conj(y[:, None] * vn[c]), 0.0)
        d_va = np.where(off[:, None], -1j * v[r] * np.conj(y[:, None] * v[c]), 0.0)
        d_vm = d_vm + np.where(off[:, None], 0.0, np.conj(current[r]) * vn[r])
        d_va = d_va + np.where(off[:, None], 0.0, 1j * v[r] * np.conj(current[r]))
        m = self.m
        shift = np.arange(n_t) * m
        rows, cols, vals = [], [], []
        real_parts = (True, True, False, False)  # the P rows take the real parts
        for (keep, br, bc, part_of), real in zip(self.blocks, real_parts, strict=True):
            d = (d_va if part_of == "a" else d_vm)[keep]
            vals.append((d.real if real else d.imag).T.ravel())
            rows.append((br[None, :] + shift[:, None]).ravel())
            cols.append((bc[None, :] + shift[:, None]).ravel())
        jac = sp.csc_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(m * n_t, m * n_t),
        )
        dx = spla.spsolve(jac, f.T.ravel())
        return np.asarray(dx).reshape(n_t, m).T


def run_power_flow(
    net: Any,
    view: NetworkView,
    p_mw: Mapping[str, float] | None = None,
    q_mvar: Mapping[str, float] | None = None,
) -> PowerFlowResult:
    """One AC power flow of ``net`` with devices at the given powers (others at base values),
    on a copy: ``net`` is not modified."""
    p, q = device_bus_consumption(view, p_mw or {}, q_mvar)
    return AcEvaluator(net, view).run(p[None, :], q[None, :])
