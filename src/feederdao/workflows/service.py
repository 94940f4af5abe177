"""The market service's use cases: participants, bids, intervals, clearing, anchoring.

Every method is one unit of work on the store: it validates first (naming the field at fault),
then writes in one transaction, so a refused request changes nothing. The API and the operator
loop call these; neither talks to the store or the chain directly.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from web3 import Web3

from feederdao.domain.bidrules import BidRules
from feederdao.domain.clearing import (
    ClearingOptions,
    ClearingResult,
    Publication,
    Setpoint,
    WholesalePrices,
)
from feederdao.domain.market import Bid, PriceBlock, Side
from feederdao.domain.params import GridParameters, ParameterChange, Provenance
from feederdao.errors import BidValidationError, FeederDaoError, FieldError
from feederdao.governance.chain import connect, transact, use_private_key
from feederdao.governance.dao import Dao, ProposalStatus
from feederdao.governance.deploy import DaoAddresses, DaoConfig, deploy_dao
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.reader import ParameterReader, ReaderState, Reading
from feederdao.governance.signing import (
    PRICE_SCALE,
    QUANTITY_SCALE,
    MarketDomain,
    bid_digest,
    domain_separator,
    recover,
    recover_digest,
)
from feederdao.grid_model.participants import registry_from_assignments
from feederdao.grid_model.profiles import RESOLUTION_MIN, build_profiles
from feederdao.store import repositories as repo
from feederdao.store.db import Database
from feederdao.store.errors import ConflictError
from feederdao.store.models import (
    AppliedParametersRow,
    BidRow,
    ClearingResultRow,
    IntervalRow,
    ParticipantRow,
)
from feederdao.workflows.clearing import Market, clear_market
from feederdao.workflows.network import OpenNetwork, open_network


class NotApprovedError(FeederDaoError, PermissionError):
    """The participant exists but the operator has not approved it (or it is unknown)."""


class SignerMismatchError(FeederDaoError, PermissionError):
    """A signature recovers to another address than the one the message names."""


@dataclass(frozen=True)
class ServiceSettings:
    """How the service runs. Every field can be set in a TOML file or as ``FEEDERDAO_<NAME>``."""

    database_url: str = "sqlite:///feederdao.db"
    network: str = "1-LV-rural1--0-sw"
    periods_per_interval: int = 4
    gate_closure_lead_s: int = 300
    rpc_url: str | None = None
    dao_file: str | None = None
    operator_key: str | None = None
    envelope: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    market_endpoint: str = "opc.tcp://127.0.0.1:4841/feederdao/market"
    max_attempts: int = 3
    retry_delay_s: float = 2.0
    tick_s: float = 1.0
    workdir: str = ".feederdao"

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> ServiceSettings:
        """Defaults, then the TOML file, then ``FEEDERDAO_*`` variables, then ``overrides``."""
        values: dict[str, Any] = {}
        if path is not None:
            try:
                values.update(tomllib.loads(Path(path).read_text()).get("service", {}))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise FieldError("settings", f"cannot read settings {str(path)!r}: {exc}") from exc
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise FieldError("settings", f"unknown setting(s): {', '.join(sorted(unknown))}")
        for name, f in known.items():
            env = os.environ.get(f"FEEDERDAO_{name.upper()}")
            if env is not None:
                kind = str(f.type)
                values[name] = int(env) if kind == "int" else float(env) if kind == "float" else env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# -- chain ------------------------------------------------------------------------------------


class StoreReaderState:
    """The parameter reader's cursor and last-known-good set, kept in the database."""

    NAME = "parameter-reader"

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self) -> ReaderState:
        with self.db.session() as s:
            text = repo.load_document(s, self.NAME)
        return ReaderState.from_json(text) if text else ReaderState()

    def save(self, state: ReaderState) -> None:
        with self.db.session() as s:
            repo.save_document(s, self.NAME, state.to_json())


@dataclass
class ChainContext:
    """The governance contracts, the safe reader, and the account that anchors results."""

    w3: Web3
    dao: Dao
    reader: ParameterReader
    operator: str

    @cached_property
    def domain(self) -> MarketDomain:
        return MarketDomain(int(self.w3.eth.chain_id), self.dao.addresses.settlement)

    @cached_property
    def separator(self) -> bytes:
        return domain_separator(self.domain)


def connect_chain(settings: ServiceSettings, db: Database) -> ChainContext:
    """The chain the settings name, or an in-process chain with a freshly deployed DAO."""
    envelope = SafetyEnvelope.from_toml(Path(settings.envelope)) if settings.envelope else None
    if settings.rpc_url is None:
        w3 = connect()
        a = list(w3.eth.accounts)
        addresses = deploy_dao(
            w3, a[0], guardian=a[1], operator=a[2], holders={a[3]: 10**24}, config=DaoConfig()
        )
        operator: str = a[2]
        envelope = replace(envelope or SafetyEnvelope(), confirmations=0)
    else:
        if not settings.dao_file or not settings.operator_key:
            raise FieldError(
                "settings", "with rpc_url set, dao_file and operator_key must be set too"
            )
        w3 = connect(settings.rpc_url)
        addresses = DaoAddresses.read(Path(settings.dao_file))
        operator = use_private_key(w3, settings.operator_key)
    reader = ParameterReader(w3, addresses.parameters, envelope, StoreReaderState(db))
    return ChainContext(w3, Dao(w3, addresses), reader, operator)


# -- the service ------------------------------------------------------------------------------


@dataclass
class Anchor:
    interval_id: int
    result_hash: str
    transaction: str
    block: int
    chain_id: int


def _params_of(values: dict[str, Any], provenance: dict[str, Any]) -> GridParameters:
    prov = dict(provenance)
    prov["changes"] = tuple(ParameterChange(**c) for c in prov.get("changes", ()))
    prov["rejected"] = tuple(prov.get("rejected", ()))
    return GridParameters(**values, provenance=Provenance(**prov))


@dataclass
class MarketService:
    """One feeder's market: its network, store, and (optionally) chain."""

    settings: ServiceSettings
    db: Database
    network: OpenNetwork
    chain: ChainContext | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def start(cls, settings: ServiceSettings, with_chain: bool = True) -> MarketService:
        db = Database(settings.database_url)
        chain = connect_chain(settings, db) if with_chain else None
        return cls(settings, db, open_network(settings.network), chain)

    def __post_init__(self) -> None:
        self._params: GridParameters | None = None

    @property
    def domain(self) -> MarketDomain:
        if self.chain is None:
            raise FeederDaoError("this service runs without a chain: signed messages are off")
        return self.chain.domain

    # -- participants ---------------------------------------------------------------------

    def _check_mapping(self, bus: int, devices: Sequence[str]) -> None:
        view = self.network.view
        if not view.has_bus(bus):
            raise FieldError("bus", f"bus {bus} does not exist or is not supplied in {view.name}")
        for k, dev in enumerate(devices):
            try:
                at = view.device(dev).bus
            except KeyError:
                raise FieldError(f"devices[{k}]", f"device {dev!r} is not in {view.name}") from None
            if at != view.canonical_bus(bus):
                raise FieldError(f"devices[{k}]", f"device {dev!r} is at bus {at}, not {bus}")

    def register(
        self, name: str, address: str, bus: int, devices: Sequence[str], signature: str
    ) -> ParticipantRow:
        """A participant asks to join: its wallet signs the Register message."""
        message = {
            "participant": Web3.to_checksum_address(address),
            "name": name,
            "bus": bus,
            "devices": list(devices),
        }
        signer = recover(self.domain, "Register", message, signature)
        if signer.lower() != address.lower():
            raise SignerMismatchError(f"signature was made by {signer}, not by {address}")
        self._check_mapping(bus, devices)
        with self.db.session() as s:
            return repo.register_participant(s, name, address, bus, devices)

    def approve(
        self, participant_id: str, bus: int | None = None, devices: Sequence[str] | None = None
    ) -> ParticipantRow:
        """The operator approves a participant's bus and devices (the requested ones unless
        given)."""
        with self.db.session() as s:
            row = repo.get_participant(s, participant_id)
            bus = row.requested_bus if bus is None else bus
            devices = list(row.requested_devices if devices is None else devices)
            self._check_mapping(bus, devices)
            return repo.approve_participant(s, participant_id, bus, devices)

    # -- bids -----------------------------------------------------------------------------

    def parameters_now(self) -> GridParameters:
        """The parameters of the last clearing (defaults before any); kept in memory and
        replaced by each clearing."""
        if self._params is None:
            with self.db.session() as s:
                row = repo.latest_parameters(s)
            self._params = _params_of(row.values, row.provenance) if row else GridParameters()
        return self._params

    def _check_bid(
        self,
        part: ParticipantRow,
        interval: IntervalRow,
        period: int,
        bus: int,
        side: str,
        device_id: str | None,
        blocks: Sequence[tuple[float, float]],
    ) -> dict[str, Any]:
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
        rules = BidRules.of(self.network.view, self.parameters_now(), interval.periods)
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

    def submit_bid(
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

        The participant is ``participant_id``, or the one registered with ``address``."""
        now = self.clock()
        owner, content = "", {}
        try:
            with self.db.session() as s:
                if address is not None:
                    part = repo.participant_by_address(s, address)
                    if part is None:
                        raise NotApprovedError(f"address {address} is not a registered participant")
                else:
                    part = repo.get_participant(s, participant_id)
                interval = repo.get_interval(s, interval_id)
                owner = part.id
                content = self._check_bid(part, interval, period, bus, side, device_id, blocks)
                return repo.submit_bid(
                    s, interval, owner, idempotency_key, content, auth, signature, now
                )
        except IntegrityError:
            # the same key committed concurrently by another request: answer as a replay
            with self.db.session() as s:
                again = repo.bid_by_key(s, owner, idempotency_key)
                if again is None or again.content_hash != repo.bid_content_hash(content):
                    raise ConflictError(
                        f"idempotency key {idempotency_key!r} was used for another bid"
                    ) from None
                return again, False

    def submit_signed_bid(self, message: dict[str, Any], signature: str) -> tuple[BidRow, bool]:
        """A bid whose participant's wallet signed the EIP-712 Bid ``message``."""
        if self.chain is None:
            raise FeederDaoError("this service runs without a chain: signed messages are off")
        signer = recover_digest(bid_digest(self.chain.separator, message), signature)
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
        return self.submit_bid(
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

    def cancel_bid(self, participant_id: str, bid_id: str) -> BidRow:
        with self.db.session() as s:
            return repo.cancel_bid(s, bid_id, participant_id, self.clock())

    # -- intervals ------------------------------------------------------------------------

    def open_interval(
        self, start: datetime, periods: int | None = None, gate_closure: datetime | None = None
    ) -> IntervalRow:
        if start.tzinfo is None:
            raise FieldError("start", "start must carry a time zone (e.g. 2026-06-21T12:00Z)")
        if start.minute % RESOLUTION_MIN or start.second or start.microsecond:
            raise FieldError("start", f"start must be on a {RESOLUTION_MIN}-minute boundary")
        n = periods or self.settings.periods_per_interval
        if not 1 <= n <= 96:
            raise FieldError("periods", f"periods {n} must be between 1 and 96")
        gate = gate_closure or start - timedelta(seconds=self.settings.gate_closure_lead_s)
        if gate > start:
            raise FieldError("gate_closure", "gate closure must not be after the start")
        with self.db.session() as s:
            return repo.open_interval(s, start, n, RESOLUTION_MIN, gate)

    def close_gate(self, interval_id: int) -> IntervalRow:
        with self.db.session() as s:
            return repo.set_interval_state(s, interval_id, ("open",), "gate-closed")

    def read_parameters(self) -> Reading:
        """The parameters the next clearing uses: the safe reader's, or defaults with no chain."""
        if self.chain is None:
            return Reading(GridParameters(), "fresh", ())
        return self.chain.reader.read()

    def clear(self, interval_id: int) -> ClearingResult:
        """Clear a gate-closed interval with the reader's parameters and persist everything."""
        with self.db.session() as s:
            interval = repo.get_interval(s, interval_id)
            if interval.state != "gate-closed":
                raise ConflictError(
                    f"market interval {interval_id} is {interval.state}; close its gate first"
                )
            rows = repo.list_bids(s, interval_id, status="active")
            parts = repo.list_participants(s, "approved")
        reading = self.read_parameters()
        start = interval.start
        profiles = build_profiles(
            self.network.loaded,
            self.network.view,
            start,
            interval.periods,
        )
        registry = registry_from_assignments(
            self.network.view,
            profiles,
            [(p.id, p.bus, p.devices, p.address) for p in parts if p.bus is not None],
        )
        rules = BidRules.of(self.network.view, reading.parameters, interval.periods)
        bids: list[Bid] = []
        for row in rows:
            bid = Bid(
                row.id,
                row.participant_id,
                row.bus,
                row.period,
                Side(row.side),
                tuple(PriceBlock(p, q) for p, q in row.blocks),
                row.device_id,
            )
            # a mapping or the price limits changed since the bid: the bid is left out, not
            # the clearing
            part = registry.get(row.participant_id)
            if part is None or rules.problems(bid, part.bus, {d.device_id for d in part.devices}):
                continue
            bids.append(bid.on_bus(self.network.view.canonical_bus(bid.bus)))
        first_step = (start.hour * 60 + start.minute) // RESOLUTION_MIN
        market = Market(self.network, profiles, registry, tuple(bids))
        result = clear_market(
            market,
            reading.parameters,
            ClearingOptions(elastic=True),
            WholesalePrices.day_shape(interval.periods, first_step),
        )
        with self.db.session() as s:
            params = repo.record_parameters(
                s,
                reading.status,
                reading.parameters.values(),
                _jsonable(asdict(reading.parameters.provenance)),
                reading.alarms,
            )
            repo.save_result(s, interval_id, result, params.id)
        self._params = reading.parameters
        return result

    def anchor(self, interval_id: int) -> Anchor:
        """Write the result's hash to the SettlementRegistry (once; a retry finds it there)."""
        if self.chain is None:
            raise FeederDaoError("no chain configured: results cannot be anchored")
        with self.db.session() as s:
            row = repo.get_result(s, interval_id)
        dao, w3 = self.chain.dao, self.chain.w3
        digest = bytes.fromhex(row.result_hash[2:])
        on_chain = bytes(dao.settlement.functions.resultHash(interval_id).call())
        if on_chain == bytes(32):
            call = dao.settlement.functions.anchor(interval_id, digest)
            receipt = transact(
                w3, call, self.chain.operator, f"anchoring interval {interval_id}", [dao.settlement]
            )
            tx, block = "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])
        elif on_chain == digest:  # anchored before a crash: find that transaction
            logs = dao.settlement.events.Anchored().get_logs(
                from_block=dao.addresses.deployed_at_block,
                argument_filters={"intervalId": interval_id},
            )
            if not logs:
                raise FeederDaoError(f"interval {interval_id} is anchored but no event was found")
            tx, block = "0x" + bytes(logs[0]["transactionHash"]).hex(), int(logs[0]["blockNumber"])
        else:
            raise FeederDaoError(
                f"the registry holds another hash for interval {interval_id}: 0x{on_chain.hex()}"
            )
        chain_id = int(w3.eth.chain_id)
        with self.db.session() as s:
            repo.record_anchor(s, interval_id, tx, block, chain_id)
        return Anchor(interval_id, row.result_hash, tx, block, chain_id)

    def publication(self, interval_id: int) -> Publication:
        """What SCADA sees of a cleared interval, rebuilt from the store."""
        with self.db.session() as s:
            interval = repo.get_interval(s, interval_id)
            res = repo.get_result(s, interval_id)
            params = s.get(AppliedParametersRow, interval.parameters_id)
            dlmp: dict[int, list[float]] = {}
            for p in repo.prices_of(s, interval_id):
                dlmp.setdefault(p.bus, [0.0] * interval.periods)[p.period] = p.dlmp
            schedule: dict[str, list[float]] = {}
            for d in repo.dispatch_of(s, interval_id):
                schedule.setdefault(d.device_id, [0.0] * interval.periods)[d.period] = d.p_mw
        assert params is not None
        return Publication(
            f"interval-{interval_id}",
            res.welfare_eur,
            res.ac_feasible,
            _params_of(params.values, params.provenance),
            dlmp,
            schedule,
        )

    def mark_published(self, interval_id: int) -> IntervalRow:
        with self.db.session() as s:
            row = repo.get_interval(s, interval_id)
            if row.state == "published":
                return row
            return repo.set_interval_state(s, interval_id, ("cleared",), "published")

    def anchored_hash(self, interval_id: int) -> str | None:
        """The hash the SettlementRegistry holds for the interval now (None: no chain or
        nothing anchored)."""
        if self.chain is None:
            return None
        raw = bytes(self.chain.dao.settlement.functions.resultHash(interval_id).call())
        return None if raw == bytes(32) else "0x" + raw.hex()

    def setpoints(self, interval_id: int, period: int) -> tuple[Setpoint, ...]:
        with self.db.session() as s:
            rows = repo.dispatch_of(s, interval_id, period)
        return tuple(
            Setpoint(r.device_id, r.bus, r.period, r.p_mw, r.q_mvar, r.position) for r in rows
        )

    def result(self, interval_id: int) -> ClearingResultRow:
        with self.db.session() as s:
            return repo.get_result(s, interval_id)

    # -- governance -----------------------------------------------------------------------

    def proposals(self) -> list[ProposalStatus]:
        return self.chain.dao.proposals() if self.chain else []


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
