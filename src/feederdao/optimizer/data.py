"""Arrays the formulation reads, prepared once from the boundary values.

Who is in the market in a period: a participant that bids in a period is represented by its
bids there (its bids are its net position behind the meter) and its loads and PV follow the
accepted quantity; every other load and PV runs at its profile (inflexible). Storage owned by a
participant is optimised (or held at its profile); flexible loads are scheduled within their
power limits to meet their energy need over the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from feederdao.domain.bidrules import BidRules
from feederdao.domain.clearing import ClearingOptions, WholesalePrices
from feederdao.domain.market import Bid, Participant, ParticipantDevice, Side
from feederdao.domain.network import CURTAILABLE, DeviceKind, NetworkView
from feederdao.domain.params import GridParameters
from feederdao.domain.profiles import FloatArray, Profiles
from feederdao.errors import ParameterError

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BlockTable:
    """One row per price–quantity block of every bid."""

    bid_ids: tuple[str, ...]
    participant: tuple[str, ...]
    block_no: IntArray
    bus_pos: IntArray
    period: IntArray
    is_buy: npt.NDArray[np.bool_]
    price: FloatArray
    quantity: FloatArray
    device: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.bid_ids)


@dataclass(frozen=True)
class Inverter:
    """A PV inverter: available power per period and its capability."""

    device_id: str
    bus_pos: int
    available_mw: FloatArray
    s_mva: float
    tan_phi: float
    represented: npt.NDArray[np.bool_]  # per period: its owner bids, so its P follows the market


@dataclass(frozen=True)
class LoadDevice:
    """A load whose owner bids: it follows the accepted quantity in the periods it is
    represented by bids (demand response), and its profile otherwise."""

    device_id: str
    bus_pos: int
    owner: str
    profile_mw: FloatArray
    profile_mvar: FloatArray
    represented: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class StorageUnit:
    device_id: str
    bus_pos: int
    p_max_mw: float
    s_mva: float
    e_mwh: float
    soc_init_mwh: float
    soc_min_mwh: float
    soc_max_mwh: float
    eta_charge: float
    eta_discharge: float
    profile_mw: FloatArray


@dataclass(frozen=True)
class VoltageSource:
    """A voltage-controlled generator: its P is fixed (in the inflexible injections), it holds
    its bus at ``vm_pu`` with whatever reactive power that takes (as pandapower's power flow
    does by default, its reactive limits aside)."""

    device_id: str
    bus_pos: int
    vm_pu: float


@dataclass(frozen=True)
class FlexLoad:
    device_id: str
    bus_pos: int
    p_min_mw: float
    p_max_mw: float
    energy_mwh: float


@dataclass(frozen=True)
class MarketData:
    """Everything numeric the model needs, in view row order."""

    n_periods: int
    period_hours: float
    fixed_p_mw: FloatArray  # [T, bus] inflexible net consumption
    fixed_q_mvar: FloatArray
    blocks: BlockTable
    inverters: tuple[Inverter, ...]
    loads: tuple[LoadDevice, ...]
    storage: tuple[StorageUnit, ...]
    flex: tuple[FlexLoad, ...]
    wholesale: WholesalePrices
    generators: tuple[VoltageSource, ...]
    params: GridParameters
    options: ClearingOptions
    owner_of_device: dict[str, str]
    bus_of_participant: dict[str, int]


def _tan_phi(dev: ParticipantDevice | None) -> float:
    pf = dev.min_power_factor if dev and dev.min_power_factor else 0.9
    return float(np.tan(np.arccos(pf)))


def prepare(
    view: NetworkView,
    profiles: Profiles,
    bids: Sequence[Bid],
    participants: Sequence[Participant],
    params: GridParameters,
    wholesale: WholesalePrices,
    options: ClearingOptions,
) -> MarketData:
    """Turn boundary values into arrays.

    The bids are checked first against the market's rules (:mod:`feederdao.domain.bidrules`:
    known participants at their own bus, prices within the floor and cap, periods in the
    window, ...); what the clearing cannot honour is refused, never clamped or re-assigned."""
    n_t = profiles.n_periods
    if wholesale.import_eur_per_mwh.shape != (n_t,):
        raise ParameterError(
            f"wholesale prices have {wholesale.import_eur_per_mwh.shape[0]} periods, profiles {n_t}"
        )
    bids = BidRules.of(view, params, n_t).check(bids, {p.participant_id: p for p in participants})
    n_b = len(view.buses)
    owner: dict[str, str] = {}
    caps: dict[str, ParticipantDevice] = {}
    for part in participants:
        for d in part.devices:
            owner[d.device_id] = part.participant_id
            caps[d.device_id] = d
    represented = np.zeros((len(participants), n_t), dtype=bool)
    index = {p.participant_id: k for k, p in enumerate(participants)}
    for bid in bids:
        represented[index[bid.participant_id], bid.period] = True

    fixed_p = np.zeros((n_t, n_b))
    fixed_q = np.zeros((n_t, n_b))
    inverters: list[Inverter] = []
    loads: list[LoadDevice] = []
    storage: list[StorageUnit] = []
    flex: list[FlexLoad] = []
    generators: list[VoltageSource] = []
    for dev in view.devices:
        col = profiles.find(dev.device_id)
        p = profiles.p_mw[:, col] if col is not None else np.full(n_t, dev.p_mw)
        q = profiles.q_mvar[:, col] if col is not None else np.full(n_t, dev.q_mvar)
        row = view.bus_position(dev.bus)
        pid = owner.get(dev.device_id)
        rep = represented[index[pid]] if pid in index else np.zeros(n_t, dtype=bool)
        cap = caps.get(dev.device_id)
        if dev.kind == DeviceKind.LOAD:
            fixed_p[:, row] += np.where(rep, 0.0, p)
            fixed_q[:, row] += q  # reactive demand stays with the load
            if pid is not None and rep.any():
                loads.append(
                    LoadDevice(
                        dev.device_id,
                        row,
                        pid,
                        np.asarray(p, dtype=float),
                        np.asarray(q, dtype=float),
                        rep,
                    )
                )
        elif dev.kind in CURTAILABLE:
            fixed_p[:, row] -= np.where(rep, 0.0, p)
            s = (cap.s_mva if cap and cap.s_mva else None) or dev.sn_mva or float(p.max(initial=0))
            inverters.append(
                Inverter(dev.device_id, row, np.maximum(p, 0.0), max(s, 1e-9), _tan_phi(cap), rep)
            )
        elif dev.kind == DeviceKind.GENERATOR:
            fixed_p[:, row] -= p
            generators.append(VoltageSource(dev.device_id, row, float(dev.vm_pu or 1.0)))
        elif dev.kind == DeviceKind.STORAGE:
            if cap is None or not cap.e_mwh:
                fixed_p[:, row] += p
                continue
            e = float(cap.e_mwh)
            storage.append(
                StorageUnit(
                    device_id=dev.device_id,
                    bus_pos=row,
                    p_max_mw=max(abs(cap.p_min_mw), abs(cap.p_max_mw)),
                    s_mva=cap.s_mva or max(abs(cap.p_min_mw), abs(cap.p_max_mw)),
                    e_mwh=e,
                    soc_init_mwh=e * cap.soc_init_percent / 100.0,
                    soc_min_mwh=e * cap.soc_min_percent / 100.0,
                    soc_max_mwh=e * cap.soc_max_percent / 100.0,
                    eta_charge=cap.eta_charge,
                    eta_discharge=cap.eta_discharge,
                    profile_mw=np.asarray(p, dtype=float),
                )
            )
        elif dev.kind == DeviceKind.FLEX_LOAD:
            if cap is None:
                fixed_p[:, row] += p
                continue
            flex.append(
                FlexLoad(
                    dev.device_id,
                    row,
                    cap.p_min_mw,
                    cap.p_max_mw,
                    cap.e_mwh if cap.e_mwh is not None else float(p.sum()) * profiles.period_hours,
                )
            )
    # participant devices the network model does not have (e.g. an EV charger registered later)
    for part in participants:
        for d in part.devices:
            if d.kind == DeviceKind.FLEX_LOAD and not any(f.device_id == d.device_id for f in flex):
                if any(x.device_id == d.device_id for x in view.devices):
                    continue
                flex.append(
                    FlexLoad(
                        d.device_id,
                        view.bus_position(part.bus),
                        d.p_min_mw,
                        d.p_max_mw,
                        d.e_mwh or 0.0,
                    )
                )

    rows: list[tuple[str, int, int, int, bool, float, float, str | None, str]] = []
    for bid in bids:
        pos = view.bus_position(bid.bus)
        for k, block in enumerate(bid.blocks):
            price = block.price_eur_per_mwh
            rows.append(
                (
                    bid.bid_id,
                    k,
                    pos,
                    bid.period,
                    bid.side == Side.BUY,
                    price,
                    block.quantity_mw,
                    bid.device_id,
                    bid.participant_id,
                )
            )
    blocks = BlockTable(
        bid_ids=tuple(r[0] for r in rows),
        participant=tuple(r[8] for r in rows),
        block_no=np.array([r[1] for r in rows], dtype=np.int64),
        bus_pos=np.array([r[2] for r in rows], dtype=np.int64),
        period=np.array([r[3] for r in rows], dtype=np.int64),
        is_buy=np.array([r[4] for r in rows], dtype=bool),
        price=np.array([r[5] for r in rows], dtype=float),
        quantity=np.array([r[6] for r in rows], dtype=float),
        device=tuple(r[7] for r in rows),
    )
    return MarketData(
        n_periods=n_t,
        period_hours=profiles.period_hours,
        fixed_p_mw=fixed_p,
        fixed_q_mvar=fixed_q,
        blocks=blocks,
        inverters=tuple(inverters),
        loads=tuple(loads),
        storage=tuple(storage),
        flex=tuple(flex),
        wholesale=wholesale,
        generators=tuple(generators),
        params=params,
        options=options,
        owner_of_device=owner,
        bus_of_participant={p.participant_id: view.bus_position(p.bus) for p in participants},
    )
