"""One exception root for the whole product.

Every error a user can see derives from :class:`FeederDaoError`; leaves also subclass the closest
builtin so callers that catch ``ValueError`` or ``RuntimeError`` keep working. Third-party errors
(pandapower, HiGHS, ...) are translated into these at the adapter that called the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FeederDaoError(Exception):
    """Root of every feederdao error."""


class NetworkLoadError(FeederDaoError, ValueError):
    """A network could not be loaded: unknown code, unreadable or non-network file."""


class NetworkDataError(FeederDaoError, ValueError):
    """A loaded network's content cannot be used (no slack, unsupported element, ...)."""


class ParticipantError(FeederDaoError, ValueError):
    """A participant is invalid: unknown or unsupplied bus, unknown device, duplicate id."""


class FieldError(FeederDaoError, ValueError):
    """A request's field is wrong; ``field`` names it (``blocks[1].quantity_mw``, ``bus``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BidValidationError(FieldError):
    """One or more bids or offers are invalid; the message names each bid, field and value.

    ``problems`` holds them one by one (:class:`feederdao.domain.market.BidProblem`: ``bid_id``,
    ``field``, ``reason``); ``field`` and ``reason`` are the first one's.
    """

    def __init__(
        self, message: str, field: str = "bid", reason: str = "", problems: Sequence[Any] = ()
    ) -> None:
        super().__init__(field, message)
        self.reason = reason or message
        self.problems = tuple(problems)

    @classmethod
    def of(cls, problems: Sequence[Any], shown: int = 20) -> BidValidationError:
        """One error listing ``problems`` (the first ``shown`` of them in the message)."""
        head = "; ".join(str(p) for p in problems[:shown])
        more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
        first = problems[0]
        if len(problems) == 1:
            return cls(str(first), first.field, first.reason, problems)
        return cls(
            f"{len(problems)} invalid bid(s): {head}{more}", first.field, first.reason, problems
        )


class ParameterError(FeederDaoError, ValueError):
    """A parameter or option is invalid or inconsistent (e.g. v_min_pu ≥ v_max_pu)."""


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
