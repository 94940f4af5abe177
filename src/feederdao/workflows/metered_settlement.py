"""The operator loop's metered settlement of an interval, once its metering window has closed:

1. ``settle``: the schedule, prices and day-ahead settlement of the interval's anchored
   clearing document, the readings held in the store (a metered device with no reading for a
   period is settled on its schedule and flagged), the deviation charge the clearing ran with,
   the previous interval's cumulative positions; the result (positions, rows, substitutions,
   the Merkle root) and its evidence (for ``feederdao settle verify``) are stored;
2. ``post-root``: the root goes to the settlement vault (one transaction);
3. ``finalise``: once the chain's time has passed the root's challenge window, the root is
   made final, and participants may withdraw against it.

Each is idempotent: a retry after a failure finds what was done (in the store, or on chain)
and does not do it twice. Intervals are settled in order (positions are cumulative): settling
one that is older than the latest settled interval is refused.

A root the guardian or the DAO rejected is never final: ``finalise`` fails with
:class:`~feederdao.workflows.errors.RootRejectedError` (reason ``root-rejected``, escalated at
once). The operator corrects the interval's readings (a recorded conflict resolved, a missing
reading added) and re-settles it (:meth:`MeteredSettlement.resettle`): only the latest settled
interval, and only while the vault holds its root as rejected. The new settlement, its
evidence, the corrected readings and the loop's steps (``post-root`` and ``finalise`` to be
done again) are replaced in one unit of work; the loop then posts the new root, which has a
challenge window of its own, and finalises it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from feederdao.domain.network import GENERATION
from feederdao.governance.merkle import PositionTree
from feederdao.metering.book import ReadingBook
from feederdao.metering.errors import MeteringError
from feederdao.metering.readings import MeterReading
from feederdao.metering.settlement import (
    Schedule,
    cumulative_positions,
    settle_deviations,
    to_units,
)
from feederdao.store import repositories as repo
from feederdao.store.errors import NotFoundError, StateConflictError
from feederdao.store.models import IntervalRow, MeteredSettlementRow
from feederdao.workflows.errors import RootRejectedError, StepFailed
from feederdao.workflows.market import MarketService
from feederdao.workflows.metering import IntervalSettlement, evidence
from feederdao.workflows.metering_desk import MeteringDesk, reading_fields

#: the steps a re-settlement makes the loop do again, and the status that says so
REDONE = ("post-root", "finalise")
REDO = "redo"


def _normal(r: MeterReading) -> MeterReading:
    return replace(r, signature=r.signature.lower())


def evidence_name(interval_id: int) -> str:
    return f"metered-evidence-{interval_id}"


class Computed(NamedTuple):
    """An interval's metered settlement as computed, before it is stored."""

    root: str
    positions: dict[str, int]
    rows: list[dict[str, Any]]
    substituted: list[tuple[str, int]]
    operator_units: int
    evidence: Any

    @property
    def stored(
        self,
    ) -> tuple[str, dict[str, int], list[dict[str, Any]], list[tuple[str, int]], int]:
        """What the store keeps of it (the evidence goes to a document of its own)."""
        return self.root, self.positions, self.rows, self.substituted, self.operator_units


@dataclass(frozen=True)
class Settled:
    interval_id: int
    root: str
    readings: int
    substituted: int
    operator_units: int

    def describe(self) -> str:
        if not self.substituted:
            return ""
        return f"{self.substituted} metered period(s) without a reading settled on schedule"


class MeteredSettlement:
    def __init__(self, service: MarketService, desk: MeteringDesk) -> None:
        self.service = service
        self.desk = desk

    def closes_at(self, row: IntervalRow) -> datetime:
        """When the interval's metering window closes."""
        end = row.start + timedelta(minutes=row.periods * row.period_minutes)
        return end + timedelta(seconds=self.desk.window_s)

    def _schedule(self, interval_id: int) -> tuple[Schedule, float, dict[str, str]]:
        """The anchored clearing's schedule, its deviation charge and the wallet of every
        participant (its approved devices and bus as the store holds them)."""
        view = self.service.network.view
        with self.service.db.read() as s:
            interval = repo.get_interval(s, interval_id)
            doc = json.loads(repo.get_result(s, interval_id).result_json)
            parts = repo.list_participants(s)
        owner = {d: p.id for p in parts for d in (p.devices or [])}
        bus_of = {p.id: int(p.bus) for p in parts if p.bus is not None}
        hours = interval.period_minutes / 60.0
        export: dict[tuple[str, int], int] = {}
        for sp in doc["setpoints"]:
            d = sp["device_id"]
            if d not in owner or sp.get("position") is not None:
                continue
            sign = 1.0 if view.device(d).kind in GENERATION else -1.0
            export[(d, int(sp["period"]))] = round(sign * float(sp["p_mw"]) * hours * 1e6)
        dlmp_rows = doc["prices"]["dlmp"]
        dlmp = {
            int(b): tuple(float(row[i]) for row in dlmp_rows)
            for i, b in enumerate(doc["bus_indices"])
        }
        st = doc["settlement"]
        day_ahead = {
            r["participant_id"]: -to_units(float(r["energy_payment_eur"]) + float(r["fee_eur"]))
            for r in st["rows"]
        }
        schedule = Schedule(
            interval.periods,
            hours,
            export,
            owner,
            bus_of,
            dlmp,
            day_ahead,
            to_units(float(st["merchandising_surplus_eur"])),
        )
        charge = float(doc["parameters"]["deviation_charge_eur_per_mwh"])
        return schedule, charge, {p.id: p.address for p in parts}

    def settle(self, interval_id: int) -> Settled:
        """Settle the interval from its anchored clearing and its stored readings (once)."""
        with self.service.db.read() as s:
            done = repo.metered_settlement(s, interval_id)
            latest = repo.latest_metered_settlement(s)
        if done is not None:
            return self._settled(done, len(self.desk.readings(interval_id)))
        if latest is not None and latest.interval_id > interval_id:
            raise StepFailed(
                f"interval {latest.interval_id} is settled already: positions are cumulative, "
                f"so interval {interval_id} can no longer be settled after it"
            )
        previous = {str(k): int(v) for k, v in (latest.positions if latest else {}).items()}
        book = self.desk.book(interval_id)
        computed = self._compute(interval_id, previous, book)
        with self.service.db.session() as s:
            row = repo.save_metered_settlement(s, interval_id, *computed.stored)
            repo.save_document(s, evidence_name(interval_id), json.dumps(computed.evidence))
        return self._settled(row, len(book.readings))

    def _compute(self, interval_id: int, previous: dict[str, int], book: ReadingBook) -> Computed:
        """The interval's root, positions, rows, substitutions, operator units and evidence."""
        chain = self.service.ctx.require_chain("positions are owed to wallets on chain")
        schedule, charge, addresses = self._schedule(interval_id)
        metered = [d.device_id for reg in book.registrations.values() for d in reg.devices]
        settlement = settle_deviations(schedule, book.net_export_wh(), metered, charge)
        operator = chain.operator
        used = {r.participant_id: addresses[r.participant_id] for r in settlement.rows}
        positions = cumulative_positions(previous, settlement, used, operator)
        tree = PositionTree.build(positions)
        root = "0x" + tree.root.hex()
        settled = IntervalSettlement(interval_id, schedule, settlement, positions, tree)
        doc = evidence(settled, book, chain.domain, charge, used, operator, previous)
        rows: list[dict[str, Any]] = [
            {
                "participant_id": r.participant_id,
                "day_ahead_units": r.day_ahead_units,
                "deviation_units": r.deviation_units,
                "charge_units": r.charge_units,
                "final_units": r.final_units,
                "deviation_wh": r.deviation_wh,
                "substituted_periods": r.substituted_periods,
            }
            for r in settlement.rows
        ]
        substituted = list(settlement.substituted)
        return Computed(root, positions, rows, substituted, settlement.operator_units, doc)

    def resettle(self, interval_id: int, corrections: Sequence[MeterReading] = ()) -> Settled:
        """Settle again the latest settled interval, whose root the guardian or the DAO
        rejected, with the operator's ``corrections``: signed readings checked by the meters'
        rules (the metering window aside: this is the operator's correction), each one either
        a reading the interval lacked or, for a reading held, the meter's other reading that
        the store recorded as a conflict. Refused (and nothing changed) for an interval that is
        not the latest settled one, or whose root is not held as rejected by the vault."""
        chain = self.service.ctx.require_chain("there is no vault whose root could be rejected")
        if chain.vault is None:
            raise StateConflictError(
                "this service has no settlement vault: no root was posted, none was rejected"
            )
        with self.service.db.read() as s:
            row = repo.metered_settlement(s, interval_id)
            latest = repo.latest_metered_settlement(s)
            before = repo.metered_settlement_before(s, interval_id)
        if row is None or latest is None:
            raise NotFoundError(f"interval {interval_id} has no metered settlement to re-settle")
        if latest.interval_id != interval_id:
            raise StateConflictError(
                f"interval {interval_id} is not the latest settled interval (interval "
                f"{latest.interval_id} is): positions are cumulative, so only the latest "
                "settled interval can be re-settled"
            )
        held = chain.vault.posted(interval_id)
        if not held.rejected:
            state = "posted and not rejected" if any(held.root) else "not posted to the vault yet"
            raise StateConflictError(
                f"the root of interval {interval_id} ({row.root}) is {state}: only an interval "
                "whose root the guardian or the DAO rejected can be re-settled"
            )
        book, corrected = self._corrected(interval_id, corrections)
        previous = {str(k): int(v) for k, v in (before.positions if before else {}).items()}
        computed = self._compute(interval_id, previous, book)
        if computed.root == "0x" + held.root.hex():
            raise StateConflictError(
                f"re-settling interval {interval_id} gives the rejected root {computed.root} "
                "again: correct its readings first (resolve a recorded conflict, add a missing "
                "reading)"
            )
        now = self.service.clock()
        note = (
            f"re-settled after the rejection of root 0x{held.root.hex()}: root {computed.root}"
            f" ({len(corrected)} reading(s) corrected)"
        )
        with self.service.db.session() as s:
            repo.correct_readings(s, interval_id, [reading_fields(r) for r in corrected], now)
            done = repo.replace_metered_settlement(s, interval_id, *computed.stored)
            repo.save_document(s, evidence_name(interval_id), json.dumps(computed.evidence))
            repo.record_step(s, interval_id, "settle", "ok", note, now)
            for step in REDONE:
                if repo.last_step(s, interval_id, step) is not None:
                    repo.record_step(s, interval_id, step, REDO, note, now)
        return self._settled(done, len(book.readings))

    def _corrected(
        self, interval_id: int, corrections: Sequence[MeterReading]
    ) -> tuple[ReadingBook, list[MeterReading]]:
        """The interval's readings with the operator's corrections, and those corrections that
        change anything (each checked as a meter's reading is)."""
        book = self.desk.book(interval_id)
        # a recorded conflict, whatever the case of the signature's hex digits
        refused = {_normal(r): r for _, r in self.desk.conflicts(interval_id)}
        fresh: list[MeterReading] = []
        for r in corrections:
            if r.interval != interval_id:
                raise MeteringError(
                    f"a correction of interval {interval_id} holds a reading of interval "
                    f"{r.interval}"
                )
            held = book.readings.get(r.key)
            if held is not None and _normal(held) == _normal(r):
                continue
            if held is not None:
                r = refused.get(_normal(r), r)
                if _normal(r) not in refused:
                    raise MeteringError(
                        f"the reading of meter {r.meter} for {r.device} in period {r.period} "
                        "differs from the one held and is not a conflict the store recorded: a "
                        "held reading is replaced only by the meter's own conflicting reading"
                    )
                del book.readings[r.key]
            fresh.append(r)
        # the metering window does not apply to the operator's correction
        book = replace(book, closes_at_s=math.inf)
        book.ingest(fresh, self.service.clock().timestamp())
        return book, fresh

    @staticmethod
    def _settled(row: MeteredSettlementRow, readings: int) -> Settled:
        return Settled(
            row.interval_id, row.root, readings, len(row.substituted), row.operator_units
        )

    def stored(self, interval_id: int) -> MeteredSettlementRow:
        """The interval's stored metered settlement (NotFoundError: not settled)."""
        with self.service.db.read() as s:
            row = repo.metered_settlement(s, interval_id)
        if row is None:
            raise NotFoundError(f"interval {interval_id} has no metered settlement yet")
        return row

    def evidence(self, interval_id: int) -> dict[str, Any] | None:
        """The stored evidence of a settled interval (None: not settled)."""
        with self.service.db.read() as s:
            text = repo.load_document(s, evidence_name(interval_id))
        return None if text is None else dict(json.loads(text))

    def _vault_row(self, interval_id: int) -> tuple[Any, MeteredSettlementRow]:
        chain = self.service.ctx.require_chain("there is no vault to post roots to")
        if chain.vault is None:
            raise StepFailed("this service has no settlement vault configured")
        with self.service.db.read() as s:
            row = repo.metered_settlement(s, interval_id)
        if row is None:
            raise StepFailed(f"interval {interval_id} has no metered settlement to post")
        return chain, row

    def post_root(self, interval_id: int) -> str:
        """Post the interval's root to the vault (once: a root the vault already holds for the
        interval is recorded, not posted again); the transaction hash."""
        chain, row = self._vault_row(interval_id)
        vault = chain.vault
        held = vault.posted(interval_id)
        if held.root == bytes.fromhex(row.root[2:]) and held.rejected:
            raise RootRejectedError(
                f"the vault holds the root {row.root} of interval {interval_id} as rejected: "
                f"re-settle the interval (POST /intervals/{interval_id}/resettle) first"
            )
        if held.root == bytes.fromhex(row.root[2:]) and not held.rejected:
            tx = row.posted_tx or "already-posted"
        else:
            receipt = vault.post_root(chain.operator, interval_id, bytes.fromhex(row.root[2:]))
            tx = "0x" + bytes(receipt["transactionHash"]).hex()
        with self.service.db.session() as s:
            repo.mark_metered_settlement(s, interval_id, posted_tx=tx, at=self.service.clock())
        return tx

    def finalisable(self, interval_id: int) -> bool:
        """Whether the chain's time has passed the posted root's challenge window, or the root
        was rejected (then ``finalise`` says so, and the step is escalated)."""
        chain, _ = self._vault_row(interval_id)
        held = chain.vault.posted(interval_id)
        if held.rejected:
            return True
        now = int(chain.w3.eth.get_block("latest")["timestamp"])
        return bool(held.final_after > 0 and now >= held.final_after)

    def finalise(self, interval_id: int) -> str:
        """Make the posted root final (a later final interval supersedes it: recorded as done);
        a rejected root is :class:`RootRejectedError`."""
        chain, _ = self._vault_row(interval_id)
        vault = chain.vault
        final_interval, _ = vault.final()
        held = vault.posted(interval_id)
        if held.rejected and final_interval < interval_id:
            raise RootRejectedError(
                f"the guardian or the DAO rejected the root 0x{held.root.hex()} of interval "
                f"{interval_id}: it is never final. Correct the interval's readings and "
                f"re-settle it (POST /intervals/{interval_id}/resettle, or feederdao settle "
                f"resettle --interval {interval_id}); the loop then posts the new root"
            )
        if final_interval >= interval_id:
            tx = f"superseded-by-{final_interval}" if final_interval > interval_id else "final"
        else:
            receipt = vault.finalize(chain.operator, interval_id)
            tx = "0x" + bytes(receipt["transactionHash"]).hex()
        with self.service.db.session() as s:
            repo.mark_metered_settlement(s, interval_id, finalised_tx=tx, at=self.service.clock())
        return tx
