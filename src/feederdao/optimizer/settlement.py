"""Who pays what: every participant at its bus price, fees, and the DSO's merchandising surplus."""

from __future__ import annotations

import numpy as np

from feederdao.domain.clearing import Prices, Settlement, SettlementRow
from feederdao.domain.market import Participant
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.model import Dispatch


def settle(
    data: MarketData,
    participants: tuple[Participant, ...],
    prices: Prices,
    sol: Dispatch,
    s_eff: np.ndarray,
) -> Settlement:
    """Energy at the DLMP of each participant's bus, the network fee on bought energy.

    Storage and flexible loads settle with their owner. Inflexible consumption is settled at
    its bus price too (``non_market_payment_eur``), so the merchandising surplus is the whole
    feeder's: Σ consumption·λ − Σ injection·λ − wholesale cost. ``s_eff`` ([T, K], inf where
    unrated) gives the congestion rent Σ −y·S.
    """
    dt = data.period_hours
    lam = prices.dlmp
    bl = data.blocks
    fee = data.params.network_fee_eur_per_mwh
    pos_of = {p.participant_id: k for k, p in enumerate(participants)}
    n = len(participants)
    bought = np.zeros(n)
    sold = np.zeros(n)
    pay = np.zeros(n)
    # every block's participant is known: prepare() refuses bids of anyone else
    owner_idx = np.array([pos_of[pid] for pid in bl.participant], dtype=np.int64)
    mwh = sol.accepted_mw * dt
    price = lam[bl.period, bl.bus_pos]
    buy = bl.is_buy
    np.add.at(bought, owner_idx[buy], mwh[buy])
    np.add.at(sold, owner_idx[~buy], mwh[~buy])
    np.add.at(pay, owner_idx, np.where(buy, 1.0, -1.0) * price * mwh)
    buy_mwh = np.zeros(n)
    np.add.at(buy_mwh, owner_idx[buy], mwh[buy])
    for s, unit in enumerate(data.storage):
        k = pos_of.get(data.owner_of_device.get(unit.device_id, ""), -1)
        if k >= 0:
            net = (sol.charge_mw[:, s] - sol.discharge_mw[:, s]) * dt
            bought[k] += float(np.clip(net, 0, None).sum())
            sold[k] += float(np.clip(-net, 0, None).sum())
            pay[k] += float((lam[:, unit.bus_pos] * net).sum())
    for f, fl in enumerate(data.flex):
        k = pos_of.get(data.owner_of_device.get(fl.device_id, ""), -1)
        if k >= 0:
            e = sol.flex_mw[:, f] * dt
            bought[k] += float(e.sum())
            pay[k] += float((lam[:, fl.bus_pos] * e).sum())
    rows = tuple(
        SettlementRow(
            participant_id=p.participant_id,
            bus=p.bus,
            bought_mwh=float(bought[k]),
            sold_mwh=float(sold[k]),
            energy_payment_eur=float(pay[k]),
            fee_eur=float(fee * buy_mwh[k]),
        )
        for k, p in enumerate(participants)
        if bought[k] or sold[k]
    )
    fixed = data.fixed_p_mw - sol.shed_mw + sol.spill_mw
    non_market = float((lam * fixed).sum() * dt)
    w = data.wholesale
    wholesale = float(
        (
            (w.import_eur_per_mwh[:, None] * sol.import_mw).sum()
            - (w.export_eur_per_mwh[:, None] * sol.export_mw).sum()
        )
        * dt
    )
    ms = float(pay.sum()) + non_market - wholesale
    finite = np.isfinite(s_eff)
    rent = float(-(sol.thermal[:, :, 2][finite] * s_eff[finite]).sum())
    return Settlement(
        rows=rows,
        non_market_payment_eur=non_market,
        wholesale_cost_eur=wholesale,
        fees_eur=float(fee * buy_mwh.sum()),
        merchandising_surplus_eur=ms,
        congestion_rent_eur=rent,
    )
