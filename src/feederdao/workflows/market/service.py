"""The market service: one object per resource over a shared context, as the API's routers are.

``MarketService.start`` opens the store, the network and (by default) the chain; the API's
routers and the operator loop then call ``service.participants``, ``service.bids``,
``service.intervals``, ``service.clearing``, ``service.anchoring``, ``service.results``,
``service.governance``, ``service.keys`` and ``service.system``; none of them talks to the
store or the chain directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from feederdao.store.db import Database
from feederdao.workflows.market.anchoring import Anchoring
from feederdao.workflows.market.bids import Bids
from feederdao.workflows.market.chain import ChainContext, connect_chain
from feederdao.workflows.market.clearing import Clearing
from feederdao.workflows.market.context import MarketContext
from feederdao.workflows.market.governance import Governance
from feederdao.workflows.market.intervals import Intervals
from feederdao.workflows.market.keys import ApiKeys
from feederdao.workflows.market.login import WalletLogin
from feederdao.workflows.market.participants import Participants
from feederdao.workflows.market.results import Results
from feederdao.workflows.market.settings import ServiceSettings
from feederdao.workflows.market.system import System
from feederdao.workflows.market.wholesale import WholesaleSource
from feederdao.workflows.network import OpenNetwork, open_network


class MarketService:
    """One feeder's market: its network, store, and (optionally) chain."""

    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx
        self.participants = Participants(ctx)
        self.keys = ApiKeys(ctx.db, lambda: ctx.clock())
        self.login = WalletLogin(ctx)
        self.bids = Bids(ctx)
        self.intervals = Intervals(ctx)
        self.governance = Governance(ctx)
        self.clearing = Clearing(ctx, self.governance)
        self.anchoring = Anchoring(ctx)
        self.results = Results(ctx, self.intervals)
        self.system = System(ctx)

    @classmethod
    def start(cls, settings: ServiceSettings, with_chain: bool = True) -> MarketService:
        wholesale = WholesaleSource.of(settings)  # a bad price file fails before anything runs
        db = Database(settings.database_url, busy_timeout_s=settings.store_busy_timeout_s)
        chain = connect_chain(settings, db) if with_chain else None
        network = open_network(settings.network)
        return cls(MarketContext(settings, db, network, chain, wholesale=wholesale))

    @property
    def settings(self) -> ServiceSettings:
        return self.ctx.settings

    @settings.setter
    def settings(self, value: ServiceSettings) -> None:
        self.ctx.settings = value

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def network(self) -> OpenNetwork:
        return self.ctx.network

    @property
    def chain(self) -> ChainContext | None:
        return self.ctx.chain

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.ctx.clock

    @clock.setter
    def clock(self, value: Callable[[], datetime]) -> None:
        self.ctx.clock = value
