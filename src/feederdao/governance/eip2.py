"""EIP-2's rule for signatures: ``s`` must lie in the lower half of the curve order.

For every ECDSA signature ``(r, s, v)`` the signature ``(r, n − s, v ^ 1)`` recovers to the same
address, so a third party can turn one valid signature into another without the key. Ethereum
refuses the high-s form (EIP-2); so does the market, for registrations and bids.
"""

from __future__ import annotations

from feederdao.governance.signing import SignatureError

#: the order of secp256k1's group
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def require_low_s(signature: str) -> None:
    """Raise SignatureError unless ``signature`` (65 bytes ``r‖s‖v`` in hex) has a low ``s``."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise SignatureError("signature is not hex") from None
    if len(raw) != 65:
        raise SignatureError(f"signature has {len(raw)} bytes; an ECDSA signature has 65")
    s = int.from_bytes(raw[32:64], "big")
    if not 0 < s <= SECP256K1_N // 2:
        raise SignatureError(
            "signature has s in the upper half of the curve order (a malleable signature); "
            "only low-s signatures are accepted, as in Ethereum (EIP-2)"
        )
