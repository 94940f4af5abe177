"""Deviation settlement: a hand-checked case and the market's invariants as properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feederdao.metering.errors import MeteringError
from feederdao.metering.settlement import Schedule, cumulative_positions, settle_deviations

OPERATOR = "0x" + "0f" * 20


def tiny(dlmp: float = 100.0) -> Schedule:
    return Schedule(
        n_periods=2,
        period_hours=0.25,
        export_wh={("pv", 0): 2000, ("pv", 1): 1000, ("load", 0): -500, ("load", 1): -500},
        owner={"pv": "alice", "load": "bob"},
        bus_of={"alice": 1, "bob": 2},
        dlmp={1: (dlmp, dlmp), 2: (dlmp, dlmp)},
        day_ahead_units={"alice": 300_000, "bob": -100_000},
        merchandising_surplus_units=0,
    )


def test_hand_checked_deviation() -> None:
    # alice exports 1 kWh more than scheduled in period 0 and 500 Wh less in period 1; bob
    # consumes as scheduled. At 100 EUR/MWh and a 10 EUR/MWh charge:
    # +0.001 MWh·100 − 0.001·10 = +0.09 EUR; −0.0005·100 − 0.0005·10 = −0.055 EUR.
    metered = {("pv", 0): 3000, ("pv", 1): 500, ("load", 0): -500, ("load", 1): -500}
    s = settle_deviations(tiny(), metered, ["pv", "load"], 10.0)
    a, b = s.rows
    assert (a.deviation_units, a.charge_units) == (100_000 - 50_000, 10_000 + 5_000)
    assert a.final_units == 300_000 + 35_000
    assert b.final_units == -100_000
    assert s.operator_units == -(335_000 - 100_000)
    assert s.deviation_residual_units == -35_000
    assert s.balanced


def test_missing_readings_are_the_schedule_and_flagged() -> None:
    metered = {("pv", 0): 3000}
    s = settle_deviations(tiny(), metered, ["pv", "load"], 0.0)
    assert s.substituted == (("load", 0), ("load", 1), ("pv", 1))
    assert [r.substituted_periods for r in s.rows] == [1, 2]
    assert s.rows[0].deviation_wh == 1000


def test_refuses_what_it_cannot_settle() -> None:
    with pytest.raises(MeteringError, match="no participant owns"):
        settle_deviations(tiny(), {("ghost", 0): 1}, ["pv"], 0.0)
    with pytest.raises(MeteringError, match="negative"):
        settle_deviations(tiny(), {}, [], -1.0)


@st.composite
def markets(draw: st.DrawFn) -> tuple[Schedule, dict[tuple[str, int], int], float]:
    n = draw(st.integers(1, 5))
    periods = draw(st.integers(1, 6))
    owner: dict[str, str] = {}
    for i in range(n):
        for j in range(draw(st.integers(1, 2))):
            owner[f"d{i}-{j}"] = f"p{i}"
    wh = st.integers(-5_000, 5_000)
    export = {(d, t): draw(wh) for d in owner for t in range(periods)}
    price = st.floats(-200, 500, allow_nan=False)
    dlmp = {i: tuple(draw(price) for _ in range(periods)) for i in range(n)}
    schedule = Schedule(
        periods,
        0.25,
        export,
        owner,
        {f"p{i}": i for i in range(n)},
        dlmp,
        {f"p{i}": draw(st.integers(-(10**9), 10**9)) for i in range(n)},
        draw(st.integers(0, 10**6)),
    )
    metered = {k: v + draw(st.integers(-3_000, 3_000)) for k, v in export.items()}
    return schedule, metered, draw(st.floats(0, 200, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(markets())
def test_delivering_the_schedule_settles_to_the_day_ahead(
    case: tuple[Schedule, dict[tuple[str, int], int], float],
) -> None:
    schedule, _, charge = case
    s = settle_deviations(schedule, dict(schedule.export_wh), list(schedule.owner), charge)
    assert s.final() == dict(schedule.day_ahead_units)
    assert all(r.deviation_units == r.charge_units == r.deviation_wh == 0 for r in s.rows)
    assert s.deviation_residual_units == 0


@settings(max_examples=150, deadline=None)
@given(markets())
def test_the_books_balance(case: tuple[Schedule, dict[tuple[str, int], int], float]) -> None:
    schedule, metered, charge = case
    s = settle_deviations(schedule, metered, list(schedule.owner), charge)
    assert sum(s.final().values()) + s.operator_units == 0
    assert s.operator_units == -sum(schedule.day_ahead_units.values()) + s.deviation_residual_units
    assert all(r.charge_units >= 0 for r in s.rows)
    # the charge only ever takes: at a zero charge every participant gets at least as much
    free = settle_deviations(schedule, metered, list(schedule.owner), 0.0).final()
    assert all(s.final()[p] <= free[p] for p in free)
    addresses = {p: "0x" + f"{i + 1:040x}" for i, p in enumerate(sorted(s.final()))}
    once = cumulative_positions({}, s, addresses, OPERATOR)
    twice = cumulative_positions(once, s, addresses, OPERATOR)
    assert sum(once.values()) == 0 and sum(twice.values()) == 0
    assert all(twice[a] == 2 * once[a] for a in once)
