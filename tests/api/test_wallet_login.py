"""Wallet sign-in over HTTP (EIP-4361): a participant's wallet signs the service's challenge and
gets a session key; replays, other domains, other chains, expired messages and nonces, and
signatures of another address are refused, and two clients racing with one signed message get
one session between them. anvil (an EVM node of its own) signs as a wallet does."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from feederdao.governance import siwe
from feederdao.governance.eip2 import SECP256K1_N
from feederdao.store import repositories as repo
from tests.api.conftest import Env, make_env, served
from tests.governance.conftest import anvil  # noqa: F401  (the fixture)

DOMAIN = "127.0.0.1:8000"  # the service's host:port on default settings


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'market.db'}", str(tmp_path), with_chain=False)
    yield e
    e.service.db.dispose()


def approved(env: Env, address: str | None = None) -> tuple[LocalAccount | None, str]:
    """An approved participant (with a fresh key unless ``address`` is given)."""
    account = None if address else Account.create()
    addr = address or account.address  # type: ignore[union-attr]
    bus, dev = env.free_device()
    with env.service.db.session() as s:
        part = repo.register_participant(s, "wallet", addr, bus, [dev])
        repo.approve_participant(s, part.id, bus, [dev])
        return account, part.id


def challenge(env: Env, address: str, **extra: Any) -> dict[str, Any]:
    r = env.client.post("/session/nonce", json={"address": address, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def signed(account: LocalAccount, text: str) -> dict[str, str]:
    return {"message": text, "signature": siwe.sign(account.key, text)}


def refused(env: Env, body: dict[str, str], status: int, words: str) -> None:
    r = env.client.post("/session/wallet", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()


def edited(text: str, **fields: Any) -> str:
    return dataclasses.replace(siwe.parse(text), **fields).text()


def test_a_signed_challenge_is_traded_for_a_session_key(env: Env) -> None:
    account, pid = approved(env)
    assert account is not None
    ch = challenge(env, account.address.lower())  # any spelling of the address
    text = ch["message"]
    assert text.startswith(f"{DOMAIN} wants you to sign in with your Ethereum account:\n")
    assert f"\n{account.address}\n" in text  # EIP-55 in the message
    assert f"Nonce: {ch['nonce']}" in text and "Chain ID: 1\n" in text
    assert siwe.parse(text).text() == text
    r = env.client.post("/session/wallet", json=signed(account, text))
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["participant_id"] == pid and got["role"] == "participant"
    key = {"Authorization": f"Bearer {got['api_key']}"}
    assert env.client.get("/session", headers=key).json()["participant_id"] == pid
    assert env.client.get("/participants/me", headers=key).json()["id"] == pid
    listed = {k["id"]: k for k in env.client.get("/api-keys", headers=env.auth("auditor")).json()}
    assert listed[got["key_id"]]["label"] == "wallet sign-in"
    assert listed[got["key_id"]]["expires_at"] == got["expires_at"]
    # the session ends at the message's expiration time (8 h on default settings)
    env.clock.now += timedelta(hours=8)
    assert env.client.get("/session", headers=key).status_code == 401


def test_a_nonce_is_single_use(env: Env) -> None:
    account, _ = approved(env)
    assert account is not None
    body = signed(account, challenge(env, account.address)["message"])
    assert env.client.post("/session/wallet", json=body).status_code == 201
    refused(env, body, 401, "nonce has been used")


def test_a_message_for_another_domain_is_refused(env: Env) -> None:
    """What a phishing site gets the wallet to sign names the phishing site's domain (the
    wallet shows it): relayed here, it is refused, whatever the relay's Host header says."""
    account, _ = approved(env)
    assert account is not None
    text = challenge(env, account.address)["message"]
    for other in (
        edited(text, domain="evil.example", uri="https://evil.example/"),
        edited(text, domain="127.0.0.1:8001"),
    ):
        r = env.client.post(
            "/session/wallet", json=signed(account, other), headers={"Host": "evil.example"}
        )
        assert r.status_code == 401 and "this service is '127.0.0.1:8000'" in r.json()["error"]
    refused(env, signed(account, edited(text, uri="https://evil.example/")), 401, "not on")
    refused(env, signed(account, edited(text, chain_id=5)), 401, "for chain 5")
    # the nonce was not spent by the refusals: the genuine message still signs in
    assert env.client.post("/session/wallet", json=signed(account, text)).status_code == 201


def test_an_expired_message_or_nonce_is_refused(env: Env) -> None:
    account, _ = approved(env)
    assert account is not None
    text = challenge(env, account.address)["message"]
    m = siwe.parse(text)
    past = env.clock.now - timedelta(seconds=1)
    refused(env, signed(account, edited(text, expiration_time=past)), 401, "expired at")
    refused(env, signed(account, edited(text, expiration_time=None)), 401, "no Expiration Time")
    longer = m.issued_at + timedelta(days=30)
    refused(env, signed(account, edited(text, expiration_time=longer)), 401, "longer than")
    future = env.clock.now + timedelta(minutes=5)
    refused(env, signed(account, edited(text, issued_at=future)), 401, "in the future")
    refused(env, signed(account, edited(text, not_before=future)), 401, "not valid before")
    # the nonce is valid for five minutes (login_nonce_ttl_s): the message for eight hours
    env.clock.now += timedelta(minutes=6)
    refused(env, signed(account, text), 401, "nonce has expired")


def test_a_signature_of_another_address_is_refused(env: Env) -> None:
    victim, _ = approved(env)
    thief, _ = approved(env)
    assert victim is not None and thief is not None
    text = challenge(env, victim.address)["message"]
    refused(env, signed(thief, text), 401, f"names {victim.address} but {thief.address} signed")
    # nor can the thief use the victim's nonce in a message of its own
    own = edited(text, address=thief.address)
    refused(env, signed(thief, own), 401, "handed out to another address")
    refused(env, signed(thief, edited(text, address=thief.address, nonce="0" * 32)), 401, "not")
    # a malleable twin of a valid signature (high s) is refused too (EIP-2)
    good = bytes.fromhex(siwe.sign(victim.key, text)[2:])
    s = int.from_bytes(good[32:64], "big")
    twin = good[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([good[64] ^ 1])
    r = env.client.post("/session/wallet", json={"message": text, "signature": "0x" + twin.hex()})
    assert r.status_code == 422 and r.json()["field"] == "signature"
    assert env.client.post("/session/wallet", json=signed(victim, text)).status_code == 201


def test_only_an_approved_participant_signs_in(env: Env) -> None:
    stranger = Account.create()
    text = challenge(env, stranger.address)["message"]
    refused(env, signed(stranger, text), 403, "not an approved participant")
    with env.service.db.session() as s:
        repo.register_participant(s, "waiting", stranger.address, 1, [])
    refused(env, signed(stranger, text), 403, "not an approved participant")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("hello", "line 1"),
        (f"{DOMAIN} wants you to sign in with your Ethereum account:\n0xabc", "line 2"),
        (
            f"{DOMAIN} wants you to sign in with your Ethereum account:\n" + "0x" + "ab" * 20,
            "EIP-55",
        ),
    ],
)
def test_a_malformed_message_names_the_line(env: Env, text: str, line: str) -> None:
    r = env.client.post("/session/wallet", json={"message": text, "signature": "0x" + "11" * 65})
    assert r.status_code == 422 and r.json()["field"] == "message"
    assert line in r.json()["error"]


def test_refused_sign_ins_count_against_the_client(env: Env) -> None:
    account, _ = approved(env)
    assert account is not None
    text = challenge(env, account.address)["message"]
    bad = signed(Account.create(), text)
    statuses = [env.client.post("/session/wallet", json=bad).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    assert env.client.post("/session/nonce", json={"address": account.address}).status_code == 429


def test_outstanding_nonces_are_bounded(tmp_path: Path) -> None:
    e = make_env(
        f"sqlite:///{tmp_path / 'm.db'}",
        str(tmp_path),
        with_chain=False,
        login_nonces_outstanding=2,
    )
    try:
        addr = Account.create().address
        got = [e.client.post("/session/nonce", json={"address": addr}) for _ in range(3)]
        assert [r.status_code for r in got] == [201, 201, 503]
        assert got[2].headers["retry-after"] == "30" and "too many" in got[2].json()["error"]
        e.clock.now += timedelta(minutes=6)  # the two have expired: they no longer count
        assert e.client.post("/session/nonce", json={"address": addr}).status_code == 201
    finally:
        e.service.db.dispose()


def test_a_nonce_flood_neither_fills_the_table_nor_locks_others_out(env: Env) -> None:
    """The table's cap used to be the only bound: one client asking for nonces in a loop filled
    it and every other wallet's sign-in answered 503 until they expired."""
    from starlette.testclient import TestClient

    per_minute = env.service.settings.login_nonces_per_minute
    account, _ = approved(env)
    assert account is not None
    with TestClient(env.client.app, client=("203.0.113.7", 4000)) as flood:
        # one wallet's nonces: it keeps its newest few, not one more
        first = flood.post("/session/nonce", json={"address": account.address}).json()
        for _ in range(9):
            env.clock.now += timedelta(seconds=1)  # the newest are kept
            assert (
                flood.post("/session/nonce", json={"address": account.address}).status_code == 201
            )
        with env.service.db.read() as s:
            assert repo.count_login_nonces(s, env.clock.now) == 5
        # fresh addresses: the client is held back after its share of the minute
        statuses = [
            flood.post("/session/nonce", json={"address": Account.create().address}).status_code
            for _ in range(per_minute - 10 + 1)
        ]
        assert statuses == [201] * (per_minute - 10) + [429]
        r = flood.post("/session/nonce", json={"address": account.address})
        assert r.status_code == 429 and "sign-in nonces" in r.json()["error"]
        assert int(r.headers["retry-after"]) > 0
    # the flood's oldest nonce for the wallet is gone; another client signs in as usual
    text = first["message"]
    refused = env.client.post("/session/wallet", json=signed(account, text))
    assert refused.status_code == 401 and "nonce" in refused.json()["error"]
    again = env.client.post(
        "/session/wallet", json=signed(account, challenge(env, account.address)["message"])
    )
    assert again.status_code == 201, again.text


def test_racing_clients_with_one_signed_message_get_one_session(
    database_url: str, tmp_path: Path
) -> None:
    e = make_env(database_url, str(tmp_path), with_chain=False)
    try:
        account, _ = approved(e)
        assert account is not None
        body = signed(account, challenge(e, account.address)["message"])
        statuses: list[int] = []
        with served(e) as url:
            start = threading.Barrier(8)

            def go() -> None:
                start.wait()
                statuses.append(httpx.post(f"{url}/session/wallet", json=body).status_code)

            threads = [threading.Thread(target=go) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        assert sorted(statuses) == [201] + [401] * 7
        with e.service.db.read() as s:
            sessions = [k for k in repo.list_api_keys(s) if k.label == "wallet sign-in"]
        assert len(sessions) == 1
    finally:
        e.service.db.dispose()


def test_anvil_signs_in_as_a_wallet_does(env: Env, anvil: Web3) -> None:  # noqa: F811
    """personal_sign by an EVM node of its own (anvil's unlocked dev account), not eth_account."""
    address = anvil.eth.accounts[0]
    _, pid = approved(env, address)
    text = challenge(env, address)["message"]
    sig = anvil.provider.make_request(
        RPCEndpoint("personal_sign"), ["0x" + text.encode().hex(), address]
    )
    r = env.client.post("/session/wallet", json={"message": text, "signature": sig["result"]})
    assert r.status_code == 201, r.text
    assert r.json()["participant_id"] == pid
