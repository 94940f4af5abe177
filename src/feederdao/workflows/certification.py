"""The operator loop's certificates of origin (step ``certify``): once an interval's metered
settlement is done, the metered export of every PV and storage source, period by period, is
minted on the certificates contract (:class:`feederdao.governance.certificates.Certificates`,
1 token = 1 Wh) and allocated to the buyers it supplied by
:func:`feederdao.metering.origin.allocate`; what went upstream stays with the producer.

Only metered readings count: a period settled on its schedule (no reading) issues nothing.
The step is idempotent: a token id (interval, period, source) the chain has minted already is
not minted again, so a retry after a failure part-way mints only what is still missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from feederdao.domain.network import DeviceKind
from feederdao.metering.origin import Issue, allocate
from feederdao.store import repositories as repo
from feederdao.workflows.errors import StepFailed
from feederdao.workflows.market import MarketService
from feederdao.workflows.metering_desk import MeteringDesk

#: the devices whose metered export is certified
SOURCES = frozenset({DeviceKind.PV, DeviceKind.STORAGE})


@dataclass(frozen=True)
class Certified:
    """What step ``certify`` did: the certificates (token ids) minted now, those the chain
    held already, and the Wh minted now."""

    interval_id: int
    minted: int
    held: int
    minted_wh: int

    def describe(self) -> str:
        if not self.held:
            return ""
        return f"{self.held} certificate id(s) were minted before; not minted again"


class Certification:
    def __init__(self, service: MarketService, desk: MeteringDesk) -> None:
        self.service = service
        self.desk = desk

    def issues(self, interval_id: int) -> list[Issue]:
        """The certificates the interval's metered readings issue (to participant ids)."""
        book = self.desk.book(interval_id)
        owner = {
            d.device_id: reg.participant_id
            for reg in book.registrations.values()
            for d in reg.devices
        }
        view = self.service.network.view
        sources = set()
        for device_id in owner:
            try:
                if view.device(device_id).kind in SOURCES:
                    sources.add(device_id)
            except KeyError:  # no longer in the network model: its kind is unknown
                continue
        return allocate(book.net_export_wh(), owner, sources)

    def certify(self, interval_id: int) -> Certified:
        """Mint what the chain does not hold yet of the interval's certificates."""
        with self.service.db.read() as s:
            repo.get_interval(s, interval_id)  # NotFoundError if there is none
            settled = repo.metered_settlement(s, interval_id)
            wallet = {p.id: p.address for p in repo.list_participants(s)}
        chain = self.service.ctx.require_chain("certificates are minted on chain")
        certificates = chain.certificates
        if certificates is None:
            raise StepFailed("this service has no certificates contract configured")
        if settled is None:
            raise StepFailed(f"interval {interval_id} has no metered settlement yet")
        minted = held = minted_wh = 0
        for issue in self.issues(interval_id):
            on_chain = certificates.minted(interval_id, issue.period, issue.source)
            if on_chain == issue.total_wh:
                held += 1
                continue
            if on_chain:
                raise StepFailed(
                    f"the chain holds {on_chain} Wh of certificates of {issue.source} in period "
                    f"{issue.period} of interval {interval_id}, the meters say "
                    f"{issue.total_wh} Wh: the operator must look into it"
                )
            certificates.issue(
                chain.operator,
                interval_id,
                issue.period,
                issue.source,
                wallet[issue.producer],
                [(wallet[who], wh) for who, wh in issue.holders],
            )
            minted += 1
            minted_wh += issue.total_wh
        return Certified(interval_id, minted, held, minted_wh)
