"""Every endpoint and role, the bad inputs, and a whole interval, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from eth_account import Account

from feederdao.domain.network import DeviceKind
from feederdao.governance.chain import DevChain
from feederdao.workflows.market.wholesale import PLACEHOLDER_NOTE
from tests.api.conftest import GATE, NOON, Env


def test_registration_needs_the_wallet_signature_and_approval(env: Env) -> None:
    c = env.client
    acct = Account.create()
    bus, dev = env.free_device()
    body = env.registration(acct, "alice", bus, [dev])
    forged = env.registration(Account.create(), "alice", bus, [dev])
    forged["address"] = acct.address
    r = c.post("/participants", json=forged)
    assert r.status_code == 401 and "not by" in r.json()["error"]
    r = c.post("/participants", json={**body, "address": "0x1234"})
    assert r.status_code == 422 and r.json()["field"] == "address"
    other_bus = next(b.index for b in env.service.network.view.buses if b.index != bus)
    moved = env.registration(acct, "alice", other_bus, [dev])
    r = c.post("/participants", json=moved)
    assert r.status_code == 422 and r.json()["field"] == "devices[0]"
    assert c.get("/participants", headers=env.auth("operator")).json() == []

    r = c.post("/participants", json=body)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["status"] == "pending" and r.json()["devices"] == []
    assert c.post("/participants", json=body).status_code == 409
    # not approved yet: no key, and signed bids are refused
    r = c.post(f"/participants/{pid}/api-keys", json={}, headers=env.auth("operator"))
    assert r.status_code == 409
    iv = env.open_interval(NOON)
    m_bid = env.signed_bid(
        type("M", (), {"account": acct, "bus": bus})(),
        iv,
        [(200.0, 0.002)],
    )
    r = c.post("/bids/signed", json=m_bid)
    assert r.status_code == 403 and "pending" in r.json()["error"]

    r = c.post(f"/participants/{pid}/approve", json={}, headers=env.auth("operator"))
    assert r.json()["status"] == "approved" and r.json()["devices"] == [dev]
    key = c.post(f"/participants/{pid}/api-keys", json={}, headers=env.auth("operator")).json()
    me = c.get("/participants/me", headers={"Authorization": f"Bearer {key['api_key']}"})
    assert me.json()["id"] == pid and me.json()["bus"] == bus


def test_roles(env: Env) -> None:
    c = env.client
    m = env.join()
    assert c.get("/participants").status_code == 401
    assert c.get("/participants", headers={"Authorization": "Bearer fdk_nope"}).status_code == 401
    assert c.get("/participants", headers=m.auth).status_code == 403
    assert len(c.get("/participants", headers=env.auth("auditor")).json()) == 1
    for who in (m.auth, env.auth("auditor")):
        r = c.post("/intervals", json={"start": NOON.isoformat()}, headers=who)
        assert r.status_code == 403
        assert c.post(f"/participants/{m.id}/approve", json={}, headers=who).status_code == 403
    other = env.join()
    assert c.get(f"/participants/{other.id}", headers=m.auth).status_code == 404
    assert c.get(f"/participants/{other.id}", headers=env.auth("auditor")).status_code == 200
    assert c.get("/audit/commands", headers=m.auth).status_code == 403
    assert c.get("/audit/commands", headers=env.auth("auditor")).status_code == 200


def test_api_key_bids_are_idempotent_private_and_cancellable_until_gate_closure(env: Env) -> None:
    c = env.client
    a, b = env.join(), env.join()
    iv = env.open_interval(NOON)
    bid = {
        "interval_id": iv,
        "period": 1,
        "bus": a.bus,
        "side": "buy",
        "blocks": [{"price_eur_per_mwh": 180.0, "quantity_mw": 0.003}],
    }
    r1 = c.post("/bids", json=bid, headers={**a.auth, "Idempotency-Key": "k1"})
    assert r1.status_code == 201, r1.text
    r2 = c.post("/bids", json=bid, headers={**a.auth, "Idempotency-Key": "k1"})
    assert r2.status_code == 200 and r2.json()["id"] == r1.json()["id"]
    changed = {**bid, "period": 2}
    r3 = c.post("/bids", json=changed, headers={**a.auth, "Idempotency-Key": "k1"})
    assert r3.status_code == 409 and "k1" in r3.json()["error"]
    assert env.bid_count() == 1
    bid_id = r1.json()["id"]
    # b sees none of a's bids and cannot cancel them
    assert c.get("/bids", headers=b.auth).json() == []
    assert c.get(f"/bids/{bid_id}", headers=b.auth).status_code == 404
    assert c.delete(f"/bids/{bid_id}", headers=b.auth).status_code == 404
    assert [x["id"] for x in c.get("/bids", headers=a.auth).json()] == [bid_id]
    assert len(c.get("/bids", headers=env.auth("auditor")).json()) == 1
    r = c.delete(f"/bids/{bid_id}", headers=a.auth)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # after gate closure: no bids, no cancellations
    r4 = c.post("/bids", json=bid, headers={**a.auth, "Idempotency-Key": "k2"})
    env.clock.now = GATE + timedelta(seconds=1)
    late = c.post("/bids", json=bid, headers={**a.auth, "Idempotency-Key": "k3"})
    assert late.status_code == 409 and "gate" in late.json()["error"]
    r = c.delete(f"/bids/{r4.json()['id']}", headers=a.auth)
    assert r.status_code == 409 and "gate" in r.json()["error"]
    assert env.bid_count() == 2


def test_bad_bids_name_the_field_and_change_nothing(env: Env) -> None:
    c = env.client
    a, b = env.join(), env.join()
    iv = env.open_interval(NOON)
    good = {
        "interval_id": iv,
        "period": 0,
        "bus": a.bus,
        "side": "sell",
        "blocks": [{"price_eur_per_mwh": 50.0, "quantity_mw": 0.002}],
    }

    def block(**kw: object) -> dict[str, object]:
        return {**good, "blocks": [{**good["blocks"][0], **kw}]}  # type: ignore[index]

    bad = [
        (block(quantity_mw=-1.0), 422, "blocks[0].quantity_mw"),
        (block(quantity_mw=5000.0), 422, "blocks[0].quantity_mw"),
        (block(price_eur_per_mwh=1e9), 422, "blocks[0].price_eur_per_mwh"),
        (block(price_eur_per_mwh="cheap"), 422, "blocks[0].price_eur_per_mwh"),
        ({**good, "period": 4}, 422, "period"),
        ({**good, "bus": b.bus}, 422, "bus"),
        ({**good, "bus": 99999}, 422, "bus"),
        ({**good, "device_id": b.device}, 422, "device_id"),
        ({**good, "side": "hold"}, 422, "side"),
        ({**good, "blocks": []}, 422, "blocks"),
        ({**good, "colour": "red"}, 422, "colour"),
        ({**good, "interval_id": 999}, 404, None),
    ]
    for body, status, field in bad:
        r = c.post("/bids", json=body, headers={**a.auth, "Idempotency-Key": "x"})
        assert r.status_code == status, (body, r.text)
        assert r.json()["field"] == field, r.json()
        assert r.json()["error"]
    r = c.post(
        "/bids",
        content=b'{"interval_id": 1, "period": 0, "bus": 1, "side": "buy", "blocks": '
        b'[{"price_eur_per_mwh": NaN, "quantity_mw": 1}]}',
        headers={**a.auth, "Idempotency-Key": "x", "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["field"] == "blocks[0].price_eur_per_mwh"
    r = c.post("/bids", json=good, headers=a.auth)
    assert r.status_code == 422 and r.json()["field"] == "header.idempotency-key"
    assert env.bid_count() == 0


def test_signed_bids(env: Env) -> None:
    c = env.client
    a = env.join()
    iv = env.open_interval(NOON)
    body = env.signed_bid(a, iv, [(210.0, 0.0025), (150.0, 0.001)])
    r = c.post("/bids/signed", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["auth"] == "eip712" and r.json()["blocks"] == [[210.0, 0.0025], [150.0, 0.001]]
    assert c.post("/bids/signed", json=body).status_code == 200  # replay: the same bid
    assert env.bid_count() == 1

    other = env.signed_bid(a, iv, [(210.0, 0.002)], signer=Account.create())
    r = c.post("/bids/signed", json=other)
    assert r.status_code == 401 and "not by participant" in r.json()["error"]
    tampered = env.signed_bid(a, iv, [(210.0, 0.002)])
    tampered["message"]["prices"] = [999_000]
    assert c.post("/bids/signed", json=tampered).status_code == 401
    unsigned = {"message": body["message"]}
    r = c.post("/bids/signed", json=unsigned)
    assert r.status_code == 422 and r.json()["field"] == "signature"
    r = c.post("/bids/signed", json={**body, "signature": "0x" + "00" * 65})
    assert r.status_code == 422 and r.json()["field"] == "signature"
    wrong_bus = env.signed_bid(a, iv, [(210.0, 0.002)])
    wrong_bus["message"]["bus"] = 0
    r = c.post("/bids/signed", json=wrong_bus)
    assert r.status_code == 401  # the signature no longer matches the message
    stranger = env.signed_bid(a, iv, [(210.0, 0.002)])
    stranger["message"]["participant"] = Account.create().address
    assert c.post("/bids/signed", json=stranger).status_code == 401
    assert env.bid_count() == 1


def test_an_interval_from_bids_to_published_and_anchored_results(env: Env) -> None:
    c = env.client
    buyer, seller = env.join(DeviceKind.LOAD), env.join(DeviceKind.PV)
    iv = env.open_interval(NOON)
    assert c.get(f"/intervals/{iv}").json()["gate_closure"].startswith("2026-06-21T11:55")
    for t in range(4):
        r = c.post("/bids/signed", json=env.signed_bid(buyer, iv, [(400.0, 0.003)], period=t))
        assert r.status_code == 201
        r = c.post(
            "/bids/signed", json=env.signed_bid(seller, iv, [(1.0, 0.004)], "sell", period=t)
        )
        assert r.status_code == 201
    # a participant moved by the operator after bidding: its bid no longer passes the rules
    moved = env.join(DeviceKind.LOAD)
    r = c.post("/bids/signed", json=env.signed_bid(moved, iv, [(300.0, 0.001)]))
    assert r.status_code == 201
    stale = r.json()["id"]
    view = env.service.network.view
    elsewhere = next(
        b.index
        for b in view.buses
        if b.index not in view.slack_buses
        and view.canonical_bus(b.index) != view.canonical_bus(moved.bus)
    )
    op = env.auth("operator")
    r = c.post(
        f"/participants/{moved.id}/approve", json={"bus": elsewhere, "devices": []}, headers=op
    )
    assert r.status_code == 200, r.text
    r = c.post(f"/intervals/{iv}/clear", headers=op)
    assert r.status_code == 409 and "gate" in r.json()["error"]
    env.clock.now = GATE
    assert c.post(f"/intervals/{iv}/gate-closure", headers=op).json()["state"] == "gate-closed"
    r = c.post(f"/intervals/{iv}/clear", headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cleared"
    # not public before publication; auditors see it
    assert c.get(f"/intervals/{iv}/prices").status_code == 404
    assert c.get(f"/intervals/{iv}").json()["result_hash"] is None
    assert all(i["result_hash"] is None for i in c.get("/intervals").json())
    assert c.get(f"/intervals/{iv}", headers=env.auth("auditor")).json()["result_hash"]
    prices = c.get(f"/intervals/{iv}/prices", headers=env.auth("auditor")).json()
    n_bus = len(env.service.network.view.buses)
    assert len(prices) == 4 * n_bus
    for p in prices:
        parts = p["energy"] + p["loss"] + p["congestion"] + p["voltage"]
        assert abs(parts - p["dlmp"]) < 1e-6
    a = c.post(f"/intervals/{iv}/anchor", headers=op).json()
    stored = env.service.results.result(iv)
    assert stored.result_hash == "0x" + hashlib.sha256(stored.result_json.encode()).hexdigest()
    assert a["result_hash"] == stored.result_hash and a["transaction"].startswith("0x")
    assert c.post(f"/intervals/{iv}/anchor", headers=op).json()["transaction"] == a["transaction"]
    assert c.post(f"/intervals/{iv}/publish", headers=op).json()["state"] == "published"

    anchor = c.get(f"/intervals/{iv}/anchor").json()
    assert anchor["verified"] is True and anchor["on_chain_hash"] == stored.result_hash
    assert c.get(f"/intervals/{iv}").json()["result_hash"] == stored.result_hash  # now public
    summary = c.get(f"/intervals/{iv}/summary").json()
    assert len(summary["periods"]) == 4 and summary["anchor_tx"] == a["transaction"]
    assert all(p["accepted_buy_mw"] > 0 for p in summary["periods"])
    bus_prices = c.get(f"/intervals/{iv}/prices", params={"bus": buyer.bus}).json()
    assert [p["period"] for p in bus_prices] == [0, 1, 2, 3]
    mine = c.get(f"/intervals/{iv}/settlement", headers=buyer.auth).json()
    assert [s["participant_id"] for s in mine] == [buyer.id] and mine[0]["bought_mwh"] > 0
    everyone = c.get(f"/intervals/{iv}/settlement", headers=env.auth("auditor")).json()
    assert {s["participant_id"] for s in everyone} == {buyer.id, seller.id}
    bids = c.get("/bids", params={"interval_id": iv}, headers=buyer.auth).json()
    assert all(b["accepted_mw"] is not None and b["accepted_mw"][0] > 0 for b in bids)
    dispatch = c.get(f"/intervals/{iv}/dispatch", headers=env.auth("auditor")).json()
    assert {d["device_id"] for d in dispatch} >= {buyer.device, seller.device}
    assert c.get(f"/intervals/{iv}/dispatch", headers=buyer.auth).status_code == 403
    doc = c.get(f"/intervals/{iv}/result", headers=env.auth("auditor")).json()
    assert doc["summary"]["periods"] == 4
    steps = c.get(f"/intervals/{iv}/steps", headers=op).json()
    # the stale bid was left out of the clearing, and the clear step says which and why
    assert steps[0]["detail"].startswith("left out 1 bid(s)")
    assert (
        f"bid {stale!r} bus: participant {moved.id!r} is at bus {elsewhere}" in steps[0]["detail"]
    )
    assert c.get(f"/bids/{stale}", headers=op).json()["accepted_mw"] == [0.0]
    assert [(s["step"], s["status"]) for s in steps] == [
        ("clear", "ok"),
        ("anchor", "ok"),
        ("anchor", "ok"),
        ("publish", "ok"),
    ]
    # the parameters used are kept with their provenance
    params = c.get("/governance/parameters").json()
    assert params["status"] == "fresh" and params["provenance"]["source"] == "chain"


def test_intervals_refuse_overlaps_and_bad_times(env: Env) -> None:
    c, op = env.client, env.auth("operator")
    env.open_interval(NOON)
    r = c.post("/intervals", json={"start": (NOON + timedelta(minutes=30)).isoformat()}, headers=op)
    assert r.status_code == 409
    r = c.post("/intervals", json={"start": "2026-06-21T15:07:00Z"}, headers=op)
    assert r.status_code == 422 and r.json()["field"] == "start"
    r = c.post("/intervals", json={"start": "2026-06-21T15:00:00"}, headers=op)
    assert r.status_code == 422 and r.json()["field"] == "start"
    r = c.post("/intervals", json={"start": "2026-06-21T15:00:00Z", "periods": 500}, headers=op)
    assert r.status_code == 422 and r.json()["field"] == "periods"
    assert [i["start"] for i in c.get("/intervals").json()] == ["2026-06-21T12:00:00Z"]
    assert c.get("/intervals/999").status_code == 404


def test_governance_health_metrics_and_market_info(env: Env) -> None:
    c = env.client
    chain = env.service.chain
    assert chain is not None
    holder = list(chain.w3.eth.accounts)[3]
    chain.dao.delegate(holder)
    DevChain(chain.w3).mine(1)
    chain.dao.propose(holder, {"v_max_pu": 1.04}, "Tighten the upper voltage limit")
    proposals = c.get("/governance/proposals").json()
    assert [(p["description"], p["state"]) for p in proposals] == [
        ("Tighten the upper voltage limit", "Pending")
    ]
    assert c.get("/health").json() == {
        "status": "ok",
        "database": True,
        "store": "ok",
        "chain": True,
        "loop": "off",
        "problems": [],
        "escalations": [],
        "wholesale_prices": "placeholder",
        "notes": [PLACEHOLDER_NOTE],
        "dispatch": {"state": "running", "reason": None, "by": None, "since": None},
    }
    info = c.get("/market").json()
    assert info["wholesale_prices"] == "placeholder" and info["notes"] == [PLACEHOLDER_NOTE]
    assert info["eip712_domain"]["verifyingContract"] == chain.dao.addresses.settlement
    assert "Bid" in info["eip712_types"]
    a = env.join()
    iv = env.open_interval(NOON)
    c.post("/bids/signed", json=env.signed_bid(a, iv, [(100.0, 0.001)]))
    text = c.get("/metrics").text
    assert 'feederdao_bids_total{auth="eip712",outcome="accepted"} 1.0' in text
    assert "feederdao_http_request_seconds_bucket" in text
