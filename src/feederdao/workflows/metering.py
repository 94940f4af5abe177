"""Metered settlement end to end: meters sign readings, the book validates them, deviations
are settled, positions become a Merkle root the vault holds, participants withdraw.

The EIP-712 code is governance's (:mod:`feederdao.governance.signing`, a ``Reading`` type
beside ``Bid``); the validation and the settlement are :mod:`feederdao.metering`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from feederdao.domain.clearing import ClearingResult
from feederdao.domain.market import Participant
from feederdao.governance import signing
from feederdao.governance.merkle import PositionTree
from feederdao.governance.signing import MarketDomain
from feederdao.metering.book import ReadingBook, Recover
from feederdao.metering.errors import MeteringError
from feederdao.metering.readings import MeteredDevice, MeterReading, MeterRegistration, register
from feederdao.metering.settlement import (
    DeviationSettlement,
    Schedule,
    cumulative_positions,
    schedule_of,
    settle_deviations,
)


def reading_verifier(domain: MarketDomain) -> Recover:
    """Recovers the signer of a reading under ``domain`` (libsecp256k1, digest computed
    directly); a malformed signature is a MeteringError."""
    separator = signing.domain_separator(domain)

    def recover(r: MeterReading) -> str:
        try:
            return signing.recover_digest_lower(
                signing.reading_digest(separator, r.message()), r.signature
            )
        except signing.SignatureError as exc:
            raise MeteringError(str(exc)) from exc

    return recover


def sign_reading(private_key: str | bytes, domain: MarketDomain, r: MeterReading) -> MeterReading:
    """``r`` signed by the meter's key."""
    digest = signing.reading_digest(signing.domain_separator(domain), r.message())
    return MeterReading(
        r.meter,
        r.interval,
        r.period,
        r.device,
        r.imported_wh,
        r.exported_wh,
        r.sequence,
        signing.sign_digest(private_key, digest),
    )


def reading_for(
    meter: str, interval: int, period: int, device: str, net_export_wh: int, sequence: int
) -> MeterReading:
    """An unsigned reading of a net export (negative: import)."""
    return MeterReading(
        meter,
        interval,
        period,
        device,
        max(-net_export_wh, 0),
        max(net_export_wh, 0),
        sequence,
    )


@dataclass(frozen=True)
class IntervalSettlement:
    """One interval settled: the schedule, the deviation settlement, every account's cumulative
    position and the tree over them (its root is what the operator posts)."""

    interval: int
    schedule: Schedule
    settlement: DeviationSettlement
    positions: dict[str, int]
    tree: PositionTree


def settle_interval(
    interval: int,
    result: ClearingResult,
    participants: Iterable[Participant],
    book: ReadingBook,
    operator: str,
    previous: Mapping[str, int] | None = None,
) -> IntervalSettlement:
    """Settle interval ``interval`` from its clearing and its readings, at the deviation charge
    the clearing ran with; add it to ``previous`` cumulative positions."""
    parts = tuple(participants)
    addresses = {p.participant_id: p.address for p in parts if p.address}
    schedule = schedule_of(result, parts)
    metered = [d.device_id for reg in book.registrations.values() for d in reg.devices]
    settlement = settle_deviations(
        schedule,
        book.net_export_wh(),
        metered,
        result.parameters.deviation_charge_eur_per_mwh,
    )
    missing = [r.participant_id for r in settlement.rows if r.participant_id not in addresses]
    if missing:
        raise MeteringError(f"participants without a wallet address: {', '.join(missing)}")
    positions = cumulative_positions(previous or {}, settlement, addresses, operator)
    return IntervalSettlement(
        interval, schedule, settlement, positions, PositionTree.build(positions)
    )


def registrations_for(
    meters: Mapping[str, str], participants: Iterable[Participant]
) -> list[MeterRegistration]:
    """One meter per device: ``meters`` maps device ids to meter addresses."""
    out = []
    for p in participants:
        for d in p.devices:
            if d.device_id in meters:
                out.append(register(meters[d.device_id], p, (d.device_id,)))
    return out


# -- evidence: what anyone needs to recompute an interval's root ---------------------------


@dataclass(frozen=True)
class Verification:
    interval: int
    readings: int
    substituted: int
    claimed_root: str
    computed_root: str

    @property
    def matches(self) -> bool:
        return self.claimed_root == self.computed_root


def evidence(
    settled: IntervalSettlement,
    book: ReadingBook,
    domain: MarketDomain,
    charge_eur_per_mwh: float,
    addresses: Mapping[str, str],
    operator: str,
    previous: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The interval's settlement inputs and its root as one JSON-able document: the schedule
    and prices the anchored clearing set, the meters' registrations, every signed reading,
    the previous positions and the root."""
    s = settled.schedule
    return {
        "interval": settled.interval,
        "domain": {"chain_id": domain.chain_id, "verifying_contract": domain.verifying_contract},
        "deviation_charge_eur_per_mwh": charge_eur_per_mwh,
        "operator": operator.lower(),
        "schedule": {
            "n_periods": s.n_periods,
            "period_hours": s.period_hours,
            "export_wh": [[d, t, wh] for (d, t), wh in sorted(s.export_wh.items())],
            "owner": dict(s.owner),
            "bus_of": dict(s.bus_of),
            "dlmp": {str(b): list(v) for b, v in s.dlmp.items()},
            "day_ahead_units": dict(s.day_ahead_units),
            "merchandising_surplus_units": s.merchandising_surplus_units,
        },
        "registrations": [
            {
                "meter": r.meter,
                "participant_id": r.participant_id,
                "devices": [asdict(d) for d in r.devices],
            }
            for r in book.registrations.values()
        ],
        "readings": [asdict(r) for r in book.readings.values()],
        "addresses": {k: v.lower() for k, v in addresses.items()},
        "previous": dict(previous or {}),
        "root": "0x" + settled.tree.root.hex(),
    }


def verify_evidence(doc: Mapping[str, Any]) -> tuple[Verification, IntervalSettlement]:
    """Recompute an interval's root from its evidence: every signature and rule checked again,
    the deviations settled again, the tree rebuilt."""
    try:
        interval = int(doc["interval"])
        domain = MarketDomain(
            int(doc["domain"]["chain_id"]), str(doc["domain"]["verifying_contract"])
        )
        sd = doc["schedule"]
        schedule = Schedule(
            int(sd["n_periods"]),
            float(sd["period_hours"]),
            {(str(d), int(t)): int(wh) for d, t, wh in sd["export_wh"]},
            {str(k): str(v) for k, v in sd["owner"].items()},
            {str(k): int(v) for k, v in sd["bus_of"].items()},
            {int(b): tuple(float(x) for x in v) for b, v in sd["dlmp"].items()},
            {str(k): int(v) for k, v in sd["day_ahead_units"].items()},
            int(sd["merchandising_surplus_units"]),
        )
        regs = [
            MeterRegistration(
                r["meter"],
                r["participant_id"],
                tuple(MeteredDevice(**d) for d in r["devices"]),
            )
            for r in doc["registrations"]
        ]
        readings = [MeterReading(**r) for r in doc["readings"]]
        addresses = {str(k): str(v) for k, v in doc["addresses"].items()}
        previous = {str(k): int(v) for k, v in doc["previous"].items()}
        operator = str(doc["operator"])
        charge = float(doc["deviation_charge_eur_per_mwh"])
        claimed = str(doc["root"]).lower()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MeteringError(f"the evidence is incomplete or malformed: {exc!r}") from exc
    book = ReadingBook.of(
        interval,
        schedule.n_periods,
        schedule.period_hours,
        math.inf,
        regs,
        reading_verifier(domain),
    )
    book.ingest(readings, 0.0)
    metered = [d.device_id for reg in regs for d in reg.devices]
    settlement = settle_deviations(schedule, book.net_export_wh(), metered, charge)
    positions = cumulative_positions(previous, settlement, addresses, operator)
    tree = PositionTree.build(positions)
    settled = IntervalSettlement(interval, schedule, settlement, positions, tree)
    return (
        Verification(
            interval, len(readings), len(settlement.substituted), claimed, "0x" + tree.root.hex()
        ),
        settled,
    )


# -- the demo's metered day on the embedded chain -------------------------------------------


@dataclass(frozen=True)
class MeteredDay:
    readings: int
    substituted: int
    settlement: DeviationSettlement
    root: str
    challenge_window_s: int
    withdrawer: str
    withdrawn_units: int
    position_units: int
    deposit_units: int
    notice_s: int = 0  # the withdrawal's notice (on the in-process chain's moved clock)


def metered_day_on_chain(
    w3: Any,
    dao: Any,
    result: ClearingResult,
    participants: Iterable[Participant],
    seed: int = 0,
) -> MeteredDay:
    """The demo's metered settlement on a development chain: one meter per participant device
    delivers the day with seeded deviations, signs its readings; the book validates them; the
    deviations are settled; a vault with a test euro token is deployed; the operator deposits
    collateral covering every credit, the first prosumer owed money deposits too; the root is
    posted, the challenge window passes, the root is finalised; that prosumer withdraws
    exactly what the settlement says."""
    from eth_account import Account

    from feederdao.domain.network import DeviceKind
    from feederdao.governance.chain import DevChain
    from feederdao.governance.vault import Vault, deploy_vault
    from feederdao.metering.delivery import DeviationModel, deliver

    accounts = list(w3.eth.accounts)
    parts = [p for p in participants if p.devices]
    wallets = [accounts[3 + i] if 3 + i < len(accounts) else "" for i in range(len(parts))]
    wallets = [
        w or Account.from_key((0xD3110 + i).to_bytes(32, "big")).address
        for i, w in enumerate(wallets)
    ]
    parts = [replace_address(p, w) for p, w in zip(parts, wallets, strict=True)]
    devices = [d.device_id for p in parts for d in p.devices]
    keys = {dev: "0x" + (0x3E7E12 + i).to_bytes(32, "big").hex() for i, dev in enumerate(devices)}
    meters = {dev: Account.from_key(k).address for dev, k in keys.items()}
    domain = MarketDomain(int(w3.eth.chain_id), dao.settlement)
    book = ReadingBook.of(
        1,
        result.n_periods,
        result.period_hours,
        math.inf,
        registrations_for(meters, parts),
        reading_verifier(domain),
    )
    schedule = schedule_of(result, parts)
    pv = frozenset(d.device_id for p in parts for d in p.devices if d.kind is DeviceKind.PV)
    delivered = deliver(
        schedule.export_wh,
        book.registrations,
        result.n_periods,
        result.period_hours,
        pv,
        DeviationModel(seed=seed, stubborn=tuple(sorted(pv)[:1])),
    )
    readings = [
        sign_reading(keys[dev], domain, reading_for(meters[dev], 1, t, dev, wh, t + 1))
        for (dev, t), wh in sorted(delivered.items())
    ]
    book.ingest(readings, 0.0)
    settled = settle_interval(1, result, parts, book, dao.operator)
    vault = Vault(w3, deploy_vault(w3, accounts[0], dao))
    credits = sum(max(v, 0) for v in settled.positions.values())
    vault.mint(accounts[0], dao.operator, credits + 10**6)
    vault.deposit(dao.operator, credits + 10**6)
    owed = [p for p in parts if settled.positions[str(p.address).lower()] > 0]
    who = next((str(p.address) for p in owed if str(p.address) in accounts), accounts[3])
    deposit = 5 * 10**6
    vault.mint(accounts[0], who, deposit)
    vault.deposit(who, deposit)
    vault.post_root(dao.operator, 1, settled.tree.root)
    window = vault.challenge_window_s()
    DevChain(w3).advance_time(window + 1)
    vault.finalize(accounts[0], 1)
    position = settled.positions.get(who.lower(), 0)
    proof = settled.tree.proof(who)
    amount = vault.available(who, position, proof)
    # a withdrawal is given notice; the in-process chain's clock is moved past it
    vault.request_withdrawal(who, amount)
    notice = vault.notice_base_s() + window
    DevChain(w3).advance_time(notice + 1)
    vault.withdraw(who, amount, position, proof)
    return MeteredDay(
        len(readings),
        len(settled.settlement.substituted),
        settled.settlement,
        "0x" + settled.tree.root.hex(),
        window,
        who,
        vault.balance(who).withdrawn,
        position,
        deposit,
        notice,
    )


def replace_address(p: Participant, address: str) -> Participant:
    from dataclasses import replace

    return replace(p, address=address)
