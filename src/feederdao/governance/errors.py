"""Governance errors: every error this package raises, third-party ones (web3, eth-account,
httpx) translated into these where the library is called."""

from __future__ import annotations

from feederdao.errors import FeederDaoError, FieldError


class GovernanceError(FeederDaoError, RuntimeError):
    """A chain call or transaction failed; the message says which and why."""


class ContractsNotBuiltError(GovernanceError):
    """The contract artifacts are missing: the contracts have not been compiled."""


class ChainUnavailableError(GovernanceError, ConnectionError):
    """The node could not be reached."""


class EnvelopeError(FeederDaoError, ValueError):
    """The operator's safety envelope file is invalid."""


class ParameterValueError(GovernanceError, ValueError):
    """A governed parameter value or token amount cannot be represented exactly on chain."""


class SignatureError(FieldError):
    """A signature is malformed or does not recover to the claimed address (``field`` is
    ``signature`` unless the message itself is at fault)."""

    def __init__(self, message: str, field: str = "signature") -> None:
        super().__init__(field, message)


class SnapshotError(GovernanceError):
    """The Snapshot hub could not be read, or answered something unusable; the message says why."""


class VoteRefused(GovernanceError, ValueError):
    """A submitted vote did not verify; the message says why."""
