"""AC power flow results, as values, in the row order of a :class:`NetworkView`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

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


@dataclass(frozen=True)
class Linearisation:
    """First-order expansion of the AC power flow equations at an operating point.

    Rows and columns are the power-flow model's internal buses (``n_internal``; fused buses are
    one, auxiliary buses of open line ends are extra). ``bus_rows[i]`` is the internal row of
    view bus ``i``; ``slack_rows`` those of the substations. Per period ``t``:

    * ``p0_mw``/``q0_mvar`` [T, n_internal]: net injections at the point;
    * ``vm0_pu`` [T, n_internal]: voltage magnitudes at the point;
    * ``jacobian[t]`` = (∂P/∂θ, ∂P/∂|V|, ∂Q/∂θ, ∂Q/∂|V|), sparse, MW or Mvar per rad or pu;
    * ``flow0`` = (P, Q) entering each view branch at its from bus [T, K], ``flow_jacobian[t]``
      their derivatives (∂P/∂θ, ∂P/∂|V|, ∂Q/∂θ, ∂Q/∂|V|) [K × n_internal].
    """

    n_internal: int
    bus_rows: npt.NDArray[np.int64]
    slack_rows: npt.NDArray[np.int64]
    p0_mw: FloatArray
    q0_mvar: FloatArray
    vm0_pu: FloatArray
    jacobian: tuple[tuple[Any, Any, Any, Any], ...]
    flow_p0_mw: FloatArray
    flow_q0_mvar: FloatArray
    flow_jacobian: tuple[tuple[Any, Any, Any, Any], ...]


class Lineariser(Protocol):
    """Expands the AC power flow at net bus consumption ``[period, view bus]``."""

    def linearise(self, p_mw: FloatArray, q_mvar: FloatArray) -> Linearisation: ...
