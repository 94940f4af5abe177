"""OPC UA security: certificates, encrypted endpoints, a trust folder, users with explicit roles.

Servers here offer Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss (or the subset
the settings name) with SignAndEncrypt only, and advertise only the user token they accept (user
name and password). Client certificates are checked against a trust folder in the usual OPC UA
PKI layout (``trusted/certs``, ``rejected/certs``): an unknown client's certificate is refused
and copied to ``rejected/certs`` for the administrator, and moving it to ``trusted/certs`` takes
effect on the client's next connection, without a restart. Users authenticate by password
against scrypt hashes; each has a role (``viewer`` reads and subscribes, ``dispatcher`` also
writes, ``operator`` also calls methods), applied per item (:mod:`.uaserver`). Anonymous sessions
get nothing. Private keys are written readable by their owner only (0600). Clients refuse
SecurityPolicy None unless ``allow_insecure`` says this is a lab.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Client, Server, ua
from asyncua.crypto import security_policies, uacrypto
from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from asyncua.crypto.permission_rules import PermissionRuleset, User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from feederdao.files import write_private
from feederdao.scada_bridge.errors import BridgeError, InsecureEndpointError

log = logging.getLogger(__name__)

POLICIES: dict[str, tuple[type[Any], ua.SecurityPolicyType]] = {
    "Basic256Sha256": (
        security_policies.SecurityPolicyBasic256Sha256,
        ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ),
    "Aes128_Sha256_RsaOaep": (
        security_policies.SecurityPolicyAes128Sha256RsaOaep,
        ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    ),
    "Aes256_Sha256_RsaPss": (
        security_policies.SecurityPolicyAes256Sha256RsaPss,
        ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
    ),
}
DEFAULT_POLICIES = tuple(POLICIES)
ROLES = ("viewer", "dispatcher", "operator")


async def generate_certificate(
    key_path: Path,
    cert_path: Path,
    app_uri: str,
    server: bool = False,
    host: str | None = None,
) -> None:
    """A self-signed application certificate (DER) and its private key (PEM, mode 0600), for a
    client or a server; both files are replaced."""
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    host = host or socket.gethostname()
    usage = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(app_uri), x509.DNSName(host)]
    with contextlib.suppress(ValueError):  # a host name, not an address
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    key = generate_private_key()
    cert = generate_self_signed_app_certificate(
        key,
        app_uri.rsplit(":", 1)[-1],
        {"organizationName": "feederdao"},
        names,
        extended=usage,
        days=730,
    )
    write_private(key_path, dump_private_key_as_pem(key))
    cert_path.write_bytes(cert.public_bytes(encoding=Encoding.DER))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<hash hex>`` for a user table."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
    except ValueError:
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate.hex(), digest)


class PasswordUserManager(UserManager):  # type: ignore[misc]
    """Users by name with a password hash and a role; anonymous sessions are refused."""

    def __init__(self, users: Mapping[str, tuple[str, str]]) -> None:
        for name, (_, role) in users.items():
            if role not in ROLES:
                raise BridgeError(f"user {name!r}: role {role!r} is not one of {ROLES}")
        self.users = dict(users)

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if not username or username not in self.users or password is None:
            return None
        stored, role = self.users[username]
        if not check_password(password, stored):
            return None
        return User(role=UserRole.User, name=f"{role}:{username}")


_READ = {
    ua.ObjectIds.CreateSessionRequest_Encoding_DefaultBinary,
    ua.ObjectIds.CloseSessionRequest_Encoding_DefaultBinary,
    ua.ObjectIds.ActivateSessionRequest_Encoding_DefaultBinary,
    ua.ObjectIds.ReadRequest_Encoding_DefaultBinary,
    ua.ObjectIds.BrowseRequest_Encoding_DefaultBinary,
    ua.ObjectIds.BrowseNextRequest_Encoding_DefaultBinary,
    ua.ObjectIds.GetEndpointsRequest_Encoding_DefaultBinary,
    ua.ObjectIds.FindServersRequest_Encoding_DefaultBinary,
    ua.ObjectIds.TranslateBrowsePathsToNodeIdsRequest_Encoding_DefaultBinary,
    ua.ObjectIds.CreateSubscriptionRequest_Encoding_DefaultBinary,
    ua.ObjectIds.ModifySubscriptionRequest_Encoding_DefaultBinary,
    ua.ObjectIds.DeleteSubscriptionsRequest_Encoding_DefaultBinary,
    ua.ObjectIds.CreateMonitoredItemsRequest_Encoding_DefaultBinary,
    ua.ObjectIds.ModifyMonitoredItemsRequest_Encoding_DefaultBinary,
    ua.ObjectIds.DeleteMonitoredItemsRequest_Encoding_DefaultBinary,
    ua.ObjectIds.PublishRequest_Encoding_DefaultBinary,
    ua.ObjectIds.RepublishRequest_Encoding_DefaultBinary,
    ua.ObjectIds.SetMonitoringModeRequest_Encoding_DefaultBinary,
    ua.ObjectIds.SetPublishingModeRequest_Encoding_DefaultBinary,
    ua.ObjectIds.CloseSecureChannelRequest_Encoding_DefaultBinary,
    ua.ObjectIds.RegisterNodesRequest_Encoding_DefaultBinary,
    ua.ObjectIds.UnregisterNodesRequest_Encoding_DefaultBinary,
}
_WRITE = {ua.ObjectIds.WriteRequest_Encoding_DefaultBinary}
_CALL = {ua.ObjectIds.CallRequest_Encoding_DefaultBinary}


class RoleRuleset(PermissionRuleset):  # type: ignore[misc]
    """Which requests a role may send at all: every role may read, browse, subscribe, write and
    call, so that writes and calls are answered per item (a viewer's write gets
    BadUserAccessDenied for that item, not a ServiceFault for the request; :mod:`.uaserver`
    decides). Nobody changes the address space; anonymous users may do nothing."""

    def __init__(self) -> None:
        allowed = {ua.NodeId(i) for i in _READ | _WRITE | _CALL}
        self.allowed = {role: allowed for role in ROLES}

    def check_validity(self, user: User, action_type_id: Any, body: Any) -> bool:
        role = (user.name or "").split(":", 1)[0] if user.role == UserRole.User else ""
        return action_type_id in self.allowed.get(role, set())


class TrustFolder:
    """Client certificates in the OPC UA PKI layout (Part 12, F.1): ``trusted/certs`` holds the
    trusted ones (DER or PEM), ``rejected/certs`` receives those refused. Read on every
    connection, so an administrator trusts a client by moving its file, without a restart."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.trusted = self.root / "trusted" / "certs"
        self.rejected = self.root / "rejected" / "certs"

    def create(self) -> TrustFolder:
        for d in (self.trusted, self.rejected, self.root / "trusted" / "crl"):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def trusted_der(self) -> set[bytes]:
        out: set[bytes] = set()
        if not self.trusted.is_dir():
            return out
        for path in sorted(self.trusted.iterdir()):
            der = _read_der(path)
            if der is not None:
                out.add(der)
        return out

    def reject(self, der: bytes) -> Path:
        """Keep a refused certificate as ``rejected/certs/<name> [<sha1>].der``."""
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value) if names else "certificate"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64]
        path = self.rejected / f"{safe} [{cert.fingerprint(SHA1()).hex()}].der"
        self.rejected.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(der)
        return path


def _read_der(path: Path) -> bytes | None:
    if not path.is_file():
        return None
    data = path.read_bytes()
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        return x509.load_der_x509_certificate(data).public_bytes(Encoding.DER)
    except ValueError:
        log.warning("ignoring %s in the trust folder: not a certificate", path)
        return None


@dataclass(frozen=True)
class ServerSecurity:
    """What a server of ours offers: its certificate, the trusted clients (pinned files and a
    :class:`TrustFolder`), the users, and the security policies (all SignAndEncrypt)."""

    certificate: Path
    private_key: Path
    trusted_clients: tuple[Path, ...] = ()
    users: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    policies: tuple[str, ...] = DEFAULT_POLICIES
    trust_folder: Path | None = None


async def secure_server(
    server: Server, sec: ServerSecurity, on_security_rejected: Callable[[], None] | None = None
) -> None:
    """Encrypted endpoints only, the user-name token only, trusted client certificates only,
    password users."""
    try:
        await server.load_certificate(str(sec.certificate))
        await server.load_private_key(str(sec.private_key))
    except (OSError, ValueError) as exc:
        raise BridgeError(
            f"cannot load the server certificate {str(sec.certificate)!r} or its key: {exc}"
        ) from exc
    unknown = [p for p in sec.policies if p not in POLICIES]
    if unknown or not sec.policies:
        raise BridgeError(
            f"unknown security policy {unknown or '(none)'}; use one or more of "
            f"{', '.join(POLICIES)}"
        )
    server.set_security_policy(
        [POLICIES[p][1] for p in sec.policies], permission_ruleset=RoleRuleset()
    )
    server.set_identity_tokens([ua.UserNameIdentityToken])
    pinned = set()
    for path in sec.trusted_clients:
        der = _read_der(Path(path))
        if der is None:
            raise BridgeError(f"cannot read the trusted client certificate {str(path)!r}")
        pinned.add(der)
    folder = TrustFolder(sec.trust_folder).create() if sec.trust_folder else None

    async def validate(certificate: Any, app_description: Any) -> None:
        der = uacrypto.der_from_x509(certificate)
        if der in pinned or (folder is not None and der in folder.trusted_der()):
            now = datetime.now(UTC)
            if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
                raise ua.uaerrors.BadCertificateTimeInvalid
            return
        if on_security_rejected is not None:
            on_security_rejected()
        if folder is not None:
            kept = folder.reject(der)
            log.warning("refused an untrusted client certificate; kept as %s", kept)
        raise ua.uaerrors.BadCertificateUntrusted

    server.set_certificate_validator(validate)
    server.iserver.user_manager = PasswordUserManager(sec.users)


@dataclass(frozen=True)
class ClientSecurity:
    """How the bridge connects: policy, own certificate and key, the pinned server certificate,
    user and password. ``allow_insecure`` permits SecurityPolicy None, for a lab only."""

    policy: str = "Basic256Sha256"
    certificate: Path | None = None
    private_key: Path | None = None
    server_certificate: Path | None = None
    username: str | None = None
    password: str | None = None
    allow_insecure: bool = False
    application_uri: str = "urn:feederdao:bridge"


async def secure_client(client: Client, sec: ClientSecurity) -> None:
    client.application_uri = sec.application_uri
    if sec.policy == "None":
        if not sec.allow_insecure:
            raise InsecureEndpointError(
                "SecurityPolicy None is refused: configure Basic256Sha256 (or Aes128/Aes256) "
                "with SignAndEncrypt, or set allow_insecure for a lab"
            )
    else:
        if sec.policy not in POLICIES:
            raise BridgeError(
                f"unknown security policy {sec.policy!r}; use one of {sorted(POLICIES)}"
            )
        if not (sec.certificate and sec.private_key and sec.server_certificate):
            raise BridgeError(
                "a secure connection needs the client certificate, its key and the pinned server "
                "certificate (feederdao opcua gen-cert makes the first two)"
            )
        try:
            await client.set_security(
                POLICIES[sec.policy][0],
                str(sec.certificate),
                str(sec.private_key),
                server_certificate=str(sec.server_certificate),
                mode=ua.MessageSecurityMode.SignAndEncrypt,
            )
        except (OSError, ValueError, TypeError, ua.UaError) as exc:
            raise BridgeError(
                f"cannot load the client certificate {str(sec.certificate)!r}, its key or the "
                f"server certificate {str(sec.server_certificate)!r}: {exc}"
            ) from exc
    if sec.username:
        client.set_user(sec.username)
        client.set_password(sec.password or "")


def read_users_file(path: Path) -> dict[str, tuple[str, str]]:
    """``[users.NAME] password_hash = "scrypt$…", role = "viewer|dispatcher|operator"``."""
    try:
        raw = tomllib.loads(Path(path).read_text())
        users = {
            str(name): (str(spec["password_hash"]), str(spec["role"]))
            for name, spec in raw.get("users", {}).items()
        }
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise BridgeError(f"cannot read the users file {str(path)!r}: {exc}") from exc
    for name, (stored, role) in users.items():
        if role not in ROLES:
            raise BridgeError(
                f"users file {str(path)!r}: user {name!r} has role {role!r}; use one of "
                f"{', '.join(ROLES)}"
            )
        if stored.count("$") != 2 or not stored.startswith("scrypt$"):
            raise BridgeError(
                f"users file {str(path)!r}: user {name!r}: password_hash is not a hash from "
                "`feederdao opcua hash-password`"
            )
    if not users:
        raise BridgeError(f"users file {str(path)!r} defines no [users.NAME] table")
    return users
