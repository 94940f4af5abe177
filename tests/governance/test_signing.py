"""The direct Bid digest equals eth_account's EIP-712 encoding, and recovery finds the signer."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from feederdao.governance.signing import (
    MarketDomain,
    SignatureError,
    bid_digest,
    bid_message,
    domain_separator,
    recover_digest,
    sign,
    typed_data,
)

ACCOUNT = Account.create()
DOMAIN = MarketDomain(131277322940537, "0x" + "ab" * 20)


@settings(max_examples=60, deadline=None)
@given(
    interval=st.integers(1, 2**31 - 1),
    period=st.integers(0, 95),
    bus=st.integers(0, 2**32 - 1),
    side=st.sampled_from(["buy", "sell"]),
    blocks=st.lists(
        st.tuples(st.floats(-100_000, 100_000), st.floats(0, 1_000)), min_size=1, max_size=10
    ),
    nonce=st.text(min_size=1, max_size=40),
    device=st.text(max_size=20),
)
def test_direct_digest_matches_eip712(
    interval: int,
    period: int,
    bus: int,
    side: str,
    blocks: list[tuple[float, float]],
    nonce: str,
    device: str,
) -> None:
    msg = bid_message(ACCOUNT.address, interval, period, bus, side, blocks, nonce, device)
    reference = _hash_eip191_message(encode_typed_data(full_message=typed_data(DOMAIN, "Bid", msg)))
    assert bid_digest(domain_separator(DOMAIN), msg) == reference


def test_recovery_and_refusals() -> None:
    msg = bid_message(ACCOUNT.address, 3, 0, 9, "buy", [(120.0, 0.002)], "n")
    sig = sign(ACCOUNT.key, DOMAIN, "Bid", msg)
    digest = bid_digest(domain_separator(DOMAIN), msg)
    assert recover_digest(digest, sig) == ACCOUNT.address
    other = MarketDomain(1, DOMAIN.verifying_contract)  # another chain: another signer
    assert recover_digest(bid_digest(domain_separator(other), msg), sig) != ACCOUNT.address
    for bad in ("0x12", "zz" * 65, "0x" + "00" * 65):
        try:
            recover_digest(digest, bad)
        except SignatureError:
            continue
        raise AssertionError(f"{bad[:8]} was accepted")
    try:
        bid_digest(domain_separator(DOMAIN), {**msg, "prices": [2**70]})
    except SignatureError as exc:
        assert "prices" in str(exc)
    else:
        raise AssertionError("an out-of-range price was encoded")


def test_signature_errors_are_feederdao_errors_naming_their_field() -> None:
    from feederdao.errors import FeederDaoError, FieldError

    try:
        recover_digest(b"\0" * 32, "0x12")
    except FeederDaoError as exc:  # the one root: the API needs no special case for it
        assert isinstance(exc, SignatureError) and isinstance(exc, FieldError | ValueError)
        assert exc.field == "signature" and "65" in str(exc)
    else:
        raise AssertionError("a 1-byte signature was accepted")
