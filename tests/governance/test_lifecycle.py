"""The DAO lifecycle on the embedded chain, and what the contracts refuse."""

import pytest
from web3 import Web3

from feederdao.governance.dao import Dao
from feederdao.governance.errors import ChainUnavailableError, GovernanceError
from feederdao.governance.keys import key_of, to_chain
from feederdao.governance.reader import ParameterReader
from feederdao.governance.snapshot.power import voting_power
from tests.governance.conftest import TOKEN, Dev


def test_whole_lifecycle_and_the_reader_sees_the_new_values(dev: Dev) -> None:
    dao = dev.dao
    p = dao.propose(
        dev.alice,
        {"v_max_pu": 1.04, "network_fee_eur_per_mwh": 8.0},
        "Tighten the voltage band and fund grid upkeep",
    )
    assert dao.state(p.proposal_id) == "Pending"
    dev.chain.mine(2)
    assert dao.state(p.proposal_id) == "Active"
    dao.vote(dev.alice, p.proposal_id, "for", "better voltage quality")
    dao.vote(dev.bob, p.proposal_id, "against", "too strict for PV owners")
    dao.vote(dev.carol, p.proposal_id, "abstain")
    dev.chain.mine(21)
    status = dao.status(p.proposal_id)
    assert status.state == "Succeeded"
    assert (status.votes_for, status.votes_against, status.votes_abstain) == (
        400_000 * TOKEN,
        300_000 * TOKEN,
        TOKEN,
    )
    dao.queue(p, dev.alice)
    assert dao.state(p.proposal_id) == "Queued"
    with pytest.raises(GovernanceError, match="executing proposal"):
        dao.execute(p, dev.alice)  # the timelock delay has not passed
    dev.chain.advance_time(61)
    dao.execute(p, dev.dave)  # anyone may execute
    assert dao.state(p.proposal_id) == "Executed"

    reading = ParameterReader(dev.w3, dev.addresses.parameters).read()
    params = reading.parameters
    assert reading.status == "fresh" and not reading.alarms
    assert params.v_max_pu == 1.04 and params.network_fee_eur_per_mwh == 8.0
    prov = params.provenance
    assert prov.source == "chain" and prov.proposal_id == str(p.proposal_id)
    assert {c.name for c in prov.changes} == {"v_max_pu", "network_fee_eur_per_mwh"}
    change = next(c for c in prov.changes if c.name == "v_max_pu")
    assert (change.old_value, change.new_value) == (1.05, 1.04)
    assert change.transaction.startswith("0x") and change.block_number > 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"v_max_pu": 1.2}, r"OutOfBounds\(key=v_max_pu"),  # contract bound is 1.10
        ({"v_max_pu": 1.09}, r"StepTooLarge\(key=v_max_pu"),  # more than 0.02 in one change
    ],
)
def test_execution_fails_outside_bounds_or_step(dev: Dev, changes: dict, reason: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(GovernanceError, match=reason):
        dev.pass_proposal(changes, f"bad change {changes}")
    assert dev.dao.parameter_values()["v_max_pu"] == 1.05


def test_changes_within_an_interval_share_one_step(dev: Dev) -> None:
    dev.pass_proposal({"v_max_pu": 1.04}, "first")
    # the second proposal is through voting and the timelock within the hour: together with
    # the first it would move v_max_pu 0.03 (1.05 → 1.02), more than its 0.02 step
    with pytest.raises(GovernanceError, match=r"StepTooLarge\(key=v_max_pu, movement=30000"):
        dev.pass_proposal({"v_max_pu": 1.02}, "second, too far within the hour")
    dev.pass_proposal({"v_max_pu": 1.03}, "a correction inside the step")
    assert dev.dao.parameter_values()["v_max_pu"] == 1.03


def test_the_guardian_cannot_set_values_but_can_pause(dev: Dev) -> None:
    params = dev.dao.parameters
    call = params.functions.setValue(key_of("v_max_pu"), to_chain(1.04))
    with pytest.raises(GovernanceError, match="NotTimelock"):
        dev.dao._send(call, dev.guardian, "guardian setting a value")
    dev.dao.pause(dev.guardian)
    with pytest.raises(GovernanceError, match="EnforcedPause"):
        dev.pass_proposal({"v_max_pu": 1.04}, "while paused")
    with pytest.raises(GovernanceError, match="NotGuardian"):
        dev.dao._send(params.functions.unpause(), dev.alice, "a holder unpausing")


def test_the_guardian_can_cancel_a_queued_operation(dev: Dev) -> None:
    dao = dev.dao
    p = dao.propose(dev.alice, {"v_min_pu": 0.96}, "raise the lower limit")
    dev.chain.mine(2)
    dao.vote(dev.alice, p.proposal_id, "for")
    dev.chain.mine(21)
    operation = dao.queue(p, dev.alice)
    assert operation == dao.operation_id(p)
    with pytest.raises(GovernanceError, match="NotGuardian"):
        dao.cancel_queued(dev.bob, p)  # a token holder is no canceller
    dao.cancel_queued(dev.guardian, p)
    assert dao.state(p.proposal_id) == "Canceled"
    dev.chain.advance_time(61)
    with pytest.raises(GovernanceError):
        dao.execute(p, dev.alice)
    assert dao.parameter_values()["v_min_pu"] == 0.95


def test_tokens_bought_after_the_snapshot_do_not_vote(dev: Dev) -> None:
    dao = dev.dao
    p = dao.propose(dev.alice, {"network_fee_eur_per_mwh": 5.0}, "a fee")
    dev.chain.mine(2)  # voting is open: the snapshot block is behind us
    dao._send(dao.token.functions.transfer(dev.dave, 200_000 * TOKEN), dev.bob, "bob sells")
    dao.delegate(dev.dave)
    dev.chain.mine(1)
    assert dao.votes(dev.dave) == 200_000 * TOKEN
    dao.vote(dev.dave, p.proposal_id, "against")
    assert dao.status(p.proposal_id).votes_against == 0  # dave had no votes at the snapshot
    dao.vote(dev.bob, p.proposal_id, "against")
    assert dao.status(p.proposal_id).votes_against == 300_000 * TOKEN  # bob's, at the snapshot


def test_settlement_is_anchored_once_by_the_operator_only(dev: Dev) -> None:
    reg = dev.dao.settlement
    digest = bytes.fromhex("ab" * 32)
    with pytest.raises(GovernanceError, match="NotOperator"):
        dev.dao._send(reg.functions.anchor(7, digest), dev.alice, "a holder anchoring")
    dev.dao._send(reg.functions.anchor(7, digest), dev.operator, "anchoring interval 7")
    assert bytes(reg.functions.resultHash(7).call()) == digest
    with pytest.raises(GovernanceError, match="AlreadyAnchored"):
        dev.dao._send(reg.functions.anchor(7, bytes.fromhex("cd" * 32)), dev.operator, "again")


def test_voting_before_it_opens_says_when_it_opens(dev: Dev) -> None:
    p = dev.dao.propose(dev.alice, {"network_fee_eur_per_mwh": 5.0}, "a fee")
    opens = dev.dao.status(p.proposal_id).snapshot_block + 1
    with pytest.raises(GovernanceError, match=f"is Pending: voting opens at block {opens}"):
        dev.dao.vote(dev.alice, p.proposal_id, "for")


def test_web3_errors_reach_the_caller_as_governance_errors(dev: Dev) -> None:
    with pytest.raises(GovernanceError, match=r"GovernorNonexistentProposal\(proposalId=12345\)"):
        dev.dao.state(12345)
    dead_node = Web3(Web3.HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 0.5}))
    dead = Dao(dead_node, dev.addresses)
    with pytest.raises(ChainUnavailableError, match="the node does not answer"):
        dead.proposals()
    with pytest.raises(ChainUnavailableError, match="reading the voting power"):
        voting_power(
            dead_node,
            [{"name": "erc20-votes", "params": {"address": dev.addresses.token}}],
            [dev.alice],
            1,
        )
