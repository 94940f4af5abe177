"""Metering errors: every error this package raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from feederdao.errors import FeederDaoError


class MeteringError(FeederDaoError, ValueError):
    """A meter registration, a reading or a settlement input is invalid."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one reading of a batch was refused: ``index`` in the batch, a stable ``reason`` code
    (``unknown-meter``, ``bad-signature``, ``wrong-interval``, ``bad-period``,
    ``device-not-registered``, ``beyond-capability``, ``after-window``, ``conflict``) and a
    sentence saying what was wrong."""

    index: int
    meter: str
    period: int
    device: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"reading {self.index} (meter {self.meter}, period {self.period}): {self.message}"


class ReadingsRefused(MeteringError):
    """A batch of readings was refused as a whole; nothing of it was stored. ``refusals`` says
    which readings and why."""

    def __init__(self, refusals: Sequence[Refusal], shown: int = 10) -> None:
        self.refusals = tuple(refusals)
        head = "; ".join(str(r) for r in self.refusals[:shown])
        more = f" (and {len(self.refusals) - shown} more)" if len(self.refusals) > shown else ""
        super().__init__(
            f"{len(self.refusals)} reading(s) refused, none of the batch stored: {head}{more}"
        )
