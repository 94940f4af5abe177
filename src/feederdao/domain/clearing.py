"""What a clearing takes besides the network and bids, and what it returns."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from feederdao.domain.params import GridParameters
from feederdao.domain.profiles import FloatArray
from feederdao.errors import ParameterError


@dataclass(frozen=True)
class WholesalePrices:
    """Price of energy imported through / exported at the substation, per period (EUR/MWh)."""

    import_eur_per_mwh: FloatArray
    export_eur_per_mwh: FloatArray

    def __post_init__(self) -> None:
        if self.import_eur_per_mwh.shape != self.export_eur_per_mwh.shape:
            raise ParameterError("import and export price series differ in length")
        if np.any(self.export_eur_per_mwh > self.import_eur_per_mwh):
            raise ParameterError("the export price must not exceed the import price in any period")

    @classmethod
    def flat(cls, n_periods: int, import_price: float, export_price: float) -> WholesalePrices:
        return cls(np.full(n_periods, import_price), np.full(n_periods, export_price))

    @classmethod
    def day_shape(cls, n_periods: int, start_period: int = 0) -> WholesalePrices:
        """A typical day-ahead shape plus supplier costs: cheap at night and midday (solar),
        dear at the evening peak; export pays the day-ahead part only."""
        hours = ((start_period + np.arange(n_periods)) % 96) / 4.0
        day_ahead = (
            90.0
            + 45.0 * np.exp(-(((hours - 19.0) / 2.0) ** 2))
            + 20.0 * np.exp(-(((hours - 8.0) / 1.5) ** 2))
            - 45.0 * np.exp(-(((hours - 13.0) / 2.5) ** 2))
        )
        return cls(day_ahead + 60.0, day_ahead * 0.6)


STORAGE_ENDS = ("at-least-start", "equal-start", "free")


@dataclass(frozen=True)
class ClearingOptions:
    """How the clearing is solved and checked.

    ``polygon_sides`` approximates each circular capability (P² + Q² ≤ S²) by that many tangent
    half-planes; the AC check catches the small overshoot at the vertices. Tolerances say when an
    AC-checked limit counts as violated; ``max_iterations`` bounds the re-linearisation loop.
    ``storage`` either optimises storage or holds it at its profile. ``elastic`` returns a result
    with priced load shedding / curtailment instead of raising when the clearing is infeasible.
    ``threads`` is how many period blocks HiGHS solves at once when nothing couples the periods
    (a study's worker uses its own thread count, so that its workers do not share cores).
    """

    polygon_sides: int = 16
    voltage_tolerance_pu: float = 0.001
    loading_tolerance_percent: float = 0.5
    loss_tolerance_mw: float = 1e-4
    loss_tolerance_fraction: float = 0.10
    #: the loss part of the prices is marginal when pricing the losses with the marginal loss
    #: factors of the dispatch's own AC flows moves no bus's price by more than this share of
    #: its period's energy price
    loss_price_tolerance: float = 0.005
    max_iterations: int = 8
    storage: Literal["optimise", "profile"] = "optimise"
    #: optimised storage at the window's end: ``at-least-start`` (the state of charge it started
    #: with, or more: a day never lives on the next day's energy), ``equal-start``, or ``free``
    #: (anywhere in its band: a rolling study carries the state into the next window)
    storage_end: Literal["at-least-start", "equal-start", "free"] = "at-least-start"
    elastic: bool = False
    reactive_cost_eur_per_mvarh: float = 0.01  # a small cost: Q only where it helps
    ac_check: bool = True
    threads: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ParameterError(f"threads must be a positive whole number, not {self.threads!r}")
        if self.polygon_sides < 4:
            raise ParameterError("polygon_sides must be at least 4")
        if self.max_iterations < 1:
            raise ParameterError("max_iterations must be at least 1")
        if self.storage_end not in STORAGE_ENDS:
            raise ParameterError(
                f"storage_end must be one of {', '.join(STORAGE_ENDS)}, not {self.storage_end!r}"
            )
        if not 0.0 <= self.loss_price_tolerance < 1.0:
            raise ParameterError(
                f"loss_price_tolerance is a share of the energy price in [0, 1), "
                f"not {self.loss_price_tolerance}"
            )


@dataclass(frozen=True, slots=True)
class Setpoint:
    """Dispatch of one device for one period, in the device's own sign convention
    (consumption positive for loads and storage, injection positive for PV). Discrete devices
    (transformer tap changers, capacitor banks) take a ``position`` instead of P and Q."""

    device_id: str
    bus: int
    period: int
    p_mw: float
    q_mvar: float
    position: int | None = None


@dataclass(frozen=True, slots=True)
class SettlementRow:
    """A participant's energy and money over the window (positive payment: it pays)."""

    participant_id: str
    bus: int
    bought_mwh: float
    sold_mwh: float
    energy_payment_eur: float
    fee_eur: float

    @property
    def total_eur(self) -> float:
        return self.energy_payment_eur + self.fee_eur


@dataclass(frozen=True)
class Settlement:
    """Money flows of a clearing.

    ``merchandising_surplus_eur`` = what consumers pay at their bus prices − what producers are
    paid at theirs − the substation's net wholesale cost. It is the congestion, voltage and loss
    rent the DSO collects; ``budget_balanced`` says it is non-negative (within rounding).
    """

    rows: tuple[SettlementRow, ...]
    non_market_payment_eur: float
    wholesale_cost_eur: float
    fees_eur: float
    merchandising_surplus_eur: float
    congestion_rent_eur: float

    @property
    def budget_balanced(self) -> bool:
        return self.merchandising_surplus_eur >= -1e-6 * max(1.0, abs(self.wholesale_cost_eur))


@dataclass(frozen=True)
class AcCheck:
    """What the AC power flow said about the final dispatch, and why the loop stopped.

    ``stopped`` is ``converged`` (limits met and the linear losses agree with the AC ones),
    ``iteration-limit``, ``no-improvement`` (a further re-linearisation could not reduce the
    violations or the loss error) or ``not-checked`` (no AC check was asked for).
    """

    performed: bool
    iterations: int
    max_voltage_error_pu: float
    max_loading_percent: float
    loss_error_mw: float
    violations: tuple[str, ...]
    losses_agree: bool = True
    stopped: str = "not-checked"

    @property
    def feasible(self) -> bool:
        """True only when an AC check was performed, found no violation, and the linear
        model's losses agree with the AC ones (within the clearing's tolerances)."""
        return self.performed and not self.violations and self.losses_agree


@dataclass(frozen=True)
class SolverStats:
    """Where the clearing's time went (seconds): building the program, loading and updating it
    in HiGHS, HiGHS's own solves, the AC checks, and reading results back (prices, settlement,
    setpoints)."""

    build_s: float
    solve_s: float
    ac_check_s: float
    total_s: float
    iterations: int
    n_variables: int
    n_constraints: int
    solver: str = "highs"
    load_s: float = 0.0
    read_s: float = 0.0
    solves: int = 1
    blocks: int = 1


@dataclass(frozen=True)
class Prices:
    """DLMP per period and bus (EUR/MWh), split into parts that add up to ``dlmp``; reactive
    power prices (EUR/Mvarh)."""

    dlmp: FloatArray
    energy: FloatArray
    loss: FloatArray
    congestion: FloatArray
    voltage: FloatArray
    reactive: FloatArray


@dataclass(frozen=True, repr=False)
class ClearingResult:
    """Everything a clearing decided, priced and checked, as values (its tables, files and
    report: :class:`feederdao.workflows.clearing.Clearing`)."""

    network: str
    status: Literal["optimal", "elastic"]
    parameters: GridParameters
    period_hours: float
    bus_indices: tuple[int, ...]
    bus_names: tuple[str, ...]
    branch_ids: tuple[str, ...]
    branch_names: tuple[str, ...]
    welfare_eur: float
    prices: Prices
    accepted_mw: dict[str, tuple[float, ...]]
    setpoints: tuple[Setpoint, ...]
    lp_vm_pu: FloatArray
    lp_branch_p_mw: FloatArray
    lp_branch_q_mvar: FloatArray
    lp_loading_percent: FloatArray
    ac_vm_pu: FloatArray | None
    ac_loading_percent: FloatArray | None
    ac_losses_mw: FloatArray | None
    ac_slack_p_mw: FloatArray | None
    slack_import_mw: FloatArray
    settlement: Settlement
    ac_check: AcCheck
    binding: tuple[str, ...]
    shortfalls: tuple[str, ...]
    stats: SolverStats
    provenance_hash: str
    notes: tuple[str, ...] = ()
    #: each optimised storage's state of charge (MWh) after every period (none when storage is
    #: held at its profile)
    storage_soc_mwh: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def n_periods(self) -> int:
        return int(self.prices.dlmp.shape[0])

    def setpoints_for(self, period: int) -> tuple[Setpoint, ...]:
        return tuple(s for s in self.setpoints if s.period == period)

    def summary(self) -> dict[str, Any]:
        dlmp = self.prices.dlmp
        return {
            "network": self.network,
            "status": self.status,
            "periods": self.n_periods,
            "welfare_eur": round(self.welfare_eur, 2),
            "dlmp_min_eur_per_mwh": round(float(dlmp.min()), 2),
            "dlmp_max_eur_per_mwh": round(float(dlmp.max()), 2),
            "binding": list(self.binding),
            "ac_feasible": self.ac_check.feasible,
            "ac_iterations": self.ac_check.iterations,
            "ac_stopped": self.ac_check.stopped,
            "losses_agree": self.ac_check.losses_agree,
            "loss_error_mw": self.ac_check.loss_error_mw,
            "budget_balanced": self.settlement.budget_balanced,
            "notes": list(self.notes),
            "ac_violations": list(self.ac_check.violations),
            "max_voltage_error_pu": self.ac_check.max_voltage_error_pu,
            "merchandising_surplus_eur": round(self.settlement.merchandising_surplus_eur, 2),
            "provenance_hash": self.provenance_hash,
        }

    def to_json(self) -> str:
        """The whole result as JSON (arrays as nested lists)."""

        def conv(obj: Any) -> Any:
            if isinstance(obj, np.ndarray):
                return obj.tolist()
            if isinstance(obj, dict):
                return {k: conv(v) for k, v in obj.items()}
            if isinstance(obj, list | tuple):
                return [conv(v) for v in obj]
            return obj

        data = {
            "summary": self.summary(),
            "parameters": self.parameters.values(),
            "provenance": asdict(self.parameters.provenance),
            "bus_indices": list(self.bus_indices),
            "bus_names": list(self.bus_names),
            "branch_ids": list(self.branch_ids),
            "prices": {k: conv(v) for k, v in asdict(self.prices).items()},
            "accepted_mw": self.accepted_mw,
            "setpoints": [asdict(s) for s in self.setpoints],
            "settlement": conv(asdict(self.settlement)),
            "ac_check": conv(asdict(self.ac_check)),
            "stats": asdict(self.stats),
            "lp_vm_pu": conv(self.lp_vm_pu),
            "ac_vm_pu": conv(self.ac_vm_pu),
            "ac_loading_percent": conv(self.ac_loading_percent),
            "lp_loading_percent": conv(self.lp_loading_percent),
            "slack_import_mw": conv(self.slack_import_mw),
        }
        return json.dumps(data)

    def __repr__(self) -> str:
        """A line, not the arrays (57,000 characters of them on a small feeder)."""
        ac = self.ac_check
        check = (
            ("all limits met" if ac.feasible else f"{len(ac.violations)} violation(s)")
            if ac.performed
            else "AC check not performed"
        )
        return (
            f"<ClearingResult {self.network}: {self.n_periods} periods, {len(self.bus_names)} "
            f"buses, {self.status}, welfare {self.welfare_eur:,.2f} EUR, {check}>"
        )


@dataclass(frozen=True)
class Publication:
    """What the market publishes to SCADA for an interval: DLMPs per bus and the schedule of
    every device over its periods. Built from a fresh result or from the store alike."""

    interval: str
    welfare_eur: float
    ac_feasible: bool
    parameters: GridParameters
    dlmp: dict[int, list[float]]
    schedule: dict[str, list[float]]

    @classmethod
    def of(cls, interval: str, result: ClearingResult) -> Publication:
        schedule: dict[str, list[float]] = {}
        for sp in result.setpoints:
            schedule.setdefault(sp.device_id, [0.0] * result.n_periods)[sp.period] = sp.p_mw
        return cls(
            interval,
            float(result.welfare_eur),
            result.ac_check.feasible,
            result.parameters,
            {
                int(b): [float(v) for v in result.prices.dlmp[:, i]]
                for i, b in enumerate(result.bus_indices)
            },
            schedule,
        )
