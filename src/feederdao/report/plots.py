"""PNG plots of a clearing or a study: voltage band, line loading, DLMP heat map."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from feederdao.domain.profiles import FloatArray


def _times(start: datetime, n: int, minutes: int) -> np.ndarray:
    return np.datetime64(start, "m") + np.arange(n) * np.timedelta64(minutes, "m")


def voltage_band(
    path: Path, start: datetime, vm_pu: FloatArray, v_min: float, v_max: float, minutes: int = 15
) -> Path:
    """Highest and lowest bus voltage per period against the band."""
    t = _times(start, vm_pu.shape[0], minutes)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.fill_between(t, vm_pu.min(axis=1), vm_pu.max(axis=1), alpha=0.35, label="bus voltages")
    ax.plot(t, vm_pu.max(axis=1), lw=1, label="highest")
    ax.plot(t, vm_pu.min(axis=1), lw=1, label="lowest")
    ax.axhline(v_max, color="red", ls="--", lw=1, label=f"limits {v_min:.3f}–{v_max:.3f} pu")
    ax.axhline(v_min, color="red", ls="--", lw=1)
    ax.set_ylabel("voltage (pu)")
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loading(
    path: Path,
    start: datetime,
    loading_percent: FloatArray,
    names: tuple[str, ...],
    limit_percent: float,
    minutes: int = 15,
    top: int = 5,
) -> Path:
    """Loading of the most loaded branches per period."""
    t = _times(start, loading_percent.shape[0], minutes)
    order = np.argsort(loading_percent.max(axis=0))[::-1][:top]
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for k in order:
        ax.plot(t, loading_percent[:, k], lw=1, label=names[k])
    ax.axhline(limit_percent, color="red", ls="--", lw=1, label=f"limit {limit_percent:.0f} %")
    ax.set_ylabel("loading (%)")
    ax.legend(loc="best", fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def dlmp_heatmap(
    path: Path, start: datetime, dlmp: FloatArray, bus_names: tuple[str, ...], minutes: int = 15
) -> Path:
    """DLMP per bus (rows) and period (columns)."""
    n_t = dlmp.shape[0]
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.18 * len(bus_names) + 1.2)))
    image = ax.imshow(dlmp.T, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(bus_names)))
    ax.set_yticklabels(bus_names, fontsize=6 if len(bus_names) > 20 else 8)
    ticks = list(range(0, n_t, max(1, n_t // 12)))
    ax.set_xticks(ticks)
    ax.set_xticklabels(
        [(start + timedelta(minutes=minutes * k)).strftime("%m-%d %H:%M") for k in ticks],
        rotation=45,
        fontsize=7,
    )
    fig.colorbar(image, ax=ax, label="DLMP (EUR/MWh)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
