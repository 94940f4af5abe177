"""Results on disk, in one convention for ``clear`` and ``study`` (docs/outputs.md).

Every table of :mod:`feederdao.workflows.tables` becomes ``<table>.csv`` and/or
``<table>.parquet``: long (one row per time and element), ``time`` first (ISO 8601 with the
UTC offset in CSV, a time-zone-aware timestamp in Parquet), names and pandapower ids, units in
the column names. Files are written whole or not at all (a temporary name, then renamed); a
study appends each finished day, so an interrupted study keeps every day it finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from feederdao.domain.clearing import ClearingResult, SettlementRow
from feederdao.domain.network import NetworkView
from feederdao.errors import ParameterError
from feederdao.report.html import ReportData, write_report
from feederdao.workflows.tables import PRICE_COLUMNS, TIME, ClearingTables

if TYPE_CHECKING:
    import xarray as xr

    from feederdao.workflows.clearing import Clearing

FORMATS = ("csv", "parquet")
#: columns that hold text (names, ids, kinds): an empty one is "", not a missing number
TEXT = frozenset(
    {"bus", "branch", "device", "participant", "bid_id", "kind", "side", "device_id"}
    | {"branch_id", "notes", "ac_stopped"}
)


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(f.strip().lower() for f in formats))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ParameterError(
            f"output format {', '.join(bad) or 'none'!s} is not one of csv, parquet"
        )
    return out


def check_out_dir(out: Path, what: str = "--out") -> Path:
    """Make sure results can be written to the folder ``out`` before any work: it is created
    if missing; an existing file, or a folder that cannot be written, is one clear error."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{what} {str(out)!r} is a file; results go into a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".feederdao-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ParameterError(
            f"{what} {str(out)!r} cannot be written: {exc.strerror or exc}"
        ) from None
    return out


def iso(times: pd.Series | pd.Index) -> pd.Series:
    """Time-zone-aware timestamps as ISO 8601 text with the UTC offset
    (``2016-06-21T00:00:00+02:00``)."""
    s = pd.Series(times).dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    out: pd.Series = s.str[:-2] + ":" + s.str[-2:]
    return out


def long(frame: pd.DataFrame, name: str, start: pd.Timestamp | None = None) -> pd.DataFrame:
    """A table as it is written: the index as leading columns; a settlement gets its window's
    start as ``time`` when it has none."""
    out = frame.reset_index()
    if TIME not in out.columns and start is not None:
        out.insert(0, TIME, start)
    del name
    return out


def _csv_text(frame: pd.DataFrame, header: bool) -> str:
    out = frame.copy()
    if TIME in out.columns:
        out[TIME] = iso(out[TIME]).to_numpy()
    return str(out.to_csv(index=False, header=header, lineterminator="\n"))


def _atomic(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def write_frame(frame: pd.DataFrame, stem: Path, formats: Sequence[str]) -> list[Path]:
    """``frame`` (already long) as ``stem.csv``/``stem.parquet``, each written whole."""
    written = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        tmp = _atomic(path)
        if fmt == "csv":
            tmp.write_text(_csv_text(frame, header=True))
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        written.append(path)
    return written


def _write_json(path: Path, data: Any) -> Path:
    tmp = _atomic(path)
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)
    return path


def write_clearing(clearing: Clearing, out: Path, formats: Sequence[str] = ("csv",)) -> list[Path]:
    """The tables, ``summary.json`` and ``result.json`` of one clearing in ``out``."""
    formats = check_formats(formats)
    out = check_out_dir(out, "out")
    start = pd.Timestamp(clearing.start)
    files: list[Path] = []
    for name, frame in clearing.tables.items():
        files += write_frame(long(frame, name, start), out / name, formats)
    files.append(_write_json(out / "summary.json", clearing.summary()))
    tmp = _atomic(out / "result.json")
    tmp.write_text(clearing.result.to_json())
    os.replace(tmp, out / "result.json")
    files.append(out / "result.json")
    return files


def read_output(path: Path | str) -> pd.DataFrame:
    """A table written by ``clear`` or ``study`` (CSV or Parquet), indexed as the API's
    DataFrames are, with ``time`` as time-zone-aware timestamps (Europe/Berlin). A settlement
    comes back indexed by (time, participant), ``time`` being its window's start."""
    from zoneinfo import ZoneInfo

    path = Path(path)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:  # exact floats back; times parsed to UTC first (a window may span two offsets)
        header = list(pd.read_csv(path, nrows=0).columns)
        frame = pd.read_csv(
            path,
            float_precision="round_trip",
            dtype={c: str for c in header if c in TEXT},
            keep_default_na=False,
            na_values={c: [""] for c in header if c not in TEXT},
        )
        if TIME in frame.columns:
            frame[TIME] = pd.to_datetime(frame[TIME], utc=True)
    if TIME in frame.columns:
        frame[TIME] = frame[TIME].dt.tz_convert(ZoneInfo("Europe/Berlin"))
    keys = [TIME] if TIME in frame.columns else []
    for names in (("bid_id", "block"), ("device",), ("participant",), ("branch",), ("bus",)):
        if all(n in frame.columns for n in names):
            keys += list(names)  # the element the table is about; its bus is a column
            break
    return frame.set_index(keys) if keys else frame


# -- studies: one day at a time ----------------------------------------------------------------


class _Deferred:
    """Hold Ctrl-C (SIGINT) back while a day is written, so files only ever hold whole days;
    the interrupt is raised as soon as the write is done."""

    def __init__(self) -> None:
        self.pending = False

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self.pending = False

        def note(signum: int, frame: Any) -> None:
            self.pending = True

        previous = signal.signal(signal.SIGINT, note)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            if self.pending:
                raise KeyboardInterrupt


class StudyWriter:
    """Appends each finished day of a study to its tables; :meth:`close` finishes the files.

    CSV files grow by whole days; Parquet files are written as ``.<name>.parquet.partial``
    with one row group per day and renamed into place when the study ends or is interrupted.
    """

    def __init__(self, out: Path, formats: Sequence[str] = ("csv",)) -> None:
        self.out = check_out_dir(out)
        self.formats = check_formats(formats)
        self._parquet: dict[str, Any] = {}
        self._started: set[str] = set()
        self._defer = _Deferred()
        self.files: list[Path] = []

    def append(self, tables: ClearingTables, day_start: pd.Timestamp, days: pd.DataFrame) -> None:
        """Add one day's tables and rewrite the per-day summary ``days``."""
        with self._defer.hold():
            for name, frame in [*tables.items(), ("days", None)]:
                if name == "days":
                    self._write_days(days)
                    continue
                assert frame is not None
                self._append(name, long(frame, name, day_start))

    def _append(self, name: str, frame: pd.DataFrame) -> None:
        first = name not in self._started
        self._started.add(name)
        if "csv" in self.formats:
            path = self.out / f"{name}.csv"
            with path.open("w" if first else "a", newline="") as fh:
                fh.write(_csv_text(frame, header=first))
                fh.flush()
            if first:
                self.files.append(path)
        if "parquet" in self.formats:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = self._parquet.get(name)
            if writer is None:
                final = self.out / f"{name}.parquet"
                writer = pq.ParquetWriter(_atomic(final), table.schema)
                self._parquet[name] = writer
            writer.write_table(table.cast(writer.schema))

    def _write_days(self, days: pd.DataFrame) -> None:
        frame = days.reset_index()
        for path in write_frame(frame, self.out / "days", self.formats):
            if path not in self.files:
                self.files.append(path)

    def close(self, summary: dict[str, Any]) -> list[Path]:
        """Finish the Parquet files and write ``summary.json``; returns every file written."""
        with self._defer.hold():
            for name, writer in self._parquet.items():
                writer.close()
                final = self.out / f"{name}.parquet"
                os.replace(_atomic(final), final)
                self.files.append(final)
            self._parquet.clear()
            self.files.append(_write_json(self.out / "summary.json", summary))
        return list(dict.fromkeys(self.files))


# -- arrays -------------------------------------------------------------------------------------


def _grid(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, list[str]]:
    """``frame[column]`` of a [time, element] table as a [time, element] array (element order
    kept)."""
    names = list(pd.unique(frame.index.get_level_values(1)))
    values = frame[column].to_numpy(dtype=float)
    return values.reshape(-1, len(names)) if names else values.reshape(-1, 0), names


def to_xarray(days: Sequence[ClearingTables], network: str) -> xr.Dataset:
    """One Dataset of the time × bus and time × branch arrays of ``days`` (put end to end).

    ``time`` is in UTC (xarray keeps no time zone); ``time_local`` holds the ISO text in the
    profiles' zone."""
    import xarray as xr

    prices = pd.concat([d.prices for d in days])
    voltages = pd.concat([d.voltages for d in days])
    loadings = pd.concat([d.loadings for d in days])
    periods = pd.concat([d.periods for d in days])
    times = pd.DatetimeIndex(periods.index)
    data: dict[str, Any] = {}
    for col, _ in PRICE_COLUMNS:
        grid, buses = _grid(prices, col)
        data[col] = (("time", "bus"), grid)
    for col in ("vm_pu", "va_degree", "vm_lp_pu"):
        data[col] = (("time", "bus"), _grid(voltages, col)[0])
    for col in ("loading_percent", "loading_lp_percent", "p_from_mw", "q_from_mvar", "pl_mw"):
        grid, branches = _grid(loadings, col)
        data[col] = (("time", "branch"), grid)
    for col in periods.columns:
        data[col] = (("time",), periods[col].to_numpy(dtype=float))
    n_b = len(buses)
    n_k = len(branches)
    return xr.Dataset(
        data,
        coords={
            "time": times.tz_convert("UTC").tz_localize(None),
            "time_local": ("time", iso(times).to_numpy()),
            "bus": buses,
            "bus_id": ("bus", prices["bus_id"].to_numpy()[:n_b]),
            "branch": branches,
            "branch_id": ("branch", loadings["branch_id"].to_numpy()[:n_k]),
        },
        attrs={"network": network, "time_zone": "UTC (time), " + str(times.tz)},
    )


# -- pandapower result tables -------------------------------------------------------------------


def res_tables(clearing: Clearing, period: int = 0) -> dict[str, pd.DataFrame]:
    """One period of a clearing as pandapower's ``res_*`` tables (see
    :meth:`~feederdao.workflows.clearing.Clearing.res_tables`)."""
    market = clearing.market
    view = market.network.view
    net = market.network.loaded.net
    n_t = clearing.result.n_periods
    if not 0 <= period < n_t:
        raise ParameterError(f"period {period} is outside the window (0 to {n_t - 1})")
    flow, result = clearing.flow, clearing.result
    vm = (result.ac_vm_pu if result.ac_vm_pu is not None else result.lp_vm_pu)[period]
    va = flow.va_degree[period] if flow is not None else np.full(len(view.buses), np.nan)
    dispatch = clearing.dispatch.xs(clearing.tables.periods.index[period], level=TIME)
    sign = np.where(dispatch["kind"].isin(["pv", "renewable", "generator"]), -1.0, 1.0)
    cons_p = np.zeros(len(view.buses))
    cons_q = np.zeros(len(view.buses))
    rows = np.array([view.bus_position(b) for b in dispatch["bus_id"]], dtype=np.int64)
    np.add.at(cons_p, rows, sign * dispatch["p_mw"].to_numpy())
    np.add.at(cons_q, rows, sign * np.nan_to_num(dispatch["q_mvar"].to_numpy()))
    bus_index = [int(i) for i in net.bus.index]
    pos = [view.bus_position(b) if view.has_bus(b) else -1 for b in bus_index]

    def at(values: np.ndarray) -> list[float]:
        return [float(values[k]) if k >= 0 else np.nan for k in pos]

    own = [view.has_bus(b) and view.canonical_bus(b) == b for b in bus_index]
    res_bus = pd.DataFrame(
        {
            "vm_pu": at(vm),
            "va_degree": at(va),
            "p_mw": [v if o else 0.0 for v, o in zip(at(cons_p), own, strict=True)],
            "q_mvar": [v if o else 0.0 for v, o in zip(at(cons_q), own, strict=True)],
            "dlmp_eur_per_mwh": at(result.prices.dlmp[period]),
        },
        index=pd.Index(bus_index),
    )
    out = {"res_bus": res_bus}
    loading = flow.element_loading_percent if flow is not None else {}
    for table, end in (("line", "from_bus"), ("trafo", "hv_bus")):
        cols: dict[str, list[float]] = {
            k: [] for k in ("p_from_mw", "q_from_mvar", "p_to_mw", "pl_mw", "loading_percent")
        }
        index = []
        for k, br in enumerate(view.branches):
            for member in br.parallel_ids or (br.branch_id,):
                kind, element = member.split(":")
                if kind != table:
                    continue
                index.append(int(element))
                single = not br.parallel_ids and flow is not None
                forward = view.canonical_bus(int(getattr(net, table).at[int(element), end])) == (
                    br.from_bus
                )
                if single and flow is not None:
                    p_in, p_out = flow.branch_p_from_mw[period, k], flow.branch_p_to_mw[period, k]
                    q_in = flow.branch_q_from_mvar[period, k]
                    q_out = (
                        flow.branch_q_to_mvar[period, k]
                        if flow.branch_q_to_mvar is not None
                        else np.nan
                    )
                    if not forward:
                        p_in, p_out, q_in = p_out, p_in, q_out
                    cols["p_from_mw"].append(float(p_in))
                    cols["q_from_mvar"].append(float(q_in))
                    cols["p_to_mw"].append(float(p_out))
                    cols["pl_mw"].append(float(p_in + p_out))
                else:
                    for c in ("p_from_mw", "q_from_mvar", "p_to_mw", "pl_mw"):
                        cols[c].append(np.nan)
                lp = loading.get(member) if br.rating_mva is not None else None
                cols["loading_percent"].append(float(lp[period]) if lp is not None else np.nan)
        out[f"res_{table}"] = pd.DataFrame(cols, index=pd.Index(index, dtype="int64"))
    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    slack_p = flow.slack_p_mw[period] if flow is not None else result.slack_import_mw[period]
    slack_q = flow.slack_q_mvar[period] if flow is not None else np.full(len(ext), np.nan)
    out["res_ext_grid"] = pd.DataFrame(
        {"p_mw": slack_p, "q_mvar": slack_q}, index=pd.Index([int(i) for i in ext.index])
    )
    for table in ("load", "sgen", "storage", "gen"):
        mine = dispatch[dispatch["device_id"].str.startswith(f"{table}:")]
        out[f"res_{table}"] = pd.DataFrame(
            {"p_mw": mine["p_mw"].to_numpy(), "q_mvar": mine["q_mvar"].to_numpy()},
            index=pd.Index([int(d.split(":")[1]) for d in mine["device_id"]], dtype="int64"),
        )
    return out


# -- reports -------------------------------------------------------------------------------------


def report_data(
    view: NetworkView,
    results: Sequence[ClearingResult],
    windows: Sequence[Sequence[datetime]],
    title: str,
) -> ReportData:
    """What the report shows of one clearing or of a study's days (put end to end):
    ``results[i]`` was cleared over the period starts ``windows[i]``."""
    res = list(results)

    def stack(get: Any) -> np.ndarray:
        return np.vstack([get(r) for r in res])

    rated = np.array([br.rating_mva is not None for br in view.branches], dtype=bool)
    loading = stack(
        lambda r: r.ac_loading_percent if r.ac_loading_percent is not None else r.lp_loading_percent
    )
    times = tuple(t for w in windows for t in w)
    params = res[0].parameters
    welfare = sum(r.welfare_eur for r in res)
    dlmp = stack(lambda r: r.prices.dlmp)
    checked = [r.ac_check for r in res]
    facts: list[tuple[str, str]] = [
        ("network", f"{view.name} ({len(view.buses)} buses, {view.topology})"),
        ("welfare", f"{welfare:,.2f} EUR"),
        ("DLMP", f"{dlmp.min():.2f} to {dlmp.max():.2f} EUR/MWh (mean {dlmp.mean():.2f})"),
        (
            "grid parameters",
            f"voltage {params.v_min_pu:g}–{params.v_max_pu:g} pu, loading limit "
            f"{params.max_line_loading_percent:g} %, network fee "
            f"{params.network_fee_eur_per_mwh:g} EUR/MWh ({params.provenance.source}"
            + (
                f", block {params.provenance.block_number}"
                if params.provenance.block_number
                else ""
            )
            + ")",
        ),
        (
            "AC check",
            "all limits met"
            if all(a.feasible for a in checked)
            else (
                "not performed"
                if not any(a.performed for a in checked)
                else f"{sum(len(a.violations) for a in checked)} violation(s)"
            ),
        ),
    ]
    if len(res) > 1:
        facts.insert(1, ("days", str(len(res))))
    binding: list[str] = []
    violations: list[str] = []
    notes: list[str] = []
    for r, w in zip(res, windows, strict=True):
        prefix = f"{w[0]:%Y-%m-%d}: " if len(res) > 1 else ""
        binding += [prefix + b for b in r.binding]
        violations += [prefix + v for v in r.ac_check.violations]
        notes += list(r.notes)
    totals: dict[tuple[str, int], list[float]] = {}
    for r in res:
        for row in r.settlement.rows:
            acc = totals.setdefault((row.participant_id, row.bus), [0.0, 0.0, 0.0, 0.0])
            for i, v in enumerate(
                (row.bought_mwh, row.sold_mwh, row.energy_payment_eur, row.fee_eur)
            ):
                acc[i] += v
    lines = tuple(SettlementRow(pid, bus, *vals) for (pid, bus), vals in totals.items())
    st = [r.settlement for r in res]
    settlement_facts = (
        ("merchandising surplus", f"{sum(s.merchandising_surplus_eur for s in st):.2f} EUR"),
        ("of which congestion rent", f"{sum(s.congestion_rent_eur for s in st):.2f} EUR"),
        ("network fees", f"{sum(s.fees_eur for s in st):.2f} EUR"),
        ("substation's wholesale bill", f"{sum(s.wholesale_cost_eur for s in st):.2f} EUR"),
        (
            "inflexible consumption at its bus prices",
            f"{sum(s.non_market_payment_eur for s in st):.2f} EUR",
        ),
    )
    slack = np.isin(np.arange(len(view.buses)), [view.bus_position(b) for b in view.slack_buses])
    return ReportData(
        title=title,
        times=times,
        bus_names=tuple(b.name for b in view.buses),
        branch_names=tuple(br.name for br in view.branches),
        substation=slack,
        dlmp=dlmp,
        energy=stack(lambda r: r.prices.energy),
        loss=stack(lambda r: r.prices.loss),
        congestion=stack(lambda r: r.prices.congestion),
        voltage=stack(lambda r: r.prices.voltage),
        vm_pu=stack(lambda r: r.ac_vm_pu if r.ac_vm_pu is not None else r.lp_vm_pu),
        loading_percent=np.where(rated[None, :], loading, np.nan),
        v_min_pu=params.v_min_pu,
        v_max_pu=params.v_max_pu,
        loading_limit_percent=params.max_line_loading_percent,
        facts=tuple(facts),
        binding=tuple(binding),
        violations=tuple(violations),
        notes=tuple(dict.fromkeys(notes)),
        settlement=lines,
        settlement_facts=settlement_facts,
        view=view,
    )


def clearing_report(clearing: Clearing, out: Path, title: str | None = None) -> Path:
    """The HTML report of one clearing in ``out`` (``index.html`` and its PNG plots)."""
    out = check_out_dir(out, "report folder")
    name = title or f"feederdao clearing: {clearing.result.network}, {clearing.start:%Y-%m-%d}"
    times = clearing.market.profiles.timestamps()
    data = report_data(clearing.market.network.view, [clearing.result], [times], name)
    return write_report(out, data)
