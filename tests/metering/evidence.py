"""A two-participant interval settled by hand, as evidence (no clearing needed)."""

from __future__ import annotations

from typing import Any

from feederdao.domain.market import Participant, ParticipantDevice
from feederdao.domain.network import DeviceKind
from feederdao.governance.merkle import PositionTree
from feederdao.metering.book import ReadingBook
from feederdao.metering.readings import register
from feederdao.metering.settlement import Schedule, cumulative_positions, settle_deviations
from feederdao.workflows.metering import (
    IntervalSettlement,
    evidence,
    reading_for,
    reading_verifier,
    sign_reading,
)
from tests.metering.keys import DOMAIN, meter_key

PV = Participant("alice", 1, (ParticipantDevice("pv", DeviceKind.PV, 0.0, 0.01, s_mva=0.01),))
LOAD = Participant("bob", 2, (ParticipantDevice("load", DeviceKind.LOAD, 0.0, 0.004),))


def tiny_evidence(alice: str, bob: str, operator: str, charge: float = 10.0) -> dict[str, Any]:
    schedule = Schedule(
        2,
        0.25,
        {("pv", 0): 2000, ("pv", 1): 1000, ("load", 0): -500, ("load", 1): -500},
        {"pv": "alice", "load": "bob"},
        {"alice": 1, "bob": 2},
        {1: (100.0, 90.0), 2: (101.0, 91.0)},
        {"alice": 300_000, "bob": -100_000},
        0,
    )
    (ka, ma), (kb, mb) = meter_key(1), meter_key(2)
    regs = [register(ma, PV, ("pv",)), register(mb, LOAD, ("load",))]
    book = ReadingBook.of(5, 2, 0.25, 1e12, regs, reading_verifier(DOMAIN))
    delivered = [(ka, ma, "pv", 0, 2400), (ka, ma, "pv", 1, 700), (kb, mb, "load", 0, -650)]
    book.ingest(
        [
            sign_reading(k, DOMAIN, reading_for(m, 5, t, dev, wh, t + 1))
            for k, m, dev, t, wh in delivered
        ],
        0.0,
    )
    addresses = {"alice": alice, "bob": bob}
    s = settle_deviations(schedule, book.net_export_wh(), ["pv", "load"], charge)
    positions = cumulative_positions({}, s, addresses, operator)
    settled = IntervalSettlement(5, schedule, s, positions, PositionTree.build(positions))
    return evidence(settled, book, DOMAIN, charge, addresses, operator)
