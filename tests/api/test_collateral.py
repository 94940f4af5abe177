"""The API refuses a bid its collateral cannot cover: a settlement vault on the embedded chain
holds the deposits; the market's own metered settlement holds the positions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from web3.types import Wei

from feederdao.errors import FieldError
from feederdao.store import repositories as repo
from feederdao.workflows.market import MarketService, ServiceSettings
from tests.api.conftest import NET, NOON, Env, Member, make_env


@pytest.fixture
def vaulted(database_url: str, tmp_path: Any) -> Iterator[Env]:
    e = make_env(database_url, str(tmp_path), embedded_vault=True)
    yield e
    e.service.db.dispose()


def deposit(env: Env, m: Member, units: int) -> None:
    """``m``'s wallet gets gas and test euros and deposits ``units`` in the vault."""
    chain = env.service.chain
    assert chain is not None and chain.vault is not None
    w3 = chain.w3
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    if m.account.address not in w3.eth.accounts:
        tester.add_account("0x" + bytes(m.account.key).hex())
    first = w3.eth.accounts[0]
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": first, "to": m.account.address, "value": Wei(10**18)})
    )
    chain.vault.mint(first, m.account.address, units)
    chain.vault.deposit(m.account.address, units)


def bid(interval: int, m: Member, price: float, mw: float, side: str = "buy") -> dict[str, Any]:
    return {
        "interval_id": interval,
        "period": 0,
        "bus": m.bus,
        "side": side,
        "blocks": [{"price_eur_per_mwh": price, "quantity_mw": mw}],
    }


def test_a_bid_its_collateral_cannot_cover_is_refused(vaulted: Env) -> None:
    env, c = vaulted, vaulted.client
    m = env.join()
    iv = env.open_interval(NOON)
    # 0.01 MW for 15 min at 100 EUR/MWh: up to 0.25 EUR; nothing deposited
    r = c.post("/bids", json=bid(iv, m, 100.0, 0.01), headers={**m.auth, "Idempotency-Key": "a"})
    assert r.status_code == 402, r.text
    body = r.json()
    assert body["field"] == "blocks"
    assert "bid 'a' (interval" in body["error"] and m.id in body["error"]
    assert "short by 0.250000 EUR (250000 token units)" in body["error"]
    assert env.bid_count() == 0  # nothing stored

    # an offer at a positive price can only earn: no collateral needed
    r = c.post(
        "/bids", json=bid(iv, m, 20.0, 0.01, "sell"), headers={**m.auth, "Idempotency-Key": "s"}
    )
    assert r.status_code == 201, r.text

    deposit(env, m, 1_000_000)  # 1 test euro
    r = c.post("/bids", json=bid(iv, m, 100.0, 0.01), headers={**m.auth, "Idempotency-Key": "a"})
    assert r.status_code == 201, r.text
    first = r.json()["id"]
    # 0.032 MW at 100 EUR/MWh = 0.8 EUR; the first bid holds 0.25 of the 1 EUR: short by 0.05
    big = bid(iv, m, 100.0, 0.032)
    r = c.post("/bids", json=big, headers={**m.auth, "Idempotency-Key": "b"})
    assert r.status_code == 402, r.text
    assert "other open bids up to 0.250000 EUR" in r.json()["error"]
    assert "short by 0.050000 EUR (50000 token units)" in r.json()["error"]
    # the same key again is the stored bid, whatever the collateral now
    again = c.post(
        "/bids", json=bid(iv, m, 100.0, 0.01), headers={**m.auth, "Idempotency-Key": "a"}
    )
    assert again.status_code == 200 and again.json()["id"] == first
    # a signed bid is held to the same rule
    signed = env.signed_bid(m, iv, [(100.0, 0.032)])
    r = c.post("/bids/signed", json=signed)
    assert r.status_code == 402 and "short by 0.050000 EUR" in r.json()["error"]
    # cancelling the first bid frees its cover
    assert c.delete(f"/bids/{first}", headers=m.auth).status_code == 200
    r = c.post("/bids", json=big, headers={**m.auth, "Idempotency-Key": "b"})
    assert r.status_code == 201, r.text

    # the interval is settled: its bids no longer count, the settled debit does
    with env.service.db.session() as s:
        repo.save_metered_settlement(
            s, iv, "0x" + "11" * 32, {m.account.address.lower(): -900_000}, [], [], 900_000
        )
    later = env.open_interval(NOON + timedelta(hours=1))
    r = c.post("/bids", json=bid(later, m, 100.0, 0.01), headers={**m.auth, "Idempotency-Key": "c"})
    assert r.status_code == 402, r.text
    assert "settled position -0.900000 EUR" in r.json()["error"]
    assert "short by 0.150000 EUR" in r.json()["error"]
    # 0.004 MW at 100 EUR/MWh is 0.1 EUR, exactly what is left: covered
    r = c.post(
        "/bids", json=bid(later, m, 100.0, 0.004), headers={**m.auth, "Idempotency-Key": "d"}
    )
    assert r.status_code == 201, r.text
    # an interval whose clearing failed is never settled: its bids stop counting
    third = env.open_interval(NOON + timedelta(hours=2))
    over = bid(third, m, 100.0, 0.004)
    r = c.post("/bids", json=over, headers={**m.auth, "Idempotency-Key": "e"})
    assert r.status_code == 402, r.text
    with env.service.db.session() as s:
        repo.set_interval_state(s, later, ("open",), "failed")
    r = c.post("/bids", json=over, headers={**m.auth, "Idempotency-Key": "e"})
    assert r.status_code == 201, r.text


def test_a_vault_file_is_refused_on_the_in_process_chain(tmp_path: Any) -> None:
    cfg = ServiceSettings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}", network=NET, vault_file="vault.json"
    )
    with pytest.raises(FieldError, match="embedded_vault"):
        MarketService.start(cfg)


def test_a_withdrawal_request_reduces_the_cover_at_once(vaulted: Env) -> None:
    """Collateral given notice of withdrawal no longer covers bids: a bid placed after the
    request is judged against what is left (402), though nothing has left the vault yet; a
    cancelled request covers bids again."""
    env, c = vaulted, vaulted.client
    chain = env.service.chain
    assert chain is not None and chain.vault is not None
    m = env.join()
    iv = env.open_interval(NOON)
    deposit(env, m, 1_000_000)  # 1 test euro
    covered = bid(iv, m, 100.0, 0.032)  # 0.8 EUR at worst
    chain.vault.request_withdrawal(m.account.address, 300_000)
    assert chain.vault.balance(m.account.address).withdrawn == 0  # still in the vault
    r = c.post("/bids", json=covered, headers={**m.auth, "Idempotency-Key": "w"})
    assert r.status_code == 402, r.text
    err = r.json()["error"]
    assert "requested for withdrawal 0.300000 EUR" in err
    assert "covers 0.700000 EUR" in err and "short by 0.100000 EUR (100000 token units)" in err
    assert env.bid_count() == 0
    chain.vault.cancel_withdrawal(m.account.address)
    r = c.post("/bids", json=covered, headers={**m.auth, "Idempotency-Key": "w"})
    assert r.status_code == 201, r.text
