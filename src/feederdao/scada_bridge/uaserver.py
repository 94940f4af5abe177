"""What every feederdao OPC UA server shares: identity, capabilities, diagnostics, and access
decided per item by the session's role.

* ``BuildInfo`` names feederdao and its version; ``ServerCapabilities`` (profiles, locales,
  array and string limits, operation limits) are filled in; ``ServerDiagnosticsSummary`` and the
  session diagnostics array are computed live from the sessions the server holds.
* Writes are answered item by item (OPC UA Part 4, 5.10.4): ``BadNodeIdUnknown`` for a node that
  does not exist, ``BadNotWritable`` for one that is read-only, ``BadUserAccessDenied`` for a
  role that may not write, ``BadOutOfRange`` / ``BadTypeMismatch`` for a value a node's rule
  refuses (non-finite, outside the nameplate, wrong type) — a refused value is never applied. An
  accepted value without a ``SourceTimestamp`` is stamped with the time the server received it.
* Method calls are allowed per method and role (``BadUserAccessDenied`` otherwise); the caller's
  identity is available to the method (:func:`calling_user`).
* ``UserAccessLevel`` and ``UserExecutable`` are answered for the session's role.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_session import InternalSession

import feederdao
from feederdao.scada_bridge.errors import BridgeError, PortInUseError

log = logging.getLogger(__name__)

PRODUCT_URI = "urn:feederdao"
WRITERS = frozenset({"dispatcher", "operator"})
# Rule for a writable node: None accepts the value, else (status code, reason) refuses it.
Rule = Callable[[ua.Variant], tuple[int, str] | None]

_caller: ContextVar[str] = ContextVar("feederdao_opcua_caller", default="")


def calling_user() -> str:
    """``role:name`` of the session whose method call is being served."""
    return _caller.get()


def role_of(user: User | None) -> str:
    """The feederdao role of a session's user (``""`` for anonymous or internal)."""
    if user is None or user.role != UserRole.User:
        return ""
    return (user.name or "").split(":", 1)[0]


def number_rule(low: float, high: float, what: str) -> Rule:
    """A finite Double within [low, high]."""

    def check(value: ua.Variant) -> tuple[int, str] | None:
        if value.VariantType != ua.VariantType.Double:
            return ua.StatusCodes.BadTypeMismatch, f"{what} must be a Double"
        v = value.Value
        if not isinstance(v, float) or v != v or v in (float("inf"), float("-inf")):
            return ua.StatusCodes.BadOutOfRange, f"{what} = {v} is not a finite number"
        if not low - 1e-9 <= v <= high + 1e-9:
            return ua.StatusCodes.BadOutOfRange, f"{what} = {v:g} outside [{low:g}, {high:g}]"
        return None

    return check


def integer_rule(low: int, high: int, what: str, kind: ua.VariantType) -> Rule:
    """An integer of ``kind`` within [low, high]."""

    def check(value: ua.Variant) -> tuple[int, str] | None:
        if value.VariantType != kind:
            return ua.StatusCodes.BadTypeMismatch, f"{what} must be an {kind.name}"
        if not low <= int(value.Value) <= high:
            return ua.StatusCodes.BadOutOfRange, f"{what} = {value.Value} outside [{low}, {high}]"
        return None

    return check


def type_rule(kind: ua.VariantType, what: str) -> Rule:
    """Any value of ``kind``."""

    def check(value: ua.Variant) -> tuple[int, str] | None:
        if value.VariantType != kind:
            return ua.StatusCodes.BadTypeMismatch, f"{what} must be a {kind.name}"
        return None

    return check


@dataclasses.dataclass
class AccessGuard:
    """Per-item rules of one server: who may write, which values a node accepts, who may call
    which method, and what the sessions did (for diagnostics)."""

    rules: dict[ua.NodeId, Rule] = dataclasses.field(default_factory=dict)
    callers: dict[ua.NodeId, frozenset[str]] = dataclasses.field(default_factory=dict)
    writers: frozenset[str] = WRITERS
    on_refused: Callable[[ua.NodeId, str, str], None] | None = None
    sessions: dict[ua.NodeId, _RoleSession] = dataclasses.field(default_factory=dict)
    cumulated_sessions: int = 0
    rejected_sessions: int = 0
    security_rejected_sessions: int = 0

    def accept(self, nodeid: ua.NodeId, rule: Rule) -> None:
        self.rules[nodeid] = rule

    def allow_call(self, method: ua.NodeId, roles: Iterable[str]) -> None:
        self.callers[method] = frozenset(roles)


class _RoleSession(InternalSession):  # type: ignore[misc]
    """A client session whose reads, writes and calls are decided per item by its role."""

    guard: AccessGuard

    def activate_session(self, params: Any, peer_certificate: bytes | None) -> Any:
        try:
            result = super().activate_session(params, peer_certificate)
        except Exception:
            self.guard.rejected_sessions += 1
            raise
        if self.session_id not in self.guard.sessions:
            self.guard.cumulated_sessions += 1
        self.guard.sessions[self.session_id] = self
        self.connected_at = getattr(self, "connected_at", datetime.now(UTC))
        return result

    async def close_session(self, delete_subs: bool = True) -> None:
        self.guard.sessions.pop(self.session_id, None)
        await super().close_session(delete_subs)

    async def read(self, params: ua.ReadParameters) -> list[ua.DataValue]:
        results: list[ua.DataValue] = await super().read(params)
        role = role_of(self.user)
        for i, item in enumerate(params.NodesToRead):
            dv = results[i]
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                continue
            if item.AttributeId == ua.AttributeIds.UserAccessLevel and dv.Value is not None:
                level = int(dv.Value.Value)
                if role not in self.guard.writers:
                    level &= ~ua.AccessLevel.CurrentWrite.mask
                results[i] = ua.DataValue(ua.Variant(level, ua.VariantType.Byte))
            elif item.AttributeId == ua.AttributeIds.UserExecutable:
                allowed = role in self.guard.callers.get(item.NodeId, frozenset())
                results[i] = ua.DataValue(ua.Variant(allowed, ua.VariantType.Boolean))
        return results

    async def write(self, params: ua.WriteParameters) -> list[ua.StatusCode]:
        role = role_of(self.user)
        aspace = self.iserver.aspace
        answers: list[ua.StatusCode | None] = []
        accepted: list[ua.WriteValue] = []
        now = datetime.now(UTC)
        for item in params.NodesToWrite:
            code = self._refusal(item, role, aspace)
            if code is not None:
                answers.append(ua.StatusCode(code))
                continue
            dv = item.Value
            stamped = dataclasses.replace(
                dv,
                SourceTimestamp=dv.SourceTimestamp or now,
                ServerTimestamp=now,
                ServerPicoseconds=None,
            )
            accepted.append(dataclasses.replace(item, Value=stamped))
            answers.append(None)
        done = iter(
            await super().write(ua.WriteParameters(NodesToWrite=accepted)) if accepted else []
        )
        return [a if a is not None else next(done) for a in answers]

    def _refusal(self, item: ua.WriteValue, role: str, aspace: Any) -> int | None:
        if item.NodeId not in aspace:
            return int(ua.StatusCodes.BadNodeIdUnknown)
        if item.AttributeId != ua.AttributeIds.Value or item.IndexRange:
            return int(ua.StatusCodes.BadNotWritable)
        level = aspace.read_attribute_value(item.NodeId, ua.AttributeIds.AccessLevel)
        if (
            level.Value is None
            or not int(level.Value.Value) & ua.AccessLevel.CurrentWrite.mask
            or item.NodeId not in self.guard.rules
        ):
            return int(ua.StatusCodes.BadNotWritable)
        if role not in self.guard.writers:
            return int(ua.StatusCodes.BadUserAccessDenied)
        value = item.Value.Value if item.Value is not None else None
        if value is None:
            return int(ua.StatusCodes.BadTypeMismatch)
        refused = self.guard.rules[item.NodeId](value)
        if refused is not None:
            code, reason = refused
            log.warning("refused a write to %s by %s: %s", item.NodeId.to_string(), role, reason)
            if self.guard.on_refused is not None:
                self.guard.on_refused(item.NodeId, role, reason)
            return int(code)
        return None

    async def call(self, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        role = role_of(self.user)
        results: list[ua.CallMethodResult] = []
        for request in params:
            if role not in self.guard.callers.get(request.MethodId, frozenset()):
                code = (
                    ua.StatusCodes.BadMethodInvalid
                    if request.MethodId not in self.iserver.aspace
                    else ua.StatusCodes.BadUserAccessDenied
                )
                results.append(ua.CallMethodResult(StatusCode=ua.StatusCode(code)))
                continue
            token = _caller.set(f"{role}:{(self.user.name or '').split(':', 1)[-1]}")
            try:
                results += await self.iserver.method_service.call([request])
            finally:
                _caller.reset(token)
        return results


def install_guard(server: Server, guard: AccessGuard) -> None:
    """Make every client session of ``server`` a :class:`_RoleSession` ruled by ``guard``."""
    iserver = server.iserver

    def create_session(
        name: str, user: User = User(role=UserRole.Anonymous), external: bool = False
    ) -> InternalSession:
        session = _RoleSession(
            iserver,
            iserver.aspace,
            iserver.subscription_service,
            name,
            user=user,
            external=external,
        )
        session.guard = guard
        return session

    iserver.create_session = create_session


def _build_date() -> datetime:
    """When this feederdao was built (installed): the package's own modification time."""
    stamp = Path(feederdao.__file__).stat().st_mtime
    return datetime.fromtimestamp(stamp, UTC)


async def describe_server(server: Server, name: str, application_uri: str) -> None:
    """Identity (application name and URI, BuildInfo) and capabilities of a feederdao server."""
    server.set_server_name(name)
    server.product_uri = PRODUCT_URI
    await server.set_application_uri(application_uri)
    await server.set_build_info(
        PRODUCT_URI, "feederdao", name, feederdao.__version__, feederdao.__version__, _build_date()
    )
    caps: list[tuple[int, ua.Variant]] = [
        (
            ua.ObjectIds.Server_ServerCapabilities_ServerProfileArray,
            ua.Variant(
                ["http://opcfoundation.org/UA-Profile/Server/EmbeddedUA2017"],
                ua.VariantType.String,
            ),
        ),
        (
            ua.ObjectIds.Server_ServerCapabilities_LocaleIdArray,
            ua.Variant(["en"], ua.VariantType.String),
        ),
        (
            ua.ObjectIds.Server_ServerCapabilities_MaxArrayLength,
            ua.Variant(65535, ua.VariantType.UInt32),
        ),
        (
            ua.ObjectIds.Server_ServerCapabilities_MaxStringLength,
            ua.Variant(65535, ua.VariantType.UInt32),
        ),
        (
            ua.ObjectIds.Server_ServerCapabilities_MaxByteStringLength,
            ua.Variant(1 << 20, ua.VariantType.UInt32),
        ),
        (
            ua.ObjectIds.Server_ServerCapabilities_MinSupportedSampleRate,
            ua.Variant(50.0, ua.VariantType.Double),
        ),
        (
            ua.ObjectIds.Server_ServerCapabilities_MaxBrowseContinuationPoints,
            ua.Variant(0, ua.VariantType.UInt16),
        ),
    ]
    for limit in ("Read", "Write", "Browse", "MethodCall", "RegisterNodes"):
        ident = getattr(
            ua.ObjectIds, f"Server_ServerCapabilities_OperationLimits_MaxNodesPer{limit}", None
        )
        if ident is not None:
            caps.append((ident, ua.Variant(1000, ua.VariantType.UInt32)))
    for ident, value in caps:
        await server.get_node(ua.NodeId(ident)).write_value(value)
    await server.get_node(ua.NodeId(ua.ObjectIds.Server_ServerDiagnostics_EnabledFlag)).write_value(
        ua.Variant(True, ua.VariantType.Boolean)
    )


def publish_diagnostics(server: Server, guard: AccessGuard) -> None:
    """Compute ``ServerDiagnosticsSummary`` and the session diagnostics array on each read."""
    aspace = server.iserver.aspace

    def summary() -> ua.ServerDiagnosticsSummaryDataType:
        return ua.ServerDiagnosticsSummaryDataType(
            CurrentSessionCount=len(guard.sessions),
            CumulatedSessionCount=guard.cumulated_sessions,
            SecurityRejectedSessionCount=guard.security_rejected_sessions,
            RejectedSessionCount=guard.rejected_sessions + guard.security_rejected_sessions,
            SecurityRejectedRequestsCount=guard.security_rejected_sessions,
        )

    def on_summary(nodeid: ua.NodeId, attr: ua.AttributeIds) -> ua.DataValue:
        return ua.DataValue(ua.Variant(summary(), ua.VariantType.ExtensionObject))

    aspace.set_attribute_value_callback(
        ua.NodeId(ua.ObjectIds.Server_ServerDiagnostics_ServerDiagnosticsSummary),
        ua.AttributeIds.Value,
        on_summary,
    )
    for field in dataclasses.fields(ua.ServerDiagnosticsSummaryDataType):
        ident = getattr(
            ua.ObjectIds, f"Server_ServerDiagnostics_ServerDiagnosticsSummary_{field.name}", None
        )
        if ident is None:
            continue

        def on_field(
            nodeid: ua.NodeId, attr: ua.AttributeIds, name: str = field.name
        ) -> ua.DataValue:
            return ua.DataValue(ua.Variant(getattr(summary(), name), ua.VariantType.UInt32))

        aspace.set_attribute_value_callback(ua.NodeId(ident), ua.AttributeIds.Value, on_field)

    def on_sessions(nodeid: ua.NodeId, attr: ua.AttributeIds) -> ua.DataValue:
        rows = [
            ua.SessionDiagnosticsDataType(
                SessionId=s.session_id,
                SessionName=str(s.name),
                ClientConnectionTime=getattr(s, "connected_at", None),
                ActualSessionTimeout=float((s.session_timeout or 0.0) * 1000),
            )
            for s in guard.sessions.values()
        ]
        return ua.DataValue(ua.Variant(rows, ua.VariantType.ExtensionObject))

    aspace.set_attribute_value_callback(
        ua.NodeId(
            ua.ObjectIds.Server_ServerDiagnostics_SessionsDiagnosticsSummary_SessionDiagnosticsArray
        ),
        ua.AttributeIds.Value,
        on_sessions,
    )


async def start_server(server: Server, endpoint: str) -> None:
    """Start listening; a port already in use is a one-line :class:`PortInUseError` (asyncua's
    own traceback of the failure is not logged: the error says it)."""
    quiet = _DropStartFailure()
    asyncua_server_log = logging.getLogger("asyncua.server.server")
    asyncua_server_log.addFilter(quiet)
    try:
        await server.start()
    except OSError as exc:
        with contextlib.suppress(Exception):
            await server.stop()
        url = urlparse(endpoint)
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"cannot serve OPC UA on {endpoint}: port {url.port} is already in use "
                "(another feederdao serve or sim?); choose another endpoint"
            ) from None
        raise BridgeError(f"cannot serve OPC UA on {endpoint}: {exc.strerror or exc}") from None
    finally:
        asyncua_server_log.removeFilter(quiet)


class _DropStartFailure(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "error starting server" not in record.getMessage()
