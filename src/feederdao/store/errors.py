"""Errors the store raises; the API maps each to an HTTP status."""

from __future__ import annotations

from feederdao.errors import FeederDaoError


class StoreError(FeederDaoError, RuntimeError):
    """The database cannot be opened or migrated."""


class NotFoundError(FeederDaoError, LookupError):
    """A participant, bid or interval does not exist (or is not the caller's)."""


class ConflictError(FeederDaoError, ValueError):
    """The request contradicts what is stored: a reused idempotency key with other content,
    an address registered twice, an interval in the wrong state."""


class GateClosedError(ConflictError):
    """The interval's gate has closed: bids can no longer be placed or cancelled."""


class DuplicateKeyError(ConflictError):
    """A row with the same unique key is already stored (e.g. a bid's idempotency key committed
    by a concurrent request); raised in place of the driver's integrity error."""
