"""The report page of a clearing or a study: one self-contained HTML file (plots embedded as
PNG, written beside it too) with the facts, the binding limits, a DLMP table per bus, the
settlement and how to read its signs.

The report takes plain values (:class:`ReportData`), so a clearing and a study (many days put
end to end) share it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from feederdao.domain.clearing import SettlementRow
from feederdao.domain.network import NetworkView
from feederdao.domain.profiles import FloatArray
from feederdao.report import plots


@dataclass(frozen=True)
class ReportData:
    """What the report shows. Arrays are ``[period, bus]`` / ``[period, branch]`` in the
    view's order; ``loading_percent`` is NaN for branches without a rating; ``substation``
    marks the buses whose voltage is the substation's set-point."""

    title: str
    times: tuple[datetime, ...]
    bus_names: tuple[str, ...]
    branch_names: tuple[str, ...]
    substation: np.ndarray
    dlmp: FloatArray
    energy: FloatArray
    loss: FloatArray
    congestion: FloatArray
    voltage: FloatArray
    vm_pu: FloatArray
    loading_percent: FloatArray
    v_min_pu: float
    v_max_pu: float
    loading_limit_percent: float
    facts: tuple[tuple[str, str], ...] = ()
    binding: tuple[str, ...] = ()
    violations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    settlement: tuple[SettlementRow, ...] = ()  # over the report's whole window
    settlement_facts: tuple[tuple[str, str], ...] = ()
    view: NetworkView | None = field(default=None, compare=False)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _items(lines: Sequence[str], empty: str) -> str:
    if not lines:
        return f"<p>{html.escape(empty)}</p>"
    return "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td class='l'>{html.escape(v)}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def _dlmp_table(d: ReportData) -> str:
    head = (
        "<tr><th>bus</th><th>min</th><th>mean</th><th>max</th><th>energy</th><th>loss</th>"
        "<th>congestion</th><th>voltage</th></tr>"
    )
    rows = []
    for i, name in enumerate(d.bus_names):
        col = d.dlmp[:, i]
        parts = [d.energy[:, i], d.loss[:, i], d.congestion[:, i], d.voltage[:, i]]
        cells = [col.min(), col.mean(), col.max(), *(p.mean() for p in parts)]
        rows.append(
            f"<tr><td class='l'>{html.escape(name)}</td>"
            + "".join(f"<td>{v:.2f}</td>" for v in cells)
            + "</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _settlement_table(d: ReportData) -> str:
    head = (
        "<tr><th>participant</th><th>bus</th><th>bought kWh</th><th>sold kWh</th>"
        "<th>energy EUR</th><th>fee EUR</th><th>total EUR</th></tr>"
    )
    names = {b.index: b.name for b in d.view.buses} if d.view is not None else {}
    rows = "".join(
        f"<tr><td class='l'>{html.escape(r.participant_id)}</td><td class='l'>"
        f"{html.escape(names.get(r.bus, str(r.bus)))}</td><td>{r.bought_mwh * 1000:.2f}</td>"
        f"<td>{r.sold_mwh * 1000:.2f}</td><td>{r.energy_payment_eur:.2f}</td>"
        f"<td>{r.fee_eur:.2f}</td><td>{r.total_eur:.2f}</td></tr>"
        for r in d.settlement
    )
    return f"<table>{head}{rows}</table>"


def write_report(out_dir: Path, data: ReportData) -> Path:
    """Write the PNG plots and ``index.html`` into ``out_dir``; return the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    d = data
    feeder = ~np.asarray(d.substation, dtype=bool)
    images = []
    if d.view is not None:
        images.append(
            plots.feeder_map(
                out_dir / "map_dlmp.png",
                d.view,
                d.dlmp.mean(axis=0),
                "mean DLMP (EUR/MWh)",
                "viridis",
                "Feeder coloured by the mean DLMP over the window",
            )
        )
        images.append(
            plots.feeder_map(
                out_dir / "map_voltage.png",
                d.view,
                d.vm_pu.max(axis=0),
                "highest voltage (pu)",
                "coolwarm",
                "Feeder coloured by each bus's highest voltage over the window",
            )
        )
    heat = plots.dlmp_heatmap(out_dir / "dlmp_heatmap.png", d.times, d.dlmp, d.bus_names)
    band = plots.voltage_band(
        out_dir / "voltage_band.png", d.times, d.vm_pu, d.v_min_pu, d.v_max_pu, feeder
    )
    load = plots.loading(
        out_dir / "line_loading.png",
        d.times,
        d.loading_percent,
        d.branch_names,
        d.loading_limit_percent,
    )
    first, last = d.times[0], d.times[-1]
    window = (
        f"{len(d.times)} periods from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} "
        f"({first.tzname() or 'local time'}), period starts"
    )
    maps = "".join(_img(p) for p in images)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(d.title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}}
img{{max-width:100%;display:block;margin:1em 0}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td.l,th{{text-align:left}}
</style></head><body>
<h1>{html.escape(d.title)}</h1>
<p>{html.escape(window)}.</p>
{_facts(d.facts)}
<h2>Binding limits</h2>
{_items(d.binding, "No voltage, thermal or substation limit binds: prices differ by losses only.")}
<h2>AC check</h2>
{_items(d.violations, "The AC power flow of the dispatch meets every limit.")}
{"<h2>Notes</h2>" + _items(d.notes, "") if d.notes else ""}
<h2>Feeder map</h2>{maps or "<p>No map for this run.</p>"}
<h2>Prices</h2>{_img(heat)}
<p>The DLMP of a bus is the price of one more MWh consumed there; it adds up from the energy
price at the substation and the parts the network adds on the way: marginal losses, congestion
(binding thermal limits) and voltage (binding voltage limits). EUR/MWh over the window:</p>
{_dlmp_table(d)}
<h2>Voltage and loading</h2>{_img(band)}{_img(load)}
<h2>Settlement</h2>
<p>How to read the signs: each participant is settled at its own bus's DLMP. A positive amount
is what the participant pays; a negative amount is what it is paid (it sold more than it
bought). The fee is the network fee on bought energy. The merchandising surplus is what
consumers pay less what producers receive less the substation's wholesale bill; it is the
network's rent (losses, congestion, voltage) and is never negative in a budget-balanced
clearing.</p>
{_settlement_table(d)}
{_facts(d.settlement_facts)}
</body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page)
    return path
