"""How ``feederdao serve`` runs its market OPC UA server: the ``[opcua]`` table of the service's
settings file, or ``FEEDERDAO_OPCUA_<NAME>`` variables.

::

    [opcua]
    users_file = "opcua-users.toml"   # [users.NAME] password_hash, role (as for `feederdao sim`)
    pki = "pki"                       # own certificate, trusted/certs, rejected/certs
    policies = ["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from feederdao.scada_bridge.errors import BridgeError
from feederdao.scada_bridge.security import DEFAULT_POLICIES, POLICIES


@dataclass(frozen=True)
class MarketServerSettings:
    """``users_file``: who may connect and with which role (unset: a viewer and an operator are
    created once, their passwords written to ``<workdir>/opcua-credentials.txt``); ``pki``: the
    PKI folder (default ``<workdir>/pki``); ``policies``: the security policies offered, each
    with SignAndEncrypt."""

    users_file: str | None = None
    pki: str | None = None
    policies: tuple[str, ...] = DEFAULT_POLICIES

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown or not self.policies:
            raise BridgeError(
                f"[opcua] policies: {', '.join(unknown) or '(none)'} not supported; use one or "
                f"more of {', '.join(POLICIES)}"
            )

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> MarketServerSettings:
        """Defaults, then the file's ``[opcua]`` table, then variables, then ``overrides``."""
        values: dict[str, Any] = {}
        if path is not None:
            try:
                values.update(tomllib.loads(Path(path).read_text()).get("opcua", {}))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise BridgeError(f"cannot read settings {str(path)!r}: {exc}") from exc
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise BridgeError(f"[opcua]: unknown setting(s): {', '.join(sorted(unknown))}")
        for name in names:
            env = os.environ.get(f"FEEDERDAO_OPCUA_{name.upper()}")
            if env is not None:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        policies = values.get("policies", DEFAULT_POLICIES)
        if isinstance(policies, str):
            policies = [p.strip() for p in policies.split(",") if p.strip()]
        if not isinstance(policies, list | tuple) or not all(isinstance(p, str) for p in policies):
            raise BridgeError("[opcua] policies must be a list of policy names")
        values["policies"] = tuple(policies)
        return cls(**values)
