"""Collateral against bids: with a settlement vault configured, a bid is refused when the
participant's collateral cannot cover what it may cost (:mod:`feederdao.metering.collateral`
states the rule); without one, bids are not checked against collateral.

The vault is read live (``deposited``, ``withdrawn``, and the amount of a withdrawal given
notice, counted as withdrawn from its request); the settled position is the market's own
last metered settlement (the position the next root will hold), so a debit counts from the
moment it is settled, before its root is final.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from feederdao.metering.collateral import Cover, worst_case_units
from feederdao.store import repositories as repo
from feederdao.store.models import IntervalRow, ParticipantRow
from feederdao.workflows.errors import InsufficientCollateralError
from feederdao.workflows.market.context import MarketContext


class Collateral:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx

    @property
    def checked(self) -> bool:
        """Whether bids are checked against collateral (a vault is configured)."""
        return self.ctx.chain is not None and self.ctx.chain.vault is not None

    def _period_hours(self, s: Session, interval_id: int) -> float:
        return repo.get_interval(s, interval_id).period_minutes / 60.0

    def cover(
        self,
        s: Session,
        part: ParticipantRow,
        interval: IntervalRow | None = None,
        side: str = "buy",
        blocks: Sequence[Sequence[float]] = (),
    ) -> Cover:
        """``part``'s collateral against one more bid (none: ``blocks`` empty), read within the
        caller's unit of work."""
        chain = self.ctx.require_chain("there is no vault to hold collateral")
        if chain.vault is None:
            raise InsufficientCollateralError("this service has no settlement vault configured")
        fee = self.ctx.parameters_now().network_fee_eur_per_mwh
        balance = chain.vault.balance(part.address)
        latest = repo.latest_metered_settlement(s)
        position = int((latest.positions if latest else {}).get(part.address.lower(), 0))
        hours: dict[int, float] = {}
        open_units = 0
        for b in repo.open_bids(s, part.id):
            if b.interval_id not in hours:
                hours[b.interval_id] = self._period_hours(s, b.interval_id)
            open_units += worst_case_units(b.side, b.blocks, hours[b.interval_id], fee)
        bid = (
            worst_case_units(side, blocks, interval.period_minutes / 60.0, fee)
            if interval is not None and blocks
            else 0
        )
        return Cover(
            balance.deposited, balance.withdrawn, position, open_units, bid, balance.requested
        )

    def require(
        self,
        s: Session,
        part: ParticipantRow,
        interval: IntervalRow,
        side: str,
        blocks: Sequence[Sequence[float]],
        label: str,
    ) -> None:
        """Refuse the bid ``label`` when ``part``'s collateral cannot cover it."""
        chain = self.ctx.chain
        if chain is None or chain.vault is None:
            return
        repo.lock_participant(s, part.id)
        cover = self.cover(s, part, interval, side, blocks)
        if cover.shortfall > 0:
            raise InsufficientCollateralError(
                f"{label} of participant {part.id} {cover.explain()}; deposit more in the "
                f"settlement vault {chain.vault.addresses.vault} or bid less"
            )
