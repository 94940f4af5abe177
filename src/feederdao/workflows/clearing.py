"""Clear a feeder's market: network, profiles, participants and bids in; a checked result out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from feederdao.domain.bidrules import BidRules
from feederdao.domain.clearing import ClearingOptions, ClearingResult, WholesalePrices
from feederdao.domain.market import Bid
from feederdao.domain.params import GridParameters
from feederdao.domain.profiles import Profiles
from feederdao.grid_model.bids import generate_bids, read_bids
from feederdao.grid_model.participants import ParticipantRegistry
from feederdao.grid_model.powerflow import AcEvaluator
from feederdao.grid_model.profiles import build_profiles
from feederdao.optimizer.clearing import ClearingEngine
from feederdao.workflows.network import OpenNetwork, open_network

DEFAULT_START = datetime(2016, 6, 21)


@dataclass(frozen=True)
class Market:
    """A feeder with its window, participants and a validated bid book."""

    network: OpenNetwork
    profiles: Profiles
    registry: ParticipantRegistry
    bids: tuple[Bid, ...]


def open_market(
    spec: str,
    periods: int = 96,
    start: datetime = DEFAULT_START,
    bids_file: Path | None = None,
    seed: int = 0,
    participants_file: Path | None = None,
    params: GridParameters | None = None,
) -> Market:
    """Load the network and profiles; read bids from ``bids_file`` or generate them (seeded).

    The bids are checked at once (against ``params``' price floor and cap, defaults if not
    given), so a bad book fails before any solve."""
    opened = open_network(spec)
    profiles = build_profiles(opened.loaded, opened.view, start, periods)
    registry = (
        ParticipantRegistry.from_json(opened.view, participants_file)
        if participants_file
        else ParticipantRegistry.from_network(opened.view, profiles)
    )
    raw = (
        read_bids(bids_file) if bids_file else generate_bids(opened.view, registry, profiles, seed)
    )
    bids = BidRules.of(opened.view, params or GridParameters(), periods).check(raw, registry)
    return Market(opened, profiles, registry, bids)


def clear_market(
    market: Market,
    params: GridParameters | None = None,
    options: ClearingOptions | None = None,
    wholesale: WholesalePrices | None = None,
) -> ClearingResult:
    """Clear ``market`` and AC-check the dispatch with pandapower's network model."""
    view = market.network.view
    engine = ClearingEngine(
        view,
        market.profiles,
        market.bids,
        tuple(market.registry.values()),
        params,
        wholesale,
        options,
    )
    ac = AcEvaluator(market.network.loaded.net, view)
    return engine.run(ac)
