"""Errors the store raises; the API maps each to an HTTP status."""

from __future__ import annotations

from feederdao.errors import FeederDaoError


class StoreError(FeederDaoError, RuntimeError):
    """The database cannot be opened, migrated or used; ``retry_after_s`` says when trying
    again may help (None: it will not by itself)."""

    retry_after_s: int | None = None


class StoreBusyError(StoreError):
    """Another writer holds the lock longer than the store waits: retry shortly."""

    retry_after_s = 1


class StoreUnavailableError(StoreError):
    """The database cannot be written (``read_only``) or reached now: retry later."""

    retry_after_s = 5

    def __init__(self, message: str, read_only: bool = False) -> None:
        super().__init__(message)
        self.read_only = read_only


class NotFoundError(FeederDaoError, LookupError):
    """A participant, bid or interval does not exist (or is not the caller's)."""


class ConflictError(FeederDaoError, ValueError):
    """The request contradicts what is stored: a reused idempotency key with other content,
    an address registered twice, an interval in the wrong state."""


class StateConflictError(ConflictError):
    """The interval (or key) is not in a state that allows the request (clear before gate
    closure, publish before clearing): a refusal, not a failure."""


class GateClosedError(StateConflictError):
    """The interval's gate has closed: bids can no longer be placed or cancelled."""


class DuplicateKeyError(ConflictError):
    """A row with the same unique key is already stored (e.g. a bid's idempotency key committed
    by a concurrent request); raised in place of the driver's integrity error."""


class StoreIntegrityError(StoreError):
    """What is stored contradicts itself (e.g. bids that changed after gate closure)."""
