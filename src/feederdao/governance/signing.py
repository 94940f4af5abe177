"""EIP-712 messages a participant's wallet signs: registration and bids.

The domain binds a signature to one market deployment: ``{name: "feederdao", version: "1",
chainId, verifyingContract: the SettlementRegistry}``. Numbers are integers so that every wallet
shows them exactly: prices in milli-EUR/MWh (``int64``) and quantities in watts (``uint64``).
The ``nonce`` is the bid's idempotency key: resubmitting the same signed message stores nothing
new.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError as EthValidationError
from web3 import Web3

PRICE_SCALE = 1_000  # milli-EUR per MWh
QUANTITY_SCALE = 1_000_000  # W per MW

_DOMAIN_TYPES = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
BID_TYPES = [
    {"name": "participant", "type": "address"},
    {"name": "interval", "type": "uint64"},
    {"name": "period", "type": "uint32"},
    {"name": "bus", "type": "uint32"},
    {"name": "side", "type": "string"},
    {"name": "device", "type": "string"},
    {"name": "prices", "type": "int64[]"},
    {"name": "quantities", "type": "uint64[]"},
    {"name": "nonce", "type": "string"},
]
REGISTER_TYPES = [
    {"name": "participant", "type": "address"},
    {"name": "name", "type": "string"},
    {"name": "bus", "type": "uint32"},
    {"name": "devices", "type": "string[]"},
]


@dataclass(frozen=True)
class MarketDomain:
    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": "feederdao",
            "version": "1",
            "chainId": self.chain_id,
            "verifyingContract": Web3.to_checksum_address(self.verifying_contract),
        }


class SignatureError(ValueError):
    """A signature is malformed or does not recover to the claimed address."""


def typed_data(domain: MarketDomain, primary: str, message: dict[str, Any]) -> dict[str, Any]:
    types = {"Bid": BID_TYPES, "Register": REGISTER_TYPES}[primary]
    return {
        "domain": domain.as_dict(),
        "types": {"EIP712Domain": _DOMAIN_TYPES, primary: types},
        "primaryType": primary,
        "message": message,
    }


def sign(
    private_key: str | bytes, domain: MarketDomain, primary: str, message: dict[str, Any]
) -> str:
    signed = Account.sign_message(
        encode_typed_data(full_message=typed_data(domain, primary, message)), private_key
    )
    return "0x" + bytes(signed.signature).hex()


def recover(domain: MarketDomain, primary: str, message: dict[str, Any], signature: str) -> str:
    """The checksummed address that signed ``message``; SignatureError if it cannot be read."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise SignatureError("signature is not hex") from None
    if len(raw) != 65:
        raise SignatureError(f"signature has {len(raw)} bytes; an ECDSA signature has 65")
    try:
        encoded = encode_typed_data(full_message=typed_data(domain, primary, message))
        return str(Account.recover_message(encoded, signature=raw))
    except (BadSignature, EthValidationError, ValueError, TypeError, OverflowError) as exc:
        raise SignatureError(f"signature cannot be verified: {exc}") from exc


def bid_message(
    participant: str,
    interval: int,
    period: int,
    bus: int,
    side: str,
    blocks: list[tuple[float, float]],
    nonce: str,
    device: str = "",
) -> dict[str, Any]:
    """A Bid message from EUR/MWh and MW blocks (what a client signs)."""
    return {
        "participant": Web3.to_checksum_address(participant),
        "interval": interval,
        "period": period,
        "bus": bus,
        "side": side,
        "device": device,
        "prices": [round(p * PRICE_SCALE) for p, _ in blocks],
        "quantities": [round(q * QUANTITY_SCALE) for _, q in blocks],
        "nonce": nonce,
    }
