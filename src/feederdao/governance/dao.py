"""The DAO lifecycle from Python: delegate, propose a parameter change or a new guardian, vote,
queue, execute (through the Governor or directly on the Timelock), and when each step opens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from eth_abi.abi import encode
from web3 import Web3
from web3.logs import DISCARD

from feederdao.governance.chain import calling, transact
from feederdao.governance.deploy import ZERO_ADDRESS, DaoAddresses, contract
from feederdao.governance.errors import GovernanceError
from feederdao.governance.keys import PARAMETER_NAMES, from_chain, key_of, name_of, to_chain

STATES = ("Pending", "Active", "Canceled", "Defeated", "Succeeded", "Queued", "Expired", "Executed")
SUPPORT = {"against": 0, "for": 1, "abstain": 2}


@dataclass(frozen=True)
class Proposal:
    """A proposal: what the Governor needs to queue and execute it. ``changes`` are its
    parameter changes, ``actions`` one line per call (``set v_max_pu = 1.04``)."""

    proposal_id: int
    changes: tuple[tuple[str, float], ...]
    description: str
    targets: tuple[str, ...]
    values: tuple[int, ...]
    calldatas: tuple[bytes, ...]
    actions: tuple[str, ...] = ()

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
    deadline_block: int  # the end of voting, extended when quorum was reached late
    eta: int = 0  # chain time (unix seconds) from which a queued proposal may execute


def chain_time(timestamp: int) -> str:
    """A block timestamp as UTC (``2026-06-21 12:00:00 UTC``)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Schedule:
    """Where a proposal stands and when its next step opens.

    Votes count in the blocks after the snapshot block up to the deadline block; on a chain
    that mines a block per transaction (anvil, the embedded chain) a vote sent while the chain
    is at the snapshot block lands in the first of them."""

    status: ProposalStatus
    head_block: int
    head_time: int

    @property
    def voting_opens_block(self) -> int:
        return self.status.snapshot_block + 1

    def describe(self) -> str:
        s = self.status
        if s.state == "Pending":
            return (
                f"voting opens at block {self.voting_opens_block} and closes after block "
                f"{s.deadline_block} (the chain is at block {self.head_block})"
            )
        if s.state == "Active":
            return (
                f"voting closes after block {s.deadline_block} (the chain is at block "
                f"{self.head_block})"
            )
        if s.state == "Queued":
            wait = max(s.eta - self.head_time, 0)
            return (
                f"ready to execute from {chain_time(s.eta)} (chain time; "
                f"{'now' if wait == 0 else f'in {wait} s'})"
            )
        return f"the proposal is {s.state}"


def _salt(governor: str, description_hash: bytes) -> bytes:
    """The Timelock salt OpenZeppelin's GovernorTimelockControl uses: bytes20(governor) ^ hash."""
    g = bytes.fromhex(governor.removeprefix("0x")) + bytes(12)
    return bytes(a ^ b for a, b in zip(g, description_hash, strict=True))


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

    def _read(self, call: Any, what: str, block: int | str = "latest") -> Any:
        with calling(what, self._all):
            return call.call(block_identifier=block)

    # -- tokens ---------------------------------------------------------------------------

    def delegate(self, holder: str, to: str | None = None) -> None:
        """Activate ``holder``'s voting power (on itself unless ``to`` is given)."""
        delegatee = Web3.to_checksum_address(to or holder)
        self._send(self.token.functions.delegate(delegatee), holder, f"delegating {holder}")

    def votes(self, account: str, block: int | None = None) -> int:
        fn = self.token.functions
        who = Web3.to_checksum_address(account)
        if block is None:
            return int(self._read(fn.getVotes(who), f"reading the votes of {who}"))
        return int(self._read(fn.getPastVotes(who, block), f"reading the votes of {who}"))

    def proposal_threshold(self) -> int:
        return int(self._read(self.governor.functions.proposalThreshold(), "reading the threshold"))

    # -- proposals ------------------------------------------------------------------------

    def _propose(
        self,
        proposer: str,
        calls: list[tuple[str, bytes]],
        changes: tuple[tuple[str, float], ...],
        description: str,
    ) -> Proposal:
        targets = tuple(t for t, _ in calls)
        values = tuple(0 for _ in calls)
        calldatas = tuple(d for _, d in calls)
        call = self.governor.functions.propose(
            list(targets), list(values), list(calldatas), description
        )
        receipt = self._send(call, proposer, "proposing")
        events = self.governor.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise GovernanceError("the Governor emitted no ProposalCreated event")
        pid = int(events[0]["args"]["proposalId"])
        return Proposal(
            pid, changes, description, targets, values, calldatas, self._actions(calldatas)
        )

    def propose(
        self, proposer: str, changes: Mapping[str, float | Decimal | str], description: str
    ) -> Proposal:
        """Propose setting grid parameters (``{"v_max_pu": 1.04}``) through the Timelock.
        Values are taken exactly (a float by its shortest repr); NaN, infinities and more than
        six decimals are refused."""
        if not changes:
            raise GovernanceError("a proposal needs at least one parameter change")
        unknown = [n for n in changes if n not in PARAMETER_NAMES]
        if unknown:
            known = ", ".join(PARAMETER_NAMES)
            raise GovernanceError(f"unknown grid parameter(s) {', '.join(unknown)}; known: {known}")
        raw = {n: to_chain(v, f"{n} =") for n, v in changes.items()}
        calls = [
            (
                self.parameters.address,
                bytes.fromhex(self.parameters.encode_abi("setValue", args=[key_of(n), r])[2:]),
            )
            for n, r in raw.items()
        ]
        items = tuple((n, from_chain(r)) for n, r in raw.items())
        return self._propose(proposer, calls, items, description)

    def propose_guardian(self, proposer: str, guardian: str | None, description: str) -> Proposal:
        """Propose replacing the guardian (``guardian`` None: removing it). A proposal doing
        only this cannot be cancelled by the guardian once queued."""
        new = Web3.to_checksum_address(guardian) if guardian else ZERO_ADDRESS
        data = bytes.fromhex(self.parameters.encode_abi("setGuardian", args=[new])[2:])
        return self._propose(proposer, [(self.parameters.address, data)], (), description)

    def _actions(self, calldatas: tuple[bytes, ...]) -> tuple[str, ...]:
        out = []
        for data in calldatas:
            try:
                fn, args = self.parameters.decode_function_input(data)
            except ValueError:
                out.append(f"call 0x{bytes(data)[:4].hex()}")
                continue
            if fn.fn_name == "setValue":
                out.append(f"set {name_of(args['key'])} = {from_chain(args['newValue']):g}")
            elif fn.fn_name == "setGuardian":
                g = args["newGuardian"]
                out.append("remove the guardian" if int(g, 16) == 0 else f"make {g} the guardian")
            else:
                out.append(f"call {fn.fn_name}")
        return tuple(out)

    def vote(self, voter: str, proposal_id: int, support: str, reason: str = "") -> None:
        if support not in SUPPORT:
            raise GovernanceError(f"vote {support!r}: choose for, against or abstain")
        call = self.governor.functions.castVoteWithReason(proposal_id, SUPPORT[support], reason)
        try:
            self._send(call, voter, f"voting {support} on proposal {proposal_id}")
        except GovernanceError as exc:
            if "GovernorUnexpectedProposalState" not in str(exc):
                raise
            when = self.schedule(proposal_id)
            raise GovernanceError(
                f"proposal {proposal_id} is {when.status.state}: {when.describe()}"
            ) from exc

    def schedule(self, proposal_id: int) -> Schedule:
        """Where the proposal stands and when its next step opens."""
        status = self.status(proposal_id)
        with calling("reading the chain's head"):
            head = self.w3.eth.get_block("latest")
        return Schedule(status, int(head["number"]), int(head["timestamp"]))

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

    def operation_id(self, proposal: Proposal) -> bytes:
        """The Timelock operation id of ``proposal`` (``hashOperationBatch`` with the Governor's
        salt and no predecessor)."""
        payload = encode(
            ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32"],
            [
                list(proposal.targets),
                list(proposal.values),
                list(proposal.calldatas),
                bytes(32),
                _salt(self.governor.address, proposal.description_hash),
            ],
        )
        return bytes(Web3.keccak(payload))

    def cancel_queued(self, guardian: str, proposal: Proposal) -> None:
        """The guardian (the DSO) cancels a proposal waiting in the Timelock, through the
        parameter registry; a proposal that only replaces the guardian cannot be cancelled."""
        self._send(
            self.parameters.functions.cancelQueued(
                list(proposal.targets),
                list(proposal.values),
                list(proposal.calldatas),
                bytes(32),
                _salt(self.governor.address, proposal.description_hash),
            ),
            guardian,
            f"cancelling queued proposal {proposal.proposal_id}",
        )

    def execute(self, proposal: Proposal, sender: str) -> Any:
        call = self.governor.functions.execute(
            list(proposal.targets),
            list(proposal.values),
            list(proposal.calldatas),
            proposal.description_hash,
        )
        return self._send(call, sender, f"executing proposal {proposal.proposal_id}")

    def execute_on_timelock(self, proposal: Proposal, sender: str) -> Any:
        """Execute a ready operation on the Timelock itself (anyone may), bypassing the
        Governor: it emits no ProposalExecuted, the Timelock's CallExecuted names it."""
        call = self.timelock.functions.executeBatch(
            list(proposal.targets),
            list(proposal.values),
            list(proposal.calldatas),
            bytes(32),
            _salt(self.governor.address, proposal.description_hash),
        )
        what = f"executing proposal {proposal.proposal_id} on the Timelock"
        return self._send(call, sender, what)

    def state(self, proposal_id: int) -> str:
        what = f"reading proposal {proposal_id}"
        raw = self._read(self.governor.functions.state(proposal_id), what)
        return STATES[int(raw)]

    def status(self, proposal_id: int, description: str = "") -> ProposalStatus:
        g = self.governor.functions
        what = f"reading proposal {proposal_id}"
        against, for_, abstain = self._read(g.proposalVotes(proposal_id), what)
        return ProposalStatus(
            proposal_id,
            description,
            self.state(proposal_id),
            int(for_),
            int(against),
            int(abstain),
            int(self._read(g.proposalSnapshot(proposal_id), what)),
            int(self._read(g.proposalDeadline(proposal_id), what)),
            int(self._read(g.proposalEta(proposal_id), what)),
        )

    def _created(self) -> list[Any]:
        with calling("reading the Governor's proposals", self._all):
            return list(
                self.governor.events.ProposalCreated().get_logs(
                    from_block=self.addresses.deployed_at_block
                )
            )

    def proposal(self, proposal_id: int) -> Proposal:
        """A proposal as it was created (targets, calldatas, description), from its event."""
        for e in self._created():
            a = e["args"]
            if int(a["proposalId"]) == proposal_id:
                calldatas = tuple(bytes(c) for c in a["calldatas"])
                changes = []
                for data in calldatas:
                    try:
                        fn, args = self.parameters.decode_function_input(data)
                    except ValueError:
                        continue
                    if fn.fn_name == "setValue":
                        changes.append((name_of(args["key"]), from_chain(args["newValue"])))
                return Proposal(
                    proposal_id,
                    tuple(changes),
                    a["description"],
                    tuple(a["targets"]),
                    tuple(a["values"]),
                    calldatas,
                    self._actions(calldatas),
                )
        raise GovernanceError(f"no proposal {proposal_id} on this Governor")

    def proposals(self) -> list[ProposalStatus]:
        """Every proposal since deployment, with its state and tally."""
        return [
            self.status(int(e["args"]["proposalId"]), e["args"]["description"])
            for e in self._created()
        ]

    def execution_block(self, proposal: Proposal) -> int | None:
        """The block in which ``proposal``'s Timelock operation was executed (None: not yet)."""
        op = self.operation_id(proposal)
        with calling("reading the Timelock's executions", self._all):
            logs = self.timelock.events.CallExecuted().get_logs(
                from_block=self.addresses.deployed_at_block, argument_filters={"id": op}
            )
        return int(logs[-1]["blockNumber"]) if logs else None

    # -- parameters and guardian ----------------------------------------------------------

    def parameter_values(self, block: int | str = "latest") -> dict[str, float]:
        keys, values = self._read(self.parameters.functions.values(), "reading parameters", block)
        return {name_of(k): from_chain(v) for k, v in zip(keys, values, strict=True)}

    def guardian(self) -> str | None:
        """The guardian now (None once the DAO removed it)."""
        g = str(self._read(self.parameters.functions.guardian(), "reading the guardian"))
        return None if int(g, 16) == 0 else Web3.to_checksum_address(g)

    def pause(self, guardian: str) -> None:
        self._send(self.parameters.functions.pause(), guardian, "pausing the parameter registry")
