"""The market service's use cases, one module per resource (mirroring ``api/routers``):
settings, chain, participants and keys, bids, intervals, clearing, anchoring, results,
governance, system. :class:`MarketService` holds one of each over a shared context."""

from feederdao.workflows.market.service import MarketService
from feederdao.workflows.market.settings import ServiceSettings

__all__ = ["MarketService", "ServiceSettings"]
