"""Seeded deliveries that deviate from the schedule the way real devices do, for the feeder
simulator, the demo and the tests.

- clouds: PV export falls short by up to ``cloud_fraction`` of its schedule;
- late response: a device keeps its previous period's schedule for ``late_fraction`` of the
  period before following the new one;
- a stubborn device ignores its setpoint and delivers the previous period's energy throughout.

Every delivered value is clipped to what the device can exchange in a period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from feederdao.metering.readings import MeterRegistration


@dataclass(frozen=True)
class DeviationModel:
    seed: int = 0
    cloud_fraction: float = 0.3
    late_fraction: float = 0.2
    stubborn: tuple[str, ...] = ()
    noise_wh: int = 20  # meter-side noise, uniform in ±noise_wh


def deliver(
    schedule_wh: Mapping[tuple[str, int], int],
    registrations: Mapping[str, MeterRegistration],
    n_periods: int,
    period_hours: float,
    pv_devices: frozenset[str],
    model: DeviationModel,
) -> dict[tuple[str, int], int]:
    """Delivered net export (Wh) per (metered device, period)."""
    rng = np.random.default_rng(model.seed)
    out: dict[tuple[str, int], int] = {}
    for reg in sorted(registrations.values(), key=lambda r: r.meter):
        for dev in reg.devices:
            d = dev.device_id
            lo = -int(dev.max_import_w * period_hours)
            hi = int(dev.max_export_w * period_hours)
            for t in range(n_periods):
                now = schedule_wh.get((d, t), 0)
                before = schedule_wh.get((d, t - 1), now)
                if d in model.stubborn:
                    value = float(before)
                else:
                    late = model.late_fraction * float(rng.uniform(0, 1))
                    value = late * before + (1 - late) * now
                    if d in pv_devices and value > 0:
                        value *= 1 - model.cloud_fraction * float(rng.uniform(0, 1))
                value += float(rng.integers(-model.noise_wh, model.noise_wh + 1))
                out[(d, t)] = int(np.clip(round(value), lo, hi))
    return out
