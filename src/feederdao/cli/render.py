"""Rendering of result values as rich tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from feederdao.grid_model.summary import NetworkSummary


def network_summary(console: Console, s: NetworkSummary) -> None:
    table = Table(title=f"network {s.name}", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("buses", str(s.n_buses))
    table.add_row("lines", str(s.n_lines))
    table.add_row("transformers", str(s.n_trafos))
    table.add_row("devices", ", ".join(f"{n} {k}" for k, n in s.devices.items()) or "none")
    table.add_row("voltage levels", ", ".join(f"{v:g} kV" for v in s.voltage_levels_kv))
    table.add_row("topology", s.topology)
    table.add_row(
        "unsupplied buses",
        ", ".join(s.unsupplied_buses) if s.unsupplied_buses else "none",
    )
    if s.islands:
        table.add_row("islands", "; ".join("[" + ", ".join(i) + "]" for i in s.islands))
    table.add_row(
        "base load / generation", f"{s.total_load_mw:.4f} MW / {s.total_generation_mw:.4f} MW"
    )
    console.print(table)
    flow = Table(title="AC power flow (base case)", show_header=False, title_justify="left")
    flow.add_column("item", style="bold")
    flow.add_column("value")
    flow.add_row("voltage min", f"{s.vm_min_pu:.4f} pu at {s.vm_min_bus}")
    flow.add_row("voltage max", f"{s.vm_max_pu:.4f} pu at {s.vm_max_bus}")
    flow.add_row("max loading", f"{s.max_loading_percent:.1f} % on {s.max_loading_branch}")
    flow.add_row("losses", f"{s.losses_mw * 1000:.2f} kW")
    flow.add_row("substation import", f"{s.slack_p_mw:.4f} MW")
    console.print(flow)
