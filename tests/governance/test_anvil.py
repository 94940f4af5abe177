"""The same lifecycle over JSON-RPC against anvil (from npm), and a reorg of the applying block."""

from __future__ import annotations

from web3 import Web3

from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.reader import ParameterReader
from tests.governance.conftest import Dev, make_dev


def test_lifecycle_over_json_rpc(anvil: Web3) -> None:
    dev = make_dev(anvil)
    p = dev.pass_proposal({"v_min_pu": 0.96}, "raise the lower limit")
    assert dev.dao.state(p.proposal_id) == "Executed"
    reading = ParameterReader(
        anvil, dev.addresses.parameters, SafetyEnvelope(confirmations=0), finality="confirmations"
    ).read()
    assert reading.parameters.v_min_pu == 0.96
    assert reading.parameters.provenance.proposal_id == str(p.proposal_id)


def test_reorg_of_the_applying_block_is_detected_and_rolled_back(anvil: Web3) -> None:
    dev: Dev = make_dev(anvil)
    reader = ParameterReader(
        anvil, dev.addresses.parameters, SafetyEnvelope(confirmations=0), finality="confirmations"
    )
    assert reader.read().parameters.network_fee_eur_per_mwh == 0.0
    dao = dev.dao
    p = dao.propose(dev.alice, {"network_fee_eur_per_mwh": 9.0}, "fee")
    dev.chain.mine(2)
    dao.vote(dev.alice, p.proposal_id, "for")
    dev.chain.mine(21)
    dao.queue(p, dev.alice)
    dev.chain.advance_time(61)
    snapshot = anvil.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    dao.execute(p, dev.alice)
    applied = reader.read()
    assert applied.parameters.network_fee_eur_per_mwh == 9.0
    applied_block = applied.parameters.provenance.block_number
    # the chain reorganises: the execution's block is replaced by different blocks
    anvil.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    dev.chain.advance_time(7)
    dev.chain.mine(3)
    assert applied_block is not None and anvil.eth.block_number >= applied_block
    after = reader.read()
    assert any("reorg" in a and str(applied_block) in a for a in after.alarms)
    assert after.parameters.network_fee_eur_per_mwh == 0.0  # rolled back, not applied
