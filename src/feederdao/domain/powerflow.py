"""AC power flow results, as values, in the row order of a :class:`NetworkView`."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def losses_mw(self) -> FloatArray:
        """Active losses per period: sum over branches of sending minus receiving power."""
        return np.asarray(
            (self.branch_p_from_mw + self.branch_p_to_mw).sum(axis=1), dtype=np.float64
        )
