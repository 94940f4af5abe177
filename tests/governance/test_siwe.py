"""EIP-4361 messages read as the EIP writes them (its own example among them), written back
identically, and refused with the line at fault; personal_sign recovered as wallets sign."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eth_account import Account

from feederdao.governance import siwe
from feederdao.governance.errors import SignatureError

# the example of EIP-4361 itself (statement, no expiration, two resources)
EIP_EXAMPLE = """service.org wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ServiceOrg Terms of Service: https://service.org/tos

URI: https://service.org/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json"""

EVERY_FIELD = """https://example.com:8443 wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2


URI: https://example.com:8443/login
Version: 1
Chain ID: 11155111
Nonce: abcdef0123456789
Issued At: 2021-09-30T16:25:24.123Z
Expiration Time: 2021-10-01T16:25:24+02:00
Not Before: 2021-09-30T16:25:24Z
Request ID: 42"""


def test_the_eips_example_reads_as_written() -> None:
    m = siwe.parse(EIP_EXAMPLE)
    assert m.domain == "service.org"
    assert m.address == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    assert m.statement == "I accept the ServiceOrg Terms of Service: https://service.org/tos"
    assert (m.uri, m.version, m.chain_id, m.nonce) == (
        "https://service.org/login",
        "1",
        1,
        "32891756",
    )
    assert m.issued_at == datetime(2021, 9, 30, 16, 25, 24, tzinfo=UTC)
    assert m.expiration_time is None and len(m.resources) == 2
    assert m.text() == EIP_EXAMPLE


def test_every_optional_field_and_no_statement() -> None:
    m = siwe.parse(EVERY_FIELD)
    assert m.domain == "example.com:8443" and m.statement is None
    assert m.expiration_time == datetime(2021, 10, 1, 14, 25, 24, tzinfo=UTC)
    assert m.not_before is not None and m.request_id == "42" and m.chain_id == 11155111
    # written back without the scheme, in UTC, to the second: the same fields
    assert siwe.parse(m.text()) == m.__class__(
        **{**m.__dict__, "issued_at": m.issued_at.replace(microsecond=0)}
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("wants you to sign in", "wants you to log in"), "line 1"),
        (
            (
                "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
            ),
            "EIP-55",
        ),
        (("Version: 1", "Version: 2"), "only version 1"),
        (("Chain ID: 1", "Chain ID: one"), "not a number"),
        (("Nonce: 32891756", "Nonce: 1234"), "8 to 64"),
        (("Nonce: 32891756", "Nonce: 1234-5678"), "8 to 64"),
        (("Issued At: 2021-09-30T16:25:24Z", "Issued At: 2021-09-30T16:25:24"), "no time zone"),
        (("Issued At: 2021-09-30T16:25:24Z", "Issued At: yesterday"), "not an RFC 3339"),
        (("URI: https://service.org/login\n", ""), "expected 'URI'"),
        (("Resources:", "Resources: all"), "unexpected"),
        (("\n\nURI:", "\nURI:"), "empty line must follow the statement"),
        (
            ("Issued At: 2021-09-30T16:25:24Z", "Issued At: 2021-09-30T16:25:24Z\nX: y"),
            "unexpected",
        ),
        (("\n", "\r\n"), "LF only"),
    ],
)
def test_a_malformed_message_is_refused_with_the_line_at_fault(
    change: tuple[str, str], words: str
) -> None:
    text = EIP_EXAMPLE.replace(*change)
    with pytest.raises(SignatureError) as info:
        siwe.parse(text)
    assert info.value.field == "message" and words in str(info.value)


def test_a_message_cut_short_or_too_long_is_refused() -> None:
    with pytest.raises(SignatureError, match="ends too early"):
        siwe.parse(EIP_EXAMPLE.split("\nURI:")[0])
    with pytest.raises(SignatureError, match="longer than 4096"):
        siwe.parse(EIP_EXAMPLE + "\n- x" * 2000)


def test_personal_sign_recovers_the_signer() -> None:
    account = Account.create()
    sig = siwe.sign(account.key, EIP_EXAMPLE)
    assert siwe.signer(EIP_EXAMPLE, sig) == account.address
    assert siwe.signer(EIP_EXAMPLE + " ", sig) != account.address
    with pytest.raises(SignatureError, match="65"):
        siwe.signer(EIP_EXAMPLE, sig[:-2])
    with pytest.raises(SignatureError, match="not hex"):
        siwe.signer(EIP_EXAMPLE, "0xzz")


def test_the_message_in_the_console_doc_reads() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "console.md").read_text()
    (block,) = re.findall(r"```text\n(.*?)```", doc, re.S)
    text = "\n".join(line.removeprefix("   ") for line in block.splitlines()).rstrip()
    m = siwe.parse(text)
    assert m.domain == "127.0.0.1:8000" and m.expiration_time is not None
    assert m.text() == text
