"""Per-period device operating points from SimBench profiles (or standard shapes).

SimBench ships one year (2016) of 15-minute profiles; a window starting at any date is read at
the same day of year and time. Networks without profiles use standard shapes: a household load
curve with morning and evening peaks and a clear-sky PV bell, scaled to each device's nameplate.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from feederdao.domain.network import DeviceKind, NetworkView
from feederdao.domain.profiles import Profiles
from feederdao.errors import ProfileError
from feederdao.grid_model.loader import LoadedNetwork

RESOLUTION_MIN = 15
_STEPS_PER_DAY = 24 * 60 // RESOLUTION_MIN
_SIMBENCH_STEPS = 35136  # 2016 is a leap year: 366 days of 96 steps


def _step_of(start: datetime) -> int:
    since_new_year = start - start.replace(month=1, day=1, hour=0, minute=0, second=0)
    minutes = since_new_year.total_seconds() / 60.0
    if minutes % RESOLUTION_MIN:
        raise ProfileError(f"start {start.isoformat()} is not on a {RESOLUTION_MIN}-minute step")
    return int(minutes // RESOLUTION_MIN)


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
    first = _step_of(start)
    steps = (first + np.arange(n_periods)) % _SIMBENCH_STEPS
    ids = tuple(d.device_id for d in view.devices)
    p = np.zeros((n_periods, len(ids)))
    q = np.zeros((n_periods, len(ids)))
    if loaded.has_simbench_profiles:
        source = "simbench"
        for k, dev in enumerate(view.devices):
            table = {DeviceKind.LOAD: "load", DeviceKind.STORAGE: "storage"}.get(dev.kind, "sgen")
            if dev.device_id.startswith("gen:"):
                table = "gen"
            p[:, k] = _simbench_window(loaded.net, table, dev.element, "p_mw", steps)
            q[:, k] = (
                _simbench_window(loaded.net, table, dev.element, "q_mvar", steps)
                if table == "load"
                else dev.q_mvar
            )
    else:
        source = "standard-shapes"
        hours = (steps % _STEPS_PER_DAY) * RESOLUTION_MIN / 60.0
        doy = steps // _STEPS_PER_DAY + 1
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
                p[:, k] = dev.p_mw
            # storage: no schedule of its own (0 MW)
    return Profiles(
        start=start,
        resolution_min=RESOLUTION_MIN,
        device_ids=ids,
        p_mw=p,
        q_mvar=q,
        source=source,
    )


def _relative_table(net: Any, table: str) -> Any:
    if table in ("load", "storage"):
        return net.profiles.get(table)
    frames = [net.profiles.get(name) for name in ("renewables", "powerplants")]
    return [f for f in frames if f is not None]


def _simbench_window(net: Any, table: str, element: int, column: str, steps: np.ndarray) -> Any:
    """Absolute SimBench profile of one element at ``steps``: its relative profile times its
    nominal ``column``, as simbench.get_absolute_values computes it, but only for the window
    (the whole year of a 10,000-bus grid would take gigabytes)."""
    row = getattr(net, table).loc[element]
    nominal = float(row[column])
    name = row.get("profile")
    if not isinstance(name, str) or not name:
        return np.full(len(steps), nominal)
    suffix = {"p_mw": "_pload", "q_mvar": "_qload"}[column] if table == "load" else ""
    frames = _relative_table(net, table)
    for frame in frames if isinstance(frames, list) else [frames]:
        if frame is not None and name + suffix in frame.columns:
            return frame[name + suffix].to_numpy(dtype=float)[steps] * nominal
    raise ProfileError(f"{table} {element} refers to SimBench profile {name!r}, which is missing")
