"""Benchmark: metered settlement.

1. Readings ingested per second with every signature checked (EIP-712 digest computed
   directly, recovery on libsecp256k1 through coincurve): ``--readings`` readings of
   ``--meters`` meters in batches of ``--batch``.
2. The settlement root of ``--participants`` participants × 96 periods: deviation settlement,
   cumulative positions and the Merkle tree.
3. Gas on the embedded chain: posting a root (for trees of 10 to 10,000 accounts) and one
   withdrawal (its proof grows with log2 of the accounts).

Prints tables (Markdown).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from feederdao.domain.market import Participant, ParticipantDevice
from feederdao.domain.network import DeviceKind
from feederdao.governance.chain import DevChain, connect
from feederdao.governance.deploy import deploy_dao
from feederdao.governance.merkle import PositionTree
from feederdao.governance.signing import MarketDomain
from feederdao.governance.vault import Vault, deploy_vault
from feederdao.metering.book import ReadingBook
from feederdao.metering.readings import register
from feederdao.metering.settlement import Schedule, cumulative_positions, settle_deviations
from feederdao.workflows.metering import reading_for, reading_verifier, sign_reading

DOMAIN = MarketDomain(31337, "0x" + "11" * 20)


def ingest(n_readings: int, n_meters: int, batch: int) -> tuple[float, int]:
    from eth_account import Account

    periods = n_readings // n_meters
    keys = ["0x" + (0x5EED + i).to_bytes(32, "big").hex() for i in range(n_meters)]
    meters = [Account.from_key(k).address for k in keys]
    parts = [
        Participant(f"p{i}", 1, (ParticipantDevice(f"d{i}", DeviceKind.PV, 0.0, 0.01),))
        for i in range(n_meters)
    ]
    regs = [register(m, p, (p.devices[0].device_id,)) for m, p in zip(meters, parts, strict=True)]
    book = ReadingBook.of(1, periods, 0.25, 1e12, regs, reading_verifier(DOMAIN))
    rng = np.random.default_rng(0)
    readings = [
        sign_reading(
            keys[i], DOMAIN, reading_for(meters[i], 1, t, f"d{i}", int(rng.integers(0, 2500)), t)
        )
        for t in range(periods)
        for i in range(n_meters)
    ]
    t0 = time.perf_counter()
    for k in range(0, len(readings), batch):
        book.ingest(readings[k : k + batch], 0.0)
    elapsed = time.perf_counter() - t0
    assert len(book.readings) == len(readings)
    return elapsed, len(readings)


def root(n_participants: int, periods: int = 96) -> tuple[float, bytes]:
    rng = np.random.default_rng(1)
    owner = {f"d{i}": f"p{i}" for i in range(n_participants)}
    export = {
        (f"d{i}", t): int(rng.integers(-2000, 2000))
        for i in range(n_participants)
        for t in range(periods)
    }
    schedule = Schedule(
        periods,
        0.25,
        export,
        owner,
        {f"p{i}": i % 30 for i in range(n_participants)},
        {b: tuple(float(x) for x in rng.uniform(20, 200, periods)) for b in range(30)},
        {f"p{i}": int(rng.integers(-(10**6), 10**6)) for i in range(n_participants)},
        0,
    )
    metered = {k: v + int(rng.integers(-300, 300)) for k, v in export.items()}
    addresses = {f"p{i}": "0x" + f"{i + 1:040x}" for i in range(n_participants)}
    t0 = time.perf_counter()
    s = settle_deviations(schedule, metered, list(owner), 8.0)
    positions = cumulative_positions({}, s, addresses, "0x" + "ff" * 20)
    tree = PositionTree.build(positions)
    return time.perf_counter() - t0, tree.root


def gas(sizes: list[int]) -> list[tuple[int, int, int, int, int]]:
    w3 = connect()
    a = w3.eth.accounts
    dao = deploy_dao(w3, a[0], guardian=a[1], operator=a[2])
    vault = Vault(w3, deploy_vault(w3, a[0], dao))
    vault.mint(a[0], a[3], 10**12)
    vault.deposit(a[3], 10**9)
    chain = DevChain(w3)
    out = []
    for interval, n in enumerate(sizes, start=1):
        positions = {"0x" + f"{i + 1:040x}": i for i in range(n - 1)}
        positions[a[3].lower()] = 1000
        tree = PositionTree.build(positions)
        posted = vault.post_root(a[2], interval, tree.root)
        chain.advance_time(vault.challenge_window_s() + 1)
        vault.finalize(a[4], interval)
        proof = tree.proof(a[3])
        asked = vault.request_withdrawal(a[3], 1)  # notice, given once the root is final
        chain.advance_time(vault.notice_base_s() + vault.challenge_window_s() + 1)
        took = vault.withdraw(a[3], 1, 1000, proof)
        out.append(
            (n, int(posted["gasUsed"]), int(asked["gasUsed"]), int(took["gasUsed"]), len(proof))
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readings", type=int, default=20_000)
    ap.add_argument("--meters", type=int, default=500)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--participants", type=int, default=1_000)
    args = ap.parse_args()

    elapsed, n = ingest(args.readings, args.meters, args.batch)
    print("| readings | meters | batch | s | readings/s |")
    print("|---|---|---|---|---|")
    print(f"| {n:,} | {args.meters:,} | {args.batch:,} | {elapsed:.2f} | {n / elapsed:,.0f} |")
    print()
    times = [root(args.participants)[0] for _ in range(3)]
    print("| participants × periods | settle + positions + tree s (median of 3) |")
    print("|---|---|")
    print(f"| {args.participants:,} × 96 | {sorted(times)[1]:.3f} |")
    print()
    print(
        "| accounts in the tree | gas to post the root | gas of the withdrawal notice "
        "| gas of one withdrawal | proof length |"
    )
    print("|---|---|---|---|---|")
    for n_acc, post, notice, withdraw, length in gas([10, 100, 1_000, 10_000]):
        print(f"| {n_acc:,} | {post:,} | {notice:,} | {withdraw:,} | {length} |")


if __name__ == "__main__":
    main()
