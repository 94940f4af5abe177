"""The operator loop: open intervals, close gates, clear, anchor, publish, push setpoints,
and, once meters are registered, settle each published interval's metered deliveries after its
metering window, post the settlement root to the vault and finalise it after its challenge
window (:mod:`feederdao.workflows.metered_settlement`).

With a meter feed (:class:`~feederdao.workflows.meterfeed.FeederMeters`: the meters' keys and
the bridge it reads through), step ``meter:{p}`` reads the meters' registers over OPC UA once
period ``p`` of a published interval has ended and stores the signed readings through the
:class:`~feederdao.workflows.metering_desk.MeteringDesk`, as the API does. With a certificates
contract, step ``certify`` mints each settled interval's metered PV and storage exports
(:mod:`feederdao.workflows.certification`).

Each step of each interval is recorded in the store with its attempt number and, when it fails,
a short reason code. A failed step is retried on a later tick after an exponential back-off;
after ``max_attempts`` it is escalated: recorded as such, counted in the metrics, logged as an
error and shown by ``/health`` (the step and its reason code; the message only to operators and
auditors) until an operator retries it successfully. Nothing is dropped silently, and a
restarted process picks up where the store says it stopped.

While an operator holds dispatch (``SuspendDispatch`` on the market's OPC UA server, kept in a
:class:`~feederdao.workflows.dispatch.DispatchControl`), the loop still clears and anchors but
publishes no clearing and pushes no setpoint until ``ResumeDispatch``; a publication asked for
meanwhile is refused.

Clearings run one at a time on a daemon thread (:class:`~feederdao.workflows.background.
SerialWorker`), whoever asks for them, so they queue instead of interleaving and never hold up a
shutdown. Every store call runs off the event loop. The loop keeps a heartbeat: ``status()``
says whether it is ticking, failing (the store cannot be written, say) or stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from feederdao.errors import FieldError
from feederdao.metering.book import IngestReport
from feederdao.metering.errors import ReadingsRefused
from feederdao.metering.readings import MeterReading
from feederdao.scada_bridge.audit import AuditSink
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.server import MarketServer
from feederdao.store import repositories as repo
from feederdao.store.errors import ConflictError, NotFoundError, StateConflictError
from feederdao.store.models import IntervalRow
from feederdao.workflows.background import SerialWorker
from feederdao.workflows.certification import Certification, Certified
from feederdao.workflows.dispatch import DispatchControl
from feederdao.workflows.errors import FeedReadingsRefused, ServiceStoppingError, StepFailed
from feederdao.workflows.events import EventHub
from feederdao.workflows.market import MarketService
from feederdao.workflows.market.anchoring import Anchor
from feederdao.workflows.market.clearing import ClearingOutcome
from feederdao.workflows.metered_settlement import REDO, MeteredSettlement, Settled
from feederdao.workflows.meterfeed import FeederMeters, Metered
from feederdao.workflows.metering_desk import MeteringDesk
from feederdao.workflows.metrics import Metrics
from feederdao.workflows.reasons import reason_code

log = logging.getLogger("feederdao.operator")
T = TypeVar("T")

__all__ = ["Escalation", "LoopStatus", "Operator", "StepFailed"]


@dataclass(frozen=True)
class Escalation:
    """A step that failed ``max_attempts`` times: public are the interval, the step and the
    reason code; ``detail`` (the message) is for operators and auditors."""

    interval_id: int
    step: str
    reason: str
    detail: str


@dataclass(frozen=True)
class LoopStatus:
    """``off`` (no loop in this process), ``ok``, ``failing`` (its last tick failed, e.g. the
    store cannot be written) or ``stuck`` (one tick has run for longer than allowed)."""

    state: Literal["off", "ok", "failing", "stuck"]
    reason: str | None = None
    clearing_for_s: float | None = None


class Operator:
    def __init__(
        self,
        service: MarketService,
        metrics: Metrics,
        audit: AuditSink,
        publisher: MarketServer | None = None,
        bridge: Bridge | None = None,
        control: DispatchControl | None = None,
        events: EventHub | None = None,
        meters: FeederMeters | None = None,
    ) -> None:
        self.service = service
        #: what changed, for live subscribers (the console's event stream)
        self.events = events or EventHub()
        self.metrics = metrics
        self.audit = audit
        self.publisher = publisher
        self.bridge = bridge
        self.settings = service.settings
        self.control = control or DispatchControl(audit)
        #: meters and readings, and the metered settlement of each interval
        self.metering = MeteringDesk(service)
        self.metered = MeteredSettlement(service, self.metering)
        #: the feeder's meters read over OPC UA after each period (step ``meter:{p}``)
        self.meters = meters
        self.certification = Certification(service, self.metering)
        self._meter_done: set[tuple[int, int]] = set()
        self._held_seen = False
        self.clearings = SerialWorker("feederdao-clearing")
        self._running = False
        self._tick_started: float | None = None  # time.monotonic()
        self._tick_error: str | None = None
        self._stopping = False
        self._stop_waiters: set[asyncio.Future[None]] = set()

    def shutdown(self) -> None:
        """The service is stopping: a clearing awaited now is answered at once (its solve is
        abandoned and redone after the restart)."""
        self._stopping = True
        self.events.close()
        for waiter in list(self._stop_waiters):
            with contextlib.suppress(RuntimeError):  # its loop is closed
                waiter.get_loop().call_soon_threadsafe(_release, waiter)

    async def _unless_stopping(self, work: Awaitable[T]) -> T:
        if self._stopping:
            raise ServiceStoppingError("the service is stopping; try again after its restart")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop_waiters.add(waiter)
        job = asyncio.ensure_future(work)
        try:
            await asyncio.wait((job, waiter), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            job.cancel()
            raise
        finally:
            self._stop_waiters.discard(waiter)
            waiter.cancel()
        if not job.done():
            job.cancel()
            raise ServiceStoppingError(
                "the service is stopping; the clearing is redone after its restart"
            )
        return job.result()

    # -- steps ----------------------------------------------------------------------------

    def _record_failure(
        self, interval_id: int, name: str, reason: str, detail: str, at_once: bool = False
    ) -> int:
        """Record a failure; escalate it after ``max_attempts``, or ``at_once`` (retrying cannot
        help: a rejected root); the attempt number."""
        with self.service.db.session() as s:
            now = self.service.clock()
            attempt = repo.record_step(s, interval_id, name, "failed", detail, now, reason)
            if at_once or attempt >= self.settings.max_attempts:
                repo.record_step(s, interval_id, name, "escalated", detail, now, reason)
        return attempt

    def _record_ok(self, interval_id: int, name: str, detail: str) -> None:
        with self.service.db.session() as s:
            repo.record_step(s, interval_id, name, "ok", detail, self.service.clock())

    async def step(
        self,
        interval_id: int,
        name: str,
        fn: Callable[[], Awaitable[T]],
        detail: Callable[[T], str] = lambda _: "",
    ) -> T:
        """Run one step and record how it went (``detail`` of its value with a success); re-raise
        its error after recording it."""
        try:
            value = await fn()
        except (StateConflictError, NotFoundError, ServiceStoppingError):
            raise  # a refused request (wrong state, unknown interval, stopping): not a failure
        except Exception as exc:
            reason, message = reason_code(exc), f"{type(exc).__name__}: {exc}"
            kind = name.split(":")[0]
            self.metrics.steps.labels(kind, "failed").inc()
            at_once = bool(getattr(exc, "escalate_at_once", False))
            attempt = await asyncio.to_thread(
                self._record_failure, interval_id, name, reason, message, at_once
            )
            escalated = at_once or attempt >= self.settings.max_attempts
            self.events.publish(
                "step",
                interval_id=interval_id,
                step=name,
                status="escalated" if escalated else "failed",
                reason=reason,
            )
            if escalated:
                self.metrics.steps.labels(kind, "escalated").inc()
                log.error(
                    "interval %s: %s escalated after %d attempts (%s): %s",
                    interval_id,
                    name,
                    attempt,
                    reason,
                    message,
                )
            else:
                log.warning(
                    "interval %s: %s failed (attempt %d, %s): %s",
                    interval_id,
                    name,
                    attempt,
                    reason,
                    message,
                )
            raise
        text = detail(value)
        await asyncio.to_thread(self._record_ok, interval_id, name, text)
        if text:
            log.warning("interval %s: %s: %s", interval_id, name, text)
        self.metrics.steps.labels(name.split(":")[0], "ok").inc()
        self.events.publish("step", interval_id=interval_id, step=name, status="ok", reason="")
        return value

    async def clear(self, interval_id: int) -> ClearingOutcome:
        async def run() -> ClearingOutcome:
            t = time.perf_counter()
            outcome = await self._unless_stopping(
                self.clearings.run(lambda: self.service.clearing.clear(interval_id))
            )
            self.metrics.clearing_seconds.observe(time.perf_counter() - t)
            return outcome

        return await self.step(interval_id, "clear", run, ClearingOutcome.describe)

    async def anchor(self, interval_id: int) -> Anchor:
        return await self.step(
            interval_id,
            "anchor",
            lambda: asyncio.to_thread(self.service.anchoring.anchor, interval_id),
        )

    def _refuse_if_held(self, what: str) -> None:
        # -- dispatch hold (OPC UA SuspendDispatch) --
        if self.control.suspended:
            raise StateConflictError(
                f"dispatch is suspended by {self.control.by or 'an operator'} "
                f"({self.control.reason}): no {what} until ResumeDispatch"
            )

    async def publish(self, interval_id: int) -> None:
        self._refuse_if_held("publication")

        async def run() -> None:
            if self.publisher is not None:
                pub = await asyncio.to_thread(self.service.results.publication, interval_id)
                await self.publisher.publish_clearing(pub)
            await asyncio.to_thread(self.service.intervals.mark_published, interval_id)

        await self.step(interval_id, "publish", run)

    async def push(self, interval_id: int, period: int) -> None:
        bridge = self.bridge
        if bridge is None:
            return
        self._refuse_if_held("setpoint push")

        async def run() -> None:
            setpoints = await asyncio.to_thread(self.service.results.setpoints, interval_id, period)
            report = await bridge.push(f"interval-{interval_id}-p{period}", setpoints)
            if not report.ok:
                failed = ", ".join(f"{d.device_id} ({d.status})" for d in report.failed[:5])
                raise StepFailed(f"{len(report.failed)} device(s) not confirmed: {failed}")

        await self.step(interval_id, f"push:{period}", run)

    async def push_now(self, interval_id: int, period: int) -> None:
        """An operator's push of ``period``'s setpoints (a retry of an escalated push), allowed
        only while the period runs: a past period's setpoints are out of date (acknowledge its
        escalation instead) and a later period's would act early."""
        if self.bridge is None:
            raise StateConflictError("this service has no feeder bridge to push setpoints through")
        row = await asyncio.to_thread(self.service.intervals.get, interval_id)
        if not 0 <= period < row.periods:
            raise FieldError(
                "period",
                f"interval {interval_id} has periods 0 to {row.periods - 1}, not {period}",
            )
        if row.state != "published":
            raise StateConflictError(
                f"interval {interval_id} is {row.state}: setpoints are pushed once it is published"
            )
        begins = row.start + timedelta(minutes=period * row.period_minutes)
        ends = begins + timedelta(minutes=row.period_minutes)
        now = self.service.clock()
        if not begins <= now < ends:
            when = "ended" if now >= ends else "has not begun"
            raise StateConflictError(
                f"period {period} of interval {interval_id} runs from {begins:%Y-%m-%d %H:%M} to "
                f"{ends:%H:%M} UTC and {when}: its setpoints are pushed only while it runs"
                + ("; acknowledge the escalation instead" if now >= ends else "")
            )
        await self.push(interval_id, period)

    def _acknowledge(self, interval_id: int, step: str, by: str, note: str) -> None:
        with self.service.db.session() as s:
            last = repo.last_step(s, interval_id, step)
            if last is None or last.status != "escalated":
                status = "never run" if last is None else last.status
                raise StateConflictError(
                    f"step {step} of interval {interval_id} is {status}, not escalated: "
                    "there is nothing to acknowledge"
                )
            detail = f"acknowledged by {by}" + (f": {note}" if note else "")
            repo.record_step(
                s, interval_id, step, "acknowledged", detail, self.service.clock(), last.reason
            )

    async def acknowledge(self, interval_id: int, step: str, by: str, note: str = "") -> None:
        """An operator takes note of an escalated step that will not be retried (a push whose
        period is over, say): recorded with who and why, it leaves ``/health``'s escalations and
        the loop never runs it again."""
        await asyncio.to_thread(self._acknowledge, interval_id, step, by, note)
        self.events.publish(
            "step", interval_id=interval_id, step=step, status="acknowledged", reason=""
        )

    async def settle(self, interval_id: int) -> Settled:
        """Settle the interval's metered deliveries (step ``settle``)."""
        return await self.step(
            interval_id,
            "settle",
            lambda: asyncio.to_thread(self.metered.settle, interval_id),
            Settled.describe,
        )

    async def post_root(self, interval_id: int) -> str:
        """Post the interval's settlement root to the vault (step ``post-root``)."""
        return await self.step(
            interval_id, "post-root", lambda: asyncio.to_thread(self.metered.post_root, interval_id)
        )

    async def finalise(self, interval_id: int) -> str:
        """Make the interval's root final after its challenge window (step ``finalise``)."""
        return await self.step(
            interval_id, "finalise", lambda: asyncio.to_thread(self.metered.finalise, interval_id)
        )

    async def meter(self, row: IntervalRow, period: int) -> Metered:
        """Read period ``period``'s meter registers over OPC UA and store its signed readings
        through the metering desk (step ``meter:{period}``). A refused reading fails the step
        (the others are stored, a conflict is kept for the operator); a retry stores the same
        readings again, never registers read anew."""
        meters = self.meters
        if meters is None:
            raise StepFailed("this operator loop has no meter feed")
        length = timedelta(minutes=row.period_minutes)
        start = row.start + period * length

        async def run() -> Metered:
            sequences = await asyncio.to_thread(self.metering.last_sequences, meters.meters)
            got = await meters.read(
                row.id, period, start, start + length, self.service.clock(), sequences
            )
            if isinstance(got, str):
                return Metered(row.id, period, missed=got)
            report = await asyncio.to_thread(self._ingest_feed, got)
            meters.stored(row.id, period)
            return Metered(row.id, period, report.accepted, report.duplicates)

        return await self.step(row.id, f"meter:{period}", run, Metered.describe)

    def _ingest_feed(self, readings: list[MeterReading]) -> IngestReport:
        """Store the readings; when some are refused, store the others and raise the
        refusal."""
        try:
            return self.metering.ingest(readings)
        except ReadingsRefused as refused:
            bad = {r.index for r in refused.refusals}
            rest = [r for i, r in enumerate(readings) if i not in bad]
            if rest:
                self.metering.ingest(rest)
            shown = "; ".join(f"{r.device}: {r.reason}: {r.message}" for r in refused.refusals[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            raise FeedReadingsRefused(
                f"{len(bad)} of {len(readings)} reading(s) refused, the other {len(rest)} "
                f"stored: {shown}{more}"
            ) from None

    async def certify(self, interval_id: int) -> Certified:
        """Mint the settled interval's certificates of origin (step ``certify``)."""
        return await self.step(
            interval_id,
            "certify",
            lambda: asyncio.to_thread(self.certification.certify, interval_id),
            Certified.describe,
        )

    async def resettle(self, interval_id: int, corrections: Sequence[MeterReading] = ()) -> Settled:
        """Re-settle the latest settled interval after the guardian or the DAO rejected its root
        (:meth:`MeteredSettlement.resettle`); the loop then posts and finalises the new root."""
        done = await asyncio.to_thread(self.metered.resettle, interval_id, corrections)
        log.warning("interval %s: re-settled, new root %s", interval_id, done.root)
        self.events.publish("step", interval_id=interval_id, step="settle", status="ok", reason="")
        return done

    def audit_records(self, event: str | None = None) -> list[dict[str, Any]]:
        """The OPC UA command audit log (writes, read-backs, reconnects)."""
        return self.audit.records(event)

    def escalations(self) -> list[Escalation]:
        with self.service.db.read() as s:
            rows = repo.escalated_steps(s)
        return [Escalation(r.interval_id, r.step, r.reason or "internal", r.detail) for r in rows]

    # -- the loop's own health ------------------------------------------------------------

    def status(self) -> LoopStatus:
        """How the loop is doing now (see :class:`LoopStatus`)."""
        busy = self.clearings.busy_since
        clearing_for = None if busy is None else time.monotonic() - busy
        if not self._running:
            return LoopStatus("off", clearing_for_s=clearing_for)
        started = self._tick_started
        limit = self.settings.loop_stuck_after_s
        # a tick waiting for a clearing is busy, not stuck (the solver's time is its own)
        if started is not None and busy is None and time.monotonic() - started > limit:
            return LoopStatus("stuck", "loop-stuck", clearing_for)
        if self._tick_error is not None:
            return LoopStatus("failing", self._tick_error, clearing_for)
        return LoopStatus("ok", clearing_for_s=clearing_for)

    # -- the loop -------------------------------------------------------------------------

    def _due(self, interval_id: int, name: str, now: datetime) -> bool:
        """Never run, or failed and its back-off has passed; never once ok or escalated."""
        with self.service.db.read() as s:
            last = repo.last_step(s, interval_id, name)
        if last is None or last.status == REDO:  # never run, or to be done again
            return True
        if last.status != "failed":
            return False
        wait = self.settings.retry_delay_s * 2 ** (last.attempt - 1)
        return now >= last.at + timedelta(seconds=wait)

    async def due(self, interval_id: int, name: str, now: datetime) -> bool:
        return await asyncio.to_thread(self._due, interval_id, name, now)

    def _anchored(self, interval_id: int) -> bool:
        return self._ok(interval_id, "anchor")

    def _ok(self, interval_id: int, name: str) -> bool:
        with self.service.db.read() as s:
            return repo.step_status(s, interval_id, name) == "ok"

    def _metered(self) -> bool:
        """Whether the market settles metered deliveries: a meter is registered, or a
        settlement vault holds collateral (whose positions must reach the chain, and whose
        open bids count until their interval is settled)."""
        chain = self.service.chain
        if chain is not None and chain.vault is not None:
            return True
        with self.service.db.read() as s:
            return bool(repo.meters(s))

    async def _settle_metered(self, interval_id: int, now: datetime) -> None:
        """The metered settlement's steps of a published interval whose metering window has
        closed, each once it is due and the one before it is done."""
        if not await self._done(interval_id, "settle", now, lambda: self.settle(interval_id)):
            return
        chain = self.service.chain
        if chain is None or chain.vault is None:
            return
        if not await self._done(interval_id, "post-root", now, lambda: self.post_root(interval_id)):
            return
        if await self.due(interval_id, "finalise", now) and await self._finalisable(interval_id):
            await self._attempt(self.finalise(interval_id))

    async def _finalisable(self, interval_id: int) -> bool:
        """Whether the root's challenge window has passed; a chain that cannot say now is
        asked again on the next tick (logged, never the end of the tick)."""
        try:
            return await asyncio.to_thread(self.metered.finalisable, interval_id)
        except Exception as exc:
            log.warning("interval %s: cannot read the posted root (%s)", interval_id, exc)
            return False

    async def _done(
        self, interval_id: int, name: str, now: datetime, run: Callable[[], Awaitable[object]]
    ) -> bool:
        """Whether step ``name`` is done: once ok, or run now (when due) and ok."""
        if await self._ok_async(interval_id, name):
            return True
        return await self.due(interval_id, name, now) and await self._attempt(run())

    async def _ok_async(self, interval_id: int, name: str) -> bool:
        return await asyncio.to_thread(self._ok, interval_id, name)

    async def _meter_periods(self, row: IntervalRow, now: datetime) -> None:
        """Read the registers at the start of the current period, and meter every ended
        period of the interval whose step is due (until its metering window closes)."""
        if self.meters is None or now > self.metered.closes_at(row):
            return
        length = timedelta(minutes=row.period_minutes)
        for period in range(row.periods):
            start = row.start + period * length
            if now < start:
                return
            if now < start + length:
                try:
                    await self.meters.snapshot(start, now)
                except Exception as exc:  # that period goes unmetered; never the end of a tick
                    log.warning(
                        "interval %s: cannot read the meter registers at the start of period "
                        "%s (%s)",
                        row.id,
                        period,
                        exc,
                    )
                return
            if (row.id, period) in self._meter_done:
                continue
            name = f"meter:{period}"
            if await self.due(row.id, name, now):
                await self._attempt(self.meter(row, period))
            elif await asyncio.to_thread(self._finished, row.id, name):
                self._meter_done.add((row.id, period))

    def _finished(self, interval_id: int, name: str) -> bool:
        """Whether the step will not run again by itself (ok, escalated, acknowledged)."""
        with self.service.db.read() as s:
            status = repo.step_status(s, interval_id, name)
        return status not in (None, "failed")

    def _next_start(self, now: datetime) -> datetime:
        length = self.settings.periods_per_interval * 15 * 60
        lead = self.settings.gate_closure_lead_s
        t = int(now.timestamp()) + lead + 1
        return datetime.fromtimestamp(-(-t // length) * length, now.tzinfo)

    async def _attempt(self, coro: Awaitable[object]) -> bool:
        try:
            await coro
        except Exception:  # recorded by step(); the next tick retries or it is escalated
            return False
        return True

    async def tick(self) -> None:
        """One pass over the market's intervals, doing whatever is due."""
        svc = self.service
        now = svc.clock()
        held = self.control.suspended  # -- dispatch hold: no publication, no push --
        if held != self._held_seen:
            self._held_seen = held
            if held:
                log.warning(
                    "dispatch suspended by %s (%s): holding publications and setpoint pushes",
                    self.control.by,
                    self.control.reason,
                )
            else:
                log.warning("dispatch resumed by %s", self.control.by)
        start = self._next_start(now)
        # already open, or overlapping an interval the operator opened by hand
        with contextlib.suppress(ConflictError):
            opened = await asyncio.to_thread(svc.intervals.open, start)
            self.events.publish("interval", interval_id=opened.id, state=opened.state)
        for row in await asyncio.to_thread(svc.intervals.live):
            if row.state == "open" and now >= row.gate_closure:
                row = await asyncio.to_thread(svc.intervals.close_gate, row.id)
                self.events.publish("interval", interval_id=row.id, state=row.state)
            if row.state == "gate-closed":
                if not await self.due(row.id, "clear", now) or not await self._attempt(
                    self.clear(row.id)
                ):
                    continue
                row.state = "cleared"
            if row.state == "cleared":
                if (
                    svc.chain is not None
                    and await self.due(row.id, "anchor", now)
                    and not await self._attempt(self.anchor(row.id))
                ):
                    continue
                anchored = await asyncio.to_thread(self._anchored, row.id)
                if (
                    (svc.chain is None or anchored)
                    and not held
                    and await self.due(row.id, "publish", now)
                ):
                    if not await self._attempt(self.publish(row.id)):
                        continue
                    row.state = "published"
            if row.state == "published" and self.bridge is not None and not held:
                elapsed = (now - row.start).total_seconds() / (row.period_minutes * 60)
                period = int(elapsed) if elapsed >= 0 else -1
                if 0 <= period < row.periods and await self.due(row.id, f"push:{period}", now):
                    await self._attempt(self.push(row.id, period))
            if row.state == "published" and self.meters is not None:
                await self._meter_periods(row, now)
            if (
                row.state == "published"
                and now >= self.metered.closes_at(row)
                and await asyncio.to_thread(self._metered)
            ):
                await self._settle_metered(row.id, now)
            if (
                row.state == "published"
                and svc.chain is not None
                and svc.chain.certificates is not None
                and await self._ok_async(row.id, "settle")
                and await self.due(row.id, "certify", now)
            ):
                await self._attempt(self.certify(row.id))

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``tick_s`` until ``stop`` is set."""
        self._running = True
        try:
            while not stop.is_set():
                self._tick_started = time.monotonic()
                try:
                    await self.tick()
                    self._tick_error = None
                except Exception as exc:
                    self._tick_error = reason_code(exc)
                    log.exception("operator tick failed (%s)", self._tick_error)
                finally:
                    self._tick_started = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.tick_s)
        finally:
            self._running = False


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
