"""What every market use case shares: settings, store, network, chain and clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feederdao.domain.params import GridParameters, ParameterChange, Provenance
from feederdao.governance.signing import MarketDomain
from feederdao.store import repositories as repo
from feederdao.store.db import Database
from feederdao.workflows.errors import ChainRequiredError
from feederdao.workflows.market.chain import ChainContext
from feederdao.workflows.market.settings import ServiceSettings
from feederdao.workflows.market.wholesale import WholesaleSource
from feederdao.workflows.network import OpenNetwork


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MarketContext:
    """One feeder's market: its settings, store, network, (optional) chain and clock."""

    settings: ServiceSettings
    db: Database
    network: OpenNetwork
    chain: ChainContext | None = None
    clock: Callable[[], datetime] = field(default=utc_now)
    wholesale: WholesaleSource | None = None
    _params: GridParameters | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.wholesale is None:
            self.wholesale = WholesaleSource.of(self.settings)

    @property
    def prices(self) -> WholesaleSource:
        """The wholesale prices the market imports and exports at."""
        assert self.wholesale is not None  # set by __post_init__
        return self.wholesale

    def require_chain(self, what: str) -> ChainContext:
        if self.chain is None:
            raise ChainRequiredError(f"this service runs without a chain: {what}")
        return self.chain

    @property
    def domain(self) -> MarketDomain:
        """The EIP-712 domain registrations and bids are signed in."""
        return self.require_chain("signed messages are off").domain

    def parameters_now(self) -> GridParameters:
        """The parameters of the last clearing (defaults before any); kept in memory and
        replaced by each clearing."""
        if self._params is None:
            with self.db.read() as s:
                row = repo.latest_parameters(s)
            self._params = params_of(row.values, row.provenance) if row else GridParameters()
        return self._params

    def use_parameters(self, params: GridParameters) -> None:
        self._params = params


def params_of(values: dict[str, Any], provenance: dict[str, Any]) -> GridParameters:
    """A stored parameter set (values and provenance as JSON) as GridParameters."""
    prov = dict(provenance)
    prov["changes"] = tuple(ParameterChange(**c) for c in prov.get("changes", ()))
    prov["rejected"] = tuple(prov.get("rejected", ()))
    return GridParameters(**values, provenance=Provenance(**prov))
