"""Open a network and describe it."""

from __future__ import annotations

from dataclasses import dataclass

from feederdao.domain.network import NetworkView
from feederdao.grid_model.loader import LoadedNetwork, load_network
from feederdao.grid_model.summary import NetworkSummary, summarise
from feederdao.grid_model.view import build_view


@dataclass(frozen=True)
class OpenNetwork:
    loaded: LoadedNetwork
    view: NetworkView


def open_network(spec: str) -> OpenNetwork:
    """Load ``spec`` (SimBench code, built-in name or file) and build its view."""
    loaded = load_network(spec)
    return OpenNetwork(loaded, build_view(loaded.net, loaded.name))


def describe_network(spec: str) -> NetworkSummary:
    """Load ``spec`` and summarise it with an AC power flow at its base case."""
    opened = open_network(spec)
    return summarise(opened.loaded.net, opened.view)
