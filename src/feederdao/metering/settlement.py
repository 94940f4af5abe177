"""Deviation settlement: what metered delivery changes in what the day-ahead clearing settled.

Money is in the settlement token's smallest units (integers; with a 6-decimal euro token one
unit is one micro-euro), so that the books balance exactly and every participant can withdraw
exactly what this module says.

For participant *i* at bus *b* and period *t*, with Δ = delivered − scheduled net export
(MWh; positive: it exported more or consumed less than scheduled), the DLMP λ[t, b] (EUR/MWh)
and the governed deviation charge c (EUR/MWh):

    deviation credit[i, t] = Δ·λ[t, b] − |Δ|·c

Extra export is bought at the bus price, a shortfall is paid back at it, and every MWh off the
schedule pays c either way. Final = day-ahead (−(energy payment + fee)) + Σ_t deviation credit.
The operator is the counterparty of every position: its residual is −Σ_i final, so the credits
of every account (the operator's included) sum to exactly zero. The budget balance reports
what the operator keeps: the day-ahead merchandising surplus and the deviation residual
−Σ deviation credits (the charges it collected, less what it paid at the DLMPs).

Missing readings are substituted by the schedule (Δ = 0) and flagged: a meter that says
nothing is settled as if it had delivered its schedule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from feederdao.domain.clearing import ClearingResult
from feederdao.domain.market import Participant
from feederdao.domain.network import GENERATION
from feederdao.metering.errors import MeteringError

UNITS_PER_EUR = 10**6  # a 6-decimal euro token


@dataclass(frozen=True)
class Schedule:
    """Scheduled net export per device and period (Wh, integers), with the owner and bus of
    every device and the DLMP per period and bus (EUR/MWh)."""

    n_periods: int
    period_hours: float
    export_wh: Mapping[tuple[str, int], int]
    owner: Mapping[str, str]
    bus_of: Mapping[str, int]
    dlmp: Mapping[int, tuple[float, ...]]
    day_ahead_units: Mapping[str, int]  # credit (positive: owed to the participant)
    merchandising_surplus_units: int


def to_units(eur: float) -> int:
    return round(eur * UNITS_PER_EUR)


def schedule_of(result: ClearingResult, participants: Iterable[Participant]) -> Schedule:
    """The schedule the clearing set: every participant device's setpoint as net export (Wh),
    generation positive, consumption (loads, storage charging, flexible loads) negative."""
    owner: dict[str, str] = {}
    kind: dict[str, object] = {}
    bus_of: dict[str, int] = {}
    for p in participants:
        bus_of[p.participant_id] = p.bus
        for d in p.devices:
            owner[d.device_id] = p.participant_id
            kind[d.device_id] = d.kind
    export: dict[tuple[str, int], int] = {}
    wh_per_mw = result.period_hours * 1e6
    for sp in result.setpoints:
        if sp.device_id not in owner or sp.position is not None:
            continue
        sign = 1.0 if kind[sp.device_id] in GENERATION else -1.0
        export[(sp.device_id, sp.period)] = round(sign * sp.p_mw * wh_per_mw)
    dlmp = {
        int(b): tuple(float(v) for v in result.prices.dlmp[:, i])
        for i, b in enumerate(result.bus_indices)
    }
    day_ahead = {r.participant_id: -to_units(r.total_eur) for r in result.settlement.rows}
    return Schedule(
        result.n_periods,
        result.period_hours,
        export,
        owner,
        bus_of,
        dlmp,
        day_ahead,
        to_units(result.settlement.merchandising_surplus_eur),
    )


@dataclass(frozen=True, slots=True)
class ParticipantSettlement:
    participant_id: str
    day_ahead_units: int
    deviation_units: int  # Σ Δ·λ, rounded per period
    charge_units: int  # Σ |Δ|·c, rounded per period (what the charge took)
    deviation_wh: int  # Σ Δ
    substituted_periods: int  # periods of its metered devices with no reading

    @property
    def final_units(self) -> int:
        return self.day_ahead_units + self.deviation_units - self.charge_units


@dataclass(frozen=True)
class DeviationSettlement:
    rows: tuple[ParticipantSettlement, ...]
    operator_units: int  # the operator's residual: −Σ final
    day_ahead_surplus_units: int
    deviation_residual_units: int  # what deviations left with the operator
    substituted: tuple[tuple[str, int], ...]  # (device, period) settled on schedule

    def final(self) -> dict[str, int]:
        return {r.participant_id: r.final_units for r in self.rows}

    @property
    def balanced(self) -> bool:
        return sum(r.final_units for r in self.rows) + self.operator_units == 0


def settle_deviations(
    schedule: Schedule,
    metered_wh: Mapping[tuple[str, int], int],
    metered_devices: Iterable[str],
    deviation_charge_eur_per_mwh: float,
) -> DeviationSettlement:
    """Final settlement from the schedule and the metered net export per (device, period).

    ``metered_devices`` are the devices with a registered meter: a period of one of them with
    no reading is substituted by its schedule and flagged. Devices without a meter settle on
    their schedule (nothing to measure them by)."""
    if deviation_charge_eur_per_mwh < 0:
        raise MeteringError("the deviation charge must not be negative")
    metered = set(metered_devices)
    unknown = sorted({d for d, _ in metered_wh} - set(schedule.owner))
    if unknown:
        raise MeteringError(f"readings for devices no participant owns: {', '.join(unknown)}")
    participants = sorted(set(schedule.owner.values()) | set(schedule.day_ahead_units))
    dev_wh = {p: np.zeros(schedule.n_periods, dtype=np.int64) for p in participants}
    substituted: list[tuple[str, int]] = []
    n_sub = dict.fromkeys(participants, 0)
    for device in sorted(metered):
        if device not in schedule.owner:
            raise MeteringError(f"metered device {device!r} belongs to no participant")
        who = schedule.owner[device]
        for t in range(schedule.n_periods):
            got = metered_wh.get((device, t))
            if got is None:
                substituted.append((device, t))
                n_sub[who] += 1
                continue
            dev_wh[who][t] += got - schedule.export_wh.get((device, t), 0)
    rows = []
    for p in participants:
        lam = schedule.dlmp.get(schedule.bus_of.get(p, -1))
        d = dev_wh[p]
        if lam is None:
            if d.any():
                raise MeteringError(f"participant {p!r} deviates at a bus without a price")
            lam = (0.0,) * schedule.n_periods
        mwh = d / 1e6
        deviation = sum(to_units(float(mwh[t]) * lam[t]) for t in range(schedule.n_periods))
        charge = sum(
            to_units(abs(float(mwh[t])) * deviation_charge_eur_per_mwh)
            for t in range(schedule.n_periods)
        )
        rows.append(
            ParticipantSettlement(
                p,
                schedule.day_ahead_units.get(p, 0),
                deviation,
                charge,
                int(d.sum()),
                n_sub[p],
            )
        )
    final = sum(r.final_units for r in rows)
    return DeviationSettlement(
        tuple(rows),
        -final,
        schedule.merchandising_surplus_units,
        -sum(r.deviation_units - r.charge_units for r in rows),
        tuple(substituted),
    )


def cumulative_positions(
    previous: Mapping[str, int],
    settlement: DeviationSettlement,
    addresses: Mapping[str, str],
    operator: str,
) -> dict[str, int]:
    """Every account's cumulative net position after this interval (token units, positive:
    owed to the account): ``previous`` plus this interval's finals, the operator's residual
    under ``operator``. ``addresses`` maps participant ids to their wallet addresses."""
    out = dict(previous)
    for r in settlement.rows:
        if r.participant_id not in addresses:
            raise MeteringError(f"participant {r.participant_id!r} has no wallet address")
        a = addresses[r.participant_id].lower()
        out[a] = out.get(a, 0) + r.final_units
    op = operator.lower()
    out[op] = out.get(op, 0) + settlement.operator_units
    return out
