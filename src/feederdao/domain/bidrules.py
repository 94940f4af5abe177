"""The one set of rules every bid and offer must satisfy, whoever submits it.

The CLI's bid files, the library's ``clear()``, the service and the API all check bids here, so
the same bad bid is refused everywhere with the same words. A problem names the bid, the field
(``bus``, ``period``, ``blocks[1].price_eur_per_mwh``, ...) and the reason.

Two layers:

* what a bid is on its own (:func:`feederdao.domain.market.bid_problems`, run when a
  :class:`~feederdao.domain.market.Bid` is built): ids, 1 to :data:`MAX_BLOCKS` blocks,
  finite prices, positive finite quantities;
* what a market allows (:class:`BidRules`): the bus exists and is supplied, the period lies in
  the window, the participant is registered at that bus and owns the device, every price lies
  within the governed floor and cap, and no block asks for more than the feeder can carry
  (:attr:`NetworkView.supply_capacity_mva`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from feederdao.domain.market import MAX_BLOCKS, Bid, BidProblem, Participant
from feederdao.domain.network import NetworkView
from feederdao.domain.params import GridParameters
from feederdao.errors import BidValidationError

__all__ = ["MAX_BLOCKS", "BidProblem", "BidRules"]


@dataclass(frozen=True)
class BidRules:
    """What bids must satisfy on one feeder, window and parameter set. ``capacity_mw`` is the
    largest quantity one block may ask for (the view's supply capacity; inf when the feeder has
    no rating)."""

    view: NetworkView
    n_periods: int
    price_floor_eur_per_mwh: float
    price_cap_eur_per_mwh: float
    capacity_mw: float

    @classmethod
    def of(cls, view: NetworkView, params: GridParameters, n_periods: int) -> BidRules:
        return cls(
            view,
            n_periods,
            params.price_floor_eur_per_mwh,
            params.price_cap_eur_per_mwh,
            view.supply_capacity_mva,
        )

    def problems(
        self, bid: Bid, bidder_bus: int | None, bidder_devices: Collection[str]
    ) -> list[BidProblem]:
        """Everything wrong with ``bid`` from a bidder registered at ``bidder_bus`` (None: not
        registered) owning ``bidder_devices``."""
        out: list[BidProblem] = []

        def problem(field: str, reason: str) -> None:
            out.append(BidProblem(bid.bid_id, field, reason))

        view = self.view
        if not view.has_bus(bid.bus):
            if bid.bus in view.unsupplied_bus_indices:
                problem("bus", f"bus {bid.bus} is disconnected from the substation")
            else:
                problem("bus", f"bus {bid.bus} does not exist in {view.name!r}")
        if not 0 <= bid.period < self.n_periods:
            problem(
                "period",
                f"period {bid.period} is outside the window's {self.n_periods} period(s) "
                f"(0 to {self.n_periods - 1})",
            )
        if bidder_bus is None:
            problem("participant_id", f"participant {bid.participant_id!r} is not registered")
        elif view.has_bus(bid.bus) and view.canonical_bus(bidder_bus) != view.canonical_bus(
            bid.bus
        ):
            problem(
                "bus",
                f"participant {bid.participant_id!r} is at bus {bidder_bus}, not bus {bid.bus}",
            )
        owns = bid.device_id is None or bid.device_id in bidder_devices
        if bidder_bus is not None and not owns:
            problem(
                "device_id", f"device {bid.device_id!r} does not belong to {bid.participant_id!r}"
            )
        floor, cap, capacity = (
            self.price_floor_eur_per_mwh,
            self.price_cap_eur_per_mwh,
            self.capacity_mw,
        )
        for k, block in enumerate(bid.blocks):
            if not floor <= block.price_eur_per_mwh <= cap:
                problem(
                    f"blocks[{k}].price_eur_per_mwh",
                    f"price {block.price_eur_per_mwh:g} EUR/MWh is outside the market's price "
                    f"floor and cap [{floor:g}, {cap:g}] EUR/MWh",
                )
            if block.quantity_mw > capacity:
                problem(
                    f"blocks[{k}].quantity_mw",
                    f"quantity {block.quantity_mw:g} MW exceeds the feeder's supply capacity "
                    f"of {capacity:g} MVA",
                )
        return out

    def check(
        self, bids: Iterable[Bid], participants: Mapping[str, Participant]
    ) -> tuple[Bid, ...]:
        """Return ``bids`` with buses in the view's canonical numbering, or raise one
        :class:`BidValidationError` listing every problem of every bid."""
        problems: list[BidProblem] = []
        seen: set[str] = set()
        out: list[Bid] = []
        for bid in bids:
            if bid.bid_id in seen:
                problems.append(BidProblem(bid.bid_id, "bid_id", "bid_id is used twice"))
            seen.add(bid.bid_id)
            part = participants.get(bid.participant_id)
            found = self.problems(
                bid,
                part.bus if part is not None else None,
                {d.device_id for d in part.devices} if part is not None else (),
            )
            problems.extend(found)
            if not found:
                out.append(bid.on_bus(self.view.canonical_bus(bid.bus)))
        if problems:
            raise BidValidationError.of(problems)
        return tuple(out)
