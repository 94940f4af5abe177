"""AC power flow results, as values, in the row order of a :class:`NetworkView`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from feederdao.domain.profiles import FloatArray


@dataclass(frozen=True)
class PowerFlowResult:
    """AC power flow at ``n_periods`` operating points.

    Arrays are indexed ``[period, row]`` with rows in ``NetworkView.buses`` /
    ``NetworkView.branches`` order. Branch flows enter the branch at its view ``from_bus``.
    ``element_loading_percent`` gives each pandapower line/trafo (``"line:3"``) its own loading,
    which differs from the merged branch's for parallel elements.
    """

    vm_pu: FloatArray
    va_degree: FloatArray
    branch_p_from_mw: FloatArray
    branch_q_from_mvar: FloatArray
    branch_p_to_mw: FloatArray
    branch_loading_percent: FloatArray
    slack_p_mw: FloatArray
    slack_q_mvar: FloatArray
    element_loading_percent: dict[str, FloatArray]

    @property
    def n_periods(self) -> int:
        return int(self.vm_pu.shape[0])

    branch_q_to_mvar: FloatArray | None = None

    @property
    def losses_per_branch_p(self) -> FloatArray:
        """Active loss of each branch per period (MW)."""
        return np.asarray(self.branch_p_from_mw + self.branch_p_to_mw, dtype=np.float64)

    @property
    def losses_per_branch_q(self) -> FloatArray:
        """Reactive balance of each branch per period (Mvar): series loss less charging."""
        if self.branch_q_to_mvar is None:
            return np.zeros_like(self.branch_q_from_mvar)
        return np.asarray(self.branch_q_from_mvar + self.branch_q_to_mvar, dtype=np.float64)

    @property
    def losses_mw(self) -> FloatArray:
        """Active losses per period: sum over branches of sending minus receiving power."""
        return np.asarray(
            (self.branch_p_from_mw + self.branch_p_to_mw).sum(axis=1), dtype=np.float64
        )


class AcChecker(Protocol):
    """Runs an AC power flow at net bus consumption ``[period, view bus]`` (MW, Mvar)."""

    def __call__(self, p_mw: FloatArray, q_mvar: FloatArray) -> PowerFlowResult: ...
