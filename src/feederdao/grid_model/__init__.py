"""pandapower networks in, a frozen solver-ready view out; profiles, participants, bids, AC."""

from feederdao.grid_model.bids import generate_bids, read_bids, write_bids
from feederdao.grid_model.loader import LoadedNetwork, load_network
from feederdao.grid_model.participants import ParticipantRegistry
from feederdao.grid_model.powerflow import AcEvaluator, run_power_flow
from feederdao.grid_model.profiles import build_profiles
from feederdao.grid_model.view import build_view

__all__ = [
    "AcEvaluator",
    "LoadedNetwork",
    "ParticipantRegistry",
    "build_profiles",
    "build_view",
    "generate_bids",
    "load_network",
    "read_bids",
    "run_power_flow",
    "write_bids",
]
