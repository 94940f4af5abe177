"""Clear a feeder's market: network, profiles, participants and bids in; a checked result out.

:func:`open_market` takes any network (a ``--net`` spec, a file, a pandapower net) and any book
(a bid file, a DataFrame, ``Bid`` values, or none: a seeded book from the profiles);
:func:`run_clearing` clears it and returns a :class:`Clearing`, the result with its tables.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feederdao.domain.bidrules import BidRules
from feederdao.domain.clearing import ClearingOptions, ClearingResult, WholesalePrices
from feederdao.domain.market import Bid
from feederdao.domain.params import GridParameters
from feederdao.domain.powerflow import PowerFlowResult
from feederdao.domain.profiles import Profiles
from feederdao.errors import BidValidationError, ParameterError
from feederdao.grid_model.bids import bid_from_dict, generate_bids, read_bids
from feederdao.grid_model.participants import ParticipantRegistry
from feederdao.grid_model.powerflow import AcEvaluator
from feederdao.grid_model.profiles import build_profiles
from feederdao.optimizer.clearing import ClearingEngine
from feederdao.optimizer.highs import Basis
from feederdao.optimizer.model import Extension
from feederdao.workflows.network import NetLike, OpenNetwork, open_network
from feederdao.workflows.tables import ClearingTables, build_tables

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

DEFAULT_START = datetime(2016, 6, 21)
PERIODS_PER_DAY = 96
#: the longest window one clearing takes (7 days of 15-minute periods); longer runs are studies
MAX_PERIODS = 7 * PERIODS_PER_DAY

#: what a book of bids may be given as: a .csv/.json file, a DataFrame with the file's columns,
#: ``Bid`` values, or None (a seeded book generated from the profiles)
BidsLike = str | Path | Sequence[Bid] | Any | None


@dataclass(frozen=True)
class Market:
    """A feeder with its window, participants and a validated bid book."""

    network: OpenNetwork
    profiles: Profiles
    registry: ParticipantRegistry
    bids: tuple[Bid, ...]

    def __repr__(self) -> str:
        t = self.profiles.timestamps()
        return (
            f"<Market {self.network.name}: {len(self.bids)} bids of {len(self.registry)} "
            f"participants, {self.profiles.n_periods} periods from {t[0].isoformat()}>"
        )


_START = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_start(value: str | date | datetime | Any, what: str = "start") -> datetime:
    """A window's start from ``2016-06-21``, ``2016-06-21T12:00``, ``…+02:00``, a ``date``, a
    ``datetime`` or a pandas ``Timestamp``. A time without a zone is read on the profiles'
    clock (Europe/Berlin). Says plainly when the text is not a date (``2016-02-30``)."""
    if isinstance(value, datetime):
        return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = str(value).strip()
    m = _START.match(text)
    if m is None:
        raise ParameterError(
            f"{what} {text!r} is not a date or time: write YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        )
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    if not 1 <= month <= 12:
        raise ParameterError(f"{what} {text} is not a date: there is no month {month}")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise ParameterError(
            f"{what} {text} is not a date: {calendar.month_name[month]} {year} has {last} days"
        )
    hour, minute, second = int(m[4] or 0), int(m[5] or 0), int(m[6] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ParameterError(f"{what} {text} is not a time of day")
    if m[7]:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    return datetime(year, month, day, hour, minute, second)


def check_periods(periods: int, what: str = "periods") -> None:
    """Refuse a window one clearing cannot hold (memory grows with it), saying what to do."""
    if isinstance(periods, bool) or not isinstance(periods, int) or periods < 1:
        raise ParameterError(f"{what} must be a positive whole number, not {periods!r}")
    if periods > MAX_PERIODS:
        raise ParameterError(
            f"{what} {periods} is more than one clearing holds (at most {MAX_PERIODS}: "
            f"{MAX_PERIODS // PERIODS_PER_DAY} days of 15-minute periods); clear longer windows "
            "day by day as a study (feederdao study --days N, or feederdao.run_study)"
        )


def bids_from_frame(frame: Any) -> tuple[Bid, ...]:
    """Bids from a DataFrame with the bid file's columns (one row per price–quantity block;
    rows sharing a ``bid_id`` are one bid's blocks). Errors name the row."""
    needed = ("bid_id", "participant_id", "bus", "period", "side", "price_eur_per_mwh")
    columns = [str(c) for c in frame.columns]
    missing = [c for c in (*needed, "quantity_mw") if c not in columns]
    if missing:
        raise BidValidationError(f"bids DataFrame: missing column(s) {', '.join(missing)}")
    groups: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for label, row in zip(frame.index, frame.to_dict("records"), strict=True):
        bid_id = row["bid_id"]
        if bid_id is None or (isinstance(bid_id, float) and math.isnan(bid_id)):
            raise BidValidationError(f"bids DataFrame row {label!r}: bid_id is empty")
        groups.setdefault(str(bid_id), []).append((label, row))
    out = []
    for bid_id, rows in groups.items():
        label0, first = rows[0]
        where = f"bids DataFrame row {label0!r} (bid {bid_id!r})"
        device = first.get("device_id")
        device = None if device is None or device != device or device == "" else str(device)
        for label, row in rows[1:]:
            for key in ("participant_id", "bus", "period", "side", "device_id"):
                a, b = first.get(key), row.get(key)
                if str(a) != str(b) and not (a != a and b != b):  # NaN == NaN here
                    raise BidValidationError(
                        f"bids DataFrame row {label!r} (bid {bid_id!r}): {key} differs from "
                        f"row {label0!r}"
                    )
        item = {
            "bid_id": bid_id,
            "participant_id": str(first["participant_id"]),
            "bus": _scalar(first["bus"]),
            "period": _scalar(first["period"]),
            "side": str(first["side"]),
            "device_id": device,
            "blocks": [
                {
                    "price_eur_per_mwh": _scalar(r["price_eur_per_mwh"]),
                    "quantity_mw": _scalar(r["quantity_mw"]),
                }
                for _, r in rows
            ],
        }
        out.append(bid_from_dict(item, where))
    return tuple(out)


def _scalar(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (the readers check the type)."""
    return value.item() if hasattr(value, "item") else value


def _book(bids: BidsLike) -> tuple[Bid, ...] | None:
    if bids is None:
        return None
    if isinstance(bids, str | Path):
        return read_bids(Path(bids))
    if hasattr(bids, "columns") and hasattr(bids, "to_dict"):
        return bids_from_frame(bids)
    items = tuple(bids)
    if not all(isinstance(b, Bid) for b in items):
        raise BidValidationError(
            "bids must be a .csv/.json file, a DataFrame with the bid file's columns, or Bid values"
        )
    return items


def open_market(
    spec: NetLike,
    periods: int = PERIODS_PER_DAY,
    start: datetime | str = DEFAULT_START,
    bids_file: Path | None = None,
    seed: int = 0,
    participants_file: Path | None = None,
    params: GridParameters | None = None,
    *,
    bids: BidsLike = None,
    cache_dir: Path | None = None,
) -> Market:
    """Load the network and profiles; take the book from ``bids`` (or ``bids_file``) or
    generate it (seeded).

    ``spec`` is any network :func:`~feederdao.workflows.network.open_network` takes. The bids
    are checked at once (against ``params``' price floor and cap, defaults if not given), so a
    bad book fails before any solve."""
    check_periods(periods)
    opened = open_network(spec, cache_dir)
    profiles = build_profiles(opened.loaded, opened.view, parse_start(start), periods)
    registry = (
        ParticipantRegistry.from_json(opened.view, participants_file)
        if participants_file
        else ParticipantRegistry.from_network(opened.view, profiles)
    )
    raw = _book(bids if bids is not None else bids_file)
    if raw is None:
        raw = generate_bids(opened.view, registry, profiles, seed)
    book = BidRules.of(opened.view, params or GridParameters(), periods).check(raw, registry)
    return Market(opened, profiles, registry, book)


def _engine(
    market: Market,
    params: GridParameters | None,
    options: ClearingOptions | None,
    wholesale: WholesalePrices | None,
    extensions: Sequence[Extension] = (),
    warm: Basis | None = None,
) -> ClearingEngine:
    return ClearingEngine(
        market.network.view,
        market.profiles,
        market.bids,
        tuple(market.registry.values()),
        params,
        wholesale,
        options,
        extensions,
        warm=warm,
    )


def clear_market(
    market: Market,
    params: GridParameters | None = None,
    options: ClearingOptions | None = None,
    wholesale: WholesalePrices | None = None,
) -> ClearingResult:
    """Clear ``market`` and AC-check the dispatch with pandapower's network model."""
    return run_clearing(market, params, options, wholesale).result


def run_clearing(
    market: Market,
    params: GridParameters | None = None,
    options: ClearingOptions | None = None,
    wholesale: WholesalePrices | None = None,
    extensions: Sequence[Extension] = (),
    ac: AcEvaluator | None = None,
    warm: Basis | None = None,
    keep_basis: bool = False,
) -> Clearing:
    """Clear ``market``, AC-check the dispatch, and keep the AC power flow of the result;
    the first solve starts from ``warm`` (a clearing of the same feeder: its
    :attr:`Clearing.basis`) when given. ``keep_basis`` keeps where the last solve ended in
    :attr:`Clearing.basis` (reading it costs 0.1–0.2 s on an MV day, so only when asked)."""
    # inf/inf where a branch has no rating is no news to a user: numpy is told not to say it
    with np.errstate(divide="ignore", invalid="ignore"):
        engine = _engine(market, params, options, wholesale, extensions, warm)
        ac = ac or AcEvaluator(market.network.loaded.net, market.network.view)
        result = engine.run(ac)
    flow = engine.point.flow if result.ac_check.performed else None
    return Clearing(result, market, flow, engine.basis() if keep_basis else None)


@dataclass(frozen=True, repr=False, eq=False)
class Clearing:
    """A clearing's result with its market, read as pandas tables.

    ``prices``, ``voltages``, ``loadings``, ``dispatch``, ``bids``, ``settlement`` and
    ``periods`` are DataFrames indexed by timestamp and name (docs/outputs.md);
    :meth:`to_xarray` gives the time × bus and time × branch arrays; :meth:`write` the files;
    :meth:`report` the HTML report; :meth:`to_pandapower` writes one period into a net's
    ``res_*`` tables. ``result`` is the :class:`~feederdao.domain.clearing.ClearingResult`
    itself (arrays in view order)."""

    result: ClearingResult
    market: Market
    flow: PowerFlowResult | None = None
    #: where the last solve ended, when asked for (the next clearing of this feeder can
    #: start from it)
    basis: Basis | None = None

    @functools.cached_property
    def tables(self) -> ClearingTables:
        m = self.market
        return build_tables(self.result, m.network.view, m.profiles, m.bids, self.flow)

    @property
    def prices(self) -> pd.DataFrame:
        """[time, bus]: ``dlmp_eur_per_mwh`` and its energy, loss, congestion and voltage
        parts (EUR/MWh), ``reactive_eur_per_mvarh``."""
        return self.tables.prices

    @property
    def voltages(self) -> pd.DataFrame:
        """[time, bus]: ``vm_pu`` and ``va_degree`` (AC-checked), ``vm_lp_pu`` (linear)."""
        return self.tables.voltages

    @property
    def loadings(self) -> pd.DataFrame:
        """[time, branch]: ``loading_percent`` (NaN: no rating), flows and losses."""
        return self.tables.loadings

    @property
    def dispatch(self) -> pd.DataFrame:
        """[time, device]: ``p_mw``, ``q_mvar`` of every device, ``dispatched`` by the market."""
        return self.tables.dispatch

    @property
    def bids(self) -> pd.DataFrame:
        """[time, bid_id, block]: the book with ``accepted_mw`` and the bus's DLMP."""
        return self.tables.bids

    @property
    def settlement(self) -> pd.DataFrame:
        """[participant]: MWh bought and sold; EUR paid (positive) or received (negative)."""
        return self.tables.settlement

    @property
    def periods(self) -> pd.DataFrame:
        """[time]: substation import, losses, voltage range, highest loading, DLMP range."""
        return self.tables.periods

    @property
    def notes(self) -> tuple[str, ...]:
        return self.result.notes

    @property
    def start(self) -> datetime:
        return self.market.profiles.timestamps()[0]

    def summary(self) -> dict[str, Any]:
        """The result's summary with the window's start and end (ISO 8601 with offset)."""
        times = self.market.profiles.timestamps()
        step = timedelta(minutes=self.market.profiles.resolution_min)
        return {
            "start": times[0].isoformat(),
            "end": (times[-1] + step).isoformat(),
            **self.result.summary(),
        }

    def to_xarray(self) -> xr.Dataset:
        """The time × bus and time × branch arrays as one Dataset (``time`` in UTC)."""
        from feederdao.workflows.outputs import to_xarray

        return to_xarray([self.tables], self.result.network)

    def res_tables(self, period: int = 0) -> dict[str, pd.DataFrame]:
        """pandapower-style result tables of one period (``res_bus``, ``res_line``,
        ``res_trafo``, ``res_ext_grid``, ``res_load``, ``res_sgen``, ``res_storage``,
        ``res_gen``), indexed by the elements' pandapower indices; ``res_bus`` also carries
        ``dlmp_eur_per_mwh``."""
        from feederdao.workflows.outputs import res_tables

        return res_tables(self, period)

    def to_pandapower(self, net: Any, period: int = 0) -> Any:
        """Write one period's results into ``net``'s ``res_*`` tables (and nothing else of
        ``net``), as after a pandapower power flow; returns ``net``."""
        for name, frame in self.res_tables(period).items():
            net[name] = frame
        return net

    def write(self, out: Path | str, formats: Sequence[str] = ("csv",)) -> list[Path]:
        """Write the tables (``csv`` and/or ``parquet``), ``summary.json`` and ``result.json``
        into the folder ``out`` (docs/outputs.md); returns the files."""
        from feederdao.workflows.outputs import write_clearing

        return write_clearing(self, Path(out), formats)

    def report(self, out: Path | str, title: str | None = None) -> Path:
        """Write the HTML report (``index.html`` and its plots) into ``out``."""
        from feederdao.workflows.outputs import clearing_report

        return clearing_report(self, Path(out), title)

    def __repr__(self) -> str:
        r = self.result
        ac = r.ac_check
        verdict = (
            "AC check not performed"
            if not ac.performed
            else ("all limits met" if ac.feasible else f"{len(ac.violations)} violation(s)")
            + f" ({ac.stopped}, {ac.iterations} iteration(s))"
        )
        dlmp = r.prices.dlmp
        return (
            f"<Clearing {r.network}: {r.n_periods} periods from {self.start.isoformat()}, "
            f"{r.status}, welfare {r.welfare_eur:,.2f} EUR, DLMP {dlmp.min():.2f}–"
            f"{dlmp.max():.2f} EUR/MWh, {verdict}>"
        )
