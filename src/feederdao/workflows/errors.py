"""Errors the workflows raise themselves (the domain's, store's and adapters' pass through)."""

from __future__ import annotations

from feederdao.errors import FeederDaoError


class NotApprovedError(FeederDaoError, PermissionError):
    """The participant exists but the operator has not approved it (or it is unknown)."""


class SignerMismatchError(FeederDaoError, PermissionError):
    """A signature recovers to another address than the one the message names."""


class SignInRefusedError(FeederDaoError, PermissionError):
    """A wallet sign-in was refused: the message is not for this service, its nonce is unknown,
    used or expired, it has expired, or another address signed it (the message says which)."""


class SignInBusyError(FeederDaoError, RuntimeError):
    """Too many sign-ins are waiting for their signature; try again shortly."""

    retry_after_s = 30


class ChainRequiredError(FeederDaoError, RuntimeError):
    """The request needs the governance chain and this service runs without one."""


class ServiceStoppingError(FeederDaoError, RuntimeError):
    """The service is stopping: the request was not carried out (a clearing cut short is redone
    after the restart)."""

    retry_after_s = 5


class StepFailed(FeederDaoError, RuntimeError):
    """A step of the operator loop failed (it is recorded; it will be retried or escalated)."""


class FeedReadingsRefused(FeederDaoError, RuntimeError):
    """Readings the operator loop read from the feeder's meters were refused by the validator
    (the batch's other readings were stored; a conflicting one is kept for the operator)."""


class RootRejectedError(StepFailed):
    """The guardian or the DAO rejected the interval's settlement root: retrying cannot help,
    so the step is escalated at once, for the operator to correct and re-settle the interval."""

    escalate_at_once = True


class InsufficientCollateralError(FeederDaoError, PermissionError):
    """A bid's worst-case cost exceeds what the participant's collateral still covers."""

    field = "blocks"
