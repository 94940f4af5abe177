"""Shared fixtures: networks are loaded once per session (SimBench parsing takes seconds)."""

from __future__ import annotations

from datetime import datetime

import pytest

from feederdao.grid_model import (
    LoadedNetwork,
    ParticipantRegistry,
    build_profiles,
    build_view,
    load_network,
)
from feederdao.workflows.network import OpenNetwork

SUMMER_DAY = datetime(2016, 6, 21)


def _open(spec: str) -> OpenNetwork:
    loaded = load_network(spec)
    return OpenNetwork(loaded, build_view(loaded.net, loaded.name))


@pytest.fixture(scope="session")
def lv_rural() -> OpenNetwork:
    """SimBench's PV-heavy future LV rural feeder."""
    return _open("1-LV-rural1--2-sw")


@pytest.fixture(scope="session")
def case33() -> OpenNetwork:
    return _open("case33bw")


@pytest.fixture(scope="session")
def lv_rural_day(lv_rural: OpenNetwork) -> tuple[OpenNetwork, ParticipantRegistry, object]:
    profiles = build_profiles(lv_rural.loaded, lv_rural.view, SUMMER_DAY, 96)
    return lv_rural, ParticipantRegistry.from_network(lv_rural.view, profiles), profiles


def loaded(net: object, name: str = "test") -> LoadedNetwork:
    return LoadedNetwork(name, "builtin", net)


@pytest.fixture(scope="session")
def postgres_server() -> object:
    """A PostgreSQL cluster on 127.0.0.1 for the whole run (Debian's package)."""
    from tests.postgres import postgres_server as start

    with start() as url:
        yield url


_databases = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'market.db'}"
    from tests.postgres import create_database

    server = request.getfixturevalue("postgres_server")
    return create_database(server, f"t{next(_databases)}")
