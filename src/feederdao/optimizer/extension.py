"""Extending the clearing in Pyomo: your own variables, constraints and costs, honoured.

An extension is a function that receives a :class:`ClearingExtension`. Its ``model`` is a
Pyomo ``ConcreteModel``; :meth:`ClearingExtension.var` gives any of the clearing's own column
families as a Pyomo ``Var`` indexed like the family (``[t, k]`` for branch flows, ``[n]`` for
bid blocks, ...). Add variables, constraints and objective terms to ``model`` in plain Pyomo;
the clearing compiles them through Pyomo's standard representation into rows and columns of
its own program, solves everything together, and writes the values back: ``pyo.value(v)`` of
your variables, and the duals of your constraints into ``model.dual`` when you declare that
``Suffix(direction=Suffix.IMPORT)``.

Constraints and objectives must be linear; variables continuous. A constraint that links
periods makes the program one block instead of one per period (the clearing then solves it
whole).

Example: cap the substation's import at 0.1 MW in every period::

    def cap_import(ext: ClearingExtension) -> None:
        imp = ext.var("import")  # [t, substation]
        ext.model.cap = pyo.Constraint(ext.periods, rule=lambda m, t: imp[t, 0] <= 0.1)

    clear(view, profiles, bids, participants, extensions=[cap_import])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from feederdao.errors import ParameterError
from feederdao.optimizer.highs import Solution
from feederdao.optimizer.lp import INF, Cols, LinearProgram, Rows, Terms

if TYPE_CHECKING:
    from feederdao.optimizer.model import ClearingModel, Extension


class ExtensionError(ParameterError):
    """An extension added something the clearing cannot honour (non-linear, integer, ...)."""


class ClearingExtension:
    """What an extension function works on: a Pyomo model and the clearing's families."""

    def __init__(self, lp: LinearProgram, families: dict[str, Cols], n_periods: int) -> None:
        self.model = pyo.ConcreteModel(name="clearing extension")
        self.periods = range(n_periods)
        self._lp = lp
        self._families = families
        self._vars: dict[str, tuple[Any, Cols]] = {}

    @property
    def families(self) -> tuple[str, ...]:
        """Names :meth:`var` accepts."""
        return tuple(self._families)

    def var(self, name: str) -> Any:
        """The clearing's column family ``name`` as a Pyomo ``Var`` (created on first use)."""
        if name not in self._families:
            raise ExtensionError(
                f"the clearing has no variable family {name!r}; choose one of "
                + ", ".join(self._families)
            )
        if name not in self._vars:
            cols = self._families[name]
            sets = [range(n) for n in cols.shape]
            v = pyo.Var(*sets, dense=True)
            self.model.add_component(f"clearing_{name}", v)
            self._vars[name] = (v, cols)
        return self._vars[name][0]


@dataclass
class CompiledExtension:
    """The extension's rows and columns in the program, to write results back."""

    ext: ClearingExtension
    user_vars: list[tuple[Any, int]]  # (VarData, column)
    constraints: list[Any]  # ConstraintData, in row order
    rows: Rows | None

    def read(self, sol: Solution) -> None:
        for vd, col in self.user_vars:
            vd.set_value(float(sol.primal[col]), skip_validation=True)
        for v, cols in self.ext._vars.values():
            values = cols.of(sol.primal)
            for idx, vd in v.items():
                vd.set_value(float(values[idx]), skip_validation=True)
        dual = getattr(self.ext.model, "dual", None)
        if self.rows is not None and isinstance(dual, pyo.Suffix) and dual.import_enabled():
            y = self.rows.of(sol.row_dual)
            for k, c in enumerate(self.constraints):
                dual[c] = float(y[k])


def compile_extensions(model: ClearingModel, extensions: Sequence[Extension]) -> CompiledExtension:
    """Run the extension functions and add what they built to the model's program."""
    lp = model.lp
    families = {c.name: c for c in lp.col_names}
    ext = ClearingExtension(lp, families, model.data.n_periods)
    for fn in extensions:
        fn(ext)
    col_of: dict[int, int] = {}
    for v, cols in ext._vars.values():
        idx = cols.idx
        for key, vd in v.items():
            col_of[id(vd)] = int(idx[key])
    user: list[tuple[Any, int]] = []
    own = {id(v) for v, _ in ext._vars.values()}
    new_vars = [
        vd
        for comp in ext.model.component_objects(pyo.Var, active=True, descend_into=True)
        if id(comp) not in own
        for vd in comp.values()
    ]
    if new_vars:
        lo, hi = [], []
        for vd in new_vars:
            if not vd.is_continuous():
                raise ExtensionError(f"extension variable {vd.name} must be continuous")
            if vd.fixed:
                lo.append(float(vd.value))
                hi.append(float(vd.value))
            else:
                lo.append(-INF if vd.lb is None else float(vd.lb))
                hi.append(INF if vd.ub is None else float(vd.ub))
        cols = lp.add_cols("extension", (len(new_vars),), lo, hi, 0.0, period=-1)
        for vd, c in zip(new_vars, cols.idx.tolist(), strict=True):
            col_of[id(vd)] = c
            user.append((vd, c))

    def linear(expr: Any, what: str) -> tuple[float, list[int], list[float]]:
        repn = generate_standard_repn(expr, compute_values=True)
        if not repn.is_linear():
            raise ExtensionError(f"extension {what} is not linear")
        cols = [col_of[id(v)] for v in repn.linear_vars]
        return float(repn.constant), cols, [float(a) for a in repn.linear_coefs]

    constraints = [
        c for c in ext.model.component_data_objects(pyo.Constraint, active=True, descend_into=True)
    ]
    rows: Rows | None = None
    if constraints:
        terms = Terms(len(constraints))
        lower = np.empty(len(constraints))
        upper = np.empty(len(constraints))
        for k, c in enumerate(constraints):
            const, cols_k, coefs = linear(c.body, f"constraint {c.name}")
            terms.add(np.full(len(cols_k), k), cols_k, coefs)
            lower[k] = -INF if c.lower is None else float(pyo.value(c.lower)) - const
            upper[k] = INF if c.upper is None else float(pyo.value(c.upper)) - const
        rows = lp.add_rows("extension", (len(constraints),), terms, lower, upper)
    for obj in ext.model.component_data_objects(pyo.Objective, active=True, descend_into=True):
        const, cols_k, coefs = linear(obj.expr, f"objective {obj.name}")
        sign = 1.0 if obj.sense == pyo.minimize else -1.0
        np.add.at(lp.cost, np.asarray(cols_k, dtype=np.int64), sign * np.asarray(coefs))
        lp.offset += sign * const
    return CompiledExtension(ext, user, constraints, rows)
