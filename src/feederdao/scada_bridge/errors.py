"""SCADA bridge errors, translated from asyncua at this package's edge.

Every error raised by ``feederdao.scada_bridge`` is a :class:`BridgeError` (or a
:class:`NodeMapError`), both under :class:`feederdao.errors.FeederDaoError`; asyncua's own errors
never leave the package.
"""

from __future__ import annotations

from feederdao.errors import FeederDaoError


class BridgeError(FeederDaoError, RuntimeError):
    """An OPC UA operation failed; the message names the endpoint, node or device."""


class InsecureEndpointError(BridgeError):
    """SecurityPolicy None was asked for without explicitly allowing it."""


class ConnectionLostError(BridgeError, ConnectionError):
    """The connection to the equipment was lost and could not be restored; the commands the
    cycle planned are in the audit log as not confirmed."""


class PortInUseError(BridgeError, OSError):
    """A server of ours cannot listen: its port is taken."""


class NodeMapError(FeederDaoError, ValueError):
    """The node map file is invalid; the message names the device and field."""
