"""A metered day on a small feeder, from the clearing to every participant's withdrawal, on
the embedded chain and on anvil: cleared, delivered with seeded deviations, metered by one
meter per device, signed, validated, settled, posted as one root, finalised after the
challenge window, withdrawn to the token's smallest unit."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest
from eth_account import Account
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import Wei

from feederdao.domain.clearing import ClearingResult
from feederdao.domain.network import DeviceKind
from feederdao.domain.params import GridParameters
from feederdao.governance.certificates import Certificates, deploy_certificates
from feederdao.governance.merkle import PositionTree
from feederdao.governance.vault import Vault, deploy_vault
from feederdao.metering.book import ReadingBook
from feederdao.metering.delivery import DeviationModel, deliver
from feederdao.metering.origin import allocate
from feederdao.metering.settlement import schedule_of
from feederdao.workflows.clearing import Market, run_clearing
from feederdao.workflows.metering import (
    evidence,
    reading_for,
    reading_verifier,
    registrations_for,
    settle_interval,
    sign_reading,
    verify_evidence,
)
from feederdao.workflows.network import OpenNetwork
from feederdao.workflows.workbench import open_market
from tests.governance.conftest import make_dev
from tests.metering.keys import DOMAIN, meter_key

PERIODS = 4
UNIT = 10**6


@pytest.fixture(scope="module")
def cleared(lv_rural: OpenNetwork) -> tuple[Market, ClearingResult]:
    market = open_market(lv_rural, periods=PERIODS, start=datetime(2016, 6, 21, 11), seed=3)
    params = GridParameters(deviation_charge_eur_per_mwh=8.0)
    return market, run_clearing(market, params).result


def test_metered_day_settles_and_every_participant_withdraws_exactly(
    any_chain: Web3, cleared: tuple[Market, ClearingResult]
) -> None:
    market, result = cleared
    d = make_dev(any_chain)
    w3 = d.w3
    # participant wallets: local keys, funded with ether, signing their own transactions
    parts = [p for p in market.registry.values() if p.devices]
    wallets = [Account.from_key((0xBEEF00 + i).to_bytes(32, "big")) for i in range(len(parts))]
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(wallets), layer=0)
    for acct in wallets:
        tx = w3.eth.send_transaction({"from": d.deployer, "to": acct.address, "value": Wei(10**18)})
        w3.eth.wait_for_transaction_receipt(tx)
    parts = [replace(p, address=a.address) for p, a in zip(parts, wallets, strict=True)]

    # one meter per device; the meters' keys are their own, not the wallets'
    devices = [dev.device_id for p in parts for dev in p.devices]
    keys = {dev: meter_key(i) for i, dev in enumerate(devices)}
    regs = registrations_for({dev: k[1] for dev, k in keys.items()}, parts)
    book = ReadingBook.of(1, PERIODS, result.period_hours, 10_000.0, regs, reading_verifier(DOMAIN))

    schedule = schedule_of(result, parts)
    pv = frozenset(dev.device_id for p in parts for dev in p.devices if dev.kind is DeviceKind.PV)
    stubborn = sorted(pv)[:1]
    delivered = deliver(
        schedule.export_wh,
        book.registrations,
        PERIODS,
        result.period_hours,
        pv,
        DeviationModel(seed=7, stubborn=tuple(stubborn)),
    )
    missing = (devices[-1], PERIODS - 1)  # one reading never arrives
    readings = [
        sign_reading(keys[dev][0], DOMAIN, reading_for(keys[dev][1], 1, t, dev, wh, sequence=t + 1))
        for (dev, t), wh in sorted(delivered.items())
        if (dev, t) != missing
    ]
    assert book.ingest(readings, 100.0).accepted == len(readings)
    assert book.ingest(readings[:5], 101.0).duplicates == 5  # resent: idempotent

    settled = settle_interval(1, result, parts, book, d.operator)
    s = settled.settlement
    assert s.balanced
    assert s.substituted == (missing,)
    assert any(r.deviation_wh for r in s.rows), "the seeded deviations must show"
    assert sum(settled.positions.values()) == 0
    # anyone recomputes the root from the evidence (signatures, rules, settlement, tree)
    addresses = {p.participant_id: str(p.address) for p in parts}
    doc = json.loads(json.dumps(evidence(settled, book, DOMAIN, 8.0, addresses, d.operator)))
    check, _ = verify_evidence(doc)
    assert check.matches and check.computed_root == "0x" + settled.tree.root.hex()

    vault = Vault(w3, deploy_vault(w3, d.deployer, d.addresses))
    deposits: dict[str, int] = {}
    for who, pos in settled.positions.items():
        deposits[who] = max(0, -pos) + 5 * UNIT  # collateral covering any debit
        vault.mint(d.deployer, who, deposits[who])
        vault.deposit(who, deposits[who])
    vault.post_root(d.operator, 1, settled.tree.root)
    d.chain.advance_time(vault.challenge_window_s() + 1)
    vault.finalize(d.carol, 1)

    for who in settled.positions:  # every participant gives notice at once
        vault.request_withdrawal(who, deposits[who] + settled.positions[who])
    d.chain.advance_time(vault.notice_base_s() + vault.challenge_window_s() + 1)
    onchain = PositionTree.build(settled.positions)
    assert onchain.root == settled.tree.root
    for who, pos in settled.positions.items():
        owed = deposits[who] + pos
        proof = settled.tree.proof(who)
        assert vault.available(who, pos, proof) == owed
        before = vault.balance(who).wallet
        vault.withdraw(who, owed, pos, proof)
        assert vault.balance(who).wallet - before == owed
    # proof of origin: every Wh of metered PV export is one certificate, shared among buyers
    certs = Certificates(w3, deploy_certificates(w3, d.deployer, d.operator))
    address_of = {p.participant_id: str(p.address) for p in parts}
    issues = allocate(book.net_export_wh(), schedule.owner, pv)
    assert issues, "the midday PV exports"
    for issue in issues:
        holders = [(address_of[h], wh) for h, wh in issue.holders]
        certs.issue(d.operator, 1, issue.period, issue.source, address_of[issue.producer], holders)
    for (dev, t), wh in book.net_export_wh().items():
        if dev in pv and wh > 0:
            assert certs.minted(1, t, dev) == wh
    shared = [(h, i) for i in issues for h, _ in i.holders if h != i.producer]
    assert shared, "some PV export supplied a local buyer"
    if shared:
        holder, issue = shared[0]
        origins = certs.where_from(address_of[holder], 1, issue.period)
        assert {o.source for o in origins} >= {issue.source}
        wh = certs.balance(address_of[holder], 1, issue.period, issue.source)
        certs.retire(address_of[holder], 1, issue.period, issue.source, wh)
        assert certs.balance(address_of[holder], 1, issue.period, issue.source) == 0
        assert sum(o.wh for o in certs.where_from(address_of[holder], 1, issue.period)) == sum(
            o.wh for o in origins
        )  # retired certificates still answer where the energy came from

    final = s.final()
    for p in parts:
        assert settled.positions[p.address.lower()] == final[p.participant_id]  # type: ignore[union-attr]
    assert vault.token.functions.balanceOf(vault.vault.address).call() == 0
