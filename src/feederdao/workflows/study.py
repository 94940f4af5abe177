"""A rolling day-ahead study: clear each day of a window and collect its tables.

:func:`clear_day` is one day in, one day's tidy tables out (a pure function of the network, the
day and the options: what a distributed scheduler runs as a task); :func:`run_study` runs the
days one after the other, reports progress, appends each finished day to the output files and,
when interrupted (Ctrl-C), keeps every finished day and raises :class:`StudyInterrupted`
carrying them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from feederdao.domain.clearing import ClearingOptions, ClearingResult, WholesalePrices
from feederdao.domain.market import Participant
from feederdao.domain.network import CURTAILABLE, DeviceKind, NetworkView
from feederdao.domain.params import GridParameters
from feederdao.domain.profiles import Profiles
from feederdao.errors import ParameterError
from feederdao.grid_model.bids import generate_bids
from feederdao.grid_model.participants import ParticipantRegistry
from feederdao.grid_model.powerflow import AcEvaluator
from feederdao.grid_model.profiles import PROFILE_CLOCK, build_profiles
from feederdao.optimizer.highs import Basis
from feederdao.workflows.clearing import (
    DEFAULT_START,
    PERIODS_PER_DAY,
    Market,
    parse_start,
    run_clearing,
)
from feederdao.workflows.network import NetLike, OpenNetwork, keep_for_the_run, open_network
from feederdao.workflows.outputs import (
    StudyWriter,
    check_formats,
    check_out_dir,
    report_data,
    to_xarray,
)
from feederdao.workflows.tables import TABLES, TIME, ClearingTables

if TYPE_CHECKING:
    import xarray as xr

#: a DLMP part smaller than this (EUR/MWh) is taken as zero: no limit prices the bus
PRICE_EPS = 0.01
#: the most days one study runs (SimBench's profiles are one year, 2016, of 366 days)
MAX_DAYS = 366


@dataclass(frozen=True)
class DayResult:
    """One cleared day: its result, its tables and how long it took."""

    start: datetime
    result: ClearingResult
    tables: ClearingTables
    times: tuple[datetime, ...]
    elapsed_s: float
    #: every optimised storage's state of charge at the day's end (percent of its capacity):
    #: the next day starts from it
    storage_soc_percent: Mapping[str, float] = field(default_factory=dict)
    #: PV (and other curtailable generation) available but not dispatched, MWh
    curtailment_mwh: float = 0.0
    #: load the clearing set below its profile (bids not accepted, or shed), MWh
    shed_load_mwh: float = 0.0
    #: where the day's last solve ended: the next day's clearing starts from it (``warm``);
    #: dropped once used (a study keeps its days, not their bases)
    basis: Basis | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """The day as one row of the study's ``days`` table."""
        return dict(self._summary)

    @functools.cached_property
    def _summary(self) -> dict[str, Any]:
        # worked out once: a study rewrites its ``days`` table after every day, and worked
        # out again each time that made a 224-day study twice as long
        r = self.result
        dlmp = r.prices.dlmp
        # a period counts when a limit prices some bus (its part of the DLMP is not zero)
        congested = (np.abs(r.prices.congestion) > PRICE_EPS).any(axis=1)
        voltage = (np.abs(r.prices.voltage) > PRICE_EPS).any(axis=1)
        book = self.tables.bids
        bought = book[book["side"] == "buy"]["accepted_mw"].sum() * r.period_hours
        sold = book[book["side"] == "sell"]["accepted_mw"].sum() * r.period_hours
        return {
            "welfare_eur": r.welfare_eur,
            "bought_mwh": float(bought),
            "sold_mwh": float(sold),
            "dlmp_min_eur_per_mwh": float(dlmp.min()),
            "dlmp_mean_eur_per_mwh": float(dlmp.mean()),
            "dlmp_max_eur_per_mwh": float(dlmp.max()),
            "congestion_hours": float(congested.sum() * r.period_hours),
            "voltage_limit_hours": float(voltage.sum() * r.period_hours),
            "curtailment_mwh": self.curtailment_mwh,
            "shed_load_mwh": self.shed_load_mwh,
            "ac_checked": r.ac_check.performed,
            "ac_feasible": r.ac_check.feasible,
            "ac_stopped": r.ac_check.stopped,
            "ac_iterations": r.ac_check.iterations,
            "violations": len(r.ac_check.violations),
            "binding": len(r.binding),
            "budget_balanced": r.settlement.budget_balanced,
            "merchandising_surplus_eur": r.settlement.merchandising_surplus_eur,
            "elapsed_s": self.elapsed_s,
            "notes": "; ".join(r.notes),
        }


def day_start(start: datetime, day: int) -> datetime:
    """The start of day ``day`` (0-based) of a study from ``start``: the same wall-clock time
    on the profiles' clock (a day across a summer-time change has 92 or 100 periods' worth of
    real time, but every study day has 96 periods from its local start)."""
    if start.tzinfo is None:
        return start + timedelta(days=day)
    local = start.astimezone(PROFILE_CLOCK)
    return (local.replace(tzinfo=None) + timedelta(days=day)).replace(tzinfo=PROFILE_CLOCK)


def clear_day(
    network: OpenNetwork,
    start: datetime,
    seed: int = 0,
    params: GridParameters | None = None,
    options: ClearingOptions | None = None,
    wholesale: WholesalePrices | None = None,
    ac: AcEvaluator | None = None,
    *,
    soc_percent: Mapping[str, float] | None = None,
    load_scale: float = 1.0,
    pv_scale: float = 1.0,
    participants: ParticipantRegistry | None = None,
    warm: Basis | None = None,
) -> DayResult:
    """Clear one day (96 periods from ``start``) of ``network`` on that day's profiles, with a
    book generated from them with ``seed``; AC-checked with ``ac`` (one is made if not given:
    pass it in to reuse it across days).

    ``soc_percent`` sets the storage units' state of charge at the day's start (by device id;
    the previous day's :attr:`DayResult.storage_soc_percent`); ``load_scale`` and
    ``pv_scale`` scale the loads' and the PV (and other curtailable generation) profiles;
    ``participants`` replaces the one-participant-per-bus registry; ``warm`` (the day before's
    :attr:`DayResult.basis`) is where the first solve starts (the same optimum, found faster:
    on 1-MV-semiurb--2-sw with storage optimised the first solve took 0.5–0.7 s from it)."""
    t0 = time.perf_counter()
    view = network.view
    profiles = scale_profiles(
        build_profiles(network.loaded, view, start, PERIODS_PER_DAY), view, load_scale, pv_scale
    )
    registry = participants or ParticipantRegistry.from_network(view, profiles)
    if soc_percent:
        registry = with_soc(registry, soc_percent)
    bids = generate_bids(view, registry, profiles, seed)
    market = Market(network, profiles, registry, bids)
    clearing = run_clearing(market, params, options, wholesale, ac=ac, warm=warm, keep_basis=True)
    return DayResult(
        start=profiles.timestamps()[0],
        result=clearing.result,
        tables=clearing.tables,
        times=tuple(profiles.timestamps()),
        elapsed_s=time.perf_counter() - t0,
        storage_soc_percent=final_soc_percent(clearing.result, registry),
        basis=clearing.basis,
        **_shortfalls_mwh(clearing.result, view, profiles),
    )


def _shortfalls_mwh(
    result: ClearingResult, view: NetworkView, profiles: Profiles
) -> dict[str, float]:
    """Curtailed generation and load served below its profile over the day (MWh), from the
    setpoints the clearing made against the profiles."""
    kinds = {d.device_id: d.kind for d in view.devices}
    curtailed = shed = 0.0
    for sp in result.setpoints:
        k = profiles.find(sp.device_id)
        if k is None or sp.position is not None:
            continue
        gap = float(profiles.p_mw[sp.period, k]) - sp.p_mw
        kind = kinds.get(sp.device_id)
        if kind in CURTAILABLE:
            curtailed += max(gap, 0.0)
        elif kind == DeviceKind.LOAD:
            shed += max(gap, 0.0)
    h = result.period_hours
    return {"curtailment_mwh": curtailed * h, "shed_load_mwh": shed * h}


def scale_profiles(
    profiles: Profiles, view: NetworkView, load_scale: float = 1.0, pv_scale: float = 1.0
) -> Profiles:
    """``profiles`` with the loads' P and Q times ``load_scale`` and the curtailable
    generation's (PV, wind) P times ``pv_scale`` (a scenario of a study)."""
    if load_scale == 1.0 and pv_scale == 1.0:
        return profiles
    kinds = {d.device_id: d.kind for d in view.devices}
    factor = np.ones(len(profiles.device_ids))
    for k, device_id in enumerate(profiles.device_ids):
        kind = kinds.get(device_id)
        if kind in (DeviceKind.LOAD, DeviceKind.FLEX_LOAD):
            factor[k] = load_scale
        elif kind in CURTAILABLE:
            factor[k] = pv_scale
    return replace(
        profiles,
        p_mw=np.array(profiles.p_mw * factor[None, :]),
        q_mvar=np.array(profiles.q_mvar * factor[None, :]),
    )


def with_soc(
    registry: ParticipantRegistry, soc_percent: Mapping[str, float]
) -> ParticipantRegistry:
    """The registry with each storage device of ``soc_percent`` starting at that state of
    charge (kept within the device's own minimum and maximum)."""
    parts: list[Participant] = []
    for part in registry.values():
        devices = tuple(
            replace(
                d,
                soc_init_percent=min(
                    max(float(soc_percent[d.device_id]), d.soc_min_percent), d.soc_max_percent
                ),
            )
            if d.kind == DeviceKind.STORAGE and d.device_id in soc_percent
            else d
            for d in part.devices
        )
        parts.append(replace(part, devices=devices))
    return ParticipantRegistry(registry.view, parts)


def final_soc_percent(result: ClearingResult, registry: ParticipantRegistry) -> dict[str, float]:
    """Each optimised storage's state of charge after the last period (percent of capacity),
    as the clearing left it."""
    out: dict[str, float] = {}
    for part in registry.values():
        for d in part.devices:
            soc = result.storage_soc_mwh.get(d.device_id)
            if d.kind != DeviceKind.STORAGE or not d.e_mwh or not soc:
                continue
            percent = 100.0 * soc[-1] / d.e_mwh
            out[d.device_id] = min(max(percent, d.soc_min_percent), d.soc_max_percent)
    return out


@dataclass(frozen=True)
class StudyProgress:
    """Where a study is: ``done`` of ``total`` days, the day just finished, the time so far
    and an estimate of the time left (seconds)."""

    done: int
    total: int
    day: DayResult
    elapsed_s: float

    @property
    def remaining_s(self) -> float:
        return self.elapsed_s / self.done * (self.total - self.done) if self.done else 0.0


@dataclass(frozen=True, repr=False, eq=False)
class Study:
    """The days of a study and their tables put end to end.

    ``prices``, ``voltages``, ``loadings``, ``dispatch``, ``bids``, ``periods`` are indexed by
    timestamp and name like a :class:`~feederdao.workflows.clearing.Clearing`'s; ``settlement``
    by (day start, participant); ``summary`` has one row per day. ``files`` are what was
    written (none without ``out``); ``interrupted`` says the study stopped before its last day.
    """

    network: str
    view: NetworkView
    requested_days: int
    days: tuple[DayResult, ...]
    files: tuple[Path, ...] = ()

    @property
    def interrupted(self) -> bool:
        return len(self.days) < self.requested_days

    @property
    def start(self) -> datetime | None:
        return self.days[0].start if self.days else None

    @property
    def welfare_eur(self) -> float:
        return float(sum(d.result.welfare_eur for d in self.days))

    def _concat(self, name: str) -> pd.DataFrame:
        frames = [getattr(d.tables, name) for d in self.days]
        if name == "settlement":
            frames = [
                pd.concat({pd.Timestamp(d.start): f}, names=[TIME])
                for d, f in zip(self.days, frames, strict=True)
            ]
        return pd.concat(frames) if frames else pd.DataFrame()

    @functools.cached_property
    def _tables(self) -> dict[str, pd.DataFrame]:
        return {name: self._concat(name) for name in TABLES}

    @property
    def prices(self) -> pd.DataFrame:
        return self._tables["prices"]

    @property
    def voltages(self) -> pd.DataFrame:
        return self._tables["voltages"]

    @property
    def loadings(self) -> pd.DataFrame:
        return self._tables["loadings"]

    @property
    def dispatch(self) -> pd.DataFrame:
        return self._tables["dispatch"]

    @property
    def bids(self) -> pd.DataFrame:
        return self._tables["bids"]

    @property
    def settlement(self) -> pd.DataFrame:
        return self._tables["settlement"]

    @property
    def periods(self) -> pd.DataFrame:
        return self._tables["periods"]

    @property
    def summary(self) -> pd.DataFrame:
        """One row per day (index: the day's start)."""
        return days_frame(self.days)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for d in self.days for n in d.result.notes))

    def to_xarray(self) -> xr.Dataset:
        """The days' time × bus and time × branch arrays as one Dataset (``time`` in UTC)."""
        return to_xarray([d.tables for d in self.days], self.network)

    def write(self, out: Path | str, formats: Sequence[str] = ("csv",)) -> list[Path]:
        """Write the study's tables, ``days`` and ``summary.json`` into the folder ``out``."""
        out = check_out_dir(Path(out), "out")
        formats = check_formats(formats)
        writer = StudyWriter(out, formats)
        for k, d in enumerate(self.days):
            writer.append(d.tables, pd.Timestamp(d.start), days_frame(self.days[: k + 1]))
        return writer.close(self.overview())

    def report(self, out: Path | str, title: str | None = None) -> Path:
        """Write the HTML report of the finished days into ``out``."""
        from feederdao.report.html import write_report

        if not self.days:
            raise ParameterError("the study has no finished day to report")
        out = check_out_dir(Path(out), "report folder")
        first = self.days[0].start
        name = (
            title
            or f"feederdao study: {self.network}, {len(self.days)} day(s) from {first:%Y-%m-%d}"
        )
        data = report_data(
            self.view, [d.result for d in self.days], [d.times for d in self.days], name
        )
        return write_report(out, data)

    def overview(self) -> dict[str, Any]:
        """The study in a few numbers (``summary.json``)."""
        days = self.summary
        return {
            "network": self.network,
            "start": self.days[0].start.isoformat() if self.days else None,
            "days_requested": self.requested_days,
            "days_finished": len(self.days),
            "interrupted": self.interrupted,
            "welfare_eur": round(self.welfare_eur, 2),
            "dlmp_min_eur_per_mwh": float(days["dlmp_min_eur_per_mwh"].min())
            if len(days)
            else None,
            "dlmp_max_eur_per_mwh": float(days["dlmp_max_eur_per_mwh"].max())
            if len(days)
            else None,
            "ac_feasible_days": int(days["ac_feasible"].sum()) if len(days) else 0,
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        state = " (interrupted)" if self.interrupted else ""
        when = f" from {self.start:%Y-%m-%d}" if self.start else ""
        return (
            f"<Study {self.network}: {len(self.days)} of {self.requested_days} day(s){when}"
            f"{state}, welfare {self.welfare_eur:,.2f} EUR>"
        )


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a study; ``study`` holds the days it finished (also on disk, when it
    was writing files)."""

    def __init__(self, study: Study) -> None:
        super().__init__(f"interrupted after {len(study.days)} of {study.requested_days} day(s)")
        self.study = study


def days_frame(days: Sequence[DayResult]) -> pd.DataFrame:
    """The per-day summary table (index: each day's start)."""
    index = pd.DatetimeIndex([d.start for d in days], name=TIME)
    return pd.DataFrame([d.summary() for d in days], index=index)


def check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ParameterError(f"days must be a positive whole number, not {days!r}")
    if days > MAX_DAYS:
        raise ParameterError(
            f"days {days} is more than the profiles hold ({MAX_DAYS}: SimBench's year)"
        )


def run_study(
    net: NetLike,
    days: int = 1,
    out: Path | str | None = None,
    start: datetime | str = DEFAULT_START,
    seed: int = 0,
    params: GridParameters | None = None,
    options: ClearingOptions | None = None,
    *,
    formats: Sequence[str] = ("csv",),
    report: bool = False,
    progress: Callable[[StudyProgress], None] | None = None,
    cache_dir: Path | None = None,
) -> Study:
    """Clear ``days`` consecutive days of ``net`` (96 periods each, bids generated from that
    day's profiles with ``seed + day``), each day's storage starting where the day before
    left it.

    With ``out``, each finished day is appended to the tables there (``formats``: csv and/or
    parquet) and ``report`` writes the HTML report at the end; without it nothing is written.
    ``progress`` is called after every day. Ctrl-C stops the study between two writes: the
    finished days stay on disk and :class:`StudyInterrupted` carries them."""
    check_days(days)
    first = parse_start(start)
    formats = check_formats(formats)
    folder = check_out_dir(Path(out)) if out is not None else None
    opened = open_network(net, cache_dir)
    ac = AcEvaluator(opened.loaded.net, opened.view)
    keep_for_the_run()
    writer = StudyWriter(folder, formats) if folder is not None else None
    finished: list[DayResult] = []
    t0 = time.perf_counter()
    interrupted = False
    soc: Mapping[str, float] = {}
    warm: Basis | None = None
    try:
        for d in range(days):
            day = clear_day(
                opened,
                day_start(first, d),
                seed + d,
                params,
                options,
                ac=ac,
                soc_percent=soc,
                warm=warm,
            )
            soc, warm = day.storage_soc_percent, day.basis
            day = replace(day, basis=None)
            finished.append(day)
            if writer is not None:
                writer.append(day.tables, pd.Timestamp(day.start), days_frame(finished))
            if progress is not None:
                progress(StudyProgress(d + 1, days, day, time.perf_counter() - t0))
    except KeyboardInterrupt:
        interrupted = True
    study = Study(opened.view.name, opened.view, days, tuple(finished))
    files: list[Path] = []
    if writer is not None:
        files = writer.close(study.overview())
        if report and finished:
            page = study.report(folder)  # type: ignore[arg-type]
            files += [page, *sorted(folder.glob("*.png"))]  # type: ignore[union-attr]
    study = Study(opened.view.name, opened.view, days, tuple(finished), tuple(files))
    if interrupted:
        raise StudyInterrupted(study)
    return study
