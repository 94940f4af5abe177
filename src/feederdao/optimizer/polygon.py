"""One polygon for every circular capability P² + Q² ≤ S²: branches, PV inverters, storage.

A regular polygon of ``n`` sides replaces the circle by ``n`` half-planes
``cos θ_s · P + sin θ_s · Q ≤ scale · S``:

* **circumscribed** (``scale = 1``, normals at θ_s = 2πs/n): the polygon contains the circle;
  its vertices reach ``S / cos(π/n)``. Used for branch thermal limits, where the AC check
  catches the small overshoot, re-rates the branch and cuts the circle at the AC angle.
* **inscribed** (``scale = cos(π/n)``, normals at θ_s = (2s+1)π/n): the polygon lies inside the
  circle with vertices on it, on the P and Q axes when ``n`` is a multiple of 4, so full active
  and full reactive rating stay reachable. Used for devices: a setpoint inside it is one the
  converter can deliver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from feederdao.optimizer.lp import FloatArray


@dataclass(frozen=True)
class Polygon:
    """Unit normals ``(cos θ_s, sin θ_s)`` of the sides and the right-hand-side scale."""

    cos: FloatArray
    sin: FloatArray
    scale: float
    kind: Literal["inscribed", "circumscribed"]

    @property
    def sides(self) -> int:
        return int(self.cos.size)

    def half(self) -> Polygon:
        """The sides facing P > 0 (a PV inverter's P is never negative)."""
        keep = self.cos > 1e-9
        return Polygon(self.cos[keep], self.sin[keep], self.scale, self.kind)

    def folded(self) -> Polygon:
        """The sides facing the first quadrant (cos θ ≥ 0, sin θ ≥ 0). Written on split
        variables, ``cos θ · (p⁺ + p⁻) + sin θ · (q⁺ + q⁻) ≤ scale · S`` with
        ``P = p⁺ − p⁻`` and ``Q = q⁺ − q⁻`` holds the polygon's mirror images in all four
        quadrants in one row per side: since ``p⁺ + p⁻ ≥ |P|`` it is never looser than the
        polygon, and it is exact wherever at most one of each pair is non-zero. With ``n`` a
        multiple of 4 (the polygon symmetric about both axes) it is the same polygon; otherwise
        a smaller one, still inside the circle."""
        keep = (self.cos >= 0) & (self.sin >= 0)
        return Polygon(self.cos[keep], self.sin[keep], self.scale, self.kind)


def polygon(n_sides: int, kind: Literal["inscribed", "circumscribed"]) -> Polygon:
    if n_sides < 4:
        raise ValueError("a capability polygon needs at least 4 sides")
    s = np.arange(n_sides)
    if kind == "circumscribed":
        theta, scale = 2 * math.pi * s / n_sides, 1.0
    else:
        theta, scale = (2 * s + 1) * math.pi / n_sides, math.cos(math.pi / n_sides)
    cos, sin = np.cos(theta), np.sin(theta)
    # exact zeros on the axes, not 6e-17
    cos[np.abs(cos) < 1e-12] = 0.0
    sin[np.abs(sin) < 1e-12] = 0.0
    return Polygon(cos, sin, scale, kind)
