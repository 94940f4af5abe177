"""The end-to-end demo on embedded defaults (``make demo``): workflow calls, rendered."""

from __future__ import annotations

from rich.console import Console

from feederdao.cli import render
from feederdao.grid_model.summary import summarise
from feederdao.workflows.network import open_network

DEMO_NET = "1-LV-rural1--2-sw"


def run_demo(console: Console) -> None:
    console.rule("[bold]feederdao demo")
    console.print(f"[bold]1.[/] loading SimBench LV feeder [bold]{DEMO_NET}[/]")
    opened = open_network(DEMO_NET)
    render.network_summary(console, summarise(opened.loaded.net, opened.view))
