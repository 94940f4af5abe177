"""Readings are validated at one place: refused with a reason and nothing stored, conflicts
kept aside, duplicates idempotent."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from feederdao.domain.market import Participant, ParticipantDevice
from feederdao.domain.network import DeviceKind
from feederdao.governance import signing
from feederdao.metering.book import ReadingBook
from feederdao.metering.errors import MeteringError, ReadingsRefused
from feederdao.metering.readings import MeterReading, register
from feederdao.workflows.metering import reading_for, reading_verifier, sign_reading
from tests.metering.keys import DOMAIN, meter_key

ALICE = Participant(
    "alice", 3, (ParticipantDevice("pv-a", DeviceKind.PV, 0.0, 0.010, s_mva=0.010),)
)
BOB = Participant("bob", 5, (ParticipantDevice("load-b", DeviceKind.LOAD, 0.0, 0.004),))
KA, MA = meter_key(1)
KB, MB = meter_key(2)


def book(closes_at_s: float = 1000.0) -> ReadingBook:
    return ReadingBook.of(
        7,
        4,
        0.25,
        closes_at_s,
        [register(MA, ALICE, ("pv-a",)), register(MB, BOB, ("load-b",))],
        reading_verifier(DOMAIN),
    )


def signed(
    key: str, meter: str, device: str, period: int, net_wh: int, seq: int = 1
) -> MeterReading:
    return sign_reading(key, DOMAIN, reading_for(meter, 7, period, device, net_wh, seq))


def refused(b: ReadingBook, batch: list[MeterReading], at: float = 10.0) -> list[str]:
    before = dict(b.readings)
    with pytest.raises(ReadingsRefused) as info:
        b.ingest(batch, at)
    assert b.readings == before, "a refused batch stored something"
    return [r.reason for r in info.value.refusals]


def test_reading_digest_is_eip712() -> None:
    r = reading_for(MA, 7, 2, "pv-a", 1234, 9)
    message = {**r.message(), "meter": Account.from_key(KA).address}
    encoded = encode_typed_data(full_message=signing.typed_data(DOMAIN, "Reading", message))
    # a wallet's EIP-712 signature over the same message verifies through the fast path
    wallet = "0x" + bytes(Account.sign_message(encoded, KA).signature).hex()
    assert reading_verifier(DOMAIN)(replace(r, signature=wallet)) == MA
    assert sign_reading(KA, DOMAIN, r).signature == wallet  # RFC 6979: the same signature


def test_valid_batch_is_stored_and_idempotent() -> None:
    b = book()
    batch = [signed(KA, MA, "pv-a", 0, 2000), signed(KB, MB, "load-b", 0, -800)]
    assert b.ingest(batch, 10.0).accepted == 2
    again = b.ingest(batch, 11.0)
    assert (again.accepted, again.duplicates) == (0, 2)
    assert b.net_export_wh() == {("pv-a", 0): 2000, ("load-b", 0): -800}


def test_forged_signature_is_refused() -> None:
    b = book()
    forged = signed(KB, MA, "pv-a", 0, 2000)  # bob's meter key claims to be alice's meter
    assert refused(b, [forged]) == ["bad-signature"]
    tampered = signed(KA, MA, "pv-a", 0, 2000)
    tampered = MeterReading(MA, 7, 0, "pv-a", 0, 2400, 1, tampered.signature)  # value changed
    assert refused(b, [tampered]) == ["bad-signature"]
    garbage = MeterReading(MA, 7, 0, "pv-a", 0, 2000, 1, "0x1234")
    assert refused(b, [garbage]) == ["bad-signature"]


def test_reading_for_another_participants_device_is_refused() -> None:
    b = book()
    assert refused(b, [signed(KA, MA, "load-b", 0, 500)]) == ["device-not-registered"]


def test_unknown_meter_is_refused() -> None:
    k, m = meter_key(99)
    assert refused(book(), [signed(k, m, "pv-a", 0, 1)]) == ["unknown-meter"]


def test_energy_beyond_capability_is_refused() -> None:
    b = book()
    # 10 kW for 15 min is 2,500 Wh; 2 % accuracy allows 2,551 Wh
    assert b.ingest([signed(KA, MA, "pv-a", 1, 2550)], 10.0).accepted == 1
    assert refused(b, [signed(KA, MA, "pv-a", 2, 2600)]) == ["beyond-capability"]
    assert refused(b, [signed(KB, MB, "load-b", 2, -1100)]) == ["beyond-capability"]


def test_conflict_is_kept_never_overwritten() -> None:
    b = book()
    first = signed(KA, MA, "pv-a", 0, 2000)
    b.ingest([first], 10.0)
    second = signed(KA, MA, "pv-a", 0, 1500, seq=2)
    assert refused(b, [second]) == ["conflict"]
    assert b.readings[first.key] == first
    assert b.conflicts == [(first, second)]


def test_conflict_within_one_batch() -> None:
    b = book()
    batch = [signed(KA, MA, "pv-a", 0, 2000), signed(KA, MA, "pv-a", 0, 1999)]
    assert refused(b, batch) == ["conflict"]
    assert not b.readings


def test_after_window_is_refused() -> None:
    assert refused(book(closes_at_s=100.0), [signed(KA, MA, "pv-a", 0, 1)], at=101.0) == [
        "after-window"
    ]


def test_one_bad_reading_stores_nothing_of_its_batch() -> None:
    b = book()
    batch = [signed(KA, MA, "pv-a", 0, 2000), signed(KA, MA, "load-b", 0, 5)]
    assert refused(b, batch) == ["device-not-registered"]
    assert not b.readings


def test_wrong_interval_and_period() -> None:
    b = book()
    other = sign_reading(KA, DOMAIN, reading_for(MA, 8, 0, "pv-a", 1, 1))
    assert refused(b, [other]) == ["wrong-interval"]
    assert refused(b, [signed(KA, MA, "pv-a", 4, 1)]) == ["bad-period"]


def test_malformed_readings_are_errors() -> None:
    with pytest.raises(MeteringError, match="address"):
        MeterReading("0x12", 7, 0, "pv-a", 0, 1, 1)
    with pytest.raises(MeteringError, match="non-negative"):
        MeterReading(MA, 7, 0, "pv-a", -1, 1, 1)
    with pytest.raises(MeteringError, match="no device"):
        register(MA, ALICE, ("load-b",))
    with pytest.raises(MeteringError, match="registered to meters"):
        ReadingBook.of(
            7,
            4,
            0.25,
            0,
            [register(MA, ALICE, ("pv-a",)), register(MB, ALICE, ("pv-a",))],
            reading_verifier(DOMAIN),
        )
