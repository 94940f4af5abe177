"""EIP-2's rule for signatures: ``s`` must lie in the lower half of the curve order.

For every ECDSA signature ``(r, s, v)`` the signature ``(r, n − s, v ^ 1)`` recovers to the same
address, so a third party can turn one valid signature into another without the key. Ethereum
refuses the high-s form (EIP-2); so does the market, for registrations and bids.
"""

from __future__ import annotations

import re

from feederdao.governance.signing import SignatureError

#: the order of secp256k1's group
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX65 = re.compile(r"[0-9a-fA-F]{130}")


def require_low_s(signature: str) -> None:
    """Raise SignatureError if ``signature`` (65 bytes ``r‖s‖v`` in hex) has a high ``s``.
    A malformed signature passes here: recovering it says what is wrong with it."""
    text = signature.removeprefix("0x")
    if not _HEX65.fullmatch(text):
        return
    s = int(text[64:128], 16)
    if s > SECP256K1_N // 2:
        raise SignatureError(
            "signature has s in the upper half of the curve order (a malleable signature); "
            "only low-s signatures are accepted, as in Ethereum (EIP-2)"
        )
