"""Deploy and wire a feeder DAO: token, timelock, governor, parameter registry, settlement."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from feederdao.domain.params import GridParameters
from feederdao.governance.artifacts import artifact
from feederdao.governance.chain import transact
from feederdao.governance.errors import GovernanceError
from feederdao.governance.keys import PARAMETER_NAMES, key_of, to_chain

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class ParameterDefinition:
    """A parameter's hard bounds, largest step and interval, fixed in the contract at
    deployment: within any ``min_interval_s`` seconds the value moves at most ``max_step``,
    however the changes are batched (the interval must be positive)."""

    name: str
    initial: float
    minimum: float
    maximum: float
    max_step: float
    min_interval_s: int = 3600


def default_definitions(initial: GridParameters | None = None) -> tuple[ParameterDefinition, ...]:
    p = (initial or GridParameters()).values()
    spec = {
        "v_min_pu": (0.85, 0.99, 0.02),
        "v_max_pu": (1.01, 1.10, 0.02),
        "max_line_loading_percent": (50.0, 120.0, 10.0),
        "max_trafo_loading_percent": (50.0, 120.0, 10.0),
        "network_fee_eur_per_mwh": (0.0, 100.0, 10.0),
        "price_floor_eur_per_mwh": (-3000.0, 0.0, 500.0),
        "price_cap_eur_per_mwh": (100.0, 10000.0, 1000.0),
        "clearing_interval_s": (300.0, 3600.0, 900.0),
        "reserve_margin_percent": (0.0, 30.0, 5.0),
        "deviation_charge_eur_per_mwh": (0.0, 200.0, 20.0),
        "settlement_challenge_window_s": (60.0, 7 * 86400.0, 86400.0),
    }
    return tuple(ParameterDefinition(name, float(p[name]), *spec[name]) for name in PARAMETER_NAMES)


@dataclass(frozen=True)
class DaoConfig:
    """Governance timing and thresholds. The defaults suit a development chain; an operator
    starting a real DAO sets days, not blocks.

    ``proposal_threshold`` is the votes (in 10⁻¹⁸ tokens) a proposer needs; None means 0.1 % of
    the supply (1,000 of the default 1,000,000 tokens): enough to keep dust accounts from
    flooding the Governor with proposals, small enough for any sizeable holder. A proposal that
    reaches its quorum late gets ``late_quorum_extension_blocks`` more blocks of voting
    (OpenZeppelin's GovernorPreventLateQuorum); it may not exceed the voting period.
    """

    token_name: str = "Feeder Grid Token"
    token_symbol: str = "GRID"
    supply: int = 1_000_000 * 10**18
    voting_delay_blocks: int = 1
    voting_period_blocks: int = 20
    proposal_threshold: int | None = None
    quorum_percent: int = 4
    late_quorum_extension_blocks: int = 5
    timelock_delay_s: int = 60
    definitions: tuple[ParameterDefinition, ...] = field(default_factory=default_definitions)

    @property
    def proposal_threshold_votes(self) -> int:
        if self.proposal_threshold is not None:
            return self.proposal_threshold
        return self.supply // 1000


@dataclass(frozen=True)
class DaoAddresses:
    token: str
    timelock: str
    governor: str
    parameters: str
    settlement: str
    guardian: str
    operator: str
    deployed_at_block: int

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> DaoAddresses:
        try:
            found = cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise GovernanceError(f"{str(path)!r} is not a deployment file: {exc}") from exc
        for name, value in asdict(found).items():
            if name != "deployed_at_block" and not Web3.is_address(value):
                raise GovernanceError(f"{str(path)!r}: {name} {value!r} is not an address")
        return found


def contract(w3: Web3, name: str, address: str | None = None) -> Any:
    art = artifact(name)
    if address is None:
        return w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=art["abi"])


def deploy_contract(w3: Web3, name: str, sender: str, *args: Any) -> Any:
    """Deploy the compiled contract ``name`` from ``sender`` with constructor ``args``; the
    deployed contract (a revert is a GovernanceError naming the contract's own error)."""
    factory = contract(w3, name)
    receipt = transact(w3, factory.constructor(*args), sender, f"deploying {name}", [factory])
    return contract(w3, name, receipt["contractAddress"])


def deploy_dao(
    w3: Web3,
    deployer: str,
    guardian: str,
    operator: str,
    holders: Mapping[str, int] | None = None,
    config: DaoConfig | None = None,
) -> DaoAddresses:
    """Deploy the contracts, hand the parameter registry to the Timelock, make the Governor the
    Timelock's only proposer (anyone may execute), give the canceller role to the Governor and to
    the parameter registry (which cancels on the guardian's behalf, never the guardian's own
    replacement), drop the deployer's admin role, and distribute tokens to ``holders``."""
    config = config or DaoConfig()
    token = deploy_contract(
        w3, "GridToken", deployer, config.token_name, config.token_symbol, config.supply, deployer
    )
    timelock = deploy_contract(
        w3, "GridTimelock", deployer, config.timelock_delay_s, [], [ZERO_ADDRESS], deployer
    )
    governor = deploy_contract(
        w3,
        "GridGovernor",
        deployer,
        token.address,
        timelock.address,
        config.voting_delay_blocks,
        config.voting_period_blocks,
        config.proposal_threshold_votes,
        config.quorum_percent,
        config.late_quorum_extension_blocks,
    )
    defs = config.definitions
    parameters = deploy_contract(
        w3,
        "GridParameters",
        deployer,
        timelock.address,
        guardian,
        [key_of(d.name) for d in defs],
        [to_chain(d.initial) for d in defs],
        [to_chain(d.minimum) for d in defs],
        [to_chain(d.maximum) for d in defs],
        [to_chain(d.max_step) for d in defs],
        [d.min_interval_s for d in defs],
    )
    roles = [timelock]
    for role_fn, who in (
        ("PROPOSER_ROLE", governor.address),
        ("CANCELLER_ROLE", governor.address),
        ("CANCELLER_ROLE", parameters.address),
    ):
        role = getattr(timelock.functions, role_fn)().call()
        transact(
            w3,
            timelock.functions.grantRole(role, who),
            deployer,
            f"granting {role_fn} to {who}",
            roles,
        )
    admin = timelock.functions.DEFAULT_ADMIN_ROLE().call()
    transact(
        w3,
        timelock.functions.renounceRole(admin, deployer),
        deployer,
        "renouncing the deployer's timelock admin role",
        roles,
    )
    settlement = deploy_contract(w3, "SettlementRegistry", deployer, operator)
    for holder, amount in (holders or {}).items():
        transact(
            w3,
            token.functions.transfer(Web3.to_checksum_address(holder), amount),
            deployer,
            f"giving {amount} tokens to {holder}",
            [token],
        )
    return DaoAddresses(
        token=token.address,
        timelock=timelock.address,
        governor=governor.address,
        parameters=parameters.address,
        settlement=settlement.address,
        guardian=Web3.to_checksum_address(guardian),
        operator=Web3.to_checksum_address(operator),
        deployed_at_block=w3.eth.block_number,
    )
