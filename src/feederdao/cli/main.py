"""``feederdao`` console script."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from feederdao.cli import render
from feederdao.errors import FeederDaoError

app = typer.Typer(
    help="feederdao: DAO-governed local energy market and grid control for distribution feeders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
network_app = typer.Typer(help="Inspect networks.", no_args_is_help=True)
app.add_typer(network_app, name="network")

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

NetOption = Annotated[
    str,
    typer.Option(
        "--net",
        help="SimBench code (1-LV-rural1--2-sw), pandapower built-in (case33bw, cigre_lv, "
        "mv_oberrhein, ...), pandapower JSON file or MATPOWER case (.m).",
    ),
]


def user_errors(func: F) -> F:
    """Turn feederdao errors into one red line on stderr and exit code 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FeederDaoError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@network_app.command("show")
@user_errors
def network_show(net: NetOption = "1-LV-rural1--2-sw") -> None:
    """Print a network's buses, branches, devices, topology and a base-case AC power flow."""
    from feederdao.workflows.network import describe_network

    render.network_summary(console, describe_network(net))


@app.command()
@user_errors
def demo() -> None:
    """Run the end-to-end demo on embedded defaults."""
    from feederdao.cli.demo import run_demo

    run_demo(console)


if __name__ == "__main__":  # pragma: no cover
    app()
