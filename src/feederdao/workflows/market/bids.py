"""Bids and offers: API-key or EIP-712-signed submissions, checked against the market's bid
rules (:mod:`feederdao.domain.bidrules`), stored with idempotency keys; reads and cancels.

A submission validates first (naming the field at fault), then writes in one transaction, so a
refused bid changes nothing; it returns only after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feederdao.domain.bidrules import BidRules
from feederdao.domain.market import Bid, PriceBlock, Side
from feederdao.errors import BidValidationError, FieldError
from feederdao.governance.eip2 import require_low_s
from feederdao.governance.signing import PRICE_SCALE, QUANTITY_SCALE, bid_digest, recover_digest
from feederdao.store import repositories as repo
from feederdao.store.errors import ConflictError, DuplicateKeyError
from feederdao.store.models import BidRow, IntervalRow, ParticipantRow
from feederdao.workflows.errors import NotApprovedError, SignerMismatchError
from feederdao.workflows.market.collateral import Collateral
from feederdao.workflows.market.context import MarketContext


class Bids:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx
        self.collateral = Collateral(ctx)

    def _check(
        self,
        part: ParticipantRow,
        interval: IntervalRow,
        period: int,
        bus: int,
        side: str,
        device_id: str | None,
        blocks: Sequence[tuple[float, float]],
    ) -> dict[str, Any]:
        """The bid's stored content, or the first problem the bid rules find."""
        if part.status != "approved":
            raise NotApprovedError(f"participant {part.id} is {part.status}, not approved")
        if side not in ("buy", "sell"):
            raise FieldError("side", f"side {side!r}: choose buy or sell")
        try:
            bid = Bid(
                "new",
                part.id,
                bus,
                period,
                Side(side),
                tuple(PriceBlock(p, q) for p, q in blocks),
                device_id,
            )
        except BidValidationError as exc:
            raise FieldError(exc.field, exc.reason) from None
        rules = BidRules.of(self.ctx.network.view, self.ctx.parameters_now(), interval.periods)
        found = rules.problems(bid, part.bus, part.devices)
        if found:
            raise FieldError(found[0].field, found[0].reason)
        return {
            "interval_id": interval.id,
            "period": period,
            "bus": bus,
            "side": side,
            "device_id": device_id,
            "blocks": [[float(p), float(q)] for p, q in blocks],
        }

    def submit(
        self,
        participant_id: str,
        interval_id: int,
        period: int,
        bus: int,
        side: str,
        blocks: Sequence[tuple[float, float]],
        idempotency_key: str,
        device_id: str | None = None,
        auth: str = "api-key",
        signature: str | None = None,
        address: str | None = None,
    ) -> tuple[BidRow, bool]:
        """Validate and commit a bid; ``(bid, created)``. Returns only after the commit.

        The participant is ``participant_id``, or the one registered with ``address``. The
        interval's state is read under a lock held until the bid is committed, and the time is
        taken once the lock is held: a bid committed after the gate closed is impossible. With
        a settlement vault, a new bid its participant's collateral cannot cover is refused
        (:class:`~feederdao.workflows.market.collateral.Collateral`)."""
        owner, content = "", {}
        try:
            with self.ctx.db.session() as s:
                if address is not None:
                    part = repo.participant_by_address(s, address)
                    if part is None:
                        raise NotApprovedError(f"address {address} is not a registered participant")
                else:
                    part = repo.get_participant(s, participant_id)
                interval = repo.get_interval(s, interval_id, lock="share")
                owner = part.id
                content = self._check(part, interval, period, bus, side, device_id, blocks)
                if repo.bid_by_key(s, owner, idempotency_key) is None and repo.gate_is_open(
                    interval, self.ctx.clock()
                ):
                    self.collateral.require(
                        s,
                        part,
                        interval,
                        side,
                        content["blocks"],
                        f"bid {idempotency_key!r} (interval {interval.id}, period {period}, "
                        f"{side})",
                    )
                return repo.submit_bid(
                    s, interval, owner, idempotency_key, content, auth, signature, self.ctx.clock()
                )
        except DuplicateKeyError:
            # the same key committed concurrently by another request: answer as a replay
            with self.ctx.db.read() as s:
                again = repo.bid_by_key(s, owner, idempotency_key)
                if again is None or again.content_hash != repo.bid_content_hash(content):
                    raise ConflictError(
                        f"idempotency key {idempotency_key!r} was used for another bid"
                    ) from None
                return again, False

    def submit_signed(self, message: dict[str, Any], signature: str) -> tuple[BidRow, bool]:
        """A bid whose participant's wallet signed the EIP-712 Bid ``message``."""
        chain = self.ctx.require_chain("signed messages are off")
        require_low_s(signature)
        signer = recover_digest(bid_digest(chain.separator, message), signature)
        claimed = str(message["participant"])
        if signer.lower() != claimed.lower():
            raise SignerMismatchError(
                f"signature was made by {signer}, not by participant {claimed}"
            )
        if len(message["prices"]) != len(message["quantities"]):
            raise FieldError("message.quantities", "prices and quantities differ in length")
        blocks = [
            (p / PRICE_SCALE, q / QUANTITY_SCALE)
            for p, q in zip(message["prices"], message["quantities"], strict=True)
        ]
        return self.submit(
            "",
            int(message["interval"]),
            int(message["period"]),
            int(message["bus"]),
            str(message["side"]),
            blocks,
            str(message["nonce"]),
            str(message["device"]) or None,
            auth="eip712",
            signature=signature,
            address=claimed,
        )

    def cancel(self, participant_id: str, bid_id: str) -> BidRow:
        """Cancel one of ``participant_id``'s bids until its interval's gate closes."""
        with self.ctx.db.session() as s:
            return repo.cancel_bid(s, bid_id, participant_id, self.ctx.clock)

    def list(
        self,
        owner: str | None = None,
        interval_id: int | None = None,
        status: str | None = None,
    ) -> list[BidRow]:
        """Bids, oldest first; ``owner`` limits them to one participant's."""
        with self.ctx.db.read() as s:
            return repo.list_bids(s, interval_id, owner, status)

    def get(self, bid_id: str, owner: str | None = None) -> BidRow:
        """One bid; with ``owner``, another participant's bid looks absent."""
        with self.ctx.db.read() as s:
            return repo.get_bid(s, bid_id, owner)
