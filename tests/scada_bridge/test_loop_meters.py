"""The operator loop meters the feeder over OPC UA: after each period of a published interval,
step ``meter:{p}`` reads the simulator's meter registers through the bridge, signs each
device's difference with its meter's key and stores it through the metering desk; the
settlement then uses those readings. A restarted loop continues each meter's sequence from
the store and, not knowing the registers at the start of the period it restarted in, leaves
that period unread (settled on its schedule, flagged); a reading the validator refuses fails
the step, the others are stored and a conflict is kept.

The simulator's own cycle is idle (an hour between cycles); the test steps it through each
15-minute period while the market's clock is a fake one set to each period boundary."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from feederdao.domain.network import DeviceKind
from feederdao.grid_model import AcEvaluator
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.simulator import Deviations, FeederSimulator
from feederdao.store import repositories as repo
from feederdao.store.audit import StoreAuditLog
from feederdao.workflows.meterfeed import FeederMeters, MeterFeed
from feederdao.workflows.metering import reading_for, sign_reading
from feederdao.workflows.metrics import Metrics
from feederdao.workflows.operator import Operator
from tests.api.conftest import Env, Member, make_env
from tests.scada_bridge.conftest import Pki, StartBridge, free_port, server_security

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 21, 11, 0, tzinfo=UTC)
PERIOD = timedelta(minutes=15)
Registers = dict[str, tuple[int, int]]


@dataclass
class Feeder:
    env: Env
    sim: FeederSimulator
    bridge: Bridge
    interval: int
    buyer: Member
    seller: Member
    keys: dict[str, LocalAccount]  # device → its meter's key

    def registers(self) -> Registers:
        return {
            d: (int(self.sim.devices[d].imported_wh), int(self.sim.devices[d].exported_wh))
            for d in self.keys
        }

    def operator(self) -> Operator:
        """A (new) operator loop over the same store, with a fresh meter feed: as after a
        restart of the service, it remembers nothing but what the store holds."""
        svc = self.env.service
        feed = MeterFeed(
            self.env.operator.metering.registrations(),
            {k.address: k.key.hex() for k in self.keys.values()},
            svc.ctx.domain,
        )
        return Operator(
            svc,
            Metrics(),
            StoreAuditLog(svc.db),
            bridge=self.bridge,
            meters=FeederMeters(feed, self.bridge),
        )

    async def deliver(self) -> None:
        """One 15-minute period of the simulated feeder."""
        for _ in range(9):
            await self.sim.step(time.monotonic(), 100.0)

    def stored(self) -> dict[tuple[str, int], tuple[int, int, int]]:
        """(device, period) → (imported, exported, sequence) of the readings in the store."""
        return {
            (r.device, r.period): (r.imported_wh, r.exported_wh, r.sequence)
            for r in self.env.operator.metering.readings(self.interval)
        }

    def status(self, step: str) -> str | None:
        with self.env.service.db.read() as s:
            return repo.step_status(s, self.interval, step)


@pytest.fixture
async def feeder(
    pki: Pki, start_bridge: StartBridge, database_url: str, tmp_path: Path
) -> AsyncIterator[Feeder]:
    """A cleared interval 11:00–12:00 with a buyer's load and a seller's PV, each metered,
    published at 10:55 (on SQLite and PostgreSQL); the simulator of the same network serving
    their registers."""
    env = make_env(database_url, str(tmp_path), max_attempts=2, retry_delay_s=1.0)
    svc = env.service
    view = svc.network.view
    sim = FeederSimulator(
        view,
        AcEvaluator(svc.network.loaded.net, view),
        f"opc.tcp://127.0.0.1:{free_port()}/feederdao/simulator",
        server_security(pki),
        period_s=3600.0,
        deviations=Deviations(seed=3, cloud_fraction=0.3),
    )
    await sim.start()
    try:
        bridge = await start_bridge(sim)
        c = env.client
        env.clock.now = datetime(2026, 6, 21, 10, 50, tzinfo=UTC)
        await env.operator.tick()  # opens the interval 11:00–12:00
        iv = c.get("/intervals").json()[0]["id"]
        buyer, seller = env.join(DeviceKind.LOAD), env.join(DeviceKind.PV)
        env.trade_each_period(buyer, seller, iv, 4)
        keys = env.register_meters(buyer, seller)
        env.clock.now = START - timedelta(minutes=5)
        await env.operator.tick()  # gate closes, clears, anchors, publishes
        assert c.get(f"/intervals/{iv}").json()["state"] == "published"
        yield Feeder(env, sim, bridge, iv, buyer, seller, keys)
    finally:
        await sim.stop()
        env.service.db.dispose()


def differences(before: Registers, after: Registers) -> dict[str, tuple[int, int]]:
    return {d: (after[d][0] - before[d][0], after[d][1] - before[d][1]) for d in after}


async def test_the_loop_meters_every_period_and_settles_on_the_readings(feeder: Feeder) -> None:
    env, op = feeder.env, feeder.operator()
    at: list[Registers] = []
    for p in range(4):
        env.clock.now = START + p * PERIOD
        at.append(feeder.registers())
        await op.tick()  # pushes period p's setpoints, reads the registers at its start
        if p:
            assert feeder.status(f"meter:{p - 1}") == "ok"
        await feeder.deliver()
    env.clock.now = START + 4 * PERIOD
    at.append(feeder.registers())
    await op.tick()
    assert [feeder.status(f"meter:{p}") for p in range(4)] == ["ok"] * 4

    # every reading in the store is the difference of the meter's registers, to the Wh
    stored = feeder.stored()
    assert len(stored) == 8
    for p in range(4):
        for device, (imported, exported) in differences(at[p], at[p + 1]).items():
            assert stored[(device, p)] == (imported, exported, p + 1)
    # the load drew and the clouded PV exported in every period
    assert all(stored[(feeder.buyer.device, p)][0] > 0 for p in range(4))
    assert all(stored[(feeder.seller.device, p)][1] > 0 for p in range(4))

    # after the metering window the interval settles on those readings, none substituted
    env.clock.now = START + timedelta(hours=2, seconds=1)
    await op.tick()
    assert feeder.status("settle") == "ok"
    with env.service.db.read() as s:
        settled = repo.metered_settlement(s, feeder.interval)
    assert settled is not None and settled.substituted == []
    doc = op.metered.evidence(feeder.interval)
    assert doc is not None and len(doc["readings"]) == 8


async def test_a_restarted_loop_continues_sequences_and_flags_the_missed_period(
    feeder: Feeder,
) -> None:
    env = feeder.env
    op = feeder.operator()
    env.clock.now = START
    at0 = feeder.registers()
    await op.tick()
    await feeder.deliver()
    env.clock.now = START + PERIOD
    at1 = feeder.registers()
    await op.tick()  # period 0 metered (sequence 1 of each meter)
    assert feeder.status("meter:0") == "ok"

    # the service restarts five minutes into period 1: its start registers are gone
    op = feeder.operator()
    env.clock.now = START + PERIOD + timedelta(minutes=5)
    await op.tick()
    await feeder.deliver()
    env.clock.now = START + 2 * PERIOD
    at2 = feeder.registers()
    await op.tick()  # period 1 cannot be read; the registers now start period 2
    assert feeder.status("meter:1") == "ok"
    with env.service.db.read() as s:
        steps = {r.step: r for r in repo.steps_of(s, feeder.interval)}
    assert "period 1 not metered over OPC UA: its start registers" in steps["meter:1"].detail
    await feeder.deliver()

    env.clock.now = START + 3 * PERIOD
    at3 = feeder.registers()
    await op.tick()  # period 2 metered
    await feeder.deliver()
    # a relay posts its own, different reading of the seller's PV in period 3, before the loop
    seller_key = feeder.keys[feeder.seller.device]
    relayed = reading_for(seller_key.address, feeder.interval, 3, feeder.seller.device, 1, 9)
    signed = sign_reading(seller_key.key.hex(), env.service.ctx.domain, relayed)
    assert op.metering.ingest([signed]).accepted == 1

    env.clock.now = START + 4 * PERIOD
    at4 = feeder.registers()
    await op.tick()  # period 3: the seller's reading conflicts, the buyer's is stored
    assert feeder.status("meter:3") == "failed"
    env.clock.now += timedelta(seconds=2)
    await op.tick()  # the same readings again (no new register read): escalated
    escalated = [e for e in op.escalations() if e.interval_id == feeder.interval]
    assert [(e.step, e.reason) for e in escalated] == [("meter:3", "readings-refused")]
    assert f"{feeder.seller.device}: conflict" in escalated[0].detail
    assert "1 of 2 reading(s) refused, the other 1 stored" in escalated[0].detail
    # the operator looks into it, keeps the relay's reading and acknowledges the step
    r = env.client.post(
        f"/intervals/{feeder.interval}/steps/meter:3/acknowledge",
        json={"note": "the relay's reading stands"},
        headers=env.auth("operator"),
    )
    assert r.status_code == 200, r.text
    assert [e for e in op.escalations() if e.interval_id == feeder.interval] == []
    [(held, refused)] = op.metering.conflicts(feeder.interval)
    assert (
        held == signed
        and refused.exported_wh == at4[feeder.seller.device][1] - at3[feeder.seller.device][1]
    )

    stored = feeder.stored()
    buyer, seller = feeder.buyer.device, feeder.seller.device
    assert set(stored) == {
        (buyer, 0),
        (seller, 0),
        (buyer, 2),
        (seller, 2),
        (buyer, 3),
        (seller, 3),
    }
    # sequences continue from the store after the restart, not from 1
    assert [stored[(buyer, p)][2] for p in (0, 2, 3)] == [1, 2, 3]
    assert stored[(seller, 2)][2] == 2
    for p, (before, after) in {0: (at0, at1), 2: (at2, at3)}.items():
        for device, (imported, exported) in differences(before, after).items():
            assert stored[(device, p)][:2] == (imported, exported)
    assert stored[(buyer, 3)][:2] == differences(at3, at4)[buyer]
    assert stored[(seller, 3)] == (0, 1, 9)  # the relay's reading is held, never overwritten

    # the settlement substitutes the unread period by the schedule and flags it
    env.clock.now = START + timedelta(hours=2, seconds=1)
    await op.tick()
    with env.service.db.read() as s:
        settled = repo.metered_settlement(s, feeder.interval)
    assert settled is not None
    assert sorted(map(tuple, settled.substituted)) == [(buyer, 1), (seller, 1)]
