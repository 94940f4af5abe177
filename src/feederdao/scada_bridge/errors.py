"""SCADA bridge errors, translated from asyncua at this package's edge."""

from __future__ import annotations

from feederdao.errors import FeederDaoError


class BridgeError(FeederDaoError, RuntimeError):
    """An OPC UA operation failed; the message names the endpoint, node or device."""


class InsecureEndpointError(BridgeError):
    """SecurityPolicy None was asked for without explicitly allowing it."""


class NodeMapError(FeederDaoError, ValueError):
    """The node map file is invalid; the message names the device and field."""


class SetpointRefusedError(FeederDaoError, ValueError):
    """A setpoint lies outside its device's nameplate; it is refused, not clipped."""
