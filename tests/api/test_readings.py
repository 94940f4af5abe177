"""Readings through the market API: batched, idempotent, refused with reasons and nothing
stored; meters registered by the operator only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from eth_account import Account
from fastapi import FastAPI

from feederdao.api.ratelimit import ClientLimiter
from feederdao.domain.network import DeviceKind
from feederdao.workflows.metering import reading_for, sign_reading
from tests.api.conftest import NOON, Env, make_env


def _body(env: Env, key: str, meter: str, interval: int, device: str, wh: int, seq: int = 1,
          period: int = 0) -> dict[str, object]:  # fmt: skip
    r = sign_reading(
        key, env.service.ctx.domain, reading_for(meter, interval, period, device, wh, seq)
    )
    return {
        "meter": r.meter, "interval": r.interval, "period": r.period, "device": r.device,
        "imported_wh": r.imported_wh, "exported_wh": r.exported_wh, "sequence": r.sequence,
        "signature": r.signature,
    }  # fmt: skip


def test_readings_through_the_api(env: Env) -> None:
    pv = env.join(DeviceKind.PV)
    load = env.join(DeviceKind.LOAD)
    interval = env.open_interval(NOON)
    meter = Account.create()
    other = Account.create()
    reg = {"meter": meter.address, "participant_id": pv.id, "devices": [pv.device]}
    assert env.client.post("/meters", json=reg, headers=pv.auth).status_code == 403
    r = env.client.post("/meters", json=reg, headers=env.auth("operator"))
    assert r.status_code == 201, r.text
    again = env.client.post("/meters", json=reg, headers=env.auth("operator"))
    assert again.status_code == 422 and "already registered" in again.json()["error"]
    foreign = {"meter": other.address, "participant_id": pv.id, "devices": [load.device]}
    r = env.client.post("/meters", json=foreign, headers=env.auth("operator"))
    assert r.status_code == 422 and "not approved" in r.json()["error"]

    good = [_body(env, meter.key.hex(), meter.address, interval, pv.device, 100, period=t)
            for t in range(2)]  # fmt: skip
    r = env.client.post("/readings", json={"readings": good})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0}
    r = env.client.post("/readings", json={"readings": good})
    assert r.json() == {"accepted": 0, "duplicates": 2}

    forged = _body(env, other.key.hex(), meter.address, interval, pv.device, 90, period=2)
    foreign_device = _body(env, meter.key.hex(), meter.address, interval, load.device, -5,
                           period=2)  # fmt: skip
    conflict = _body(env, meter.key.hex(), meter.address, interval, pv.device, 150, seq=2)
    fresh = _body(env, meter.key.hex(), meter.address, interval, pv.device, 80, period=3)
    r = env.client.post("/readings", json={"readings": [fresh, forged, foreign_device, conflict]})
    assert r.status_code == 422, r.text
    reasons = [(x["index"], x["reason"]) for x in r.json()["refusals"]]
    assert reasons == [(1, "bad-signature"), (2, "device-not-registered"), (3, "conflict")]
    app = env.client.app
    assert isinstance(app, FastAPI)
    assert len(app.state.metering.readings(interval)) == 2  # nothing of it stored
    shown = env.client.get(
        f"/intervals/{interval}/readings/conflicts", headers=env.auth("auditor")
    ).json()
    assert [c["refused"]["exported_wh"] for c in shown] == [150]

    # after the interval's end and its metering window: refused
    env.clock.now = NOON + timedelta(hours=3)
    late = env.client.post("/readings", json={"readings": [fresh]})
    assert late.status_code == 422
    assert late.json()["refusals"][0]["reason"] == "after-window"

    hostile = env.client.post("/readings", json={"readings": [{**fresh, "exported_wh": -1}]})
    assert hostile.status_code == 422 and "Traceback" not in hostile.text
    unknown = env.client.post(
        "/readings", json={"readings": [_body(env, meter.key.hex(), meter.address, 99999,
                                               pv.device, 1)]}
    )  # fmt: skip
    assert unknown.status_code == 404


def test_readings_survive_a_restart(database_url: str, tmp_path: Path) -> None:
    """Meters, accepted readings and conflicts are in the store: a new service on the same
    database holds them, answers the same reading as a duplicate and a different one as a
    conflict."""
    first = make_env(database_url, str(tmp_path))
    try:
        pv = first.join(DeviceKind.PV)
        interval = first.open_interval(NOON)
        meter = Account.create()
        reg = {"meter": meter.address, "participant_id": pv.id, "devices": [pv.device]}
        assert first.client.post("/meters", json=reg, headers=first.auth("operator")).is_success
        key = meter.key.hex()
        good = [_body(first, key, meter.address, interval, pv.device, 100 + t, period=t)
                for t in range(3)]  # fmt: skip
        r = first.client.post("/readings", json={"readings": good})
        assert r.json() == {"accepted": 3, "duplicates": 0}, r.text
        clash = _body(first, key, meter.address, interval, pv.device, 7, seq=9)
        assert first.client.post("/readings", json={"readings": [clash]}).status_code == 422
        # two different readings of one period in one batch: refused, both kept aside
        pair = [_body(first, key, meter.address, interval, pv.device, wh, seq=wh, period=3)
                for wh in (1, 2)]  # fmt: skip
        assert first.client.post("/readings", json={"readings": pair}).status_code == 422
        domain = first.service.ctx.domain
        operator_key = first.keys["operator"]
    finally:
        first.service.db.dispose()

    second = make_env(database_url, str(tmp_path))
    try:
        assert second.service.ctx.domain == domain  # the deployment's own addresses again
        desk = second.client.app.state.metering  # type: ignore[attr-defined]
        assert [(r.period, r.exported_wh) for r in desk.readings(interval)] == [
            (0, 100), (1, 101), (2, 102)
        ]  # fmt: skip
        assert desk.registrations()[meter.address.lower()].participant_id == pv.id
        r = second.client.post("/readings", json={"readings": good})
        assert r.json() == {"accepted": 0, "duplicates": 3}, r.text
        again = second.client.post("/readings", json={"readings": [clash]})
        assert again.json()["refusals"][0]["reason"] == "conflict"
        shown = second.client.get(
            f"/intervals/{interval}/readings/conflicts",
            headers={"Authorization": f"Bearer {operator_key}"},
        ).json()
        assert [(c["period"], c["held"], c["refused"]["exported_wh"]) for c in shown] == [
            (0, {"sequence": 1, "imported_wh": 0, "exported_wh": 100}, 7),
            (3, None, 1),
            (3, None, 2),
        ]
        # the meter stays registered: registering it again is refused
        again_reg = second.client.post("/meters", json=reg, headers=second.auth("operator"))
        assert again_reg.status_code == 422 and "already registered" in again_reg.json()["error"]
    finally:
        second.service.db.dispose()


def test_refused_batches_are_rate_limited(env: Env) -> None:
    """A client whose batches keep being refused (forged signatures, say) is answered 429
    before its next batch is even checked, until its refusals leave the minute."""
    now = [0.0]
    app = env.client.app
    assert isinstance(app, FastAPI)
    app.state.readings_limiter = ClientLimiter(3, 60.0, clock=lambda: now[0])
    pv = env.join(DeviceKind.PV)
    interval = env.open_interval(NOON)
    meter, forger = Account.create(), Account.create()
    reg = {"meter": meter.address, "participant_id": pv.id, "devices": [pv.device]}
    assert env.client.post("/meters", json=reg, headers=env.auth("operator")).status_code == 201
    forged = _body(env, forger.key.hex(), meter.address, interval, pv.device, 10)
    good = _body(env, meter.key.hex(), meter.address, interval, pv.device, 10)
    for _ in range(3):
        assert env.client.post("/readings", json={"readings": [forged]}).status_code == 422
    r = env.client.post("/readings", json={"readings": [good]})
    assert r.status_code == 429 and r.headers["retry-after"] == "60", r.text
    assert "too many refused batches" in r.json()["error"]
    assert app.state.metering.readings(interval) == []
    now[0] = 61.0
    r = env.client.post("/readings", json={"readings": [good]})
    assert r.json() == {"accepted": 1, "duplicates": 0}, r.text
