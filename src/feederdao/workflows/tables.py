"""A clearing's results as tidy pandas tables: one row per period and bus, branch, device or bid
block, indexed by timestamp and name, units in the column names.

The convention (docs/outputs.md), the same for a clearing, a study and the files they write:

* long, not wide: one row per (time, element); ``time`` is the period's start, time-zone aware
  (the profiles' clock, Europe/Berlin, unless the window was given in another zone);
* elements by name (``bus``, ``branch``, ``device``, ``participant``: unique within the table)
  and by pandapower id (``bus_id`` = the bus index, ``branch_id`` = ``line:3``/``trafo:0``,
  ``device_id`` = ``load:4``/``sgen:0``/``storage:1``/``gen:0``);
* units in the column names: ``dlmp_eur_per_mwh``, ``vm_pu``, ``loading_percent``, ``p_mw``;
* AC-checked values where the clearing ran an AC check (``vm_pu``, ``loading_percent``), the
  linear model's beside them (``vm_lp_pu``, ``loading_lp_percent``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from feederdao.domain.clearing import ClearingResult
from feederdao.domain.market import Bid
from feederdao.domain.network import NetworkView
from feederdao.domain.powerflow import PowerFlowResult
from feederdao.domain.profiles import Profiles

TIME = "time"
#: the tables every clearing and study has, in the order they are written
TABLES = ("prices", "voltages", "loadings", "dispatch", "bids", "settlement", "periods")
#: the DLMP and its parts: column name and the ``Prices`` field it comes from
PRICE_COLUMNS = (
    ("dlmp_eur_per_mwh", "dlmp"),
    ("energy_eur_per_mwh", "energy"),
    ("loss_eur_per_mwh", "loss"),
    ("congestion_eur_per_mwh", "congestion"),
    ("voltage_eur_per_mwh", "voltage"),
    ("reactive_eur_per_mvarh", "reactive"),
)


def unique_names(names: Sequence[str], ids: Sequence[object]) -> list[str]:
    """``names`` with the id appended where a name is not unique (``"bus 5 [12]"``)."""
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    return [n if seen[n] == 1 else f"{n} [{i}]" for n, i in zip(names, ids, strict=True)]


def time_index(times: Sequence[datetime]) -> pd.DatetimeIndex:
    """Period starts as a time-zone-aware index named ``time``."""
    return pd.DatetimeIndex(list(times), name=TIME)


@dataclass(frozen=True)
class ClearingTables:
    """The tables of one clearing (see the module docstring for the convention).

    * ``prices`` [time, bus]: the DLMP and its energy, loss, congestion and voltage parts
      (EUR/MWh; they add up to the DLMP), the reactive price (EUR/Mvarh);
    * ``voltages`` [time, bus]: ``vm_pu``, ``va_degree`` (AC), ``vm_lp_pu`` (linear model);
    * ``loadings`` [time, branch]: ``loading_percent`` (NaN where the branch has no rating),
      ``p_from_mw``/``q_from_mvar`` entering at the from bus, ``pl_mw`` its losses;
    * ``dispatch`` [time, device]: every device's ``p_mw``/``q_mvar`` in its own sign convention
      (consumption positive for loads and storage, injection positive for generation, as
      pandapower's tables), ``dispatched`` where the clearing set it (else its profile);
    * ``bids`` [time, bid_id, block]: the book with ``accepted_mw`` and the bus's DLMP;
    * ``settlement`` [participant]: energy bought and sold (MWh), what it pays (EUR, positive:
      it pays; negative: it is paid);
    * ``periods`` [time]: substation import, losses, the voltage range of the buses that are
      not substations, the highest loading and the DLMP range.
    """

    prices: pd.DataFrame
    voltages: pd.DataFrame
    loadings: pd.DataFrame
    dispatch: pd.DataFrame
    bids: pd.DataFrame
    settlement: pd.DataFrame
    periods: pd.DataFrame

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [(name, getattr(self, name)) for name in TABLES]


def _grid(times: pd.DatetimeIndex, names: list[str], level: str) -> pd.MultiIndex:
    return pd.MultiIndex.from_product([times, names], names=[TIME, level])


def _flat(a: np.ndarray) -> np.ndarray:
    """[T, N] row-major, to go with :func:`_grid`."""
    return np.asarray(a, dtype=float).reshape(-1)


def build_tables(
    result: ClearingResult,
    view: NetworkView,
    profiles: Profiles,
    bids: Sequence[Bid],
    flow: PowerFlowResult | None = None,
) -> ClearingTables:
    """The tables of ``result`` (cleared on ``view`` over ``profiles``' window from ``bids``);
    ``flow`` is the AC power flow of the final dispatch, when there is one."""
    times = time_index(profiles.timestamps())
    n_t = len(times)
    bus_ids = [b.index for b in view.buses]
    buses = unique_names([b.name for b in view.buses], bus_ids)
    branch_ids = [br.branch_id for br in view.branches]
    branches = unique_names([br.name for br in view.branches], branch_ids)
    tiled = np.tile

    p = result.prices
    prices = pd.DataFrame(
        {"bus_id": tiled(bus_ids, n_t)}
        | {col: _flat(getattr(p, field)) for col, field in PRICE_COLUMNS},
        index=_grid(times, buses, "bus"),
    )

    ac_vm = result.ac_vm_pu if result.ac_vm_pu is not None else result.lp_vm_pu
    va = flow.va_degree if flow is not None else np.full_like(result.lp_vm_pu, np.nan)
    voltages = pd.DataFrame(
        {
            "bus_id": tiled(bus_ids, n_t),
            "vm_pu": _flat(ac_vm),
            "va_degree": _flat(va),
            "vm_lp_pu": _flat(result.lp_vm_pu),
        },
        index=_grid(times, buses, "bus"),
    )

    rated = np.array([br.rating_mva is not None for br in view.branches], dtype=bool)
    loading = (
        result.ac_loading_percent
        if result.ac_loading_percent is not None
        else result.lp_loading_percent
    )
    nan_k = np.full((n_t, len(branches)), np.nan)
    loadings = pd.DataFrame(
        {
            "branch_id": tiled(branch_ids, n_t),
            "kind": tiled([br.kind for br in view.branches], n_t),
            "loading_percent": _flat(np.where(rated[None, :], loading, np.nan)),
            "loading_lp_percent": _flat(
                np.where(rated[None, :], result.lp_loading_percent, np.nan)
            ),
            "p_from_mw": _flat(
                flow.branch_p_from_mw if flow is not None else result.lp_branch_p_mw
            ),
            "q_from_mvar": _flat(
                flow.branch_q_from_mvar if flow is not None else result.lp_branch_q_mvar
            ),
            "pl_mw": _flat(flow.losses_per_branch_p if flow is not None else nan_k),
            "rating_mva": tiled(
                [br.rating_mva if br.rating_mva is not None else np.nan for br in view.branches],
                n_t,
            ),
        },
        index=_grid(times, branches, "branch"),
    )

    dispatch = _dispatch(result, view, profiles, times)
    book = _bids(result, view, bids, times, buses)

    rows = result.settlement.rows
    part_names = [r.participant_id for r in rows]
    settlement = pd.DataFrame(
        {
            "bus": [buses[view.bus_position(r.bus)] if view.has_bus(r.bus) else "" for r in rows],
            "bus_id": [r.bus for r in rows],
            "bought_mwh": [r.bought_mwh for r in rows],
            "sold_mwh": [r.sold_mwh for r in rows],
            "energy_payment_eur": [r.energy_payment_eur for r in rows],
            "fee_eur": [r.fee_eur for r in rows],
            "total_eur": [r.total_eur for r in rows],
        },
        index=pd.Index(part_names, name="participant"),
    )

    feeder = ~np.isin(np.arange(len(view.buses)), [view.bus_position(b) for b in view.slack_buses])
    vm_feeder = ac_vm[:, feeder] if feeder.any() else ac_vm
    rated_loading = np.where(rated[None, :], loading, -np.inf)
    periods = pd.DataFrame(
        {
            "import_mw": result.slack_import_mw.sum(axis=1),
            "ac_import_mw": (
                result.ac_slack_p_mw.sum(axis=1)
                if result.ac_slack_p_mw is not None
                else np.full(n_t, np.nan)
            ),
            "losses_mw": (
                result.ac_losses_mw if result.ac_losses_mw is not None else np.full(n_t, np.nan)
            ),
            "vm_min_pu": vm_feeder.min(axis=1),
            "vm_max_pu": vm_feeder.max(axis=1),
            "loading_max_percent": (
                rated_loading.max(axis=1) if rated.any() else np.full(n_t, np.nan)
            ),
            "dlmp_min_eur_per_mwh": p.dlmp.min(axis=1),
            "dlmp_mean_eur_per_mwh": p.dlmp.mean(axis=1),
            "dlmp_max_eur_per_mwh": p.dlmp.max(axis=1),
        },
        index=times,
    )
    return ClearingTables(prices, voltages, loadings, dispatch, book, settlement, periods)


def _dispatch(
    result: ClearingResult, view: NetworkView, profiles: Profiles, times: pd.DatetimeIndex
) -> pd.DataFrame:
    devices = view.devices
    n_t, n_d = len(times), len(devices)
    p = np.zeros((n_t, n_d))
    q = np.zeros((n_t, n_d))
    for k, dev in enumerate(devices):
        c = profiles.find(dev.device_id)
        p[:, k] = profiles.p_mw[:, c] if c is not None else dev.p_mw
        # a voltage-controlled generator's reactive power is whatever holds its voltage
        q[:, k] = (
            np.nan
            if dev.kind == "generator"
            else (profiles.q_mvar[:, c] if c is not None else dev.q_mvar)
        )
    dispatched = np.zeros((n_t, n_d), dtype=bool)
    pos = {d.device_id: k for k, d in enumerate(devices)}
    for sp in result.setpoints:
        at = pos.get(sp.device_id)
        if at is None or sp.position is not None:
            continue
        p[sp.period, at] = sp.p_mw
        q[sp.period, at] = sp.q_mvar
        dispatched[sp.period, at] = True
    soc = np.full((n_t, n_d), np.nan)
    for device_id, mwh in result.storage_soc_mwh.items():
        if device_id in pos:
            soc[:, pos[device_id]] = mwh
    ids = [d.device_id for d in devices]
    names = unique_names([d.name for d in devices], ids)
    bus_ids = [d.bus for d in devices]
    bus_names = unique_names([b.name for b in view.buses], [b.index for b in view.buses])
    return pd.DataFrame(
        {
            "device_id": np.tile(ids, n_t),
            "kind": np.tile([str(d.kind) for d in devices], n_t),
            "bus": np.tile([bus_names[view.bus_position(b)] for b in bus_ids], n_t),
            "bus_id": np.tile(bus_ids, n_t),
            "p_mw": _flat(p),
            "q_mvar": _flat(q),
            "dispatched": dispatched.reshape(-1),
            "soc_mwh": _flat(soc),
        },
        index=_grid(times, names, "device"),
    )


def _bids(
    result: ClearingResult,
    view: NetworkView,
    bids: Sequence[Bid],
    times: pd.DatetimeIndex,
    bus_names: list[str],
) -> pd.DataFrame:
    # one row per price block; the per-bid values repeated over its blocks as whole arrays
    # (a Python loop per block, boxing a timestamp each, was a third of a case33bw study day)
    n = np.array([len(b.blocks) for b in bids], dtype=np.int64)
    period = np.repeat(np.array([b.period for b in bids], dtype=np.int64), n)
    row = np.repeat(np.array([view.bus_position(b.bus) for b in bids], dtype=np.int64), n)

    def each(values: list[Any]) -> npt.NDArray[Any]:
        return np.repeat(np.array(values, dtype=object), n)

    accepted: list[float] = []
    for bid in bids:
        got = result.accepted_mw.get(bid.bid_id, ())
        accepted.extend(float(got[j]) if j < len(got) else 0.0 for j in range(len(bid.blocks)))
    frame = pd.DataFrame(
        {
            TIME: times[period],
            "bid_id": each([b.bid_id for b in bids]),
            "block": np.concatenate([np.arange(k) for k in n]) if len(n) else np.zeros(0, int),
            "participant": each([b.participant_id for b in bids]),
            "bus": np.array(bus_names, dtype=object)[row],
            "bus_id": np.repeat(np.array([b.bus for b in bids], dtype=np.int64), n),
            "side": each([str(b.side) for b in bids]),
            "device_id": each([b.device_id or "" for b in bids]),
            "price_eur_per_mwh": [blk.price_eur_per_mwh for b in bids for blk in b.blocks],
            "quantity_mw": [blk.quantity_mw for b in bids for blk in b.blocks],
            "accepted_mw": accepted,
            "dlmp_eur_per_mwh": result.prices.dlmp[period, row],
        }
    )
    frame = frame.astype(
        {"block": "int64", "bus_id": "int64", "price_eur_per_mwh": float, "quantity_mw": float}
    )
    return frame.set_index([TIME, "bid_id", "block"]).sort_index()
