"""Open a network and describe it."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feederdao.domain.network import NetworkView
from feederdao.grid_model.loader import LoadedNetwork, from_pandapower, load_network
from feederdao.grid_model.summary import NetworkSummary, summarise
from feederdao.grid_model.view import build_view


@dataclass(frozen=True)
class OpenNetwork:
    """A loaded pandapower net (a private copy) and its frozen view."""

    loaded: LoadedNetwork
    view: NetworkView

    @property
    def name(self) -> str:
        return self.view.name

    def __repr__(self) -> str:
        v = self.view
        return (
            f"<OpenNetwork {v.name}: {len(v.buses)} buses, {len(v.branches)} branches, "
            f"{len(v.devices)} devices, {v.topology}>"
        )


#: what every entry point takes as a network: a ``--net`` spec, a path, a pandapower net, or
#: a network already opened
NetLike = str | Path | Any


def keep_for_the_run() -> None:
    """Take every object alive now out of the cyclic garbage collector's sight
    (:func:`gc.freeze`), once a long run (a study, a Dask worker) has opened the networks it
    keeps. Python's full collections scanned their objects (a SimBench net with its profiles is
    some 280,000) again and again: on case33bw, 0.76 s of six study days' 5.5 s went to the
    collector, 0.19 s after this. Frozen objects are still freed when nothing refers to them;
    only a reference cycle among them stays until the process ends."""
    gc.collect()
    gc.freeze()


def open_network(
    net: NetLike, cache_dir: Path | None = None, name: str | None = None
) -> OpenNetwork:
    """Open ``net``: a ``--net`` spec (SimBench code, built-in name, JSON or MATPOWER file), a
    pandapower net (taken on a copy) or an :class:`OpenNetwork` (returned as it is).

    ``cache_dir`` keeps extracted SimBench grids (:func:`feederdao.grid_model.loader.
    default_cache_dir`); ``name`` labels a pandapower net (default: its own ``name``)."""
    if isinstance(net, OpenNetwork):
        return net
    if isinstance(net, LoadedNetwork):
        loaded = net
    elif isinstance(net, str | Path):
        loaded = load_network(str(net), cache_dir)
    else:
        loaded = from_pandapower(net, name)
    return OpenNetwork(loaded, build_view(loaded.net, loaded.name))


def describe_network(net: NetLike, cache_dir: Path | None = None) -> NetworkSummary:
    """Open ``net`` and summarise it with an AC power flow at its base case."""
    opened = open_network(net, cache_dir)
    return summarise(opened.loaded.net, opened.view)
