"""Every entry point refuses the same bad bids with the same words: a bid file through the CLI,
the library's ``clear()``, and the API. The rules live in one place (``domain.bidrules``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from feederdao.cli.main import app
from feederdao.domain import Bid, GridParameters, PriceBlock, Side
from feederdao.errors import BidValidationError
from feederdao.grid_model import ParticipantRegistry, build_profiles
from feederdao.optimizer.clearing import clear
from feederdao.workflows.network import open_network
from tests.api.conftest import NET, NOON, make_env
from tests.conftest import SUMMER_DAY

PERIODS = 4  # the service's interval length in the API tests
GOOD = (150.0, 0.002)

Case = tuple[str, dict[str, Any], str, str]


def cases(capacity_mva: float) -> list[Case]:
    """(name, changes to a good one-block buy bid, field at fault, reason)."""
    p = GridParameters()
    floor, cap = p.price_floor_eur_per_mwh, p.price_cap_eur_per_mwh
    limits = f"[{floor:g}, {cap:g}] EUR/MWh"
    sides = "(side 'buy' for bids, 'sell' for offers)"
    return [
        (
            "negative quantity",
            {"blocks": [(150.0, -0.01)]},
            "blocks[0].quantity_mw",
            f"quantity -0.01 MW must be positive {sides}",
        ),
        (
            "zero quantity",
            {"blocks": [(150.0, 0.0)]},
            "blocks[0].quantity_mw",
            f"quantity 0 MW must be positive {sides}",
        ),
        (
            "price above the cap",
            {"blocks": [GOOD, (cap + 1, 0.001)]},
            "blocks[1].price_eur_per_mwh",
            f"price {cap + 1:g} EUR/MWh is outside the market's price floor and cap {limits}",
        ),
        (
            "price below the floor",
            {"blocks": [(floor - 1, 0.001)]},
            "blocks[0].price_eur_per_mwh",
            f"price {floor - 1:g} EUR/MWh is outside the market's price floor and cap {limits}",
        ),
        (
            "more than the feeder carries",
            {"blocks": [(150.0, 1000.0)]},
            "blocks[0].quantity_mw",
            f"quantity 1000 MW exceeds the feeder's supply capacity of {capacity_mva:g} MVA",
        ),
        (
            "period beyond the window",
            {"period": PERIODS},
            "period",
            f"period {PERIODS} is outside the window's {PERIODS} period(s) (0 to {PERIODS - 1})",
        ),
        (
            "too many blocks",
            {"blocks": [GOOD] * 11},
            "blocks",
            "a bid has 1 to 10 price-quantity blocks, not 11",
        ),
        ("no block", {"blocks": []}, "blocks", "a bid has 1 to 10 price-quantity blocks, not 0"),
        ("unknown bus", {"bus": 99999}, "bus", f"bus 99999 does not exist in {NET!r}"),
    ]


def _library(tmp_path: Path) -> Callable[[dict[str, Any]], tuple[str, str]]:
    opened = open_network(NET)
    profiles = build_profiles(opened.loaded, opened.view, SUMMER_DAY, PERIODS)
    registry = ParticipantRegistry.from_network(opened.view, profiles)
    part = next(iter(registry.values()))

    def submit(bid: dict[str, Any]) -> tuple[str, str]:
        with pytest.raises(BidValidationError) as err:
            clear(
                opened.view,
                profiles,
                [
                    Bid(
                        "b",
                        part.participant_id,
                        bid.get("bus", part.bus),
                        bid.get("period", 0),
                        Side.BUY,
                        tuple(PriceBlock(p, q) for p, q in bid["blocks"]),
                    )
                ],
                tuple(registry.values()),
            )
        return err.value.field, err.value.reason

    return submit


def _cli(tmp_path: Path) -> Callable[[dict[str, Any]], tuple[str, str]]:
    opened = open_network(NET)
    part = next(iter(ParticipantRegistry.from_network(opened.view).values()))
    runner = CliRunner()

    def submit(bid: dict[str, Any]) -> tuple[str, str]:
        path = tmp_path / "bids.json"
        item = {
            "bid_id": "b",
            "participant_id": part.participant_id,
            "bus": bid.get("bus", part.bus),
            "period": bid.get("period", 0),
            "side": "buy",
            "blocks": [{"price_eur_per_mwh": p, "quantity_mw": q} for p, q in bid["blocks"]],
        }
        path.write_text(json.dumps([item]))
        args = ["clear", "--net", NET, "--bids", str(path), "--periods", str(PERIODS)]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        line = result.output.strip()
        assert "\n" not in line and line.startswith("error: ")
        # "error: [bids.json bid #0: ]bid 'b' <field>: <reason>"
        field, reason = line.split("bid 'b' ", 1)[1].split(": ", 1)
        return field, reason

    return submit


def _api(tmp_path: Path) -> Callable[[dict[str, Any]], tuple[str, str]]:
    env = make_env(f"sqlite:///{tmp_path}/market.db", str(tmp_path))
    member = env.join()
    interval = env.open_interval(NOON)
    counter = iter(range(10**6))

    def submit(bid: dict[str, Any]) -> tuple[str, str]:
        body = {
            "interval_id": interval,
            "period": bid.get("period", 0),
            "bus": bid.get("bus", member.bus),
            "side": "buy",
            "blocks": [{"price_eur_per_mwh": p, "quantity_mw": q} for p, q in bid["blocks"]],
        }
        before = env.bid_count()
        r = env.client.post(
            "/bids", json=body, headers={**member.auth, "Idempotency-Key": f"k{next(counter)}"}
        )
        assert r.status_code == 422, r.text
        assert env.bid_count() == before
        return r.json()["field"], r.json()["error"]

    return submit


@pytest.mark.parametrize("entry", ["cli", "library", "api"])
def test_every_entry_point_refuses_the_same_bids_with_the_same_words(
    entry: str, tmp_path: Path
) -> None:
    submit = {"cli": _cli, "library": _library, "api": _api}[entry](tmp_path)
    capacity = open_network(NET).view.supply_capacity_mva
    for name, change, field, reason in cases(capacity):
        bid = {"blocks": [GOOD], **change}
        assert submit(bid) == (field, reason), name
