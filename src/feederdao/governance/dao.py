"""The DAO lifecycle from Python: delegate, propose a parameter change, vote, queue, execute."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.logs import DISCARD

from feederdao.governance.chain import transact
from feederdao.governance.deploy import DaoAddresses, contract
from feederdao.governance.errors import GovernanceError
from feederdao.governance.keys import PARAMETER_NAMES, from_chain, key_of, name_of, to_chain

STATES = ("Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed")
SUPPORT = {"against": 0, "for": 1, "abstain": 2}


@dataclass(frozen=True)
class Proposal:
    """A parameter-change proposal: what the Governor needs to queue and execute it."""

    proposal_id: int
    changes: tuple[tuple[str, float], ...]
    description: str
    targets: tuple[str, ...]
    values: tuple[int, ...]
    calldatas: tuple[bytes, ...]

    @property
    def description_hash(self) -> bytes:
        return bytes(Web3.keccak(text=self.description))


@dataclass(frozen=True)
class ProposalStatus:
    proposal_id: int
    description: str
    state: str
    votes_for: int
    votes_against: int
    votes_abstain: int
    snapshot_block: int
    deadline_block: int


class Dao:
    """Handles on a deployed DAO's contracts."""

    def __init__(self, w3: Web3, addresses: DaoAddresses) -> None:
        self.w3 = w3
        self.addresses = addresses
        self.token = contract(w3, "GridToken", addresses.token)
        self.governor = contract(w3, "GridGovernor", addresses.governor)
        self.timelock = contract(w3, "GridTimelock", addresses.timelock)
        self.parameters = contract(w3, "GridParameters", addresses.parameters)
        self.settlement = contract(w3, "SettlementRegistry", addresses.settlement)
        self._all = [self.governor, self.timelock, self.parameters, self.token, self.settlement]

    def _send(self, call: Any, sender: str, what: str) -> Any:
        return transact(self.w3, call, sender, what, self._all)

    # -- tokens ---------------------------------------------------------------------------

    def delegate(self, holder: str, to: str | None = None) -> None:
        """Activate ``holder``'s voting power (on itself unless ``to`` is given)."""
        delegatee = Web3.to_checksum_address(to or holder)
        self._send(self.token.functions.delegate(delegatee), holder, f"delegating {holder}")

    def votes(self, account: str, block: int | None = None) -> int:
        fn = self.token.functions
        if block is None:
            return int(fn.getVotes(Web3.to_checksum_address(account)).call())
        return int(fn.getPastVotes(Web3.to_checksum_address(account), block).call())

    # -- proposals ------------------------------------------------------------------------

    def propose(self, proposer: str, changes: Mapping[str, float], description: str) -> Proposal:
        """Propose setting grid parameters (``{"v_max_pu": 1.04}``) through the Timelock."""
        if not changes:
            raise GovernanceError("a proposal needs at least one parameter change")
        unknown = [n for n in changes if n not in PARAMETER_NAMES]
        if unknown:
            known = ", ".join(PARAMETER_NAMES)
            raise GovernanceError(f"unknown grid parameter(s) {', '.join(unknown)}; known: {known}")
        items = tuple(changes.items())
        targets = tuple(self.parameters.address for _ in items)
        values = tuple(0 for _ in items)
        calldatas = tuple(
            bytes.fromhex(self.parameters.encode_abi("setValue", args=[key_of(n), to_chain(v)])[2:])
            for n, v in items
        )
        call = self.governor.functions.propose(
            list(targets), list(values), list(calldatas), description
        )
        receipt = self._send(call, proposer, "proposing")
        events = self.governor.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise GovernanceError("the Governor emitted no ProposalCreated event")
        return Proposal(
            int(events[0]["args"]["proposalId"]), items, description, targets, values, calldatas
        )

    def vote(self, voter: str, proposal_id: int, support: str, reason: str = "") -> None:
        if support not in SUPPORT:
            raise GovernanceError(f"vote {support!r}: choose for, against or abstain")
        call = self.governor.functions.castVoteWithReason(proposal_id, SUPPORT[support], reason)
        self._send(call, voter, f"voting {support} on proposal {proposal_id}")

    def queue(self, proposal: Proposal, sender: str) -> bytes:
        """Queue a succeeded proposal in the Timelock; return the Timelock operation id."""
        call = self.governor.functions.queue(
            list(proposal.targets),
            list(proposal.values),
            list(proposal.calldatas),
            proposal.description_hash,
        )
        receipt = self._send(call, sender, f"queueing proposal {proposal.proposal_id}")
        events = self.timelock.events.CallScheduled().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise GovernanceError("the Timelock scheduled nothing for this proposal")
        return bytes(events[0]["args"]["id"])

    def cancel_queued(self, guardian: str, operation_id: bytes) -> None:
        """The guardian (the DSO) cancels an operation waiting in the Timelock."""
        self._send(
            self.timelock.functions.cancel(operation_id),
            guardian,
            f"cancelling timelock operation 0x{operation_id.hex()}",
        )

    def execute(self, proposal: Proposal, sender: str) -> Any:
        call = self.governor.functions.execute(
            list(proposal.targets),
            list(proposal.values),
            list(proposal.calldatas),
            proposal.description_hash,
        )
        return self._send(call, sender, f"executing proposal {proposal.proposal_id}")

    def state(self, proposal_id: int) -> str:
        return STATES[int(self.governor.functions.state(proposal_id).call())]

    def status(self, proposal_id: int, description: str = "") -> ProposalStatus:
        g = self.governor.functions
        against, for_, abstain = g.proposalVotes(proposal_id).call()
        return ProposalStatus(
            proposal_id,
            description,
            self.state(proposal_id),
            int(for_),
            int(against),
            int(abstain),
            int(g.proposalSnapshot(proposal_id).call()),
            int(g.proposalDeadline(proposal_id).call()),
        )

    def proposal(self, proposal_id: int) -> Proposal:
        """A proposal as it was created (targets, calldatas, description), from its event."""
        logs = self.governor.events.ProposalCreated().get_logs(
            from_block=self.addresses.deployed_at_block
        )
        for e in logs:
            a = e["args"]
            if int(a["proposalId"]) == proposal_id:
                changes = []
                for data in a["calldatas"]:
                    _, args = self.parameters.decode_function_input(data)
                    changes.append((name_of(args["key"]), from_chain(args["newValue"])))
                return Proposal(
                    proposal_id,
                    tuple(changes),
                    a["description"],
                    tuple(a["targets"]),
                    tuple(a["values"]),
                    tuple(bytes(c) for c in a["calldatas"]),
                )
        raise GovernanceError(f"no proposal {proposal_id} on this Governor")

    def proposals(self) -> list[ProposalStatus]:
        """Every proposal since deployment, with its state and tally."""
        logs = self.governor.events.ProposalCreated().get_logs(
            from_block=self.addresses.deployed_at_block
        )
        return [self.status(int(e["args"]["proposalId"]), e["args"]["description"]) for e in logs]

    # -- parameters -----------------------------------------------------------------------

    def parameter_values(self, block: int | str = "latest") -> dict[str, float]:
        keys, values = self.parameters.functions.values().call(block_identifier=block)
        return {name_of(k): from_chain(v) for k, v in zip(keys, values, strict=True)}

    def pause(self, guardian: str) -> None:
        self._send(self.parameters.functions.pause(), guardian, "pausing the parameter registry")
