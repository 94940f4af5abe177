"""Rendering of result values as rich tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # annotations only: `feederdao gov …` need not import the optimizer
    from feederdao.domain.clearing import ClearingResult
    from feederdao.governance.reader import Reading
    from feederdao.grid_model.summary import NetworkSummary
    from feederdao.workflows.dispatch import DispatchCheck


def network_summary(console: Console, s: NetworkSummary) -> None:
    table = Table(title=f"network {s.name}", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("buses", str(s.n_buses))
    table.add_row("lines", str(s.n_lines))
    table.add_row("transformers", str(s.n_trafos))
    table.add_row("devices", ", ".join(f"{n} {k}" for k, n in s.devices.items()) or "none")
    for gen in s.voltage_controlled:
        table.add_row("voltage-controlled", f"{gen} (a PV bus, as pandapower models a gen)")
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
    if s.rated:
        flow.add_row("max loading", f"{s.max_loading_percent:.1f} % on {s.max_loading_branch}")
        if s.unrated_branches:
            flow.add_row("", f"{s.unrated_branches} branch(es) have no thermal rating")
    else:
        flow.add_row("max loading", "not known: no branch of this network has a thermal rating")
    flow.add_row("losses", f"{s.losses_mw * 1000:.2f} kW")
    flow.add_row("substation import", f"{s.slack_p_mw:.4f} MW")
    console.print(flow)


def clearing_summary(
    console: Console, r: ClearingResult, top_buses: int = 12, rated: bool = True
) -> None:
    """Welfare, prices per bus, binding limits and the AC check of one clearing; ``rated``
    says whether any branch has a thermal rating (else no loading is shown)."""
    s = Table(
        title=f"clearing {r.network} ({r.n_periods} periods, {r.status})",
        show_header=False,
        title_justify="left",
    )
    s.add_column("item", style="bold")
    s.add_column("value")
    dlmp = r.prices.dlmp
    s.add_row("welfare", f"{r.welfare_eur:,.2f} EUR")
    s.add_row("DLMP range", f"{dlmp.min():.2f} … {dlmp.max():.2f} EUR/MWh")
    s.add_row(
        "accepted blocks",
        f"{sum(1 for v in r.accepted_mw.values() for x in v if x > 1e-9)}"
        f" of {sum(len(v) for v in r.accepted_mw.values())}",
    )
    st = r.settlement
    s.add_row(
        "settlement",
        f"fees {st.fees_eur:.2f} EUR, merchandising surplus "
        f"{st.merchandising_surplus_eur:.2f} EUR (congestion rent "
        f"{st.congestion_rent_eur:.2f})",
    )
    if not st.budget_balanced:
        s.add_row("", "[red]budget not balanced: the market pays out more than it collects[/]")
    ac = r.ac_check
    if ac.performed:
        problems = []
        if ac.violations:
            problems.append("violations")
        if not ac.losses_agree:
            problems.append(f"linear losses off by up to {ac.loss_error_mw * 1000:.2f} kW")
        if not st.budget_balanced:
            problems.append("budget not balanced")
        verdict = "[red]" + "; ".join(problems) + "[/]" if problems else "[green]all limits met[/]"
        s.add_row(
            "AC check",
            f"{verdict} after {ac.iterations} iteration(s) ({ac.stopped}); LP-vs-AC voltage "
            f"error {ac.max_voltage_error_pu:.4f} pu; "
            + (
                f"max loading {ac.max_loading_percent:.1f} %"
                if rated
                else "no loading: no branch has a thermal rating"
            ),
        )
        for v in ac.violations:
            s.add_row("", f"[red]{v}[/]")
    else:
        s.add_row("AC check", "[yellow]not performed: feasibility not verified[/]")
    for note in r.notes:
        s.add_row("note", note)
    for b in r.binding or ("none",):
        s.add_row("binding", b)
    for sf in r.shortfalls:
        s.add_row("shortfall", f"[red]{sf}[/]")
    t = r.stats
    s.add_row(
        "timings",
        f"build {t.build_s:.2f} s, solve {t.solve_s:.2f} s, AC check "
        f"{t.ac_check_s:.3f} s, total {t.total_s:.2f} s "
        f"({t.n_variables} variables, {t.n_constraints} constraints)",
    )
    console.print(s)
    n_b = len(r.bus_names)
    shown = min(top_buses, n_b)
    which = (
        f"all {n_b} buses"
        if shown == n_b
        else f"the {shown} of {n_b} buses whose DLMP varies most over the window"
    )
    buses = Table(
        title=f"DLMP per bus (EUR/MWh): {which}; its parts (energy, loss, congestion, voltage) "
        "as means over the window; every bus and period is in prices.csv (--out)",
        title_justify="left",
    )
    for col in ("bus", "min", "mean", "max", "energy", "loss", "congestion", "voltage"):
        buses.add_column(col, justify="right" if col != "bus" else "left")
    spread = dlmp.max(axis=0) - dlmp.min(axis=0)
    order = np.argsort(-spread, kind="stable")[:shown]
    p = r.prices
    for i in sorted(order):
        buses.add_row(
            r.bus_names[i],
            f"{dlmp[:, i].min():.2f}",
            f"{dlmp[:, i].mean():.2f}",
            f"{dlmp[:, i].max():.2f}",
            *(f"{part[:, i].mean():.2f}" for part in (p.energy, p.loss, p.congestion, p.voltage)),
        )
    console.print(buses)


def reading(console: Console, r: Reading) -> None:
    """Applied grid parameters with their provenance, pending changes and the reader's alarms,
    one fact per line, ids and hashes in full (the words do not depend on the terminal's width).
    """
    p = r.parameters
    prov = p.provenance
    colour = {"fresh": "green", "last-known-good": "yellow", "safe-defaults": "red"}[r.status]
    where = ""
    if r.final_block is not None:
        where = f": read at the final block {r.final_block} (the chain is at block {r.head_block})"

    def line(*parts: str | tuple[str, str]) -> None:
        console.print(Text.assemble(*parts), soft_wrap=True)

    line("grid parameters (", (r.status, colour), ")", where)
    last: dict[str, str] = {}
    for c in prov.changes:
        by = f" by proposal {c.proposal_id}" if c.proposal_id else ""
        last[c.name] = f" (changed {c.old_value:g} → {c.new_value:g} at block {c.block_number}{by})"
    for name, value in p.values().items():
        line(f"  {name} = {value:g}{last.get(name, '')}")
    if prov.block_hash:
        line(f"source: {prov.source}, block {prov.block_number} ({prov.block_hash})")
    else:
        line(f"source: {prov.source}")
    if prov.transaction:
        line(f"last change: transaction {prov.transaction}")
    for c in r.pending:
        line(
            f"pending: {c.name} → {c.new_value:g} at block {c.block_number}, applied once that "
            "block is final"
        )
    for a in r.alarms:
        line(("alarm:", "bold red"), f" {a}")


def dispatch_check(console: Console, check: DispatchCheck) -> None:
    """Confirmed setpoints and measured against planned voltages."""
    rep = check.report
    ok = sum(1 for d in rep.devices if d.ok)
    console.print(
        f"   {ok} of {len(rep.devices)} setpoints confirmed by read-back ({check.policy}, "
        f"SignAndEncrypt; write {rep.write_s * 1000:.0f} ms, read-back "
        f"{rep.read_back_s * 1000:.0f} ms)"
    )
    for d in rep.failed:
        console.print(f"   [red]{d.device_id}: {d.status}[/]")
    t = Table(title="voltages: OPF (AC-checked) vs measured by the simulator", title_justify="left")
    for col in ("bus", "OPF pu", "measured pu", "difference pu"):
        t.add_column(col, justify="right" if col != "bus" else "left")
    for name, a, b in zip(check.bus_names, check.opf_vm_pu, check.measured_vm_pu, strict=True):
        t.add_row(name, f"{a:.5f}", f"{b:.5f}", f"{b - a:+.6f}")
    console.print(t)
    console.print(f"   largest difference {check.max_deviation_pu:.2e} pu")
