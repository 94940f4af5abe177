"""Wallet sign-in for participants (Sign-In with Ethereum, EIP-4361): a challenge with a nonce
from the service, signed by the participant's wallet, traded for a session key.

:meth:`WalletLogin.challenge` hands out a single-use nonce for one address (valid
``login_nonce_ttl_s``; an address holds its ``login_nonces_per_address`` newest, older ones are
dropped) inside the message to sign: this service's domain, the address, the chain,
the nonce, the time it was issued and its expiration (``login_session_s`` later).
:meth:`WalletLogin.sign_in` reads a signed message back and refuses it unless

- it is for this service: its domain is ``login_domain`` (``host:port`` unless set), its URI is
  on that domain, its chain is the market's;
- it is current: issued no later than now and no earlier than its nonce, not yet expired, valid
  for no longer than ``login_session_s``, past its ``Not Before``;
- the address it names signed it (``personal_sign``; a malleable high-s signature is refused)
  and belongs to an approved participant;
- its nonce was handed out to that address, has not expired and is used now, once (one
  conditional update: of two sign-ins racing with one nonce exactly one wins).

The session is a participant API key that stops working at the message's expiration time
(or when revoked). Times are the market's clock, as for every other key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from eth_utils.address import to_checksum_address

from feederdao.governance import siwe
from feederdao.store import repositories as repo
from feederdao.workflows.errors import NotApprovedError, SignInBusyError, SignInRefusedError
from feederdao.workflows.market.context import MarketContext

STATEMENT = "Sign in to the feederdao market console."
#: clocks of wallet and service may differ this much
SKEW = timedelta(seconds=60)
#: the chain id a service without a chain signs in on (the address is the same on every chain)
NO_CHAIN_ID = 1
LABEL = "wallet sign-in"


@dataclass(frozen=True)
class Challenge:
    message: siwe.SignInMessage
    nonce_expires_at: datetime


@dataclass(frozen=True)
class WalletSession:
    key_id: int
    api_key: str
    participant_id: str
    address: str
    expires_at: datetime


class WalletLogin:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx

    @property
    def domain(self) -> str:
        """The ``host[:port]`` sign-in messages must name."""
        s = self.ctx.settings
        return s.login_domain or f"{s.host}:{s.port}"

    @property
    def chain_id(self) -> int:
        chain = self.ctx.chain
        return chain.domain.chain_id if chain is not None else NO_CHAIN_ID

    def _check_uri(self, uri: str) -> None:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or parts.netloc != self.domain:
            raise SignInRefusedError(
                f"the message's URI {uri!r} is not on {self.domain!r}, where this service signs in"
            )

    def challenge(self, address: str, uri: str | None = None) -> Challenge:
        """The message for ``address`` to sign, with a fresh nonce (``uri``: the page asking,
        on this service's domain; ``http://<domain>/`` when left out)."""
        uri = uri or f"http://{self.domain}/"
        self._check_uri(uri)
        settings = self.ctx.settings
        now = self.ctx.clock()
        with self.ctx.db.session() as s:
            # a wallet's newest nonces are kept (a page reloaded signs in with its latest), so
            # one address cannot fill the table; clients are rate-limited at the API
            repo.keep_newest_login_nonces(s, address, now, settings.login_nonces_per_address - 1)
            if repo.count_login_nonces(s, now) >= settings.login_nonces_outstanding:
                raise SignInBusyError(
                    "too many sign-ins are waiting for their signature; try again shortly"
                )
            row = repo.add_login_nonce(s, address, now, settings.login_nonce_ttl_s)
            nonce, nonce_expires = row.nonce, row.expires_at
        issued = now.replace(microsecond=0)
        message = siwe.SignInMessage(
            domain=self.domain,
            address=to_checksum_address(address),
            uri=uri,
            chain_id=self.chain_id,
            nonce=nonce,
            issued_at=issued,
            statement=STATEMENT,
            expiration_time=issued + timedelta(seconds=settings.login_session_s),
        )
        return Challenge(message, nonce_expires)

    def sign_in(self, text: str, signature: str) -> WalletSession:
        """A session key for the participant whose wallet signed ``text``; SignInRefusedError
        (or a SignatureError for a malformed message or signature) saying why not."""
        msg = siwe.parse(text)
        now = self.ctx.clock()
        if msg.domain != self.domain:
            raise SignInRefusedError(
                f"the message signs in to {msg.domain!r}; this service is {self.domain!r}"
            )
        self._check_uri(msg.uri)
        if msg.chain_id != self.chain_id:
            raise SignInRefusedError(
                f"the message is for chain {msg.chain_id}; this market is on chain {self.chain_id}"
            )
        expires = msg.expiration_time
        if expires is None:
            raise SignInRefusedError("the message has no Expiration Time")
        if expires <= now:
            raise SignInRefusedError(f"the message expired at {siwe.timestamp(expires)}")
        if msg.issued_at > now + SKEW:
            raise SignInRefusedError(f"the message is issued in the future ({msg.issued_at})")
        if msg.not_before is not None and msg.not_before > now + SKEW:
            raise SignInRefusedError(f"the message is not valid before {msg.not_before}")
        longest = timedelta(seconds=self.ctx.settings.login_session_s)
        if expires - msg.issued_at > longest + SKEW:
            raise SignInRefusedError(
                f"the message is valid for longer than {longest} (login_session_s)"
            )
        who = siwe.signer(text, signature)
        if who != msg.address:
            raise SignInRefusedError(f"the message names {msg.address} but {who} signed it")
        with self.ctx.db.session() as s:
            found = repo.login_nonce(s, msg.nonce)
            if found is not None and msg.issued_at < found.issued_at - SKEW:
                raise SignInRefusedError("the message is issued before its nonce was")
            used = repo.use_login_nonce(s, msg.nonce, msg.address, now)
            if used != "ok":
                raise SignInRefusedError(_NONCE_REFUSED[used])
            part = repo.participant_by_address(s, msg.address)
            if part is None or part.status != "approved":
                raise NotApprovedError(f"{msg.address} is not an approved participant's address")
            key_id, secret = repo.issue_api_key(s, "participant", part.id, LABEL, expires)
            pid = part.id
        return WalletSession(key_id, secret, pid, msg.address, expires)


_NONCE_REFUSED = {
    "unknown": "the message's nonce was not handed out by this service (or has expired)",
    "other-address": "the message's nonce was handed out to another address",
    "expired": "the message's nonce has expired: ask for a new one",
    "used": "the message's nonce has been used: ask for a new one",
}
