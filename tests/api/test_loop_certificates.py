"""The operator loop mints certificates of origin on the embedded chain: after an interval's
metered settlement, step ``certify`` mints every metered PV export, period by period, to the
buyers it supplied (the rest to the producer); a retry after a failure, or after a crash
part-way, mints only what the chain does not hold yet."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feederdao.domain.network import DeviceKind
from feederdao.errors import FieldError
from feederdao.store import repositories as repo
from feederdao.workflows.market import ServiceSettings
from feederdao.workflows.market.chain import certificates_address, embedded_certificates_of
from feederdao.workflows.metering import reading_for, sign_reading
from tests.api.conftest import Env, make_env


def test_the_loop_mints_the_metered_exports_once(tmp_path: Path) -> None:
    env = make_env(
        f"sqlite:///{tmp_path / 'market.db'}",
        str(tmp_path),
        certificates="embedded",
        retry_delay_s=1.0,
    )
    try:
        asyncio.run(_run(env))
    finally:
        env.service.db.dispose()


async def _run(env: Env) -> None:
    svc, op, c = env.service, env.operator, env.client
    chain = svc.chain
    assert chain is not None and chain.certificates is not None
    certs = chain.certificates
    env.clock.now = datetime(2026, 6, 21, 10, 50, tzinfo=UTC)
    await op.tick()  # opens the interval 11:00–12:00
    iv = c.get("/intervals").json()[0]["id"]
    buyer, seller = env.join(DeviceKind.LOAD), env.join(DeviceKind.PV)
    env.trade_each_period(buyer, seller, iv, 4)
    keys = env.register_meters(buyer, seller)
    env.clock.now = datetime(2026, 6, 21, 10, 55, tzinfo=UTC)
    await op.tick()  # gate closes, clears, anchors, publishes

    # the load takes 600 Wh a period; the PV exports 300 Wh (all of it to the buyer), then
    # 900 Wh (600 to the buyer, 300 upstream), then nothing; in period 3 its meter is silent
    exports = {0: 300, 1: 900, 2: 0}
    readings = []
    for t in range(4):
        load = reading_for(keys[buyer.device].address, iv, t, buyer.device, -600, t + 1)
        readings.append(sign_reading(keys[buyer.device].key, svc.ctx.domain, load))
        if t in exports:
            pv = reading_for(keys[seller.device].address, iv, t, seller.device, exports[t], t + 1)
            readings.append(sign_reading(keys[seller.device].key, svc.ctx.domain, pv))
    assert op.metering.ingest(readings).accepted == 7
    issues = op.certification.issues(iv)
    assert [(i.period, i.source, i.total_wh) for i in issues] == [
        (0, seller.device, 300),
        (1, seller.device, 900),
    ]

    # a previous attempt crashed after its first transaction: the chain holds period 0's
    first = issues[0]
    wallet = {buyer.id: buyer.account.address, seller.id: seller.account.address}
    certs.issue(
        chain.operator,
        iv,
        first.period,
        first.source,
        wallet[first.producer],
        [(wallet[h], wh) for h, wh in first.holders],
    )

    # settled after the metering window; then certify fails (a wrong account sends it)
    env.clock.now = datetime(2026, 6, 21, 13, 0, 1, tzinfo=UTC)
    await op.settle(iv)
    good = chain.operator
    chain.operator = list(chain.w3.eth.accounts)[7]
    await op.tick()
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "certify") == "failed"
        assert "NotOperator" in repo.last_step(s, iv, "certify").detail  # type: ignore[union-attr]
    assert certs.minted(iv, 1, seller.device) == 0
    chain.operator = good
    env.clock.now += timedelta(seconds=2)
    await op.tick()  # the retry mints period 1 only
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "certify") == "ok"
        assert "1 certificate id(s) were minted before" in repo.last_step(s, iv, "certify").detail  # type: ignore[union-attr]

    # minted equals the metered export of each period, never twice
    assert [certs.minted(iv, t, seller.device) for t in range(4)] == [300, 900, 0, 0]
    held = {
        (who, t): certs.balance(wallet[who], iv, t, seller.device) for who in wallet for t in (0, 1)
    }
    assert held == {(buyer.id, 0): 300, (seller.id, 0): 0, (buyer.id, 1): 600, (seller.id, 1): 300}
    # the operator runs it once more: nothing new
    r = c.post(f"/intervals/{iv}/certify", headers=env.auth("operator"))
    assert r.status_code == 200, r.text
    assert r.json() == {"interval_id": iv, "minted": 0, "held": 2, "minted_wh": 0}
    assert c.post(f"/intervals/{iv}/certify", headers=buyer.auth).status_code == 403
    assert c.post("/intervals/999/certify", headers=env.auth("operator")).status_code == 404
    assert [certs.minted(iv, t, seller.device) for t in range(2)] == [300, 900]
    origin = certs.where_from(buyer.account.address, iv, 1)
    assert [(o.source, o.wh) for o in origin] == [(seller.device, 600)]


def test_the_certificates_setting_is_checked(tmp_path: Path) -> None:
    assert embedded_certificates_of(ServiceSettings(certificates="embedded"))
    assert not embedded_certificates_of(ServiceSettings())
    rpc = "http://127.0.0.1:8545"
    assert not embedded_certificates_of(ServiceSettings(rpc_url=rpc, certificates="c.json"))
    for settings in (
        ServiceSettings(certificates="certificates.json"),
        ServiceSettings(rpc_url=rpc, certificates="embedded"),
    ):
        with pytest.raises(FieldError, match='"embedded" is for the in-process chain'):
            embedded_certificates_of(settings)
    deployment = tmp_path / "certificates.json"
    deployment.write_text('{"vault": "0x0"}')
    with pytest.raises(FieldError, match="names no certificates contract address"):
        certificates_address(deployment)
    deployment.write_text('{"certificates": "0x' + "ab" * 20 + '"}')
    assert certificates_address(deployment).lower() == "0x" + "ab" * 20
