"""OPC UA security: certificates, encrypted endpoints, users with explicit roles.

Servers here offer only Basic256Sha256 (or Aes128/Aes256) with SignAndEncrypt, check client
certificates against a trust list, and authenticate users by password against scrypt hashes;
each user has a role (``viewer`` reads and subscribes, ``dispatcher`` also writes, ``operator``
also calls methods). Anonymous sessions get nothing. Clients refuse SecurityPolicy None unless
``allow_insecure`` says this is a lab.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Client, Server, ua
from asyncua.crypto import security_policies, uacrypto
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import PermissionRuleset, User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from feederdao.scada_bridge.errors import BridgeError, InsecureEndpointError

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
ROLES = ("viewer", "dispatcher", "operator")


async def generate_certificate(
    key_path: Path,
    cert_path: Path,
    app_uri: str,
    server: bool = False,
    host: str | None = None,
) -> None:
    """A self-signed application certificate and its key (PEM), for a client or a server."""
    key_path.parent.mkdir(parents=True, exist_ok=True)
    usage = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    await setup_self_signed_certificate(
        key_path,
        cert_path,
        app_uri,
        host or socket.gethostname(),
        usage,
        {"commonName": app_uri.rsplit(":", 1)[-1], "organizationName": "feederdao"},
    )


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
    """viewer: read, browse, subscribe; dispatcher: + write; operator: + call methods.
    Nobody changes the address space; anonymous users may do nothing."""

    def __init__(self) -> None:
        self.allowed = {
            "viewer": {ua.NodeId(i) for i in _READ},
            "dispatcher": {ua.NodeId(i) for i in _READ | _WRITE},
            "operator": {ua.NodeId(i) for i in _READ | _WRITE | _CALL},
        }

    def check_validity(self, user: User, action_type_id: Any, body: Any) -> bool:
        role = (user.name or "").split(":", 1)[0] if user.role == UserRole.User else ""
        return action_type_id in self.allowed.get(role, set())


@dataclass(frozen=True)
class ServerSecurity:
    """What a server of ours offers: its certificate, the client trust list, the users."""

    certificate: Path
    private_key: Path
    trusted_clients: tuple[Path, ...]
    users: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    policies: tuple[str, ...] = ("Basic256Sha256",)


async def secure_server(server: Server, sec: ServerSecurity) -> None:
    """Encrypted endpoints only, a trust list for client certificates, password users."""
    await server.load_certificate(str(sec.certificate))
    await server.load_private_key(str(sec.private_key))
    unknown = [p for p in sec.policies if p not in POLICIES]
    if unknown:
        raise BridgeError(f"unknown security policy {unknown}; use one of {sorted(POLICIES)}")
    server.set_security_policy(
        [POLICIES[p][1] for p in sec.policies], permission_ruleset=RoleRuleset()
    )
    trusted = set()
    for path in sec.trusted_clients:
        cert = await uacrypto.load_certificate(path)
        trusted.add(uacrypto.der_from_x509(cert))

    async def validate(certificate: Any, app_description: Any) -> None:
        if uacrypto.der_from_x509(certificate) not in trusted:
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
        await client.set_security(
            POLICIES[sec.policy][0],
            str(sec.certificate),
            str(sec.private_key),
            server_certificate=str(sec.server_certificate),
            mode=ua.MessageSecurityMode.SignAndEncrypt,
        )
    if sec.username:
        client.set_user(sec.username)
        client.set_password(sec.password or "")
