"""feederdao's own OPC UA server: the market as SCADA and HMIs see it.

``Market`` holds the status (``running``/``suspended``), the current interval and the methods
``SuspendDispatch(reason)`` and ``ResumeDispatch()`` (operator role); ``Parameters`` the applied
grid parameters and their provenance; ``Clearing`` the DLMP of every bus and the schedule of every
device over the cleared periods (arrays), the welfare and the AC-check verdict. Everything can be
read or subscribed to by viewers; nothing is writable from outside; anonymous sessions get nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from asyncua import Server, ua, uamethod

from feederdao.domain.clearing import ClearingResult, Publication
from feederdao.domain.params import GridParameters
from feederdao.scada_bridge.security import ServerSecurity, secure_server

NAMESPACE = "urn:feederdao:market"


def _q(name: str, idx: int) -> ua.QualifiedName:
    return ua.QualifiedName(name, idx)


class MarketServer:
    """Serve the market on ``endpoint``; ``on_suspend``/``on_resume`` carry out the operator's
    calls (revert devices to their defaults, re-enable automatic dispatch)."""

    def __init__(
        self,
        endpoint: str,
        security: ServerSecurity,
        on_suspend: Callable[[str], Awaitable[None]] | None = None,
        on_resume: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.security = security
        self.on_suspend = on_suspend
        self.on_resume = on_resume
        self.suspended = False
        self.suspend_reason = ""
        self._server: Server | None = None
        self._idx = 0
        self._nodes: dict[str, Any] = {}
        self._clearing: Any = None

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("feederdao market")
        await server.set_application_uri("urn:feederdao:market:server")
        await secure_server(server, self.security)
        idx = self._idx = await server.register_namespace(NAMESPACE)
        objects = server.nodes.objects
        market = await objects.add_object(ua.NodeId("Market", idx), _q("Market", idx))
        for name, value in (
            ("Status", "running"),
            ("Interval", ""),
            ("SuspendReason", ""),
            ("Welfare_EUR", 0.0),
            ("AcFeasible", False),
        ):
            self._nodes[name] = await market.add_variable(
                ua.NodeId(f"Market.{name}", idx), _q(name, idx), value
            )
        await market.add_method(
            ua.NodeId("Market.SuspendDispatch", idx),
            _q("SuspendDispatch", idx),
            self._suspend,
            [ua.VariantType.String],
            [ua.VariantType.Boolean],
        )
        await market.add_method(
            ua.NodeId("Market.ResumeDispatch", idx),
            _q("ResumeDispatch", idx),
            self._resume,
            [],
            [ua.VariantType.Boolean],
        )
        params = await objects.add_object(ua.NodeId("Parameters", idx), _q("Parameters", idx))
        for name, value in GridParameters().values().items():
            self._nodes[f"param.{name}"] = await params.add_variable(
                ua.NodeId(f"Parameters.{name}", idx), _q(name, idx), float(value)
            )
        self._nodes["param.provenance"] = await params.add_variable(
            ua.NodeId("Parameters.Provenance", idx), _q("Provenance", idx), "{}"
        )
        self._clearing = await objects.add_object(ua.NodeId("Clearing", idx), _q("Clearing", idx))
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def __aenter__(self) -> MarketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @uamethod  # type: ignore[misc,untyped-decorator]
    async def _suspend(self, parent: Any, reason: str) -> bool:
        self.suspended = True
        self.suspend_reason = reason
        await self._nodes["Status"].write_value("suspended")
        await self._nodes["SuspendReason"].write_value(reason)
        if self.on_suspend is not None:
            await self.on_suspend(reason)
        return True

    @uamethod  # type: ignore[misc,untyped-decorator]
    async def _resume(self, parent: Any) -> bool:
        self.suspended = False
        self.suspend_reason = ""
        await self._nodes["Status"].write_value("running")
        await self._nodes["SuspendReason"].write_value("")
        if self.on_resume is not None:
            await self.on_resume()
        return True

    async def publish_parameters(self, params: GridParameters) -> None:
        for name, value in params.values().items():
            await self._nodes[f"param.{name}"].write_value(float(value))
        await self._nodes["param.provenance"].write_value(
            json.dumps(asdict(params.provenance), default=str)
        )

    async def publish(self, interval: str, result: ClearingResult) -> None:
        """Publish a fresh clearing result."""
        await self.publish_clearing(Publication.of(interval, result))

    async def publish_clearing(self, pub: Publication) -> None:
        """Publish a clearing: DLMPs per bus and schedules per device over its periods."""
        idx = self._idx
        await self._nodes["Interval"].write_value(pub.interval)
        await self._nodes["Welfare_EUR"].write_value(float(pub.welfare_eur))
        await self._nodes["AcFeasible"].write_value(bool(pub.ac_feasible))
        await self.publish_parameters(pub.parameters)
        for bus, values in pub.dlmp.items():
            key = f"dlmp.{bus}"
            if key not in self._nodes:
                self._nodes[key] = await self._clearing.add_variable(
                    ua.NodeId(f"Clearing.Buses.{bus}.DLMP_EUR_per_MWh", idx),
                    _q(f"DLMP bus {bus}", idx),
                    values,
                )
            else:
                await self._nodes[key].write_value(values)
        for dev, values in pub.schedule.items():
            key = f"schedule.{dev}"
            if key not in self._nodes:
                self._nodes[key] = await self._clearing.add_variable(
                    ua.NodeId(f"Clearing.Devices.{dev}.P_schedule_MW", idx),
                    _q(f"Schedule {dev}", idx),
                    values,
                )
            else:
                await self._nodes[key].write_value(values)
