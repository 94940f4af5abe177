"""The end-to-end demo on embedded defaults (``make demo``): workflow calls, rendered."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from rich.console import Console

from feederdao.cli import render
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.grid_model.summary import summarise
from feederdao.workflows.clearing import open_market, run_clearing
from feederdao.workflows.dispatch import dispatch_to_simulator
from feederdao.workflows.governance import embedded_dao_vote, read_parameters
from feederdao.workflows.metering import MeteredDay, metered_day_on_chain

DEMO_NET = "1-LV-rural1--2-sw"
DEMO_DAY = datetime(2016, 6, 21)


ENVELOPE = Path(__file__).resolve().parents[3] / "config" / "envelope.example.toml"


def run_demo(console: Console, out_dir: Path = Path("report")) -> None:
    console.rule("[bold]feederdao demo")
    console.print("[bold]1.[/] token holders vote grid parameters on an in-process chain")
    with console.status("deploying the DAO and running a proposal"):
        gov = embedded_dao_vote(
            {"v_max_pu": 1.04, "network_fee_eur_per_mwh": 5.0, "deviation_charge_eur_per_mwh": 8.0},
            "Tighten the upper voltage limit to 1.04 pu, charge 5 EUR/MWh for grid upkeep and "
            "8 EUR/MWh on metered deviations from the schedule",
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
        clearing = run_clearing(market, params)
    result = clearing.result
    render.clearing_summary(console, result)

    console.print(
        "\n[bold]5.[/] dispatch: the feeder simulator on loopback receives the first "
        "interval's setpoints over a secured OPC UA session"
    )
    # throw-away certificates and keys live in a work folder of their own, gone afterwards:
    # never in report/, which is there to be shared
    with (
        tempfile.TemporaryDirectory(prefix="feederdao-demo-opcua-") as work,
        console.status("starting the simulator, pushing and reading back"),
    ):
        check = asyncio.run(dispatch_to_simulator(market, result, 0, Path(work)))
        out_dir.mkdir(parents=True, exist_ok=True)
        audit = Path(work) / "audit.jsonl"
        if audit.is_file():  # the command audit log is worth keeping; the keys are not
            shutil.copyfile(audit, out_dir / "opcua-audit.jsonl")
    render.dispatch_check(console, check)

    console.print(
        "\n[bold]6.[/] metered settlement: every device delivers the day with seeded "
        "deviations, its meter signs the readings, deviations are settled at the DLMPs, the "
        "root goes on chain and one prosumer withdraws"
    )
    with console.status("metering, settling, posting the root, withdrawing"):
        day = metered_day_on_chain(gov.w3, gov.addresses, result, tuple(market.registry.values()))
    render_metered_day(console, day)

    files = clearing.write(out_dir)
    page = clearing.report(out_dir, f"feederdao demo: {DEMO_NET}")
    files += [page, *sorted(out_dir.glob("*.png"))]
    console.print(f"\n[bold]7.[/] report page: [bold]{page}[/]")
    console.print(f"\nreport: {len(files)} files in [bold]{out_dir}/[/]")


def _eur(units: int) -> str:
    return f"{units / 1e6:,.6f} EUR"


def render_metered_day(console: Console, day: MeteredDay) -> None:
    s = day.settlement
    dev = sum(abs(r.deviation_wh) for r in s.rows)
    console.print(
        f"   {day.readings} signed readings validated; {day.substituted} device-period(s) "
        "settled on schedule for want of a reading"
    )
    console.print(
        f"   deviations: {dev / 1000:,.1f} kWh off schedule in all; deviation residual kept by "
        f"the operator: {_eur(s.deviation_residual_units)}; books balance: "
        f"{'yes' if s.balanced else 'NO'}"
    )
    console.print(f"   root {day.root}, final after a {day.challenge_window_s} s challenge window")
    console.print(
        f"   {day.withdrawer} withdrew {_eur(day.withdrawn_units)} = deposit "
        f"{_eur(day.deposit_units)} + position {_eur(day.position_units)}, "
        f"{day.notice_s} s after giving notice"
    )
