"""Sign-In with Ethereum (EIP-4361): the plain-text message a participant's wallet signs to sign
in, written and read here, and the address that signed it (``personal_sign``, EIP-191).

The message, as a wallet shows it::

    127.0.0.1:8000 wants you to sign in with your Ethereum account:
    0xAbC…(EIP-55 checksummed)

    Sign in to the feederdao market console.

    URI: http://127.0.0.1:8000/
    Version: 1
    Chain ID: 1337
    Nonce: 3f9c…
    Issued At: 2026-06-21T10:00:00Z
    Expiration Time: 2026-06-21T18:00:00Z

``parse`` follows the EIP's grammar (an optional scheme before the domain, the statement
optional, then the fields in their order, the optional ones included) and refuses anything else
with the line at fault; what the fields must be for *this* service (its domain, its chain, a
nonce it handed out, times) is the sign-in's business (:mod:`feederdao.workflows.market.login`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.address import is_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError

from feederdao.governance.eip2 import require_low_s
from feederdao.governance.errors import SignatureError
from feederdao.governance.signing import signature_bytes

PREAMBLE = " wants you to sign in with your Ethereum account:"
#: the longest message read (a wallet shows it all; nothing legitimate comes near)
MAX_CHARS = 4096
_DOMAIN = re.compile(r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?([A-Za-z0-9.\-\[\]:]{1,255})")
_NONCE = re.compile(r"[A-Za-z0-9]{8,64}")
_OPTIONAL = ("Expiration Time", "Not Before", "Request ID")


@dataclass(frozen=True)
class SignInMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    statement: str | None = None
    version: str = "1"
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default=())

    def text(self) -> str:
        """The message as EIP-4361 writes it (what the wallet signs)."""
        lines = [self.domain + PREAMBLE, self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {timestamp(self.issued_at)}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {timestamp(self.expiration_time)}")
        if self.not_before is not None:
            lines.append(f"Not Before: {timestamp(self.not_before)}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines += ["Resources:", *(f"- {r}" for r in self.resources)]
        return "\n".join(lines)


def timestamp(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _bad(line: int, what: str) -> SignatureError:
    return SignatureError(f"sign-in message, line {line}: {what}", field="message")


def _parse_time(line: int, name: str, text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(line, f"{name} {text!r} is not an RFC 3339 time") from None
    if t.tzinfo is None:
        raise _bad(line, f"{name} {text!r} has no time zone (end it with Z)")
    return t.astimezone(UTC)


def parse(text: str) -> SignInMessage:
    """The message's fields; SignatureError (field ``message``) naming the line at fault."""
    if len(text) > MAX_CHARS:
        raise SignatureError(f"sign-in message is longer than {MAX_CHARS} characters", "message")
    if "\r" in text:
        raise SignatureError("sign-in message: lines end with LF only", "message")
    lines = text.split("\n")
    at = 0

    def take() -> str:
        nonlocal at
        if at >= len(lines):
            raise _bad(at + 1, "the message ends too early")
        at += 1
        return lines[at - 1]

    head = take()
    if not head.endswith(PREAMBLE):
        raise _bad(1, f"must end with {PREAMBLE.strip()!r}")
    m = _DOMAIN.fullmatch(head[: -len(PREAMBLE)])
    if m is None:
        raise _bad(1, "no domain before the preamble")
    domain = m.group(1)
    address = take()
    if not is_checksum_address(address):
        raise _bad(2, f"{address!r} is not an EIP-55 checksummed address")
    if take() != "":
        raise _bad(3, "an empty line must follow the address")
    statement = None
    nxt = take()
    if nxt != "":
        statement = nxt
        if take() != "":
            raise _bad(at, "an empty line must follow the statement")
    fields: dict[str, tuple[int, str]] = {}
    for name in ("URI", "Version", "Chain ID", "Nonce", "Issued At"):
        got = take()
        if not got.startswith(f"{name}: "):
            raise _bad(at, f"expected {name!r}")
        fields[name] = (at, got[len(name) + 2 :])
    for name in _OPTIONAL:
        if at < len(lines) and lines[at].startswith(f"{name}: "):
            fields[name] = (at + 1, take()[len(name) + 2 :])
    resources: list[str] = []
    if at < len(lines) and lines[at] == "Resources:":
        take()
        while at < len(lines) and lines[at].startswith("- "):
            resources.append(take()[2:])
    if at < len(lines):
        raise _bad(at + 1, f"unexpected {lines[at][:40]!r}")
    line, version = fields["Version"]
    if version != "1":
        raise _bad(line, f"Version {version!r}: only version 1 is known")
    line, chain = fields["Chain ID"]
    if not chain.isdigit() or len(chain) > 20:
        raise _bad(line, f"Chain ID {chain!r} is not a number")
    line, nonce = fields["Nonce"]
    if not _NONCE.fullmatch(nonce):
        raise _bad(line, "Nonce must be 8 to 64 letters and digits")
    uri = fields["URI"][1]
    if not uri or any(c.isspace() for c in uri):
        raise _bad(fields["URI"][0], "URI is empty or holds spaces")
    times = {
        name: _parse_time(fields[name][0], name, fields[name][1])
        for name in ("Issued At", "Expiration Time", "Not Before")
        if name in fields
    }
    return SignInMessage(
        domain=domain,
        address=address,
        uri=uri,
        chain_id=int(chain),
        nonce=nonce,
        issued_at=times["Issued At"],
        statement=statement,
        version=version,
        expiration_time=times.get("Expiration Time"),
        not_before=times.get("Not Before"),
        request_id=fields["Request ID"][1] if "Request ID" in fields else None,
        resources=tuple(resources),
    )


def sign(private_key: str | bytes, text: str) -> str:
    """``personal_sign`` of ``text`` (what a wallet does): 65 bytes as 0x-hex."""
    signed = Account.sign_message(encode_defunct(text=text), private_key)
    return "0x" + bytes(signed.signature).hex()


def signer(text: str, signature: str) -> str:
    """The checksummed address whose ``personal_sign`` of ``text`` ``signature`` is; a
    SignatureError if it is malformed or malleable (high s, EIP-2)."""
    raw = signature_bytes(signature)
    require_low_s(signature)
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=raw))
    except (BadSignature, EthValidationError, ValueError, TypeError, OverflowError) as exc:
        raise SignatureError(f"signature cannot be verified: {exc}") from exc
