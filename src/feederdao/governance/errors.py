"""Governance errors, translated from web3 at this package's edge."""

from __future__ import annotations

from feederdao.errors import FeederDaoError


class GovernanceError(FeederDaoError, RuntimeError):
    """A chain call or transaction failed; the message says which and why."""


class ContractsNotBuiltError(GovernanceError):
    """The contract artifacts are missing: the contracts have not been compiled."""


class ChainUnavailableError(GovernanceError, ConnectionError):
    """The node could not be reached."""


class EnvelopeError(FeederDaoError, ValueError):
    """The operator's safety envelope file is invalid."""
