"""Per-period device operating points from SimBench profiles (or standard shapes).

The clock. SimBench ships one year of 15-minute profiles, 2016, labelled in German local time
(CET, and CEST from 27 March to 30 October: the labels skip 02:00–02:45 in spring and repeat
02:00–02:45 in autumn), 35,136 rows evenly spaced in real time from 2016-01-01 00:00 CET. A
window's start is mapped onto that clock exactly:

* a time-zone-aware start (the service's UTC intervals) is converted to UTC and read at the row
  of that instant;
* a naive start (the CLI's ``--start``) is a wall-clock time on the profiles' clock
  (Europe/Berlin); a time that does not exist there (the spring gap) is refused, one in the
  repeated autumn hour is read at its first (summer-time) occurrence;
* a start in another year is read at the same wall-clock date and time of 2016, and the
  profiles say so in their ``notes``.

Networks without profiles use standard shapes on the same clock: a household load curve with
morning and evening peaks and a clear-sky PV bell, scaled to each device's nameplate.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from feederdao.domain.network import DeviceKind, NetworkView
from feederdao.domain.profiles import Profiles
from feederdao.errors import ProfileError
from feederdao.grid_model.loader import LoadedNetwork

RESOLUTION_MIN = 15
_STEPS_PER_DAY = 24 * 60 // RESOLUTION_MIN
_SIMBENCH_STEPS = 35136  # 2016 is a leap year: 366 days of 96 steps
#: the clock SimBench's profile labels are written in, and its year
PROFILE_CLOCK = ZoneInfo("Europe/Berlin")
PROFILE_YEAR = 2016
_ORIGIN = datetime(PROFILE_YEAR, 1, 1, tzinfo=PROFILE_CLOCK).astimezone(UTC)


def profile_instant(start: datetime) -> tuple[datetime, tuple[str, ...]]:
    """The instant (UTC) of the profile row a window starting at ``start`` is read from, and
    what the mapping had to say (another year, the autumn hour)."""
    notes: list[str] = []
    local = start.astimezone(PROFILE_CLOCK) if start.tzinfo is not None else start
    if start.tzinfo is None:
        aware = local.replace(tzinfo=PROFILE_CLOCK)
        if aware.astimezone(UTC).astimezone(PROFILE_CLOCK).replace(tzinfo=None) != local:
            raise ProfileError(
                f"start {start.isoformat()} does not exist on the profiles' clock "
                "(Europe/Berlin skips that hour when summer time starts)"
            )
    if local.year != PROFILE_YEAR:
        try:
            mapped = local.replace(year=PROFILE_YEAR, tzinfo=None)
        except ValueError:
            raise ProfileError(
                f"start {start.isoformat()}: {local:%d %B} has no day in {PROFILE_YEAR}"
            ) from None
        notes.append(
            f"SimBench's profiles are for {PROFILE_YEAR}: the window from "
            f"{local:%Y-%m-%d %H:%M} is read at {mapped:%Y-%m-%d %H:%M} (local time)"
        )
        local = mapped
    if local.tzinfo is None:
        local = local.replace(tzinfo=PROFILE_CLOCK)
    return local.astimezone(UTC), tuple(notes)


def _step_of(start: datetime) -> tuple[int, datetime, tuple[str, ...]]:
    """Row of the profiles a window starting at ``start`` begins at, that row's instant, and
    the mapping's notes."""
    instant, notes = profile_instant(start)
    minutes = (instant - _ORIGIN).total_seconds() / 60.0
    if minutes % RESOLUTION_MIN:
        raise ProfileError(f"start {start.isoformat()} is not on a {RESOLUTION_MIN}-minute step")
    return int(minutes // RESOLUTION_MIN), instant, notes


def household_shape(hours: np.ndarray) -> np.ndarray:
    """Relative household demand (peak 1.0): night trough, morning and evening peaks."""
    morning = 0.35 * np.exp(-(((hours - 7.5) / 1.5) ** 2))
    evening = 0.6 * np.exp(-(((hours - 19.0) / 2.0) ** 2))
    return np.asarray(0.35 + morning + evening + 0.1 * np.exp(-(((hours - 12.5) / 2.0) ** 2)))


def pv_shape(hours: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
    """Clear-sky PV output relative to peak: a cosine bell between sunrise and sunset, longer
    and higher in summer (central-European latitude)."""
    season = np.cos(2 * math.pi * (day_of_year - 172) / 366.0)  # 1 at midsummer
    half_day = 4.0 + 4.0 * (0.5 + 0.5 * season)  # 4 h in winter, 8 h at midsummer
    peak = 0.55 + 0.45 * (0.5 + 0.5 * season)
    x = (hours - 13.0) / half_day
    return np.asarray(np.where(np.abs(x) < 1.0, peak * np.cos(x * math.pi / 2) ** 2, 0.0))


def build_profiles(
    loaded: LoadedNetwork, view: NetworkView, start: datetime, n_periods: int
) -> Profiles:
    """Device powers for ``n_periods`` 15-minute periods from ``start``."""
    if n_periods <= 0:
        raise ProfileError(f"n_periods must be positive, got {n_periods}")
    first, instant, notes = _step_of(start)
    steps = (first + np.arange(n_periods)) % _SIMBENCH_STEPS
    ids = tuple(d.device_id for d in view.devices)
    p = np.zeros((n_periods, len(ids)))
    q = np.zeros((n_periods, len(ids)))
    if loaded.has_simbench_profiles:
        source = "simbench"
        windows: dict[tuple[str, str], np.ndarray] = {}  # many devices share a profile
        for k, dev in enumerate(view.devices):
            table = {DeviceKind.LOAD: "load", DeviceKind.STORAGE: "storage"}.get(dev.kind, "sgen")
            if dev.device_id.startswith("gen:"):
                table = "gen"
            p[:, k] = _simbench_window(loaded.net, table, dev.element, "p_mw", steps, windows)
            q[:, k] = (
                _simbench_window(loaded.net, table, dev.element, "q_mvar", steps, windows)
                if table == "load"
                else dev.q_mvar
            )
    else:
        source = "standard-shapes"
        local = [
            (instant + timedelta(minutes=RESOLUTION_MIN * k)).astimezone(PROFILE_CLOCK)
            for k in range(n_periods)
        ]
        hours = np.array([t.hour + t.minute / 60.0 for t in local])
        doy = np.array([t.timetuple().tm_yday for t in local])
        load_shape = household_shape(hours)
        sun = pv_shape(hours, doy)
        for k, dev in enumerate(view.devices):
            if dev.kind in (DeviceKind.LOAD, DeviceKind.FLEX_LOAD):
                p[:, k] = dev.p_mw * load_shape
                q[:, k] = dev.q_mvar * load_shape
            elif dev.kind == DeviceKind.PV:
                rating = dev.sn_mva or dev.p_mw
                p[:, k] = rating * sun
            elif dev.kind == DeviceKind.GENERATOR:
                # a voltage-controlled plant's set-point is a dispatch for the base case's
                # demand: it follows the demand, so the substation keeps its share
                p[:, k] = dev.p_mw * load_shape
            elif dev.kind == DeviceKind.RENEWABLE:
                p[:, k] = dev.p_mw
            # storage: no schedule of its own (0 MW)
    aware = start if start.tzinfo is not None else start.replace(tzinfo=PROFILE_CLOCK)
    return Profiles(
        start=aware,
        resolution_min=RESOLUTION_MIN,
        device_ids=ids,
        p_mw=p,
        q_mvar=q,
        source=source,
        notes=notes,
    )


def _relative_table(net: Any, table: str) -> Any:
    if table in ("load", "storage"):
        return net.profiles.get(table)
    frames = [net.profiles.get(name) for name in ("renewables", "powerplants")]
    return [f for f in frames if f is not None]


def _simbench_window(
    net: Any,
    table: str,
    element: int,
    column: str,
    steps: np.ndarray,
    windows: dict[tuple[str, str], np.ndarray],
) -> Any:
    """Absolute SimBench profile of one element at ``steps``: its relative profile times its
    nominal ``column``, as simbench.get_absolute_values computes it, but only for the window
    (the whole year of a 10,000-bus grid would take gigabytes). ``windows`` keeps each relative
    profile's window once read."""
    elements = getattr(net, table)
    nominal = float(elements.at[element, column])
    name = elements.at[element, "profile"] if "profile" in elements.columns else None
    if not isinstance(name, str) or not name:
        return np.full(len(steps), nominal)
    suffix = {"p_mw": "_pload", "q_mvar": "_qload"}[column] if table == "load" else ""
    key = name + suffix
    relative = windows.get((table, key))
    if relative is None:
        frames = _relative_table(net, table)
        for frame in frames if isinstance(frames, list) else [frames]:
            if frame is not None and key in frame.columns:
                relative = frame[key].to_numpy(dtype=float)[steps]
                break
        else:
            raise ProfileError(
                f"{table} {element} refers to SimBench profile {name!r}, which is missing"
            )
        windows[(table, key)] = relative
    return relative * nominal
