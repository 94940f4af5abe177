"""Per-period operating points of a feeder's devices."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from feederdao.errors import ProfileError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Profiles:
    """Power of every device for ``n_periods`` periods from ``start``.

    ``p_mw[t, k]`` and ``q_mvar[t, k]`` belong to ``device_ids[k]`` in that device's own sign
    convention (see :class:`feederdao.domain.network.Device`). For PV this is the *available*
    power. Arrays are read-only. ``start`` is time-zone aware; ``notes`` say how the window was
    mapped onto the profiles' year and clock.
    """

    start: datetime
    resolution_min: int
    device_ids: tuple[str, ...]
    p_mw: FloatArray
    q_mvar: FloatArray
    source: str
    notes: tuple[str, ...] = ()
    _columns: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # a lookup, not a search: the 10,453-bus SimBench network's 12,348 devices are each
        # looked up while its participants and bids are made (2.2 s as a search)
        columns: dict[str, int] = {}
        for k, device_id in enumerate(self.device_ids):
            columns.setdefault(device_id, k)
        object.__setattr__(self, "_columns", columns)
        for arr in (self.p_mw, self.q_mvar):
            arr.setflags(write=False)
        if self.p_mw.shape != self.q_mvar.shape or self.p_mw.shape[1] != len(self.device_ids):
            raise ProfileError("profile arrays do not match the device list")

    @property
    def n_periods(self) -> int:
        return int(self.p_mw.shape[0])

    @property
    def period_hours(self) -> float:
        return self.resolution_min / 60.0

    def timestamps(self) -> list[datetime]:
        """The start of every period, in ``start``'s time zone (stepping in real time, so a
        window across a summer-time change keeps 15 minutes between periods)."""
        step = timedelta(minutes=self.resolution_min)
        tz = self.start.tzinfo
        first = self.start.astimezone(UTC)
        return [(first + k * step).astimezone(tz) for k in range(self.n_periods)]

    def find(self, device_id: str) -> int | None:
        """The column of ``device_id``, or ``None`` when it has no profile."""
        return self._columns.get(device_id)

    def column(self, device_id: str) -> int:
        """The column of ``device_id``; :class:`ProfileError` when it has no profile."""
        k = self._columns.get(device_id)
        if k is None:
            raise ProfileError(f"device {device_id!r} has no profile")
        return k
