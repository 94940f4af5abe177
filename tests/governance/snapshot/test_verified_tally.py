"""Tallying a hub proposal with voting power recomputed from the embedded chain."""

from __future__ import annotations

from typer.testing import CliRunner

from feederdao.cli.main import app
from feederdao.governance.snapshot.client import SnapshotClient
from feederdao.workflows.snapshot import tally_hub_proposal
from tests.governance.conftest import TOKEN, Dev
from tests.governance.snapshot.hub import Hub
from tests.governance.snapshot.test_client import PID, dataset


def hub_data(dev: Dev, snapshot_block: int, strategy: str) -> dict:  # type: ignore[type-arg]
    data = dataset(0)
    proposal = data["proposals"][0]
    proposal["snapshot"] = snapshot_block
    proposal["strategies"] = [
        {
            "name": strategy,
            "network": "1",
            "params": {"address": dev.addresses.token, "decimals": 18},
        }
    ]
    proposal["quorum"] = 500_000
    data["votes"][PID] = [
        {
            "id": "a",
            "voter": dev.alice,
            "choice": 1,
            "vp": 400_000.0,
            "created": 1500,
            "reason": "",
        },
        {"id": "b", "voter": dev.bob, "choice": 2, "vp": 300_000.0, "created": 1501, "reason": ""},
        # dave bought bob's tokens after the snapshot; the hub (wrongly) credits him
        {"id": "d", "voter": dev.dave, "choice": 2, "vp": 200_000.0, "created": 1502, "reason": ""},
    ]
    return data


def test_tokens_moved_after_the_snapshot_do_not_count(dev: Dev) -> None:
    snapshot_block = dev.w3.eth.block_number
    dev.chain.mine(1)
    dev.dao._send(dev.dao.token.functions.transfer(dev.dave, 200_000 * TOKEN), dev.bob, "sell")
    dev.dao.delegate(dev.dave)
    dev.chain.mine(1)
    for strategy in ("erc20-votes", "erc20-balance-of"):
        with Hub(hub_data(dev, snapshot_block, strategy)) as hub, SnapshotClient(hub.url) as c:
            report = tally_hub_proposal(c, PID, dev.w3)
        # basic voting: for / against / abstain, power at the snapshot block
        assert report.tally.scores == (400_000, 300_000, 0), strategy
        assert report.tally.quorum_reached and report.tally.winner == 1
        (m,) = report.mismatches
        assert m.voter == dev.dave and m.hub_power == 200_000 and m.chain_power == 0


def test_unverified_tally_matches_the_hubs_own_scores(dev: Dev) -> None:
    data = hub_data(dev, dev.w3.eth.block_number, "erc20-votes")
    data["proposals"][0]["scores"] = [400_000.0, 500_000.0, 0.0]  # what the hub shows
    with Hub(data) as hub, SnapshotClient(hub.url) as c:
        report = tally_hub_proposal(c, PID)
    assert report.tally.scores == report.hub_scores
    assert not report.verified and not report.mismatches


def test_hub_votes_outside_the_window_or_malformed_are_not_counted(dev: Dev) -> None:
    data = hub_data(dev, dev.w3.eth.block_number, "erc20-votes")
    votes = data["votes"][PID]
    votes.append(  # cast after the proposal's end (2000): the hub should not have counted it
        {"id": "late", "voter": dev.carol, "choice": 2, "vp": 1.0, "created": 2100, "reason": ""}
    )
    votes.append(  # index 0 would count for the last choice
        {"id": "zero", "voter": "0x" + "12" * 20, "choice": 0, "vp": 5.0, "created": 1600}
    )
    votes.append(  # alice's earlier vote, superseded by her vote at 1500
        {"id": "old", "voter": dev.alice, "choice": 2, "vp": 400_000.0, "created": 1400}
    )
    with Hub(data) as hub, SnapshotClient(hub.url) as c:
        report = tally_hub_proposal(c, PID, dev.w3)
    assert report.tally.scores == (400_000, 300_000, 0)
    reasons = dict(report.refused)
    assert "outside the voting window [1000, 2000]" in reasons[dev.carol]
    assert "must be one choice number in 1..3" in reasons["0x" + "12" * 20]
    assert reasons[dev.alice] == "replaced by the voter's later vote"


def test_cli_lists_and_tallies(dev: Dev) -> None:
    runner = CliRunner()
    with Hub(hub_data(dev, dev.w3.eth.block_number, "erc20-votes")) as hub:
        result = runner.invoke(
            app, ["snapshot", "proposals", "--space", "feeder.eth", "--hub", hub.url]
        )
        assert result.exit_code == 0 and "Raise v_max to 1.06" in result.output
        assert f"proposal {PID}: closed" in result.output  # the id in full
        result = runner.invoke(app, ["snapshot", "tally", "--proposal", PID, "--hub", hub.url])
        assert result.exit_code == 0, result.output
        flat = " ".join(result.output.split())
        assert "power as the hub reports it" in flat
        assert "total power 900,000" in flat and "winner: Against" in flat  # unverified
        result = runner.invoke(
            app, ["snapshot", "tally", "--proposal", PID, "--hub", hub.url, "--verify"]
        )
        assert result.exit_code == 2 and "pass --rpc URL" in result.output
