"""A secured OPC UA client session for the command line (browse, node maps), with asyncua's
errors translated into :class:`~feederdao.scada_bridge.errors.BridgeError`."""

from __future__ import annotations

import contextlib
from typing import Any

from asyncua import Client, ua

from feederdao.scada_bridge.errors import BridgeError
from feederdao.scada_bridge.security import ClientSecurity, secure_client


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


async def connect_client(endpoint: str, security: ClientSecurity, timeout_s: float = 5.0) -> Any:
    """A connected asyncua client (to pass to :func:`browse_tree` or ``nodemap_from_server``)."""
    client = Client(endpoint, timeout=timeout_s)
    await secure_client(client, security)
    try:
        await client.connect()
    except Exception as exc:
        raise BridgeError(f"cannot connect to {endpoint}: {_reason(exc)}") from exc
    return client


async def disconnect(client: Any) -> None:
    with contextlib.suppress(Exception):
        await client.disconnect()


async def browse_tree(client: Any, endpoint: str, depth: int) -> list[str]:
    """The server's namespaces, then its address space below Objects, one node a line:
    ``<indent><browse name>  <node id>  <type>``."""
    try:
        lines = [
            f"namespace {i}: {uri}" for i, uri in enumerate(await client.get_namespace_array())
        ]

        async def walk(node: Any, level: int) -> None:
            if level > depth:
                return
            for child in await node.get_children():
                name = (await child.read_browse_name()).Name
                kind = ""
                if await child.read_node_class() == ua.NodeClass.Object:
                    typedef = await child.read_type_definition()
                    kind = f"  ({(await client.get_node(typedef).read_browse_name()).Name})"
                lines.append("  " * level + f"{name}  {child.nodeid.to_string()}{kind}")
                await walk(child, level + 1)

        await walk(client.nodes.objects, 0)
    except (TimeoutError, ua.UaError, ConnectionError, OSError) as exc:
        raise BridgeError(f"browsing {endpoint} failed: {_reason(exc)}") from exc
    return lines
