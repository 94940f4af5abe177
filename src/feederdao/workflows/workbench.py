"""The engineer's Python API: what ``import feederdao`` offers at its top level.

Networks go in as a ``--net`` spec, a file or a pandapower net; bids as a file, a DataFrame or
nothing (a seeded book from the profiles); results come out as pandas tables indexed by
timestamp and name (docs/outputs.md), an xarray Dataset, files and an HTML report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from feederdao.domain.clearing import ClearingOptions, WholesalePrices
from feederdao.domain.params import GridParameters
from feederdao.grid_model.loader import default_cache_dir
from feederdao.optimizer.model import Extension
from feederdao.workflows import clearing as _clearing
from feederdao.workflows import network as _network
from feederdao.workflows import study as _study
from feederdao.workflows.clearing import DEFAULT_START, BidsLike, Clearing, Market
from feederdao.workflows.network import NetLike, OpenNetwork
from feederdao.workflows.study import Study, StudyProgress

#: ``cache``: True for the default folder (:func:`feederdao.grid_model.loader.
#: default_cache_dir`), False for none, or a folder
CacheLike = bool | Path | str


def _cache(cache: CacheLike) -> Path | None:
    if cache is True:
        return default_cache_dir()
    if cache is False:
        return None
    return Path(cache)


def open_network(net: NetLike, *, name: str | None = None, cache: CacheLike = True) -> OpenNetwork:
    """Open a network: a SimBench code (``"1-LV-rural1--2-sw"``), a pandapower built-in
    (``"case33bw"``, ``"mv_oberrhein"``), a pandapower JSON or MATPOWER file, or a pandapower
    net you hold (taken on a copy; ``name`` labels it). SimBench grids are cached
    (``cache``) so the second opening takes a second, not ten."""
    return _network.open_network(net, _cache(cache), name)


def open_market(
    net: NetLike | OpenNetwork,
    bids: BidsLike = None,
    *,
    periods: int = 96,
    start: datetime | str = DEFAULT_START,
    seed: int = 0,
    participants: Path | str | None = None,
    params: GridParameters | None = None,
    cache: CacheLike = True,
) -> Market:
    """A market on ``net`` over ``periods`` 15-minute periods from ``start`` (a date or time
    on the profiles' clock, Europe/Berlin, unless it carries an offset).

    ``bids`` is a bid file (.csv/.json, docs/bids.md), a DataFrame with the file's columns
    (``bid_id, participant_id, bus, period, side, price_eur_per_mwh, quantity_mw[,
    device_id]``), ``Bid`` values, or None for a book generated from the profiles with
    ``seed``. ``participants`` is a participants JSON file (default: one participant per bus
    with devices). The book is checked before anything is solved."""
    return _clearing.open_market(
        net,
        periods,
        start,
        None,
        seed,
        Path(participants) if participants is not None else None,
        params,
        bids=bids,
        cache_dir=_cache(cache),
    )


def clear(
    net: NetLike | OpenNetwork | Market,
    bids: BidsLike = None,
    *,
    periods: int = 96,
    start: datetime | str = DEFAULT_START,
    seed: int = 0,
    participants: Path | str | None = None,
    params: GridParameters | None = None,
    options: ClearingOptions | None = None,
    wholesale: WholesalePrices | None = None,
    extensions: Sequence[Extension] = (),
    cache: CacheLike = True,
) -> Clearing:
    """Clear a market as an AC-checked OPF and return its :class:`Clearing`.

    ``net`` is anything :func:`open_network` takes, or a :class:`Market` from
    :func:`open_market` (then ``bids``, ``periods``, ``start``, ``seed`` and ``participants``
    are its own). ``params`` are the grid parameters (voltage band, loading limits, fee),
    ``options`` how the clearing is solved, ``wholesale`` the substation's import and export
    prices (default: a placeholder day shape, said in the result's notes), ``extensions``
    Pyomo functions adding your own constraints (docs/clearing.md).

    The result reads as pandas: ``.prices``, ``.voltages``, ``.loadings``, ``.dispatch``,
    ``.bids``, ``.settlement``, ``.periods``; ``.to_xarray()``; ``.write(folder)``;
    ``.report(folder)``; ``.to_pandapower(net, period)``."""
    market = (
        net
        if isinstance(net, Market)
        else open_market(
            net,
            bids,
            periods=periods,
            start=start,
            seed=seed,
            participants=participants,
            params=params,
            cache=cache,
        )
    )
    return _clearing.run_clearing(market, params, options, wholesale, extensions)


def run_study(
    net: NetLike | OpenNetwork,
    days: int = 1,
    *,
    start: datetime | str = DEFAULT_START,
    seed: int = 0,
    params: GridParameters | None = None,
    options: ClearingOptions | None = None,
    out: Path | str | None = None,
    formats: Sequence[str] = ("csv",),
    report: bool = False,
    progress: Callable[[StudyProgress], None] | None = None,
    cache: CacheLike = True,
) -> Study:
    """Clear ``days`` consecutive days of ``net`` from ``start``, one day-ahead clearing per
    day on that day's profiles (a book generated with ``seed + day``).

    Nothing is written unless ``out`` is given: then every finished day is appended to the
    tables there (``formats``: ``csv``, ``parquet``) and ``report`` adds the HTML report.
    ``progress`` is called with a :class:`StudyProgress` after each day. Ctrl-C (a Jupyter
    interrupt) raises :class:`StudyInterrupted`, whose ``study`` holds the finished days."""
    return _study.run_study(
        net,
        days,
        out,
        start,
        seed,
        params,
        options,
        formats=formats,
        report=report,
        progress=progress,
        cache_dir=_cache(cache),
    )
