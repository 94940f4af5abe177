"""Bid and offer books: a seeded generator from profiles, and CSV/JSON readers and writers.

What a valid bid is lives in one place, :mod:`feederdao.domain.bidrules`; the readers build
:class:`~feederdao.domain.market.Bid` values (which check themselves) and name the file and line.

File schema (docs/bids.md): one row per price–quantity block,

``bid_id, participant_id, bus, period, side, price_eur_per_mwh, quantity_mw[, device_id]``

Rows sharing a ``bid_id`` are the blocks of one bid and must agree on participant, bus, period,
side and device. JSON holds a list of bids, each with a ``blocks`` list of
``{"price_eur_per_mwh", "quantity_mw"}``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from feederdao.domain.market import Bid, PriceBlock, Side
from feederdao.domain.network import CURTAILABLE, DeviceKind, NetworkView
from feederdao.domain.profiles import Profiles
from feederdao.errors import BidValidationError
from feederdao.grid_model.participants import ParticipantRegistry

CSV_FIELDS = (
    "bid_id",
    "participant_id",
    "bus",
    "period",
    "side",
    "price_eur_per_mwh",
    "quantity_mw",
    "device_id",
)

#: willingness to pay (EUR/MWh): essential, comfort and deferrable shares of household demand
_DEMAND_BLOCKS = ((0.6, 260.0, 60.0), (0.3, 140.0, 40.0), (0.1, 60.0, 30.0))
#: PV owners' asking price for surplus (EUR/MWh): a first block near zero, the rest higher
_SUPPLY_BLOCKS = ((0.7, 5.0, 5.0), (0.3, 35.0, 15.0))


def _blocks(
    shares: tuple[tuple[float, float, float], ...], prices: list[float], mw: float
) -> tuple[PriceBlock, ...]:
    """``mw`` split into blocks by share, quantities rounded to the watt (a share that rounds
    to nothing is left out)."""
    return tuple(
        PriceBlock(round(price, 2), round(share * mw, 6))
        for (share, _, _), price in zip(shares, prices, strict=True)
        if round(share * mw, 6) > 0
    )


def generate_bids(
    view: NetworkView,
    registry: ParticipantRegistry,
    profiles: Profiles,
    seed: int = 0,
    n_periods: int | None = None,
) -> tuple[Bid, ...]:
    """A realistic book: each participant's net position per period becomes a buy bid for its
    deficit (three willingness-to-pay blocks) or a sell offer of its PV surplus (two blocks,
    tied to the PV device). Prices vary per participant with ``seed``; same seed, same book.
    """
    rng = np.random.default_rng(seed)
    n_t = profiles.n_periods if n_periods is None else max(min(n_periods, profiles.n_periods), 0)
    bids: list[Bid] = []
    for pid in sorted(registry):
        part = registry[pid]
        columns = [(d, profiles.find(d.device_id)) for d in part.devices]
        load_cols = [
            k
            for d, k in columns
            if k is not None and d.kind in (DeviceKind.LOAD, DeviceKind.FLEX_LOAD)
        ]
        pv = [(d, k) for d, k in columns if k is not None and d.kind in CURTAILABLE]
        # per-participant price attitudes, fixed over the day
        wtp = [
            max(base + spread * rng.standard_normal(), 1.0) for _, base, spread in _DEMAND_BLOCKS
        ]
        ask = [
            max(base + spread * rng.standard_normal(), 0.0) for _, base, spread in _SUPPLY_BLOCKS
        ]
        # the whole day at once, the same sums as period by period: each period's loads in a
        # row of their own (summed across a column-ordered copy, 8 or more loads would be
        # added in another order and could differ in the last bit)
        demand = (
            np.ascontiguousarray(profiles.p_mw[:n_t, load_cols]).sum(axis=1)
            if load_cols
            else np.zeros(n_t)
        )
        generation = np.zeros(n_t)
        for _, k in pv:
            generation = generation + profiles.p_mw[:n_t, k]
        for t, net in enumerate((demand - generation).tolist()):
            if net > 1e-6:
                blocks = _blocks(_DEMAND_BLOCKS, wtp, net)
                bids.append(Bid(f"{pid}-t{t}-buy", pid, part.bus, t, Side.BUY, blocks))
            elif net < -1e-6 and pv:
                blocks = _blocks(_SUPPLY_BLOCKS, ask, -net)
                device = pv[0][0].device_id if len(pv) == 1 else None
                bids.append(Bid(f"{pid}-t{t}-sell", pid, part.bus, t, Side.SELL, blocks, device))
    return tuple(bids)


def _number(raw: Any, field: str, where: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BidValidationError(f"{where}: {field} {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise BidValidationError(f"{where}: {field} {raw!r} is not a finite number")
    return value


def _integer(raw: Any, field: str, where: str) -> int:
    value = _number(raw, field, where)
    if value != int(value):
        raise BidValidationError(f"{where}: {field} {raw!r} is not a whole number")
    return int(value)


def _side(raw: Any, where: str) -> Side:
    try:
        return Side(str(raw).strip().lower())
    except ValueError:
        raise BidValidationError(f"{where}: side {raw!r} must be 'buy' or 'sell'") from None


def read_bids(path: Path) -> tuple[Bid, ...]:
    """Read bids from a ``.csv`` or ``.json`` file (schema in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise BidValidationError(f"bid file {str(path)!r} does not exist")
    if path.suffix.lower() == ".json":
        return _read_json(path)
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    raise BidValidationError(f"bid file {str(path)!r}: expected a .csv or .json file")


def _read_csv(path: Path) -> tuple[Bid, ...]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [f for f in CSV_FIELDS[:-1] if f not in (reader.fieldnames or [])]
        if missing:
            raise BidValidationError(f"{str(path)!r}: missing column(s) {', '.join(missing)}")
        groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for line, row in enumerate(reader, start=2):
            bid_id = (row.get("bid_id") or "").strip()
            if not bid_id:
                raise BidValidationError(f"{str(path)!r} line {line}: bid_id is empty")
            groups.setdefault(bid_id, []).append((line, row))
    bids = []
    for bid_id, rows in groups.items():
        line0, first = rows[0]
        where = f"{path.name} line {line0} (bid {bid_id!r})"
        key = ("participant_id", "bus", "period", "side", "device_id")
        for line, row in rows[1:]:
            for k in key:
                if (row.get(k) or "").strip() != (first.get(k) or "").strip():
                    raise BidValidationError(
                        f"{path.name} line {line} (bid {bid_id!r}): {k} differs from line {line0}"
                    )
        blocks = tuple(
            PriceBlock(
                _number(row["price_eur_per_mwh"], "price_eur_per_mwh", f"{path.name} line {ln}"),
                _number(row["quantity_mw"], "quantity_mw", f"{path.name} line {ln}"),
            )
            for ln, row in rows
        )
        try:
            bids.append(
                Bid(
                    bid_id=bid_id,
                    participant_id=(first.get("participant_id") or "").strip(),
                    bus=_integer(first["bus"], "bus", where),
                    period=_integer(first["period"], "period", where),
                    side=_side(first["side"], where),
                    blocks=blocks,
                    device_id=(first.get("device_id") or "").strip() or None,
                )
            )
        except BidValidationError as exc:
            raise BidValidationError(
                f"{path.name} line {line0}: {exc}", exc.field, exc.reason, exc.problems
            ) from None
    return tuple(bids)


def _read_json(path: Path) -> tuple[Bid, ...]:
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BidValidationError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if isinstance(raw, dict):
        raw = raw.get("bids")
    if not isinstance(raw, list):
        raise BidValidationError(f"{str(path)!r}: expected a list of bids (or {{'bids': [...]}})")
    bids = []
    for i, item in enumerate(raw):
        where = f"{path.name} bid #{i}"
        bids.append(bid_from_dict(item, where))
    return tuple(bids)


def bid_from_dict(item: Any, where: str) -> Bid:
    """One bid from its JSON form; every error starts with ``where``."""
    try:
        return _bid_from_dict(item, where)
    except BidValidationError as exc:
        if str(exc).startswith(where):
            raise
        raise BidValidationError(f"{where}: {exc}", exc.field, exc.reason, exc.problems) from None


def _bid_from_dict(item: Any, where: str) -> Bid:
    if not isinstance(item, dict):
        raise BidValidationError(f"{where}: expected an object")
    for f in ("bid_id", "participant_id", "bus", "period", "side", "blocks"):
        if f not in item:
            raise BidValidationError(f"{where}: missing field {f!r}")
    if not isinstance(item["blocks"], list):
        raise BidValidationError(f"{where}: blocks must be a list")
    blocks = []
    for k, b in enumerate(item["blocks"]):
        if not isinstance(b, dict):
            raise BidValidationError(f"{where} block {k}: expected an object")
        blocks.append(
            PriceBlock(
                _number(b.get("price_eur_per_mwh"), "price_eur_per_mwh", f"{where} block {k}"),
                _number(b.get("quantity_mw"), "quantity_mw", f"{where} block {k}"),
            )
        )
    return Bid(
        bid_id=str(item["bid_id"]),
        participant_id=str(item["participant_id"]),
        bus=_integer(item["bus"], "bus", where),
        period=_integer(item["period"], "period", where),
        side=_side(item["side"], where),
        blocks=tuple(blocks),
        device_id=item.get("device_id"),
    )


def bid_to_dict(bid: Bid) -> dict[str, Any]:
    return {
        "bid_id": bid.bid_id,
        "participant_id": bid.participant_id,
        "bus": bid.bus,
        "period": bid.period,
        "side": str(bid.side),
        "device_id": bid.device_id,
        "blocks": [
            {"price_eur_per_mwh": b.price_eur_per_mwh, "quantity_mw": b.quantity_mw}
            for b in bid.blocks
        ],
    }


def write_bids(bids: Iterable[Bid], path: Path) -> None:
    """Write ``bids`` as CSV or JSON, by suffix."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps([bid_to_dict(b) for b in bids], indent=1))
        return
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        for bid in bids:
            for block in bid.blocks:
                writer.writerow(
                    [
                        bid.bid_id,
                        bid.participant_id,
                        bid.bus,
                        bid.period,
                        str(bid.side),
                        block.price_eur_per_mwh,
                        block.quantity_mw,
                        bid.device_id or "",
                    ]
                )
