"""Who pays what: every participant at its bus price, fees, and the DSO's merchandising surplus."""

from __future__ import annotations

import numpy as np

from feederdao.domain.clearing import Prices, Settlement, SettlementRow
from feederdao.domain.market import Participant
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.model import Solution


def settle(
    data: MarketData,
    participants: tuple[Participant, ...],
    prices: Prices,
    sol: Solution,
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
    for i in range(len(bl)):
        k = owner_idx[i]
        mwh = sol.x[i] * dt
        price = lam[bl.period[i], bl.bus_pos[i]]
        if bl.is_buy[i]:
            bought[k] += mwh
            pay[k] += price * mwh
        else:
            sold[k] += mwh
            pay[k] -= price * mwh
    for s, unit in enumerate(data.storage):
        k = pos_of.get(data.owner_of_device.get(unit.device_id, ""), -1)
        if k >= 0:
            net = (sol.ch[:, s] - sol.dis[:, s]) * dt
            bought[k] += float(np.clip(net, 0, None).sum())
            sold[k] += float(np.clip(-net, 0, None).sum())
            pay[k] += float((lam[:, unit.bus_pos] * net).sum())
    for f, fl in enumerate(data.flex):
        k = pos_of.get(data.owner_of_device.get(fl.device_id, ""), -1)
        if k >= 0:
            e = sol.p_flex[:, f] * dt
            bought[k] += float(e.sum())
            pay[k] += float((lam[:, fl.bus_pos] * e).sum())
    buy_mwh = np.zeros(n)
    for i in range(len(bl)):
        if bl.is_buy[i]:
            buy_mwh[owner_idx[i]] += sol.x[i] * dt
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
    fixed = data.fixed_p_mw - sol.shed + sol.spill
    non_market = float((lam * fixed).sum() * dt)
    w = data.wholesale
    wholesale = float(
        (
            (w.import_eur_per_mwh[:, None] * sol.imp).sum()
            - (w.export_eur_per_mwh[:, None] * sol.exp).sum()
        )
        * dt
    )
    ms = float(pay.sum()) + non_market - wholesale
    finite = np.isfinite(s_eff)
    rent = float(-(sol.dual_thermal[:, :, 2][finite] * s_eff[finite]).sum())
    return Settlement(
        rows=rows,
        non_market_payment_eur=non_market,
        wholesale_cost_eur=wholesale,
        fees_eur=float(fee * buy_mwh.sum()),
        merchandising_surplus_eur=ms,
        congestion_rent_eur=rent,
    )
