"""Participants: signed registration, operator approval of a bus and devices, reads."""

from __future__ import annotations

from collections.abc import Sequence

from web3 import Web3

from feederdao.errors import FieldError
from feederdao.governance.eip2 import require_low_s
from feederdao.governance.signing import recover
from feederdao.store import repositories as repo
from feederdao.store.models import ParticipantRow
from feederdao.workflows.errors import SignerMismatchError
from feederdao.workflows.market.context import MarketContext


class Participants:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx

    def check_mapping(self, bus: int, devices: Sequence[str]) -> None:
        """``bus`` exists and is supplied, and every device is at that bus."""
        view = self.ctx.network.view
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
        require_low_s(signature)
        signer = recover(self.ctx.domain, "Register", message, signature)
        if signer.lower() != address.lower():
            raise SignerMismatchError(f"signature was made by {signer}, not by {address}")
        self.check_mapping(bus, devices)
        with self.ctx.db.session() as s:
            return repo.register_participant(s, name, address, bus, devices)

    def approve(
        self, participant_id: str, bus: int | None = None, devices: Sequence[str] | None = None
    ) -> ParticipantRow:
        """The operator approves a participant's bus and devices (the requested ones unless
        given)."""
        with self.ctx.db.session() as s:
            row = repo.get_participant(s, participant_id)
            bus = row.requested_bus if bus is None else bus
            devices = list(row.requested_devices if devices is None else devices)
            self.check_mapping(bus, devices)
            return repo.approve_participant(s, participant_id, bus, devices)

    def list(self, status: str | None = None) -> list[ParticipantRow]:
        with self.ctx.db.read() as s:
            return repo.list_participants(s, status)

    def get(self, participant_id: str) -> ParticipantRow:
        with self.ctx.db.read() as s:
            return repo.get_participant(s, participant_id)
