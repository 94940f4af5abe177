"""Wholesale prices are a setting: a CSV step profile or flat prices; unset, the service runs on
a placeholder and says so (the health and market answers; the startup line is checked with the
served process in test_hostile.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from feederdao.domain.network import DeviceKind
from feederdao.errors import FieldError
from feederdao.store import repositories as repo
from feederdao.workflows.market import ServiceSettings
from feederdao.workflows.market.wholesale import WholesaleSource, read_prices
from tests.api.conftest import GATE, NOON, make_env


def test_a_price_file_is_a_step_profile_over_the_day(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "time,import_eur_per_mwh,export_eur_per_mwh\n00:00,120,50\n07:00,180,70\n22:00,110,40\n"
    )
    source = WholesaleSource.of(ServiceSettings(wholesale_prices=str(path)))
    assert source.kind == "file" and source.note is None
    window = source.window(6, 27)  # 06:45 to 08:15
    assert list(window.import_eur_per_mwh) == [120, 180, 180, 180, 180, 180]
    assert list(window.export_eur_per_mwh) == [50, 70, 70, 70, 70, 70]
    late = source.window(4, 95)  # 23:45 and on into the next day
    assert list(late.import_eur_per_mwh) == [110, 120, 120, 120]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("when,import,export\n00:00,1,1\n", "line 1: the header must be"),
        ("time,import_eur_per_mwh,export_eur_per_mwh\n01:00,100,50\n", "line 2: the first row"),
        (
            "time,import_eur_per_mwh,export_eur_per_mwh\n00:00,100,50\n00:00,90,40\n",
            "line 3: times must increase",
        ),
        ("time,import_eur_per_mwh,export_eur_per_mwh\n00:10,100,50\n", "line 2: time '00:10'"),
        ("time,import_eur_per_mwh,export_eur_per_mwh\n00:00,50,100\n", "line 2: the export"),
        ("time,import_eur_per_mwh,export_eur_per_mwh\n00:00,cheap,1\n", "line 2: could not"),
        ("time,import_eur_per_mwh,export_eur_per_mwh\n00:00,nan,1\n", "line 2: wholesale"),
        ("time,import_eur_per_mwh,export_eur_per_mwh\n", "no prices"),
    ],
)
def test_a_bad_price_file_names_the_line(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(text)
    with pytest.raises(FieldError, match=f"prices.csv {words}" if "line" in words else words) as e:
        read_prices(path)
    assert e.value.field == "wholesale_prices"


def test_flat_prices_need_both_and_exclude_a_file(tmp_path: Path) -> None:
    with pytest.raises(FieldError) as e:
        WholesaleSource.of(ServiceSettings(wholesale_import_eur_per_mwh=100.0))
    assert e.value.field == "wholesale_export_eur_per_mwh"
    with pytest.raises(FieldError, match="not both"):
        WholesaleSource.of(
            ServiceSettings(
                wholesale_prices=str(tmp_path / "p.csv"),
                wholesale_import_eur_per_mwh=1.0,
                wholesale_export_eur_per_mwh=1.0,
            )
        )
    placeholder = WholesaleSource.of(ServiceSettings())
    assert placeholder.kind == "placeholder" and placeholder.note


def test_the_clearing_prices_energy_at_the_configured_wholesale_price(tmp_path: Path) -> None:
    env = make_env(
        f"sqlite:///{tmp_path}/m.db",
        str(tmp_path),
        with_chain=False,
        wholesale_import_eur_per_mwh=100.0,
        wholesale_export_eur_per_mwh=100.0,
    )
    try:
        c, op = env.client, env.auth("operator")
        assert c.get("/health").json()["wholesale_prices"] == "flat"
        assert c.get("/market").json()["notes"] == []
        bus, dev = env.free_device(DeviceKind.LOAD)
        with env.service.db.session() as s:  # no chain: no signed registration
            part = repo.register_participant(s, "p", "0x" + "22" * 20, bus, [dev])
            repo.approve_participant(s, part.id, bus, [dev])
            _, key = repo.issue_api_key(s, "participant", part.id)
        iv = env.open_interval(NOON)
        bid = {
            "interval_id": iv,
            "period": 0,
            "bus": bus,
            "side": "buy",
            "blocks": [{"price_eur_per_mwh": 400.0, "quantity_mw": 0.002}],
        }
        auth = {"Authorization": f"Bearer {key}", "Idempotency-Key": "k"}
        r = c.post("/bids", json=bid, headers=auth)
        assert r.status_code == 201, r.text
        env.clock.now = GATE
        assert c.post(f"/intervals/{iv}/gate-closure", headers=op).status_code == 200
        assert c.post(f"/intervals/{iv}/clear", headers=op).status_code == 200
        prices = c.get(f"/intervals/{iv}/prices", headers=op).json()
        # with import and export at 100 EUR/MWh the energy part is 100 everywhere (the
        # placeholder's shape would put it between about 60 and 200)
        assert {round(p["energy"], 6) for p in prices} == {100.0}
    finally:
        env.service.db.dispose()
