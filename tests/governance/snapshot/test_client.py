"""The hub client against a local GraphQL server: pages, errors, 429 and timeouts."""

from __future__ import annotations

import pytest

from feederdao.governance.snapshot.client import SnapshotClient, SnapshotError
from tests.governance.snapshot.hub import Hub

PID = "0x" + "ab" * 32


def dataset(n_votes: int = 2500) -> dict:  # type: ignore[type-arg]
    proposal = {
        "id": PID,
        "title": "Raise v_max to 1.06",
        "body": "",
        "choices": ["For", "Against", "Abstain"],
        "start": 1000,
        "end": 2000,
        "snapshot": 12,
        "state": "closed",
        "type": "basic",
        "quorum": 100,
        "space": {"id": "feeder.eth"},
        "strategies": [
            {
                "name": "erc20-votes",
                "network": "1",
                "params": {"address": "0x" + "00" * 20, "decimals": 18},
            }
        ],
        "scores": [1.0, 2.0, 0.0],
        "scores_total": 3.0,
        "votes": n_votes,
    }
    votes = [
        {
            "id": f"v{i}",
            "voter": "0x" + f"{i:040x}",
            "choice": 1 + i % 3,
            "vp": 1.0,
            "created": 1000 + i,
            "reason": "",
        }
        for i in range(n_votes)
    ]
    return {
        "space": {
            "id": "feeder.eth",
            "name": "Feeder",
            "network": "1",
            "symbol": "GRID",
            "strategies": proposal["strategies"],
            "voting": {"quorum": 100, "type": None},
        },
        "proposals": [proposal],
        "votes": {PID: votes},
    }


def test_pages_through_all_votes_and_reads_proposals() -> None:
    with Hub(dataset()) as hub, SnapshotClient(hub.url, api_key="k", sleep=lambda s: None) as c:
        votes = c.votes(PID)
        assert len(votes) == 2500 and votes[-1].id == "v2499"
        vote_queries = [r for r in hub.requests if "votes(" in r["body"]["query"]]
        assert [r["body"]["variables"]["skip"] for r in vote_queries] == [0, 1000, 2000]
        assert all(r["api_key"] == "k" for r in hub.requests)
        (p,) = c.proposals("feeder.eth", state="closed")
        assert p.proposal.voting_type == "basic" and p.proposal.snapshot_block == 12
        assert c.proposal(PID).title == "Raise v_max to 1.06"
        assert c.space("feeder.eth")["symbol"] == "GRID"
        with pytest.raises(SnapshotError, match="no Snapshot proposal 0xdead"):
            c.proposal("0xdead")


def test_rate_limits_are_waited_out() -> None:
    waits: list[float] = []
    with Hub(dataset(10), rate_limit=2) as hub, SnapshotClient(hub.url, sleep=waits.append) as c:
        assert len(c.votes(PID)) == 10
    assert waits == [0.0, 0.0]  # Retry-After: 0, twice


def test_persistent_rate_limit_and_timeouts_are_errors() -> None:
    with (
        Hub(dataset(10), rate_limit=100) as hub,
        SnapshotClient(hub.url, max_retries=2, sleep=lambda s: None) as c,
        pytest.raises(SnapshotError, match=r"unreachable after 3 tries: rate limited"),
    ):
        c.votes(PID)
    with (
        Hub(dataset(10), delay_s=1.0) as hub,
        SnapshotClient(hub.url, timeout_s=0.2, max_retries=1, sleep=lambda s: None) as c,
        pytest.raises(SnapshotError, match="no answer within"),
    ):
        c.votes(PID)


def test_graphql_errors_are_reported() -> None:
    with (
        Hub(dataset(1)) as hub,
        SnapshotClient(hub.url) as c,
        pytest.raises(SnapshotError, match="unknown query field"),
    ):
        c.query("query { follows(first: 1) { id } }")


def test_an_answer_that_is_not_strict_json_is_refused() -> None:
    data = dataset(1)
    data["votes"][PID][0]["vp"] = float("nan")  # Python's json writes NaN; JSON has no NaN
    with (
        Hub(data) as hub,
        SnapshotClient(hub.url) as c,
        pytest.raises(SnapshotError, match="invalid JSON: NaN is not JSON"),
    ):
        c.votes(PID)
