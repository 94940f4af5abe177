"""What the contracts guarantee whatever the EVM (the embedded chain and anvil): step accounting
per interval, late-quorum protection, the proposal threshold, guardian rotation, and provenance
of a change executed directly on the Timelock."""

from __future__ import annotations

import dataclasses

import pytest
from web3 import Web3
from web3.logs import DISCARD

from feederdao.governance.deploy import DaoConfig, ParameterDefinition, default_definitions
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.errors import GovernanceError
from feederdao.governance.keys import key_of
from feederdao.governance.reader import ParameterReader
from tests.governance.conftest import TOKEN, Dev, make_dev


def reader(dev: Dev) -> ParameterReader:
    return ParameterReader(
        dev.w3, dev.addresses.parameters, SafetyEnvelope(confirmations=0), finality="confirmations"
    )


# -- step accounting -----------------------------------------------------------------------


def test_a_zero_interval_is_refused_where_the_key_is_defined(any_chain: Web3) -> None:
    defs = tuple(
        dataclasses.replace(d, min_interval_s=0) if d.name == "v_max_pu" else d
        for d in default_definitions()
    )
    with pytest.raises(GovernanceError, match=r"ZeroInterval\(key=v_max_pu\)"):
        make_dev(any_chain, DaoConfig(definitions=defs))


def test_one_proposal_carrying_two_steps_moves_the_value_at_most_one_step(
    any_chain: Web3,
) -> None:
    # the shortest interval there is: one second
    defs = tuple(
        ParameterDefinition(d.name, d.initial, d.minimum, d.maximum, d.max_step, 1)
        for d in default_definitions()
    )
    dev = make_dev(any_chain, DaoConfig(definitions=defs))
    p = dev.dao.propose(dev.alice, {"v_max_pu": 1.07}, "one step up")
    # a second call on the same key in the same proposal: 1.07 → 1.09, each call one step
    data = dev.dao.parameters.encode_abi("setValue", args=[key_of("v_max_pu"), 1_090_000])
    p2 = dev.dao._propose(
        dev.alice,
        [
            (dev.dao.parameters.address, p.calldatas[0]),
            (dev.dao.parameters.address, bytes.fromhex(data[2:])),
        ],
        (),
        "two steps in one proposal",
    )
    dev.ready(p2)
    with pytest.raises(GovernanceError, match=r"StepTooLarge\(key=v_max_pu, movement=40000"):
        dev.dao.execute(p2, dev.alice)
    assert dev.dao.parameter_values()["v_max_pu"] == 1.05


def _execute_in_one_block(dev: Dev, proposals: list) -> list:  # type: ignore[type-arg]
    """Send the executions of ``proposals`` (each from its own account, so their nonces are
    independent) and mine them in a single block; the receipts."""
    w3 = dev.w3
    embedded = hasattr(w3.provider, "ethereum_tester")
    if embedded:
        w3.provider.ethereum_tester.disable_auto_mine_transactions()  # type: ignore[attr-defined]
    else:
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    senders = [dev.alice, dev.bob, dev.carol, dev.dave]
    try:
        txs = [
            dev.dao.governor.functions.execute(
                list(p.targets), list(p.values), list(p.calldatas), p.description_hash
            ).transact({"from": senders[i], "gas": 1_000_000})
            for i, p in enumerate(proposals)
        ]
        dev.chain.mine(1)
    finally:
        if embedded:
            w3.provider.ethereum_tester.enable_auto_mine_transactions()  # type: ignore[attr-defined]
        else:
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    receipts = [w3.eth.wait_for_transaction_receipt(t) for t in txs]
    assert len({r["blockNumber"] for r in receipts}) == 1
    return receipts


def test_two_proposals_executed_in_one_block_move_the_value_at_most_one_step(
    any_chain: Web3,
) -> None:
    dev = make_dev(any_chain)
    up = dev.dao.propose(dev.alice, {"v_max_pu": 1.07}, "up one step")
    dev.chain.mine(1)
    up_again = dev.dao.propose(dev.alice, {"v_max_pu": 1.09}, "and one more")
    dev.chain.mine(2)
    for p in (up, up_again):
        dev.dao.vote(dev.alice, p.proposal_id, "for")
    dev.chain.mine(21)
    for p in (up, up_again):
        dev.dao.queue(p, dev.alice)
    dev.chain.advance_time(61)
    first, second = _execute_in_one_block(dev, [up, up_again])
    assert (first["status"], second["status"]) == (1, 0)
    assert dev.dao.parameter_values()["v_max_pu"] == 1.07


def test_the_deployment_opens_the_first_interval(any_chain: Web3) -> None:
    dev = make_dev(any_chain)
    deployed_at = any_chain.eth.get_block(dev.addresses.deployed_at_block)["timestamp"]
    p = dev.dao.parameters.functions.parameter(key_of("v_max_pu")).call()
    value, lo, hi, last_changed = p[0], p[6], p[7], p[5]
    assert (lo, hi) == (value, value) == (1_050_000, 1_050_000)
    assert 0 < last_changed <= deployed_at
    # the first change is accounted in that interval: down a step, then up past the start
    dev.pass_proposal({"v_max_pu": 1.03}, "down a step")
    with pytest.raises(GovernanceError, match=r"StepTooLarge\(key=v_max_pu, movement=30000"):
        dev.pass_proposal({"v_max_pu": 1.06}, "back up past the start within the hour")
    # an interval without changes later, a full step is possible again
    dev.chain.advance_time(3601)
    dev.pass_proposal({"v_max_pu": 1.05}, "after a quiet hour")
    assert dev.dao.parameter_values()["v_max_pu"] == 1.05


# -- the Governor ---------------------------------------------------------------------------


def test_a_late_quorum_extends_the_vote(any_chain: Web3) -> None:
    dev = make_dev(any_chain)
    dao = dev.dao
    p = dao.propose(dev.alice, {"network_fee_eur_per_mwh": 5.0}, "a fee")
    status = dao.status(p.proposal_id)
    # nobody votes until the last block of the vote: then alice's votes reach the quorum
    dev.chain.mine(status.deadline_block - dev.w3.eth.block_number - 1)
    dao.vote(dev.alice, p.proposal_id, "for", "in the last block")
    assert dev.w3.eth.block_number == status.deadline_block
    extended = dao.status(p.proposal_id).deadline_block
    assert extended == status.deadline_block + DaoConfig().late_quorum_extension_blocks
    dev.chain.mine(1)
    assert dao.state(p.proposal_id) == "Active"  # the original deadline has passed
    dao.vote(dev.bob, p.proposal_id, "against", "answering the swing")
    assert dao.status(p.proposal_id).votes_against == 300_000 * TOKEN


def test_proposing_needs_the_threshold(any_chain: Web3) -> None:
    dev = make_dev(any_chain)
    assert DaoConfig().proposal_threshold_votes == 1_000 * TOKEN
    assert dev.dao.proposal_threshold() == 1_000 * TOKEN
    with pytest.raises(GovernanceError, match="GovernorInsufficientProposerVotes"):
        dev.dao.propose(dev.carol, {"network_fee_eur_per_mwh": 5.0}, "one token is not enough")


# -- the guardian ---------------------------------------------------------------------------


def test_the_dao_replaces_and_removes_the_guardian(any_chain: Web3) -> None:
    dev = make_dev(any_chain)
    dao = dev.dao
    new = list(dev.w3.eth.accounts)[7]
    rotation = dev.ready(dao.propose_guardian(dev.alice, new, "a new DSO key"))
    with pytest.raises(GovernanceError, match="GuardianChangeNotCancellable"):
        dao.cancel_queued(dev.guardian, rotation)  # no veto over its own replacement
    dao.execute(rotation, dev.bob)
    assert dao.guardian() == Web3.to_checksum_address(new)
    with pytest.raises(GovernanceError, match="NotGuardian"):
        dao.pause(dev.guardian)  # the old guardian lost its powers
    # the new guardian cancels a queued parameter change (its safety veto) and pauses
    change = dev.ready(dao.propose(dev.alice, {"v_min_pu": 0.96}, "raise the lower limit"))
    with pytest.raises(GovernanceError, match="NotGuardian"):
        dao.cancel_queued(dev.guardian, change)
    dao.cancel_queued(new, change)
    assert dao.state(change.proposal_id) == "Canceled"
    dao.pause(new)
    # the DAO removes the guardian; the registry it paused is unpaused, since nobody could
    removal = dev.ready(dao.propose_guardian(dev.alice, None, "no guardian any more"))
    dao.execute(removal, dev.alice)
    assert dao.guardian() is None
    assert not dao.parameters.functions.paused().call()
    with pytest.raises(GovernanceError, match="NotGuardian"):
        dao.pause(new)
    dev.chain.advance_time(3601)
    dev.pass_proposal({"v_min_pu": 0.96}, "raise the lower limit, again")
    assert dao.parameter_values()["v_min_pu"] == 0.96


# -- provenance -----------------------------------------------------------------------------


def test_a_change_executed_directly_on_the_timelock_names_its_proposal(any_chain: Web3) -> None:
    dev = make_dev(any_chain)
    p = dev.ready(dev.dao.propose(dev.alice, {"network_fee_eur_per_mwh": 4.0}, "a fee"))
    receipt = dev.dao.execute_on_timelock(p, dev.dave)  # anyone, bypassing the Governor
    executed = dev.dao.governor.events.ProposalExecuted().process_receipt(receipt, errors=DISCARD)
    assert not executed  # the Governor never saw it
    assert dev.dao.state(p.proposal_id) == "Executed"
    params = reader(dev).read().parameters
    assert params.network_fee_eur_per_mwh == 4.0
    (change,) = params.provenance.changes
    assert change.proposal_id == str(p.proposal_id)
    assert params.provenance.proposal_id == str(p.proposal_id)


def test_changes_of_two_proposals_in_one_block_name_each_its_proposal(any_chain: Web3) -> None:
    dev = make_dev(any_chain)
    fee = dev.dao.propose(dev.alice, {"network_fee_eur_per_mwh": 4.0}, "a fee")
    dev.chain.mine(1)
    band = dev.dao.propose(dev.alice, {"v_min_pu": 0.96}, "raise the lower limit")
    dev.chain.mine(2)
    for p in (fee, band):
        dev.dao.vote(dev.alice, p.proposal_id, "for")
    dev.chain.mine(21)
    for p in (fee, band):
        dev.dao.queue(p, dev.alice)
    dev.chain.advance_time(61)
    assert [r["status"] for r in _execute_in_one_block(dev, [fee, band])] == [1, 1]
    by_name = {c.name: c.proposal_id for c in reader(dev).read().parameters.provenance.changes}
    assert by_name == {
        "network_fee_eur_per_mwh": str(fee.proposal_id),
        "v_min_pu": str(band.proposal_id),
    }
