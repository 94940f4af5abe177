"""Governance use cases: a DAO on the embedded chain voting a parameter change; safe reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from feederdao.governance.chain import DevChain, connect
from feederdao.governance.dao import Dao, Proposal, ProposalStatus
from feederdao.governance.deploy import DaoAddresses, DaoConfig, deploy_dao
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.reader import ParameterReader, Reading

TOKEN = 10**18


@dataclass(frozen=True)
class Vote:
    voter: str
    support: str
    reason: str


@dataclass(frozen=True)
class GovernanceRun:
    w3: Web3
    addresses: DaoAddresses
    holders: dict[str, int]
    proposal: Proposal
    votes: tuple[Vote, ...]
    final: ProposalStatus


def embedded_dao_vote(
    changes: Mapping[str, float],
    description: str,
    progress: Callable[[str], None] = lambda _: None,
) -> GovernanceRun:
    """Start the embedded chain, deploy the DAO, give tokens to four holders, and carry a
    proposal setting ``changes`` through vote, queue and execution."""
    w3 = connect()
    a: list[str] = list(w3.eth.accounts)
    holders = {
        a[3]: 400_000 * TOKEN,
        a[4]: 250_000 * TOKEN,
        a[5]: 150_000 * TOKEN,
        a[6]: 50_000 * TOKEN,
    }
    config = DaoConfig()
    addresses = deploy_dao(w3, a[0], guardian=a[1], operator=a[2], holders=holders, config=config)
    progress(f"deployed the DAO contracts; {len(holders)} holders received tokens")
    dao = Dao(w3, addresses)
    chain = DevChain(w3)
    for h in holders:
        dao.delegate(h)
    chain.mine(1)
    proposal = dao.propose(a[3], changes, description)
    progress(f"proposal {str(proposal.proposal_id)[:12]}… created")
    chain.mine(config.voting_delay_blocks + 1)
    votes = (
        Vote(a[3], "for", "tighter voltage band protects appliances"),
        Vote(a[4], "against", "less room for PV exports"),
        Vote(a[5], "for", "the fee funds grid upkeep"),
        Vote(a[6], "abstain", ""),
    )
    for v in votes:
        dao.vote(v.voter, proposal.proposal_id, v.support, v.reason)
    chain.mine(config.voting_period_blocks + 1)
    dao.queue(proposal, a[3])
    progress("vote passed; queued in the Timelock")
    chain.advance_time(config.timelock_delay_s + 1)
    dao.execute(proposal, a[3])
    final = dao.status(proposal.proposal_id, description)
    progress(f"executed after the Timelock delay: state {final.state}")
    return GovernanceRun(w3, addresses, holders, proposal, votes, final)


def read_parameters(
    w3: Web3, addresses: DaoAddresses, envelope: Path | SafetyEnvelope | None = None
) -> Reading:
    """Read the parameters with the safe reader (the operator's envelope if given)."""
    env = (
        SafetyEnvelope.from_toml(envelope)
        if isinstance(envelope, Path)
        else envelope or SafetyEnvelope(confirmations=0)
    )
    return ParameterReader(w3, addresses.parameters, env).read()
