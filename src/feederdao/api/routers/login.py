"""Wallet sign-in (EIP-4361, Sign-In with Ethereum): ``POST /session/nonce`` hands out the
message to sign, ``POST /session/wallet`` trades the signed message for a session key
(:mod:`feederdao.workflows.market.login` says what is checked). Refusals count as wrong keys for
the client's failure limit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from feederdao.api.auth import Service, client_of, refuse_if_limited
from feederdao.api.ratelimit import ClientLimiter
from feederdao.api.schemas import (
    ChallengeOut,
    Error,
    NonceIn,
    WalletSessionOut,
    WalletSignInIn,
)
from feederdao.governance.errors import SignatureError
from feederdao.workflows.errors import NotApprovedError, SignInRefusedError

router = APIRouter(prefix="/session", tags=["api-keys"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error},
    403: {"model": Error},
    422: {"model": Error},
    429: {"model": Error},
    503: {"model": Error},
}


def _limited(request: Request) -> ClientLimiter:
    limiter: ClientLimiter = request.app.state.auth_limiter
    refuse_if_limited(limiter, request, "refused sign-ins")
    return limiter


@router.post("/nonce", status_code=201, response_model=ChallengeOut, responses=ERRORS)
def nonce(body: NonceIn, svc: Service, request: Request) -> ChallengeOut:
    """The sign-in message for ``address`` with a fresh single-use nonce (public; a client
    gets ``login_nonces_per_minute``, then 429 with ``Retry-After``)."""
    _limited(request)
    nonces: ClientLimiter = request.app.state.nonce_limiter
    client = refuse_if_limited(nonces, request, "sign-in nonces")
    got = svc.login.challenge(body.address, body.uri)
    nonces.count(client)
    m = got.message
    assert m.expiration_time is not None  # the challenge always sets it
    return ChallengeOut(
        message=m.text(),
        domain=m.domain,
        address=m.address,
        chain_id=m.chain_id,
        nonce=m.nonce,
        issued_at=m.issued_at,
        expires_at=m.expiration_time,
        nonce_expires_at=got.nonce_expires_at,
    )


@router.post("/wallet", status_code=201, response_model=WalletSessionOut, responses=ERRORS)
def wallet(body: WalletSignInIn, svc: Service, request: Request) -> WalletSessionOut:
    """A session key for the participant whose wallet signed the message."""
    limiter = _limited(request)
    try:
        got = svc.login.sign_in(body.message, body.signature)
    except (SignInRefusedError, NotApprovedError, SignatureError):
        limiter.count(client_of(request))
        raise
    return WalletSessionOut(
        key_id=got.key_id,
        api_key=got.api_key,
        role="participant",
        participant_id=got.participant_id,
        address=got.address,
        expires_at=got.expires_at,
    )
