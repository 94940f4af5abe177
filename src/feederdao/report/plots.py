"""PNG plots of a clearing or a study: voltage band, loading, DLMP heat map, feeder maps.

Every figure has a title, axis labels with units and dates in full on the time axis (in the
window's own time zone); figures keep a readable size on feeders of hundreds of buses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from feederdao.domain.network import NetworkView
from feederdao.domain.profiles import FloatArray

#: at most this many bus names on an axis; beyond it every k-th bus is labelled
MAX_LABELS = 40
DPI = 110


def _zone(times: Sequence[datetime]) -> str:
    tz = times[0].tzinfo
    names = sorted({t.tzname() or "" for t in times} - {""})
    key = getattr(tz, "key", None)
    return f"{key}, {'/'.join(names)}" if key else "/".join(names) or "local time"


def _time_axis(ax: Axes, times: Sequence[datetime]) -> None:
    """Dates in full (``2016-06-21 06:00``) on the x axis, in the times' own zone."""
    tz = times[0].tzinfo
    span_h = (times[-1] - times[0]).total_seconds() / 3600 if len(times) > 1 else 1.0
    step = max(1, int(np.ceil(span_h / 10)))
    ax.xaxis.set_major_locator(mdates.HourLocator(interval=step, tz=tz))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d %H:%M", tz=tz))  # type: ignore[no-untyped-call]
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    ax.set_xlabel(f"period start ({_zone(times)})")
    period = times[1] - times[0] if len(times) > 1 else timedelta(minutes=15)
    ax.set_xlim(times[0], times[-1] + period)  # type: ignore[arg-type]


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def voltage_band(
    path: Path,
    times: Sequence[datetime],
    vm_pu: FloatArray,
    v_min: float,
    v_max: float,
    feeder: np.ndarray | None = None,
) -> Path:
    """Highest and lowest bus voltage per period against the band. ``feeder`` marks the buses
    counted (the substations, held at their set-point, are left out so they cannot hide the
    feeder's own minimum or maximum)."""
    vm = vm_pu if feeder is None or not feeder.any() else vm_pu[:, feeder]
    t: Any = list(times)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.fill_between(t, vm.min(axis=1), vm.max(axis=1), alpha=0.3, label="range over the buses")
    ax.plot(t, vm.max(axis=1), lw=1, label="highest")
    ax.plot(t, vm.min(axis=1), lw=1, label="lowest")
    ax.axhline(v_max, color="red", ls="--", lw=1, label=f"band {v_min:.3f}–{v_max:.3f} pu")
    ax.axhline(v_min, color="red", ls="--", lw=1)
    ax.set_ylabel("voltage magnitude (pu)")
    left_out = "" if feeder is None else f" ({int((~feeder).sum())} substation bus(es) left out)"
    ax.set_title(f"Voltage band of the feeder's buses{left_out}")
    ax.legend(loc="best", fontsize=8)
    _time_axis(ax, times)
    return _save(fig, path)


def loading(
    path: Path,
    times: Sequence[datetime],
    loading_percent: FloatArray,
    names: Sequence[str],
    limit_percent: float,
    top: int = 5,
) -> Path:
    """Loading of the most loaded branches per period (branches without a rating are NaN and
    left out)."""
    t: Any = list(times)
    fig, ax = plt.subplots(figsize=(10, 4))
    peak = np.nan_to_num(loading_percent, nan=-np.inf).max(axis=0, initial=-np.inf)
    order = [k for k in np.argsort(peak)[::-1][:top] if np.isfinite(peak[k])]
    for k in order:
        ax.plot(t, loading_percent[:, k], lw=1, label=names[k])
    ax.axhline(limit_percent, color="red", ls="--", lw=1, label=f"limit {limit_percent:.0f} %")
    if not order:
        ax.text(0.5, 0.5, "no branch has a thermal rating", transform=ax.transAxes, ha="center")
    ax.set_ylabel("loading (% of rating)")
    ax.set_title(f"Loading of the {len(order)} most loaded branches")
    ax.legend(loc="best", fontsize=7)
    _time_axis(ax, times)
    return _save(fig, path)


def _bus_ticks(ax: Axes, names: Sequence[str]) -> None:
    n = len(names)
    every = max(1, int(np.ceil(n / MAX_LABELS)))
    ticks = list(range(0, n, every))
    ax.set_yticks(ticks)
    ax.set_yticklabels([names[i] for i in ticks], fontsize=7)
    shown = "" if every == 1 else f", every {every}th labelled"
    ax.set_ylabel(f"bus ({n} buses from the substation outwards{shown})")


def dlmp_heatmap(
    path: Path, times: Sequence[datetime], dlmp: FloatArray, bus_names: Sequence[str]
) -> Path:
    """DLMP per bus (rows, in the feeder's order from the substation) and period (columns)."""
    n_b = len(bus_names)
    fig, ax = plt.subplots(figsize=(10, min(9.0, 2.2 + 0.16 * min(n_b, MAX_LABELS))))
    step = times[1] - times[0] if len(times) > 1 else timedelta(minutes=15)
    edges = mdates.date2num([times[0], times[-1] + step])  # type: ignore[no-untyped-call]
    # a few extreme prices (the price cap where a limit is relaxed) would wash out the rest:
    # the colours span the bulk of the prices (the 5th to 95th percentile and as far again on
    # either side), the colour bar's arrows say there is more beyond
    p5, p95 = (float(x) for x in np.percentile(dlmp, [5, 95])) if dlmp.size else (0.0, 1.0)
    span = max(p95 - p5, 1.0)
    lo = max(float(dlmp.min(initial=0.0)), p5 - span) if dlmp.size else 0.0
    hi = min(float(dlmp.max(initial=1.0)), p95 + span) if dlmp.size else 1.0
    hi = hi if hi > lo else lo + 1.0
    image = ax.imshow(
        dlmp.T,
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=(edges[0], edges[-1], n_b - 0.5, -0.5),
        vmin=lo,
        vmax=hi,
    )
    ax.xaxis_date(times[0].tzinfo)
    _bus_ticks(ax, bus_names)
    _time_axis(ax, times)
    ax.set_title("DLMP per bus and period")
    beyond = (
        "neither"
        if dlmp.size == 0
        else (
            {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
                (bool(dlmp.min() < lo), bool(dlmp.max() > hi)), "both"
            )
        )
    )
    fig.colorbar(image, ax=ax, label="DLMP (EUR/MWh)", extend=beyond)  # type: ignore[arg-type]
    return _save(fig, path)


def tree_layout(view: NetworkView) -> np.ndarray:
    """x = hops from the substation, y = leaves stacked in depth-first order (parents centred
    over their children): a readable schematic of a radial feeder without geodata."""
    n = len(view.buses)
    children: dict[int, list[int]] = {i: [] for i in range(n)}
    for j in range(n):
        k = view.parent_branch[j]
        if k >= 0:
            children[view.bus_position(view.branches[k].from_bus)].append(j)
    xy = np.zeros((n, 2))
    next_leaf = [0.0]

    def place(i: int, depth: int) -> float:
        if not children[i]:
            y = next_leaf[0]
            next_leaf[0] += 1.0
        else:
            y = float(np.mean([place(c, depth + 1) for c in children[i]]))
        xy[i] = (depth, y)
        return y

    for i in range(n):
        if view.parent_branch[i] < 0:
            place(i, 0)
    return xy


def feeder_map(
    path: Path, view: NetworkView, values: np.ndarray, label: str, cmap: str, title: str
) -> Path:
    """The feeder as a tree from its substation, buses coloured by ``values``; bus names are
    written where there are few enough to read."""
    xy = tree_layout(view)
    n = len(view.buses)
    fig, ax = plt.subplots(figsize=(10, min(9.0, max(3.5, 0.22 * n))))
    for br in view.branches:
        a, b = view.bus_position(br.from_bus), view.bus_position(br.to_bus)
        ax.plot(
            xy[[a, b], 0], xy[[a, b], 1], color="0.6", lw=1.2 if br.kind == "line" else 3, zorder=1
        )
    size = 70 if n <= MAX_LABELS else max(8.0, 3000.0 / n)
    points = ax.scatter(
        xy[:, 0], xy[:, 1], c=values, cmap=cmap, s=size, zorder=2, edgecolors="k", linewidths=0.3
    )
    if n <= MAX_LABELS:
        for i, bus in enumerate(view.buses):
            ax.annotate(bus.name, xy[i], fontsize=6, xytext=(4, 4), textcoords="offset points")
    fig.colorbar(points, ax=ax, label=label)
    ax.set_title(title)
    ax.set_xlabel("branches from the substation")
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return _save(fig, path)


def dlmp_duration(path: Path, curves: dict[str, FloatArray], period_hours: float = 0.25) -> Path:
    """DLMP duration curves: each case's per-period DLMP (the mean over its buses) sorted from
    the highest, against the hours of the study in which the price is at least that high."""
    fig, ax = plt.subplots(figsize=(10, 4))
    for name, values in curves.items():
        v = np.sort(np.asarray(values, dtype=float))[::-1]
        ax.plot(np.arange(1, len(v) + 1) * period_hours, v, lw=1.2, label=name)
    ax.set_xlabel("hours at or above the price (h)")
    ax.set_ylabel("DLMP, mean over the buses (EUR/MWh)")
    ax.set_title("DLMP duration curves")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def day_hour_heatmap(
    path: Path, days: Sequence[str], values: FloatArray, title: str, unit: str
) -> Path:
    """A value per day (rows, labelled ``days``) and hour of the day (columns, 0–23)."""
    fig, ax = plt.subplots(figsize=(10, min(9.0, 2.2 + 0.16 * min(len(days), MAX_LABELS))))
    image = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour of the day (local time)")
    step = max(1, len(days) // MAX_LABELS + (len(days) % MAX_LABELS > 0))
    ax.set_yticks(range(0, len(days), step))
    ax.set_yticklabels(list(days)[::step], fontsize=7)
    ax.set_ylabel("day")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=unit)
    return _save(fig, path)
