"""Governance as the market sees it: the parameters the next clearing uses, the proposals."""

from __future__ import annotations

from feederdao.domain.params import GridParameters
from feederdao.governance.dao import ProposalStatus
from feederdao.governance.reader import Reading
from feederdao.workflows.market.context import MarketContext


class Governance:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx

    def read_parameters(self) -> Reading:
        """The parameters the next clearing uses: the safe reader's, or defaults with no chain."""
        if self.ctx.chain is None:
            return Reading(GridParameters(), "fresh", ())
        return self.ctx.chain.reader.read()

    def proposals(self) -> list[ProposalStatus]:
        """Every proposal on the Governor (none without a chain)."""
        return self.ctx.chain.dao.proposals() if self.ctx.chain else []
