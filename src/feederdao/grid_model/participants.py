"""The participant registry: who is at which bus and which devices they control."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feederdao.domain.market import Participant, ParticipantDevice
from feederdao.domain.network import CURTAILABLE, Device, DeviceKind, NetworkView
from feederdao.domain.profiles import Profiles
from feederdao.errors import ParticipantError

DEFAULT_MIN_POWER_FACTOR = 0.9


class ParticipantRegistry(Mapping[str, Participant]):
    """An immutable, validated mapping ``participant_id → Participant`` for one network."""

    def __init__(self, view: NetworkView, participants: Iterable[Participant]) -> None:
        items: dict[str, Participant] = {}
        by_device: dict[str, str] = {}
        by_address: dict[str, str] = {}
        for part in participants:
            pid = part.participant_id
            if pid in items:
                raise ParticipantError(f"participant {pid!r} is registered twice")
            if not view.has_bus(part.bus):
                if part.bus in view.unsupplied_bus_indices:
                    raise ParticipantError(
                        f"participant {pid!r} is at bus {part.bus}, which is disconnected from "
                        "the substation (unsupplied)"
                    )
                raise ParticipantError(
                    f"participant {pid!r}: bus {part.bus} does not exist in network {view.name!r}"
                )
            canonical = view.canonical_bus(part.bus)
            for dev in part.devices:
                if dev.device_id in by_device:
                    raise ParticipantError(
                        f"device {dev.device_id!r} belongs to both {by_device[dev.device_id]!r} "
                        f"and {pid!r}"
                    )
                by_device[dev.device_id] = pid
                try:
                    net_dev = view.device(dev.device_id)
                except KeyError:
                    continue  # a device the participant brings that the network model lacks
                if net_dev.bus != canonical:
                    raise ParticipantError(
                        f"participant {pid!r} at bus {part.bus} claims device {dev.device_id!r}, "
                        f"which is at bus {net_dev.bus}"
                    )
            if part.address:
                key = part.address.lower()
                if key in by_address:
                    raise ParticipantError(
                        f"address {part.address} is used by {by_address[key]!r} and {pid!r}"
                    )
                by_address[key] = pid
            items[pid] = part
        self._items = items
        self._by_device = by_device
        self.view = view

    def __getitem__(self, key: str) -> Participant:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def owner_of(self, device_id: str) -> str | None:
        return self._by_device.get(device_id)

    @classmethod
    def from_network(
        cls, view: NetworkView, profiles: Profiles | None = None
    ) -> ParticipantRegistry:
        """One participant per bus with loads, PV or storage, owning those devices."""
        parts: list[Participant] = []
        by_bus: dict[int, list[Device]] = {}
        for dev in view.devices:
            if dev.kind in (DeviceKind.LOAD, DeviceKind.STORAGE) or dev.kind in CURTAILABLE:
                by_bus.setdefault(dev.bus, []).append(dev)
        for bus in sorted(by_bus):
            devices = tuple(_capability(d, profiles) for d in by_bus[bus])
            parts.append(Participant(participant_id=f"bus{bus}", bus=bus, devices=devices))
        return cls(view, parts)

    @classmethod
    def from_json(cls, view: NetworkView, path: Path) -> ParticipantRegistry:
        """Read ``[{"participant_id", "bus", "address"?, "devices": [...]}, ...]``."""
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ParticipantError(f"cannot read participants from {str(path)!r}: {exc}") from exc
        if not isinstance(raw, list):
            raise ParticipantError(f"{str(path)!r}: expected a JSON list of participants")
        return cls(view, [_participant_from_dict(r, i) for i, r in enumerate(raw)])


def _capability(dev: Device, profiles: Profiles | None) -> ParticipantDevice:
    peak = abs(dev.p_mw)
    col = profiles.find(dev.device_id) if profiles is not None else None
    if profiles is not None and col is not None:
        peak = max(peak, float(np.abs(profiles.p_mw[:, col]).max()))
    s = dev.sn_mva or peak or None
    if dev.kind == DeviceKind.STORAGE:
        rating = dev.sn_mva or max(abs(dev.p_min_mw or 0.0), abs(dev.p_max_mw or 0.0)) or peak
        return ParticipantDevice(
            device_id=dev.device_id,
            kind=dev.kind,
            p_min_mw=-rating,
            p_max_mw=rating,
            s_mva=rating,
            min_power_factor=DEFAULT_MIN_POWER_FACTOR,
            e_mwh=dev.e_max_mwh or 2.0 * rating,
        )
    if dev.kind in CURTAILABLE:
        return ParticipantDevice(
            device_id=dev.device_id,
            kind=dev.kind,
            p_min_mw=0.0,
            p_max_mw=max(s or 0.0, peak),
            s_mva=max(s or 0.0, peak),
            min_power_factor=DEFAULT_MIN_POWER_FACTOR,
        )
    return ParticipantDevice(
        device_id=dev.device_id, kind=dev.kind, p_min_mw=0.0, p_max_mw=peak, s_mva=s
    )


def _participant_from_dict(raw: Any, row: int) -> Participant:
    where = f"participant #{row}"
    if not isinstance(raw, dict):
        raise ParticipantError(f"{where}: expected an object")
    try:
        devices = tuple(
            ParticipantDevice(
                device_id=str(d["device_id"]),
                kind=DeviceKind(d["kind"]),
                p_min_mw=float(d["p_min_mw"]),
                p_max_mw=float(d["p_max_mw"]),
                s_mva=float(d["s_mva"]) if d.get("s_mva") is not None else None,
                min_power_factor=(
                    float(d["min_power_factor"]) if d.get("min_power_factor") is not None else None
                ),
                e_mwh=float(d["e_mwh"]) if d.get("e_mwh") is not None else None,
            )
            for d in raw.get("devices", [])
        )
        return Participant(
            participant_id=str(raw["participant_id"]),
            bus=int(raw["bus"]),
            devices=devices,
            address=raw.get("address"),
        )
    except KeyError as exc:
        raise ParticipantError(f"{where}: missing field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ParticipantError(f"{where}: {exc}") from exc


def registry_from_assignments(
    view: NetworkView,
    profiles: Profiles | None,
    assignments: Iterable[tuple[str, int, Sequence[str], str | None]],
) -> ParticipantRegistry:
    """A registry from ``(participant_id, bus, device_ids, address)`` approved by the operator;
    each device's capability comes from the network model and its profile."""
    parts = []
    for pid, bus, device_ids, address in assignments:
        devices = []
        for dev_id in device_ids:
            try:
                devices.append(_capability(view.device(dev_id), profiles))
            except KeyError:
                raise ParticipantError(
                    f"participant {pid!r}: device {dev_id!r} is not in network {view.name!r}"
                ) from None
        parts.append(Participant(pid, bus, tuple(devices), address))
    return ParticipantRegistry(view, parts)
