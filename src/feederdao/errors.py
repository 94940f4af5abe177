"""One exception root for the whole product.

Every error a user can see derives from :class:`FeederDaoError`; leaves also subclass the closest
builtin so callers that catch ``ValueError`` or ``RuntimeError`` keep working. Third-party errors
(pandapower, HiGHS, ...) are translated into these at the adapter that called the library.
"""

from __future__ import annotations


class FeederDaoError(Exception):
    """Root of every feederdao error."""


class NetworkLoadError(FeederDaoError, ValueError):
    """A network could not be loaded: unknown code, unreadable or non-network file."""


class NetworkDataError(FeederDaoError, ValueError):
    """A loaded network's content cannot be used (no slack, unsupported element, ...)."""


class ParticipantError(FeederDaoError, ValueError):
    """A participant is invalid: unknown or unsupplied bus, unknown device, duplicate id."""


class BidValidationError(FeederDaoError, ValueError):
    """A bid or offer is invalid; the message names the bid, field and value."""


class FieldError(FeederDaoError, ValueError):
    """A request's field is wrong; ``field`` names it (``blocks[1].quantity_mw``, ``bus``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ProfileError(FeederDaoError, ValueError):
    """Time series cannot be built for the requested window."""


class PowerFlowError(FeederDaoError, RuntimeError):
    """An AC power flow did not converge or could not be run."""


class SolverError(FeederDaoError, RuntimeError):
    """The optimisation solver failed for a reason other than infeasibility."""


class InfeasibleClearingError(FeederDaoError, RuntimeError):
    """No dispatch satisfies the bids, devices and limits.

    ``shortfalls`` names where the elastic re-solve had to relax the problem.
    """

    def __init__(self, message: str, shortfalls: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.shortfalls = shortfalls
