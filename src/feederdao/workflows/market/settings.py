"""How the market service runs: one frozen settings object, built at the edge and injected."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from feederdao.errors import FieldError


@dataclass(frozen=True)
class ServiceSettings:
    """How the service runs. Every field can be set in a TOML file or as ``FEEDERDAO_<NAME>``."""

    database_url: str = "sqlite:///feederdao.db"
    network: str = "1-LV-rural1--0-sw"
    periods_per_interval: int = 4
    gate_closure_lead_s: int = 300
    rpc_url: str | None = None
    dao_file: str | None = None
    operator_key: str | None = None
    envelope: str | None = None
    vault_file: str | None = None  # with rpc_url: the settlement vault bids are covered by
    embedded_vault: bool = False  # on the in-process chain: deploy a vault and a test euro
    # the certificates of origin the loop mints: with rpc_url, the file `feederdao certificates
    # deploy` wrote; on the in-process chain, "embedded" deploys a contract at start
    certificates: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    market_endpoint: str = "opc.tcp://127.0.0.1:4841/feederdao/market"
    max_attempts: int = 3
    retry_delay_s: float = 2.0
    tick_s: float = 1.0
    workdir: str = ".feederdao"
    wholesale_prices: str | None = None
    wholesale_import_eur_per_mwh: float | None = None
    wholesale_export_eur_per_mwh: float | None = None
    # limits and timeouts (docs/service.md, "Limits")
    max_body_bytes: int = 64 * 1024
    max_json_depth: int = 32
    auth_failures_per_minute: int = 10
    refused_readings_per_minute: int = 10
    store_busy_timeout_s: float = 2.0
    gate_overdue_after_s: float = 30.0
    loop_stuck_after_s: float = 300.0
    shutdown_grace_s: float = 5.0
    # wallet sign-in (docs/console.md, "Wallet sign-in")
    login_domain: str | None = None  # the host[:port] browsers reach the console at
    login_nonce_ttl_s: float = 300.0
    login_session_s: float = 8 * 3600.0
    login_nonces_outstanding: int = 10_000
    login_nonces_per_address: int = 5
    login_nonces_per_minute: int = 30  # per client

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> ServiceSettings:
        """Defaults, then the TOML file, then ``FEEDERDAO_*`` variables, then ``overrides``."""
        values: dict[str, Any] = {}
        if path is not None:
            try:
                values.update(tomllib.loads(Path(path).read_text()).get("service", {}))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise FieldError("settings", f"cannot read settings {str(path)!r}: {exc}") from exc
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise FieldError("settings", f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name, f in known.items():
            env = os.environ.get(f"FEEDERDAO_{name.upper()}")
            if env is not None:
                values[name] = _parse(name, str(f.type), env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(name: str, kind: str, text: str) -> Any:
    """``text`` from ``FEEDERDAO_<NAME>`` as the field's type (``int``, ``float``, ``bool``)."""
    base = kind.replace(" | None", "")
    try:
        if base == "int":
            return int(text)
        if base == "float":
            return float(text)
    except ValueError:
        raise FieldError(name, f"FEEDERDAO_{name.upper()}={text!r} is not a number") from None
    if base == "bool":
        if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise FieldError(name, f"FEEDERDAO_{name.upper()}={text!r}: use true or false")
        return text.lower() in ("1", "true", "yes")
    return text
