"""Peak resident memory of one process, as Linux counts it for that process alone."""

from __future__ import annotations

from pathlib import Path


def peak_mib(pid: int | str = "self") -> float:
    """The process's own peak resident memory (MiB, ``VmHWM``). Not ``getrusage``: its
    ``ru_maxrss`` survives ``execve``, so a worker process started by a larger one reports
    its parent's peak instead of its own."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def on_workers(client: object) -> dict[str, float]:
    """Each Dask worker's own peak (MiB), by worker address."""
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers lack bench/
    return client.run(peak_mib)  # type: ignore[attr-defined,no-any-return]
