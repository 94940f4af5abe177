"""The safe parameter reader: envelope, last-known-good, staleness, persistence."""

from pathlib import Path

from web3 import Web3

from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.reader import JsonStateFile, ParameterReader
from tests.governance.conftest import Dev

ENVELOPE = {
    "confirmations": 0,
    "staleness_s": 600,
    "parameters": {
        "v_max_pu": {"min": 1.045, "max": 1.06, "max_step": 0.02, "default": 1.05},
        "network_fee_eur_per_mwh": {"min": 0, "max": 20, "max_step": 10, "default": 0},
    },
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_value_inside_contract_bounds_but_outside_envelope_is_not_applied(dev: Dev) -> None:
    reader = ParameterReader(dev.w3, dev.addresses.parameters, SafetyEnvelope.from_dict(ENVELOPE))
    first = reader.read()
    assert first.parameters.v_max_pu == 1.05 and not first.alarms
    # the DAO votes 1.04: inside the contract's [1.01, 1.10] but below the operator's 1.045
    dev.pass_proposal({"v_max_pu": 1.04, "network_fee_eur_per_mwh": 5.0}, "tighten")
    reading = reader.read()
    assert reading.parameters.v_max_pu == 1.05  # last-known-good kept
    assert reading.parameters.network_fee_eur_per_mwh == 5.0  # the in-envelope change applies
    assert any(
        "v_max_pu = 1.04 is outside the operator's envelope [1.045, 1.06]" in a
        for a in reading.alarms
    )
    assert reading.parameters.provenance.rejected


def test_unreachable_chain_keeps_last_known_good_then_falls_back(dev: Dev, tmp_path: Path) -> None:
    clock = Clock()
    state = JsonStateFile(tmp_path / "reader.json")
    env = SafetyEnvelope.from_dict(ENVELOPE)
    dev.pass_proposal({"network_fee_eur_per_mwh": 7.0}, "fee")
    assert (
        ParameterReader(dev.w3, dev.addresses.parameters, env, state, clock=clock)
        .read()
        .parameters.network_fee_eur_per_mwh
        == 7.0
    )
    # a new process, a node that does not answer: the persisted values stand
    dead = Web3(Web3.HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 0.5}))
    reader = ParameterReader(dead, dev.addresses.parameters, env, state, clock=clock)
    clock.now += 300
    reading = reader.read()
    assert reading.status == "last-known-good"
    assert reading.parameters.network_fee_eur_per_mwh == 7.0
    assert any("chain unreachable" in a for a in reading.alarms)
    clock.now += 400  # 700 s since the last good read > staleness 600 s
    reading = reader.read()
    assert reading.status == "safe-defaults"
    assert reading.parameters.network_fee_eur_per_mwh == 0.0  # the envelope's default
    assert reading.parameters.provenance.source == "safe-defaults"


def test_reading_is_incremental_and_keeps_the_history(dev: Dev) -> None:
    reader = ParameterReader(dev.w3, dev.addresses.parameters)
    dev.pass_proposal({"network_fee_eur_per_mwh": 5.0}, "fee 5")
    assert reader.read().parameters.network_fee_eur_per_mwh == 5.0
    dev.chain.advance_time(3601)
    dev.pass_proposal({"network_fee_eur_per_mwh": 10.0}, "fee 10")
    params = reader.read().parameters
    assert params.network_fee_eur_per_mwh == 10.0
    assert [c.new_value for c in params.provenance.changes] == [5.0, 10.0]
