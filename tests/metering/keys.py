"""Deterministic meter keys for tests."""

from __future__ import annotations

from eth_account import Account

from feederdao.governance.signing import MarketDomain

DOMAIN = MarketDomain(31337, "0x" + "11" * 20)


def meter_key(i: int) -> tuple[str, str]:
    """The private key and lowercase address of test meter ``i``."""
    key = "0x" + (0xA11CE + i).to_bytes(32, "big").hex()
    return key, Account.from_key(key).address.lower()
