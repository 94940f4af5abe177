"""Short public reason codes of failures: what ``/health`` shows anyone. The full message goes
to the log and to the authenticated views (operator and auditor)."""

from __future__ import annotations

from feederdao.errors import InfeasibleClearingError, PowerFlowError, SolverError
from feederdao.governance.errors import ChainUnavailableError, GovernanceError
from feederdao.metering.errors import ReadingsRefused
from feederdao.scada_bridge.errors import BridgeError
from feederdao.store.errors import StoreBusyError, StoreError, StoreUnavailableError
from feederdao.workflows.errors import FeedReadingsRefused, RootRejectedError, StepFailed

REASONS = (
    "store-busy",
    "store-read-only",
    "store-unavailable",
    "store",
    "chain-unreachable",
    "chain",
    "infeasible",
    "solver",
    "power-flow",
    "devices-not-confirmed",
    "readings-refused",
    "root-rejected",
    "opcua",
    "network",
    "internal",
)


def reason_code(exc: BaseException) -> str:
    """One of :data:`REASONS` for ``exc``."""
    if isinstance(exc, StoreBusyError):
        return "store-busy"
    if isinstance(exc, StoreUnavailableError):
        return "store-read-only" if exc.read_only else "store-unavailable"
    if isinstance(exc, StoreError):
        return "store"
    if isinstance(exc, ChainUnavailableError):
        return "chain-unreachable"
    if isinstance(exc, GovernanceError):
        return "chain"
    if isinstance(exc, InfeasibleClearingError):
        return "infeasible"
    if isinstance(exc, SolverError):
        return "solver"
    if isinstance(exc, PowerFlowError):
        return "power-flow"
    if isinstance(exc, RootRejectedError):
        return "root-rejected"
    if isinstance(exc, StepFailed):
        return "devices-not-confirmed"
    if isinstance(exc, ReadingsRefused | FeedReadingsRefused):
        return "readings-refused"
    if isinstance(exc, BridgeError):
        return "opcua"
    if isinstance(exc, OSError):  # TimeoutError and ConnectionError included
        return "network"
    return "internal"
