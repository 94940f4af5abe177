"""The worst-case cost of a bid: the limit price (plus the fee) for a buyer, a negative offer
price for a seller, rounded up to a token unit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feederdao.metering.collateral import Cover, units_text, worst_case_units
from feederdao.metering.errors import MeteringError


def test_worst_case_of_bids_and_offers() -> None:
    # two blocks for 15 min at 100 and 50 EUR/MWh, a 5 EUR/MWh network fee
    assert worst_case_units("buy", [(100.0, 0.01), (50.0, 0.02)], 0.25, 5.0) == 537_500
    assert worst_case_units("buy", [(-20.0, 0.01)], 0.25, 5.0) == 0  # it can only be paid
    assert worst_case_units("sell", [(20.0, 0.01)], 0.25, 5.0) == 0
    assert worst_case_units("sell", [(-40.0, 0.01)], 0.25, 5.0) == 100_000
    assert worst_case_units("buy", [(100.0, 0.0000001)], 0.25, 0.0) == 3  # 2.5 units, rounded up
    with pytest.raises(MeteringError, match="side"):
        worst_case_units("hold", [(1.0, 1.0)], 0.25, 0.0)


@given(
    st.lists(st.tuples(st.floats(-500, 3000), st.floats(1e-6, 10.0)), min_size=1, max_size=5),
    st.floats(0, 100),
)
def test_the_worst_case_bounds_any_clearing_price(
    blocks: list[tuple[float, float]], fee: float
) -> None:
    """Whatever DLMP λ clears a buyer's accepted blocks (λ ≤ its price), it pays no more."""
    worst = worst_case_units("buy", blocks, 0.25, fee)
    for lam in {p for p, _ in blocks}:
        paid = sum(q * 0.25 * (lam + fee) for p, q in blocks if p >= lam) * 10**6
        assert paid <= worst + 1e-6


def test_cover_says_what_is_short() -> None:
    c = Cover(
        deposited=1_000_000, withdrawn=100_000, position=-200_000, open_bids=50_000, bid=700_000
    )
    assert c.available == 650_000 and c.shortfall == 50_000
    assert "short by 0.050000 EUR (50000 token units)" in c.explain()
    assert units_text(-1_500_000) == "-1.500000 EUR"
    # a withdrawal given notice counts as withdrawn from its request
    asked = Cover(1_000_000, 100_000, -200_000, 50_000, 700_000, requested=300_000)
    assert asked.available == 350_000 and asked.shortfall == 350_000
    assert "requested for withdrawal 0.300000 EUR" in asked.explain()
