"""Benchmark: reading the grid parameters safely on the embedded chain.

Deploys the DAO on web3's in-process EthereumTesterProvider, executes one proposal, then times
``ParameterReader.read()``: the first read (follows the change events from deployment) and
repeated reads (nothing new), medians of ``--repeat`` runs. Prints a table.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.reader import ParameterReader
from feederdao.workflows.governance import embedded_dao_vote


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    t0 = time.perf_counter()
    run = embedded_dao_vote({"v_max_pu": 1.04, "network_fee_eur_per_mwh": 5.0}, "bench")
    setup = time.perf_counter() - t0
    first, repeated = [], []
    for _ in range(5):
        reader = ParameterReader(run.w3, run.addresses.parameters, SafetyEnvelope(confirmations=0))
        t = time.perf_counter()
        reader.read()
        first.append(time.perf_counter() - t)
    for _ in range(args.repeat):
        t = time.perf_counter()
        reading = reader.read()
        repeated.append(time.perf_counter() - t)
    assert reading.parameters.v_max_pu == 1.04
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| step | median ms | max ms | runs |")
    print("|---|---|---|---|")
    print(f"| deploy DAO + vote, queue, execute one proposal | {setup * 1000:.0f} | – | 1 |")
    print(
        f"| first read (events since deployment) | {statistics.median(first) * 1000:.1f} | "
        f"{max(first) * 1000:.1f} | {len(first)} |"
    )
    print(
        f"| repeated read | {statistics.median(repeated) * 1000:.1f} | "
        f"{max(repeated) * 1000:.1f} | {len(repeated)} |"
    )
    print(f"\npeak memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
