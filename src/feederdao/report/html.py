"""The report page: feeder maps coloured by DLMP and voltage, time series, settlement table.

One self-contained HTML file (plots embedded as PNG) beside the PNG files themselves.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from feederdao.domain.clearing import ClearingResult
from feederdao.domain.network import NetworkView
from feederdao.report import plots


def tree_layout(view: NetworkView) -> np.ndarray:
    """x = hops from the substation, y = leaves stacked in depth-first order (parents centred
    over their children): a readable schematic of a radial feeder without geodata."""
    n = len(view.buses)
    children: dict[int, list[int]] = {i: [] for i in range(n)}
    for j in range(n):
        k = view.parent_branch[j]
        if k >= 0:
            children[view.bus_position(view.branches[k].from_bus)].append(j)
    xy = np.zeros((n, 2))
    next_leaf = [0.0]

    def place(i: int, depth: int) -> float:
        if not children[i]:
            y = next_leaf[0]
            next_leaf[0] += 1.0
        else:
            y = float(np.mean([place(c, depth + 1) for c in children[i]]))
        xy[i] = (depth, y)
        return y

    for i in range(n):
        if view.parent_branch[i] < 0:
            place(i, 0)
    return xy


def feeder_map(path: Path, view: NetworkView, values: np.ndarray, label: str, cmap: str) -> Path:
    xy = tree_layout(view)
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.25 * len(view.buses))))
    for br in view.branches:
        a, b = view.bus_position(br.from_bus), view.bus_position(br.to_bus)
        ax.plot(
            xy[[a, b], 0], xy[[a, b], 1], color="0.6", lw=1.5 if br.kind == "line" else 3, zorder=1
        )
    points = ax.scatter(
        xy[:, 0], xy[:, 1], c=values, cmap=cmap, s=80, zorder=2, edgecolors="k", linewidths=0.5
    )
    for i, bus in enumerate(view.buses):
        ax.annotate(bus.name, xy[i], fontsize=6, xytext=(4, 4), textcoords="offset points")
    fig.colorbar(points, ax=ax, label=label)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_report(
    out_dir: Path, view: NetworkView, result: ClearingResult, start: datetime, title: str
) -> Path:
    """Write the PNG plots and ``index.html`` into ``out_dir``; return the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    params = result.parameters
    vm = result.ac_vm_pu if result.ac_vm_pu is not None else result.lp_vm_pu
    loading = (
        result.ac_loading_percent
        if result.ac_loading_percent is not None
        else result.lp_loading_percent
    )
    images = [
        feeder_map(
            out_dir / "map_dlmp.png",
            view,
            result.prices.dlmp.mean(axis=0),
            "mean DLMP (EUR/MWh)",
            "viridis",
        ),
        feeder_map(
            out_dir / "map_voltage.png", view, vm.max(axis=0), "highest voltage (pu)", "coolwarm"
        ),
        plots.dlmp_heatmap(
            out_dir / "dlmp_heatmap.png", start, result.prices.dlmp, result.bus_names
        ),
        plots.voltage_band(
            out_dir / "voltage_band.png", start, vm, params.v_min_pu, params.v_max_pu
        ),
        plots.loading(
            out_dir / "line_loading.png",
            start,
            loading,
            result.branch_names,
            params.max_line_loading_percent,
        ),
    ]
    summary = result.summary()
    rows = "".join(
        f"<tr><td>{html.escape(r.participant_id)}</td><td>{r.bus}</td>"
        f"<td>{r.bought_mwh * 1000:.2f}</td><td>{r.sold_mwh * 1000:.2f}</td>"
        f"<td>{r.energy_payment_eur:.2f}</td><td>{r.fee_eur:.2f}</td>"
        f"<td>{r.total_eur:.2f}</td></tr>"
        for r in result.settlement.rows
    )
    prov = params.provenance
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}
img{{max-width:100%}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{result.n_periods} periods from {start:%Y-%m-%d %H:%M}; welfare
{summary["welfare_eur"]:,.2f} EUR; DLMP {summary["dlmp_min_eur_per_mwh"]:.2f} to
{summary["dlmp_max_eur_per_mwh"]:.2f} EUR/MWh; AC check:
{
        "all limits met"
        if result.ac_check.feasible
        else html.escape("; ".join(result.ac_check.violations) or "not performed")
    }.</p>
<p>Parameters ({html.escape(prov.source)}{
        f", block {prov.block_number}" if prov.block_number else ""
    }): voltage {params.v_min_pu:g}–{params.v_max_pu:g} pu, network fee
{params.network_fee_eur_per_mwh:g} EUR/MWh. Binding: {
        html.escape("; ".join(result.binding) or "none")
    }.</p>
<h2>Feeder map</h2>{_img(images[0])}{_img(images[1])}
<h2>Prices</h2>{_img(images[2])}
<h2>Voltage and loading</h2>{_img(images[3])}{_img(images[4])}
<h2>Settlement</h2>
<table><tr><th>participant</th><th>bus</th><th>bought kWh</th><th>sold kWh</th>
<th>energy EUR</th><th>fee EUR</th><th>total EUR</th></tr>{rows}</table>
<p>Merchandising surplus {result.settlement.merchandising_surplus_eur:.2f} EUR (congestion rent
{result.settlement.congestion_rent_eur:.2f} EUR); fees {result.settlement.fees_eur:.2f} EUR.</p>
</body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page)
    return path
