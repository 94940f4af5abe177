"""The service's own state: health, and what a client needs to sign messages.

Health is ``ok`` or ``degraded``; each check that fails adds a reason code to ``problems``:

* ``database-unreachable``: the database does not answer a query;
* ``store-busy`` / ``store-read-only`` / ``store-unavailable``: it cannot take a write now (a
  small write is probed in the background at most every ``PROBE_EVERY_S``; a probe waiting on a
  lock for more than ``PROBE_BUSY_AFTER_S`` counts as busy);
* ``chain-unreachable``: the governance chain's node does not answer;
* ``gate-overdue``: an interval's gate should have closed ``gate_overdue_after_s`` ago;
* ``loop-failing`` / ``loop-stuck``: the operator loop's last tick failed, or one tick runs too
  long (``loop_stuck_after_s``);
* ``escalated``: a step of the operator loop was escalated.

Each check recovers by itself once its cause is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from feederdao.grid_model.profiles import RESOLUTION_MIN
from feederdao.store import repositories as repo
from feederdao.store.db import StoreState
from feederdao.store.errors import StoreError
from feederdao.workflows.market.context import MarketContext
from feederdao.workflows.market.wholesale import Kind

#: every reason code ``problems`` may hold
PROBLEMS = (
    "database-unreachable",
    "store-busy",
    "store-read-only",
    "store-unavailable",
    "chain-unreachable",
    "gate-overdue",
    "loop-failing",
    "loop-stuck",
    "escalated",
)
PROBE_EVERY_S = 2.0
PROBE_BUSY_AFTER_S = 1.0


@dataclass(frozen=True)
class Health:
    ok: bool
    database: bool
    store: StoreState
    chain: bool | None
    loop: str
    problems: tuple[str, ...]
    wholesale_prices: Kind
    notes: tuple[str, ...]


@dataclass(frozen=True)
class MarketInfo:
    network: str
    buses: tuple[int, ...]
    period_minutes: int
    periods_per_interval: int
    eip712_domain: dict[str, Any] | None
    wholesale_prices: Kind
    notes: tuple[str, ...]


class System:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx
        self._probe_lock = threading.Lock()
        self._probe_state: StoreState | None = None
        self._probed_at: float | None = None
        self._probing_since: float | None = None
        self._first_probe = threading.Event()

    # -- checks ---------------------------------------------------------------------------

    def chain_connected(self) -> bool | None:
        """None: no chain configured."""
        if self.ctx.chain is None:
            return None
        try:
            return bool(self.ctx.chain.w3.is_connected())
        except Exception:
            return False

    def _probe(self) -> None:
        state = self.ctx.db.probe()
        with self._probe_lock:
            self._probe_state, self._probed_at, self._probing_since = state, time.monotonic(), None
        self._first_probe.set()

    def store_state(self) -> StoreState:
        """Whether the store takes writes, from a probe run in the background (never waits for
        a lock itself)."""
        now = time.monotonic()
        with self._probe_lock:
            stale = self._probed_at is None or now - self._probed_at >= PROBE_EVERY_S
            if stale and self._probing_since is None:
                self._probing_since = now
                threading.Thread(target=self._probe, name="store-probe", daemon=True).start()
            since = self._probing_since
        if not self._first_probe.is_set():
            self._first_probe.wait(PROBE_BUSY_AFTER_S)
        with self._probe_lock:
            state = self._probe_state
        if since is not None and time.monotonic() - since > PROBE_BUSY_AFTER_S:
            return "busy"
        return state or "busy"

    def gates_overdue(self) -> list[int]:
        """Open intervals whose gate should have closed a while ago (the loop cannot close
        them, or it is not running)."""
        grace = timedelta(seconds=self.ctx.settings.gate_overdue_after_s)
        with self.ctx.db.read() as s:
            return [r.id for r in repo.gates_overdue(s, self.ctx.clock() - grace)]

    def health(self, escalations: Sequence[object], loop: str) -> Health:
        """Every check above; ``loop`` is the operator loop's state (``off`` when this process
        runs none: then overdue gates are expected and not a problem)."""
        problems: list[str] = []
        db = self.ctx.db.ping()
        if not db:
            problems.append("database-unreachable")
        store = self.store_state()
        if store != "ok":
            problems.append("store-unavailable" if store == "unreachable" else f"store-{store}")
        chain = self.chain_connected()
        if chain is False:
            problems.append("chain-unreachable")
        if loop != "off":
            try:
                if self.gates_overdue():
                    problems.append("gate-overdue")
            except StoreError:
                pass  # the store check above says why
        if loop in ("failing", "stuck"):
            problems.append(f"loop-{loop}")
        if escalations:
            problems.append("escalated")
        prices = self.ctx.prices
        return Health(
            not problems,
            db,
            store,
            chain,
            loop,
            tuple(dict.fromkeys(problems)),
            prices.kind,
            self.notes(),
        )

    def notes(self) -> tuple[str, ...]:
        """What an operator must know about how this service runs."""
        note = self.ctx.prices.note
        return (note,) if note else ()

    def market(self) -> MarketInfo:
        view = self.ctx.network.view
        return MarketInfo(
            view.name,
            tuple(b.index for b in view.buses),
            RESOLUTION_MIN,
            self.ctx.settings.periods_per_interval,
            self.ctx.domain.as_dict() if self.ctx.chain is not None else None,
            self.ctx.prices.kind,
            self.notes(),
        )
