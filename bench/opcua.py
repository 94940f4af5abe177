"""Benchmark: push and read back 1,000 device setpoints over a secured OPC UA session.

A synthetic 0.4 kV feeder with 1,000 PV inverters is served by the feeder simulator on
127.0.0.1 (Basic256Sha256, SignAndEncrypt, user and password); the bridge pushes a cycle of
setpoints to all of them (one batched write of P, Q, enable, reversion timeout and command id
per device: 5,000 values) and reads every P back. Prints a table of medians over ``--cycles``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import tempfile
import time
from pathlib import Path

import pandapower as pp

from feederdao.domain.clearing import Setpoint
from feederdao.grid_model import AcEvaluator, build_view
from feederdao.scada_bridge.audit import AuditLog
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.nodemap import nodemap_for
from feederdao.scada_bridge.security import (
    ClientSecurity,
    ServerSecurity,
    generate_certificate,
    hash_password,
)
from feederdao.scada_bridge.simulator import NAMESPACE, FeederSimulator


def feeder(n_devices: int, per_bus: int = 20) -> object:
    net = pp.create_empty_network(sn_mva=1.0)
    prev = pp.create_bus(net, vn_kv=0.4)
    pp.create_ext_grid(net, prev)
    for _ in range(n_devices // per_bus):
        bus = pp.create_bus(net, vn_kv=0.4)
        pp.create_line_from_parameters(
            net,
            prev,
            bus,
            length_km=0.02,
            r_ohm_per_km=0.2,
            x_ohm_per_km=0.08,
            c_nf_per_km=0,
            max_i_ka=0.4,
        )
        for _ in range(per_bus):
            pp.create_sgen(net, bus, p_mw=0.001, sn_mva=0.01, type="PV")
        prev = bus
    return net


async def run(n_devices: int, cycles: int) -> None:
    d = Path(tempfile.mkdtemp())
    await generate_certificate(
        d / "server_key.pem",
        d / "server.der",
        "urn:feederdao:feeder-simulator:server",
        True,
        "127.0.0.1",
    )
    await generate_certificate(d / "client_key.pem", d / "client.der", "urn:feederdao:bridge")
    net = feeder(n_devices)
    view = build_view(net, "bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sim = FeederSimulator(
        view,
        AcEvaluator(net, view),
        f"opc.tcp://127.0.0.1:{port}/bench",
        ServerSecurity(
            d / "server.der",
            d / "server_key.pem",
            (d / "client.der",),
            {"dispatch": (hash_password("pw"), "dispatcher")},
        ),
        period_s=1.0,
    )
    async with sim:
        nm = nodemap_for(
            [(k, "pv", v.p_min_mw, v.p_max_mw, v.s_mva) for k, v in sim.devices.items()],
            sim.endpoint,
            NAMESPACE,
        )
        sec = ClientSecurity(
            "Basic256Sha256",
            d / "client.der",
            d / "client_key.pem",
            d / "server.der",
            "dispatch",
            "pw",
        )
        async with Bridge(nm, sec, AuditLog(d / "audit.jsonl")) as bridge:
            totals, writes, reads = [], [], []
            for c in range(cycles):
                sps = [
                    Setpoint(k, 0, 0, 0.001 * ((c + i) % 9), 0.0) for i, k in enumerate(sim.devices)
                ]
                t0 = time.perf_counter()
                report = await bridge.push(f"c{c}", sps)
                totals.append(time.perf_counter() - t0)
                writes.append(report.write_s)
                reads.append(report.read_back_s)
                assert report.ok and len(report.devices) == n_devices
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| devices | values written | write s | read-back s | push total s | cycles |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {n_devices} | {5 * n_devices} | {statistics.median(writes):.3f} | "
        f"{statistics.median(reads):.3f} | {statistics.median(totals):.3f} "
        f"(max {max(totals):.3f}) | {cycles} |"
    )
    print(f"\nmedians; Basic256Sha256 SignAndEncrypt on 127.0.0.1; peak memory {peak:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=10)
    args = ap.parse_args()
    asyncio.run(run(args.devices, args.cycles))


if __name__ == "__main__":
    main()
