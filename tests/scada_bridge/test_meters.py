"""Meter readings over OPC UA: the simulator's meters count what its devices really deliver
(clouds, a stubborn device), the bridge reads their registers, the meters sign each period's
reading and the readings pass the same validation as the API's.

The simulator's own cycle is left idle (an hour between cycles) and the test steps it through
one 15-minute period itself, so the energy is known to the watt-hour."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime

import pytest

from feederdao.domain.network import DeviceKind
from feederdao.grid_model import AcEvaluator
from feederdao.metering.book import ReadingBook
from feederdao.metering.errors import ReadingsRefused
from feederdao.metering.readings import register
from feederdao.scada_bridge.errors import BridgeError
from feederdao.scada_bridge.simulator import Deviations, FeederSimulator
from feederdao.workflows.clearing import clear_market, open_market
from feederdao.workflows.meterfeed import MeterFeed, read_period, start_feed
from feederdao.workflows.metering import reading_verifier
from tests.metering.keys import DOMAIN, meter_key
from tests.scada_bridge.conftest import Pki, StartBridge, free_port, server_security

pytestmark = pytest.mark.anyio

PERIOD_S = 900.0
STEPS = 9


async def test_period_readings_from_the_meters_registers(
    pki: Pki, start_bridge: StartBridge
) -> None:
    market = open_market("1-LV-rural1--2-sw", periods=1, start=datetime(2016, 6, 21, 12))
    setpoints = {sp.device_id: sp for sp in clear_market(market).setpoints_for(0)}
    kinds = {p.device_id: p for part in market.registry.values() for p in part.devices}
    pv = next(d for d, sp in setpoints.items() if kinds[d].kind == DeviceKind.PV and sp.p_mw > 0)
    load = next(d for d, sp in setpoints.items() if kinds[d].kind == DeviceKind.LOAD and sp.p_mw)
    stubborn = next(d for d, sp in setpoints.items() if kinds[d].kind == DeviceKind.PV and d != pv)
    view = market.network.view
    sim = FeederSimulator(
        view,
        AcEvaluator(market.network.loaded.net, view),
        f"opc.tcp://127.0.0.1:{free_port()}/feederdao/simulator",
        server_security(pki),
        period_s=3600.0,
        deviations=Deviations(seed=4, cloud_fraction=0.3, stubborn=(stubborn,)),
    )
    await sim.start()
    try:
        bridge = await start_bridge(sim)
        # the stubborn inverter is told to deliver less than it runs at: it will not
        setpoints[stubborn] = replace(setpoints[stubborn], p_mw=0.0, q_mvar=0.0)
        report = await bridge.push("cycle-1", list(setpoints.values()))
        assert report.ok, report.failed
        owner = {d.device_id: part for part in market.registry.values() for d in part.devices}
        keys, regs = {}, {}
        for i, device in enumerate((pv, load, stubborn)):
            key, address = meter_key(i)
            keys[address] = key
            regs[address] = register(address, owner[device], (device,))
        feed = MeterFeed(regs, keys, DOMAIN)
        await start_feed(feed, bridge)
        for _ in range(STEPS):
            await sim.step(time.monotonic(), PERIOD_S / STEPS)
        readings = {r.device: r for r in await read_period(feed, bridge, 7, 0)}
    finally:
        await sim.stop()

    assert set(readings) == {pv, load, stubborn}
    # each reading is what the simulator's meter counted, to the watt-hour
    for device, r in readings.items():
        dev = sim.devices[device]
        assert (r.imported_wh, r.exported_wh) == (int(dev.imported_wh), int(dev.exported_wh))
        assert (r.interval, r.period, r.sequence) == (7, 0, 1)
    # the load took its setpoint for the whole period
    assert readings[load].imported_wh == pytest.approx(setpoints[load].p_mw * 250_000, abs=1)
    assert readings[load].exported_wh == 0
    # clouds: the PV inverter delivered between 70 % and 100 % of its setpoint's energy
    scheduled = setpoints[pv].p_mw * 250_000
    assert 0.7 * scheduled <= readings[pv].exported_wh < scheduled
    # the stubborn inverter ran on at its default, not the 0 MW it was sent
    default = sim.devices[stubborn].default_p * 250_000
    assert default > 1 and readings[stubborn].exported_wh >= 0.7 * default

    # the meters' signatures and registrations pass the API's validator
    book = ReadingBook.of(7, 1, 0.25, time.time() + 60, regs.values(), reading_verifier(DOMAIN))
    assert book.ingest(readings.values(), time.time()).accepted == 3
    forged = replace(readings[pv], exported_wh=readings[pv].exported_wh + 1000, sequence=2)
    with pytest.raises(ReadingsRefused, match="the signature is by 0x[0-9a-f]+, not by meter"):
        book.ingest([forged], time.time())


async def test_a_device_without_meter_registers_is_a_clear_error(
    pki: Pki, start_bridge: StartBridge
) -> None:
    market = open_market("1-LV-rural1--2-sw", periods=1, start=datetime(2016, 6, 21, 12))
    view = market.network.view
    sim = FeederSimulator(
        view,
        AcEvaluator(market.network.loaded.net, view),
        f"opc.tcp://127.0.0.1:{free_port()}/feederdao/simulator",
        server_security(pki),
    )
    await sim.start()
    try:
        bridge = await start_bridge(sim)
        with pytest.raises(BridgeError, match="no meter registers"):
            await bridge.read_energy(["sgen:999"])
    finally:
        await sim.stop()
