"""Shared, frozen boundary values every subpackage speaks in."""

from feederdao.domain.market import Bid, Participant, ParticipantDevice, PriceBlock, Side
from feederdao.domain.network import Branch, Bus, Device, DeviceKind, NetworkView, Slack
from feederdao.domain.params import GridParameters, ParameterChange, Provenance
from feederdao.domain.profiles import Profiles

__all__ = [
    "Bid",
    "Branch",
    "Bus",
    "Device",
    "DeviceKind",
    "GridParameters",
    "NetworkView",
    "ParameterChange",
    "Participant",
    "ParticipantDevice",
    "PriceBlock",
    "Profiles",
    "Provenance",
    "Side",
    "Slack",
]
