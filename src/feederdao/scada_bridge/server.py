"""feederdao's own OPC UA server: the market as SCADA and HMIs see it.

``Market`` holds the status (``running``/``suspended``), who suspended it and why, the current
interval, and the methods ``SuspendDispatch(Reason)`` and ``ResumeDispatch()`` (operator role
only); ``Parameters`` the applied grid parameters and their provenance; ``Clearing`` the DLMP of
every bus and the schedule of every device over the cleared periods (``AnalogItemType`` arrays
with engineering units), the welfare and the AC-check verdict. Viewers read and subscribe;
nothing is writable from outside (``BadNotWritable`` per item); anonymous sessions get nothing.

A method call's arguments are checked before anything happens (``BadArgumentsMissing``,
``BadTooManyArguments``, ``BadInvalidArgument`` with ``BadTypeMismatch`` for the argument at
fault); the published status changes only once the action (``on_suspend`` / ``on_resume``,
e.g. holding every setpoint push and publication) has succeeded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from asyncua import Server, ua

from feederdao.domain.clearing import ClearingResult, Publication
from feederdao.domain.params import GridParameters
from feederdao.scada_bridge import infomodel as im
from feederdao.scada_bridge.security import ServerSecurity, secure_server
from feederdao.scada_bridge.uaserver import (
    AccessGuard,
    calling_user,
    describe_server,
    install_guard,
    publish_diagnostics,
    start_server,
)

NAMESPACE = "urn:feederdao:market"
MAX_REASON = 500
log = logging.getLogger(__name__)

_PARAMETER_UNITS = (
    ("_eur_per_mwh", im.EUR_PER_MWH),
    ("_percent", im.PERCENT),
    ("_pu", im.PER_UNIT),
    ("_s", im.SECOND),
)


def _q(name: str, idx: int) -> ua.QualifiedName:
    return ua.QualifiedName(name, idx)


def _result(
    code: int, args: list[int] | None = None, outputs: list[ua.Variant] | None = None
) -> ua.CallMethodResult:
    return ua.CallMethodResult(
        StatusCode=ua.StatusCode(code),
        InputArgumentResults=[ua.StatusCode(c) for c in (args or [])],
        OutputArguments=outputs or [],
    )


class MarketServer:
    """Serve the market on ``endpoint``; ``on_suspend(reason, user)`` / ``on_resume(user)``
    carry out the operator's calls (hold every push and publication, then release them)."""

    def __init__(
        self,
        endpoint: str,
        security: ServerSecurity,
        on_suspend: Callable[[str, str], Awaitable[None]] | None = None,
        on_resume: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.security = security
        self.on_suspend = on_suspend
        self.on_resume = on_resume
        self.suspended = False
        self.suspend_reason = ""
        self.guard = AccessGuard()
        self._server: Server | None = None
        self._idx = 0
        self._nodes: dict[str, Any] = {}
        self._clearing: Any = None

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        await describe_server(server, "feederdao market", "urn:feederdao:market:server")
        self.guard = AccessGuard()
        await secure_server(server, self.security, self._security_rejected)
        install_guard(server, self.guard)
        publish_diagnostics(server, self.guard)
        idx = self._idx = await server.register_namespace(NAMESPACE)
        objects = server.nodes.objects
        market = await objects.add_object(ua.NodeId("Market", idx), _q("Market", idx))
        await im.describe(market, "The feeder's local energy market run by feederdao.")
        for name, variant, text in (
            (
                "Status",
                ua.Variant("running", ua.VariantType.String),
                "running: clearings are published and setpoints pushed; suspended: an operator "
                "holds both (SuspendDispatch) until ResumeDispatch.",
            ),
            (
                "SuspendReason",
                ua.Variant("", ua.VariantType.String),
                "Why dispatch is suspended, as the operator said.",
            ),
            (
                "SuspendedBy",
                ua.Variant("", ua.VariantType.String),
                "The OPC UA user who suspended dispatch.",
            ),
            (
                "Interval",
                ua.Variant("", ua.VariantType.String),
                "The market interval of the last publication.",
            ),
            (
                "AcFeasible",
                ua.Variant(False, ua.VariantType.Boolean),
                "Whether the published dispatch passed the AC power-flow check.",
            ),
        ):
            self._nodes[name] = await im.add_value(
                market, ua.NodeId(f"Market.{name}", idx), name, variant, text
            )
        self._nodes["Welfare_EUR"] = await im.add_analog(
            market,
            ua.NodeId("Market.Welfare_EUR", idx),
            "Welfare_EUR",
            0.0,
            im.EUR,
            "Social welfare of the published clearing over its periods.",
        )
        suspend = await market.add_method(
            ua.NodeId("Market.SuspendDispatch", idx),
            _q("SuspendDispatch", idx),
            self._suspend,
            [
                im.argument(
                    "Reason",
                    ua.VariantType.String,
                    f"Why dispatch is suspended (1 to {MAX_REASON} characters); shown in "
                    "Market.SuspendReason, the API's health and the audit log.",
                )
            ],
            [
                im.argument(
                    "Suspended",
                    ua.VariantType.Boolean,
                    "True if this call suspended dispatch, False if it already was.",
                )
            ],
        )
        await im.describe(
            suspend,
            "Hold every setpoint push and clearing publication until ResumeDispatch "
            "(operator role).",
        )
        resume = await market.add_method(
            ua.NodeId("Market.ResumeDispatch", idx),
            _q("ResumeDispatch", idx),
            self._resume,
            [],
            [
                im.argument(
                    "Resumed",
                    ua.VariantType.Boolean,
                    "True if this call resumed dispatch, False if it was running.",
                )
            ],
        )
        await im.describe(
            resume, "Release the hold: publications and setpoint pushes go on (operator role)."
        )
        for method in (suspend, resume):
            self.guard.allow_call(method.nodeid, ("operator",))
        params = await objects.add_object(ua.NodeId("Parameters", idx), _q("Parameters", idx))
        await im.describe(params, "The grid parameters the market clears with (governed).")
        for name, value in GridParameters().values().items():
            unit = next((u for suffix, u in _PARAMETER_UNITS if name.endswith(suffix)), None)
            text = f"Grid parameter {name}, as applied to the last publication."
            node_id = ua.NodeId(f"Parameters.{name}", idx)
            if unit is None:
                self._nodes[f"param.{name}"] = await im.add_value(
                    params, node_id, name, ua.Variant(float(value), ua.VariantType.Double), text
                )
            else:
                self._nodes[f"param.{name}"] = await im.add_analog(
                    params, node_id, name, float(value), unit, text
                )
        self._nodes["param.provenance"] = await im.add_value(
            params,
            ua.NodeId("Parameters.Provenance", idx),
            "Provenance",
            ua.Variant("{}", ua.VariantType.String),
            "Where the parameters come from (JSON: block, transaction, proposal).",
        )
        self._clearing = await objects.add_object(ua.NodeId("Clearing", idx), _q("Clearing", idx))
        await im.describe(self._clearing, "The published clearing: prices and schedules.")
        await start_server(server, self.endpoint)
        self._server = server

    def _security_rejected(self) -> None:
        self.guard.security_rejected_sessions += 1

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def __aenter__(self) -> MarketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _suspend(self, parent: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        if not args:
            return _result(ua.StatusCodes.BadArgumentsMissing)
        if len(args) > 1:
            return _result(ua.StatusCodes.BadTooManyArguments)
        (arg,) = args
        if arg.VariantType != ua.VariantType.String or not isinstance(arg.Value, str):
            return _result(ua.StatusCodes.BadInvalidArgument, [ua.StatusCodes.BadTypeMismatch])
        reason = arg.Value.strip()
        if not reason or len(reason) > MAX_REASON:
            return _result(ua.StatusCodes.BadInvalidArgument, [ua.StatusCodes.BadInvalidArgument])
        if self.suspended:
            return _result(ua.StatusCodes.Good, [0], [ua.Variant(False, ua.VariantType.Boolean)])
        user = calling_user()
        if self.on_suspend is not None:
            try:
                await self.on_suspend(reason, user)
            except Exception as exc:  # the action failed: nothing changes, the caller is told
                log.error("SuspendDispatch by %s failed: %s", user, exc)
                return _result(ua.StatusCodes.BadInternalError, [0])
        await self.show(True, reason, user)
        return _result(ua.StatusCodes.Good, [0], [ua.Variant(True, ua.VariantType.Boolean)])

    async def _resume(self, parent: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        if args:
            return _result(ua.StatusCodes.BadTooManyArguments)
        if not self.suspended:
            return _result(ua.StatusCodes.Good, [], [ua.Variant(False, ua.VariantType.Boolean)])
        user = calling_user()
        if self.on_resume is not None:
            try:
                await self.on_resume(user)
            except Exception as exc:
                log.error("ResumeDispatch by %s failed: %s", user, exc)
                return _result(ua.StatusCodes.BadInternalError)
        await self.show(False, "", "")
        return _result(ua.StatusCodes.Good, [], [ua.Variant(True, ua.VariantType.Boolean)])

    async def show(self, suspended: bool, reason: str, by: str) -> None:
        """Publish the dispatch state (after the action succeeded)."""
        self.suspended, self.suspend_reason = suspended, reason
        await self._nodes["Status"].write_value(
            ua.Variant("suspended" if suspended else "running", ua.VariantType.String)
        )
        await self._nodes["SuspendReason"].write_value(ua.Variant(reason, ua.VariantType.String))
        await self._nodes["SuspendedBy"].write_value(ua.Variant(by, ua.VariantType.String))

    async def publish_parameters(self, params: GridParameters) -> None:
        for name, value in params.values().items():
            await self._nodes[f"param.{name}"].write_value(
                ua.Variant(float(value), ua.VariantType.Double)
            )
        await self._nodes["param.provenance"].write_value(
            ua.Variant(json.dumps(asdict(params.provenance), default=str), ua.VariantType.String)
        )

    async def publish(self, interval: str, result: ClearingResult) -> None:
        """Publish a fresh clearing result."""
        await self.publish_clearing(Publication.of(interval, result))

    async def publish_clearing(self, pub: Publication) -> None:
        """Publish a clearing: DLMPs per bus and schedules per device over its periods."""
        idx = self._idx
        await self._nodes["Interval"].write_value(ua.Variant(pub.interval, ua.VariantType.String))
        await self._nodes["Welfare_EUR"].write_value(
            ua.Variant(float(pub.welfare_eur), ua.VariantType.Double)
        )
        await self._nodes["AcFeasible"].write_value(
            ua.Variant(bool(pub.ac_feasible), ua.VariantType.Boolean)
        )
        await self.publish_parameters(pub.parameters)
        for bus, values in pub.dlmp.items():
            key = f"dlmp.{bus}"
            if key not in self._nodes:
                self._nodes[key] = await im.add_analog(
                    self._clearing,
                    ua.NodeId(f"Clearing.Buses.{bus}.DLMP_EUR_per_MWh", idx),
                    f"DLMP bus {bus}",
                    [float(v) for v in values],
                    im.EUR_PER_MWH,
                    f"Locational marginal price at bus {bus}, one value per period of the "
                    "published interval.",
                )
            else:
                await self._nodes[key].write_value(ua.Variant(values, ua.VariantType.Double))
        for dev, values in pub.schedule.items():
            key = f"schedule.{dev}"
            if key not in self._nodes:
                self._nodes[key] = await im.add_analog(
                    self._clearing,
                    ua.NodeId(f"Clearing.Devices.{dev}.P_schedule_MW", idx),
                    f"Schedule {dev}",
                    [float(v) for v in values],
                    im.MW,
                    f"Scheduled active power of {dev}, one value per period of the published "
                    "interval.",
                )
            else:
                await self._nodes[key].write_value(ua.Variant(values, ua.VariantType.Double))
