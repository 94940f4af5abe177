"""ParameterReader: the grid parameters the clearing may use, read safely from the chain.

Each ``read()``:

1. finds the final block — the node's ``finalized`` block where it has finality, else
   ``latest − confirmations``;
2. checks that the block which applied the last-known-good values is still on the chain; after
   a reorg it rolls back to the values before it and raises an alarm;
3. reads every value at the final block in one call and follows ``ParameterChanged`` events from
   the persisted cursor, recording block, transaction and the proposal that made the change —
   found through the Timelock operation that executed it, so it is named whether the Governor
   executed the proposal or someone executed the operation on the Timelock directly;
4. re-checks every value against the operator's safety envelope: a value outside it, or
   stepping too far from the last-known-good one, is not applied (the last-known-good value
   stays) and an alarm says why;
5. persists the result (cursor, applied values with provenance, the values before them).

When the chain is unreachable the last-known-good values stand, with an alarm, until they are
older than the envelope's staleness; then the envelope's safe defaults apply.

Changes in blocks after the final block are not applied yet; a reading lists them as pending.
On a development chain without finality (anvil) a change is applied once ``confirmations``
blocks (2 by default) have been mined on top of it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from web3 import Web3

from feederdao.domain.params import GridParameters, ParameterChange, Provenance
from feederdao.governance.deploy import contract
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.keys import from_chain, name_of

log = logging.getLogger(__name__)

Finality = Literal["auto", "finalized", "confirmations"]


@dataclass
class AppliedSet:
    values: dict[str, float]
    block_number: int
    block_hash: str
    read_at: float
    changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReaderState:
    """What the reader persists between reads."""

    cursor: int = -1
    applied: AppliedSet | None = None
    previous: AppliedSet | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ReaderState:
        raw = json.loads(text)
        return cls(
            cursor=int(raw.get("cursor", -1)),
            applied=AppliedSet(**raw["applied"]) if raw.get("applied") else None,
            previous=AppliedSet(**raw["previous"]) if raw.get("previous") else None,
        )


class StateStore(Protocol):
    """Where the reader keeps its state: a JSON file, memory, or the service's database."""

    def load(self) -> ReaderState: ...

    def save(self, state: ReaderState) -> None: ...


class JsonStateFile:
    """Reader state in a JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> ReaderState:
        if not self.path.is_file():
            return ReaderState()
        return ReaderState.from_json(self.path.read_text())

    def save(self, state: ReaderState) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(state.to_json())
        os.replace(tmp, self.path)


class MemoryState:
    def __init__(self) -> None:
        self.state = ReaderState()

    def load(self) -> ReaderState:
        return self.state

    def save(self, state: ReaderState) -> None:
        self.state = state


@dataclass(frozen=True)
class Reading:
    """The parameters to use, where they come from, and every alarm raised on the way.
    ``final_block``/``head_block`` say where the read stood; ``pending`` lists changes made
    after the final block (not applied until their block is final)."""

    parameters: GridParameters
    status: Literal["fresh", "last-known-good", "safe-defaults"]
    alarms: tuple[str, ...]
    final_block: int | None = None
    head_block: int | None = None
    pending: tuple[ParameterChange, ...] = ()


_CALL_EXECUTED = bytes(Web3.keccak(text="CallExecuted(bytes32,uint256,address,uint256,bytes)"))
_CALL_SCHEDULED = bytes(
    Web3.keccak(text="CallScheduled(bytes32,uint256,address,uint256,bytes,bytes32,uint256)")
)
_PROPOSAL_QUEUED = bytes(Web3.keccak(text="ProposalQueued(uint256,uint256)"))


class ParameterReader:
    def __init__(
        self,
        w3: Web3,
        parameters_address: str,
        envelope: SafetyEnvelope | None = None,
        state: StateStore | None = None,
        finality: Finality = "auto",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.w3 = w3
        self.registry = contract(w3, "GridParameters", parameters_address)
        self._timelock: Any = None
        self._operations: dict[bytes, str | None] = {}
        self._alarms: list[str] = []
        self.envelope = envelope or SafetyEnvelope()
        self.store: StateStore = state or MemoryState()
        self.finality = finality
        self.clock = clock

    # -- chain ----------------------------------------------------------------------------

    def final_block(self) -> Any:
        """The block this reader counts as final now."""
        if self.finality in ("auto", "finalized"):
            try:
                block = self.w3.eth.get_block("finalized")
                if self.finality == "finalized" or block["number"] > 0:
                    return block
            except Exception:
                if self.finality == "finalized":
                    raise
        latest = self.w3.eth.block_number
        return self.w3.eth.get_block(max(latest - self.envelope.confirmations, 0))

    def _changes(self, start: int, end: int, trace: bool = True) -> list[ParameterChange]:
        if end < start:
            return []
        logs = self.registry.events.ParameterChanged().get_logs(from_block=start, to_block=end)
        out = []
        for ev in logs:
            tx = ev["transactionHash"]
            out.append(
                ParameterChange(
                    name=name_of(ev["args"]["key"]),
                    old_value=from_chain(ev["args"]["oldValue"]),
                    new_value=from_chain(ev["args"]["newValue"]),
                    block_number=int(ev["blockNumber"]),
                    block_hash="0x" + bytes(ev["blockHash"]).hex(),
                    transaction="0x" + bytes(tx).hex(),
                    proposal_id=self._traced(tx, int(ev["logIndex"])) if trace else None,
                )
            )
        return out

    def _traced(self, tx: Any, log_index: int) -> str | None:
        """:meth:`_proposal_of`, or None with an alarm when the node cannot answer the search
        (some limit the range of a log query): a missing name must not void the read."""
        try:
            found = self._proposal_of(tx, log_index)
        except Exception as exc:
            self._alarms.append(
                f"the proposal behind the change in transaction 0x{bytes(tx).hex()} could not "
                f"be traced: {exc}"
            )
            return None
        if found is None:
            self._alarms.append(
                f"the change in transaction 0x{bytes(tx).hex()} was not made by a Governor proposal"
            )
        return found

    def _timelock_address(self) -> str:
        if self._timelock is None:
            self._timelock = str(self.registry.functions.timelock().call())
        return str(self._timelock)

    def _proposal_of(self, tx: Any, log_index: int) -> str | None:
        """The Governor proposal behind the change logged at ``log_index`` of ``tx``.

        The Timelock emits ``CallExecuted(id, …)`` right after each call it makes, so the first
        one after the change names the operation, whoever executed it (the Governor, or anyone
        on the Timelock directly, which emits no ``ProposalExecuted``)."""
        timelock = self._timelock_address().lower()
        receipt = self.w3.eth.get_transaction_receipt(tx)
        for entry in receipt["logs"]:
            if (
                int(entry["logIndex"]) > log_index
                and str(entry["address"]).lower() == timelock
                and entry["topics"]
                and bytes(entry["topics"][0]) == _CALL_EXECUTED
            ):
                return self._proposal_of_operation(bytes(entry["topics"][1]))
        return None

    def _proposal_of_operation(self, operation: bytes) -> str | None:
        """The proposal that scheduled Timelock ``operation``: in the transaction that scheduled
        it, the ``ProposalQueued`` a proposer of the Timelock (the Governor) emitted after it."""
        if operation in self._operations:
            return self._operations[operation]
        timelock = contract(self.w3, "GridTimelock", self._timelock_address())
        found: str | None = None
        scheduled = timelock.events.CallScheduled().get_logs(
            from_block=0, argument_filters={"id": operation}
        )
        if scheduled:
            receipt = self.w3.eth.get_transaction_receipt(scheduled[-1]["transactionHash"])
            proposer = timelock.functions.PROPOSER_ROLE().call()
            after = -1
            for entry in receipt["logs"]:
                topics = [bytes(t) for t in entry["topics"]]
                if topics[:1] == [_CALL_SCHEDULED] and topics[1] == operation:
                    after = int(entry["logIndex"])
                elif (
                    after >= 0
                    and topics[:1] == [_PROPOSAL_QUEUED]
                    and timelock.functions.hasRole(proposer, entry["address"]).call()
                ):
                    found = str(int.from_bytes(bytes(entry["data"])[:32], "big"))
                    break
        self._operations[operation] = found
        return found

    # -- read -----------------------------------------------------------------------------

    def read(self) -> Reading:
        state = self.store.load()
        alarms: list[str] = []
        self._alarms = alarms
        now = self.clock()
        try:
            final = self.final_block()
            if state.applied is not None:
                on_chain = self.w3.eth.get_block(state.applied.block_number)
                if "0x" + bytes(on_chain["hash"]).hex() != state.applied.block_hash:
                    alarms.append(
                        f"reorg: block {state.applied.block_number} "
                        f"({state.applied.block_hash[:12]}…) that applied the current values "
                        "is no longer on the chain; rolled back to the values before it"
                    )
                    state = ReaderState(
                        cursor=state.previous.block_number if state.previous else -1,
                        applied=state.previous,
                        previous=None,
                    )
            keys, raw = self.registry.functions.values().call(block_identifier=final["number"])
            candidate = {name_of(k): from_chain(v) for k, v in zip(keys, raw, strict=True)}
            changes = self._changes(state.cursor + 1, int(final["number"]))
            head = int(self.w3.eth.block_number)
            pending = tuple(self._changes(int(final["number"]) + 1, head, trace=False))
        except Exception as exc:  # unreachable node, timeouts, a node without the state
            alarms.append(f"chain unreachable or unreadable: {exc}")
            return self._fallback(state, now, alarms)

        good = state.applied.values if state.applied else None
        accepted: dict[str, float] = {}
        rejected: list[str] = []
        for name, value in candidate.items():
            reason = self.envelope.check(name, value, good.get(name) if good else None)
            if reason is None:
                accepted[name] = value
            else:
                rejected.append(reason)
                fallback = good.get(name) if good else None
                if fallback is None:
                    fallback = getattr(self.envelope.safe_defaults(), name)
                accepted[name] = fallback
                alarms.append(f"not applied: {reason}; keeping {name} = {fallback:g}")
        try:
            GridParameters(**accepted)  # type: ignore[arg-type]
        except ValueError as exc:
            alarms.append(f"chain values are inconsistent ({exc}); keeping the last-known-good")
            return self._fallback(state, now, alarms)

        block_hash = "0x" + bytes(final["hash"]).hex()
        history = [asdict(c) for c in changes]
        if state.applied is not None and state.applied.values == accepted and not history:
            applied = replace(state.applied, read_at=now)  # nothing new: keep the origin block
            previous = state.previous
        else:
            earlier = state.applied.changes if state.applied else []
            applied = AppliedSet(accepted, int(final["number"]), block_hash, now, earlier + history)
            previous = state.applied
        self.store.save(ReaderState(int(final["number"]), applied, previous))
        for a in alarms:
            log.warning("parameter reader: %s", a)
        return Reading(
            self._typed(applied, "chain", tuple(rejected)),
            "fresh",
            tuple(alarms),
            int(final["number"]),
            head,
            pending,
        )

    def _fallback(self, state: ReaderState, now: float, alarms: list[str]) -> Reading:
        for a in alarms:
            log.warning("parameter reader: %s", a)
        applied = state.applied
        if applied is not None and now - applied.read_at <= self.envelope.staleness_s:
            self.store.save(state)
            return Reading(
                self._typed(applied, "last-known-good"), "last-known-good", tuple(alarms)
            )
        alarms.append(
            "no trustworthy read for longer than the envelope's staleness "
            f"({self.envelope.staleness_s:g} s): using the operator's safe defaults"
        )
        defaults = replace(self.envelope.safe_defaults(), provenance=Provenance("safe-defaults"))
        return Reading(defaults, "safe-defaults", tuple(alarms))

    @staticmethod
    def _typed(applied: AppliedSet, source: str, rejected: tuple[str, ...] = ()) -> GridParameters:
        changes = tuple(ParameterChange(**c) for c in applied.changes)
        last = changes[-1] if changes else None
        values = dict(applied.values)
        values["clearing_interval_s"] = int(values["clearing_interval_s"])
        if "settlement_challenge_window_s" in values:  # sets stored before it was governed
            values["settlement_challenge_window_s"] = int(values["settlement_challenge_window_s"])
        return GridParameters(
            **values,  # type: ignore[arg-type]
            provenance=Provenance(
                source=source,
                block_number=applied.block_number,
                block_hash=applied.block_hash,
                transaction=last.transaction if last else None,
                proposal_id=last.proposal_id if last else None,
                changes=changes,
                rejected=rejected,
            ),
        )
