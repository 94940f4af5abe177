"""Governance use cases: a DAO on the embedded chain voting a parameter change; safe reads;
waiting for (or, on a development chain, mining up to) the next step of a proposal."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from web3 import Web3

from feederdao.governance.chain import DevChain, calling, connect
from feederdao.governance.dao import Dao, Proposal, ProposalStatus, chain_time
from feederdao.governance.deploy import DaoAddresses, DaoConfig, deploy_dao
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.errors import GovernanceError
from feederdao.governance.reader import Finality, ParameterReader, Reading

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
    progress(f"proposal {proposal.proposal_id} created")
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


Milestone = Literal["active", "closed", "ready", "final"]
MILESTONES: tuple[str, ...] = ("active", "closed", "ready", "final")


def wait_for(
    dao: Dao,
    proposal_id: int,
    until: Milestone,
    mine: bool = False,
    timeout_s: float = 600.0,
    envelope: SafetyEnvelope | None = None,
    finality: Finality = "auto",
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait until proposal ``proposal_id`` reaches ``until``:

    * ``active`` — voting is open; ``closed`` — voting is over (Succeeded or Defeated);
    * ``ready`` — queued and its Timelock delay has passed;
    * ``final`` — executed, and its block is final for the parameter reader (with
      ``envelope``'s confirmations and ``finality``), so ``gov params`` applies it.

    With ``mine`` (a development chain such as anvil) blocks are mined and the clock moved
    instead of waiting. Returns what was reached; refuses a milestone the proposal can no
    longer reach."""
    chain = DevChain(dao.w3)
    deadline = time.monotonic() + timeout_s
    proposal: Proposal | None = None
    while True:
        now = dao.schedule(proposal_id)
        s = now.status
        blocks, seconds = 0, 0
        if until == "active":
            # a vote sent now lands in the next block: it counts once the chain is at the
            # snapshot block
            if s.state == "Active" or (s.state == "Pending" and now.head_block >= s.snapshot_block):
                return (
                    f"voting is open: votes sent now count (blocks {now.voting_opens_block} to "
                    f"{s.deadline_block})"
                )
            if s.state != "Pending":
                raise GovernanceError(f"proposal {proposal_id} is {s.state}: voting will not open")
            blocks = s.snapshot_block - now.head_block
        elif until == "closed":
            if s.state not in ("Pending", "Active"):
                return f"voting is over: the proposal {s.state.lower()}"
            blocks = s.deadline_block + 1 - now.head_block
        elif until == "ready":
            if s.state == "Executed":
                return "the proposal is already executed"
            if s.state != "Queued":
                raise GovernanceError(
                    f"proposal {proposal_id} is {s.state}, not Queued: queue it first"
                )
            if now.head_time >= s.eta:
                return f"ready to execute (since {chain_time(s.eta)}, chain time)"
            seconds = s.eta - now.head_time
        else:
            if s.state != "Executed":
                raise GovernanceError(f"proposal {proposal_id} is {s.state}, not Executed")
            proposal = proposal or dao.proposal(proposal_id)
            executed = dao.execution_block(proposal)
            if executed is None:
                raise GovernanceError(f"no execution of proposal {proposal_id} on the Timelock")
            reader = ParameterReader(
                dao.w3, dao.addresses.parameters, envelope or SafetyEnvelope(), finality=finality
            )
            with calling("finding the final block"):
                final = int(reader.final_block()["number"])
            if final >= executed:
                return f"block {executed}, which executed it, is final (final block {final})"
            blocks = max(executed - final, 1)
        if mine:
            if seconds:
                chain.advance_time(seconds)
            else:
                chain.mine(max(blocks, 1))
            continue
        if time.monotonic() >= deadline:
            raise GovernanceError(
                f"proposal {proposal_id} did not reach {until!r} within {timeout_s:g} s: "
                + now.describe()
            )
        sleep(poll_s)
