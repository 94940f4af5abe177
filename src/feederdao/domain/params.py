"""The market's grid parameters: voted by token holders, bounded by the operator."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from feederdao.errors import ParameterError


@dataclass(frozen=True, slots=True)
class ParameterChange:
    """One on-chain change of a parameter: where it happened and which proposal made it."""

    name: str
    old_value: float
    new_value: float
    block_number: int
    block_hash: str
    transaction: str
    proposal_id: str | None = None


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an applied parameter set came from.

    ``source`` is ``default`` (no chain), ``chain`` (read at ``block_number``/``block_hash``),
    ``last-known-good`` (a fresh read was doubtful; the previous values stand) or
    ``safe-defaults`` (no trustworthy read for longer than the envelope allows). ``changes``
    lists the on-chain changes behind the values; ``transaction``/``proposal_id`` are the most
    recent one's. ``rejected`` names values the operator's envelope refused, with the reason.
    """

    source: str = "default"
    block_number: int | None = None
    block_hash: str | None = None
    transaction: str | None = None
    proposal_id: str | None = None
    changes: tuple[ParameterChange, ...] = ()
    rejected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GridParameters:
    """Parameters the clearing runs with.

    Voltage band in pu, loading limits in percent of rating, prices in EUR/MWh, the clearing
    interval in seconds and the reserve margin in percent of each thermal rating kept free.
    ``deviation_charge_eur_per_mwh`` is charged on every MWh a participant's metered delivery
    deviates from its schedule (either way); ``settlement_challenge_window_s`` is how long a
    posted settlement root may be rejected before it becomes final.
    """

    v_min_pu: float = 0.95
    v_max_pu: float = 1.05
    max_line_loading_percent: float = 100.0
    max_trafo_loading_percent: float = 100.0
    network_fee_eur_per_mwh: float = 0.0
    price_floor_eur_per_mwh: float = -500.0
    price_cap_eur_per_mwh: float = 3000.0
    clearing_interval_s: int = 900
    reserve_margin_percent: float = 0.0
    deviation_charge_eur_per_mwh: float = 0.0
    settlement_challenge_window_s: int = 3600
    provenance: Provenance = Provenance()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not math.isfinite(value):
                raise ParameterError(f"grid parameter {f.name} = {value} is not finite")
        if not 0.5 < self.v_min_pu < self.v_max_pu < 1.5:
            raise ParameterError(
                f"voltage band [{self.v_min_pu}, {self.v_max_pu}] pu must satisfy "
                "0.5 < v_min_pu < v_max_pu < 1.5"
            )
        for name in ("max_line_loading_percent", "max_trafo_loading_percent"):
            if not 0 < getattr(self, name) <= 200:
                raise ParameterError(f"{name} = {getattr(self, name)} must be in (0, 200]")
        if self.network_fee_eur_per_mwh < 0:
            raise ParameterError("network_fee_eur_per_mwh must not be negative")
        if self.price_floor_eur_per_mwh >= self.price_cap_eur_per_mwh:
            raise ParameterError("price_floor_eur_per_mwh must be below price_cap_eur_per_mwh")
        if self.clearing_interval_s <= 0:
            raise ParameterError("clearing_interval_s must be positive")
        if not 0 <= self.reserve_margin_percent < 100:
            raise ParameterError("reserve_margin_percent must be in [0, 100)")
        if self.deviation_charge_eur_per_mwh < 0:
            raise ParameterError("deviation_charge_eur_per_mwh must not be negative")
        if self.settlement_challenge_window_s < 0:
            raise ParameterError("settlement_challenge_window_s must not be negative")

    def values(self) -> dict[str, float]:
        """The numeric parameters (no provenance) as a plain dict."""
        d = asdict(self)
        d.pop("provenance")
        return d
