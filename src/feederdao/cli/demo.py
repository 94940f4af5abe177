"""The end-to-end demo on embedded defaults (``make demo``): workflow calls, rendered."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from rich.console import Console

from feederdao.cli import render
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.grid_model.summary import summarise
from feederdao.report.html import write_report
from feederdao.workflows.clearing import clear_market, open_market
from feederdao.workflows.dispatch import dispatch_to_simulator
from feederdao.workflows.governance import embedded_dao_vote, read_parameters

DEMO_NET = "1-LV-rural1--2-sw"
DEMO_DAY = datetime(2016, 6, 21)


ENVELOPE = Path(__file__).resolve().parents[3] / "config" / "envelope.example.toml"


def run_demo(console: Console, out_dir: Path = Path("report")) -> None:
    console.rule("[bold]feederdao demo")
    console.print("[bold]1.[/] token holders vote grid parameters on an in-process chain")
    with console.status("deploying the DAO and running a proposal"):
        gov = embedded_dao_vote(
            {"v_max_pu": 1.04, "network_fee_eur_per_mwh": 5.0},
            "Tighten the upper voltage limit to 1.04 pu and charge 5 EUR/MWh for grid upkeep",
            progress=lambda msg: console.print(f"   {msg}"),
        )
    for v in gov.votes:
        console.print(
            f"   {v.voter[:10]}… voted {v.support}" + (f" ({v.reason})" if v.reason else "")
        )
    f = gov.final
    console.print(
        f"   tally: for {f.votes_for / 1e18:,.0f}, against {f.votes_against / 1e18:,.0f}, "
        f"abstain {f.votes_abstain / 1e18:,.0f} → {f.state}"
    )

    console.print("\n[bold]2.[/] the safe reader applies them within the operator's envelope")
    env = SafetyEnvelope.from_toml(ENVELOPE) if ENVELOPE.is_file() else SafetyEnvelope()
    reading = read_parameters(gov.w3, gov.addresses, replace(env, confirmations=0))
    render.reading(console, reading)
    params = reading.parameters

    console.print(
        f"\n[bold]3.[/] SimBench LV feeder [bold]{DEMO_NET}[/] (PV-heavy future scenario)"
    )
    with console.status("loading the feeder and a day of prosumer bids from its profiles"):
        market = open_market(DEMO_NET, periods=96, start=DEMO_DAY, seed=0)
    opened = market.network
    render.network_summary(console, summarise(opened.loaded.net, opened.view))

    console.print(
        f"\n[bold]4.[/] clearing {len(market.bids)} bids and offers of {len(market.registry)} "
        f"participants over 96 periods as an AC-checked OPF"
    )
    with console.status("clearing (LinDistFlow OPF in Pyomo/HiGHS, AC check with pandapower)"):
        result = clear_market(market, params)
    render.clearing_summary(console, result)

    console.print(
        "\n[bold]5.[/] dispatch: the feeder simulator on loopback receives the first "
        "interval's setpoints over a secured OPC UA session"
    )
    with console.status("starting the simulator, pushing and reading back"):
        check = asyncio.run(dispatch_to_simulator(market, result, 0, out_dir / "opcua"))
    render.dispatch_check(console, check)

    files = result.write(out_dir)
    page = write_report(out_dir, opened.view, result, DEMO_DAY, f"feederdao demo: {DEMO_NET}")
    files += sorted(out_dir.glob("*.png"))
    console.print(f"\n[bold]6.[/] report page: [bold]{page}[/]")
    console.print(f"\nreport: {len(files)} files in [bold]{out_dir}/[/]")
