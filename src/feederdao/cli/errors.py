"""User-facing error handling of the command line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from rich.text import Text

from feederdao.cli.consoles import CommandConsole
from feederdao.errors import FeederDaoError

F = TypeVar("F", bound=Callable[..., Any])
err_console = CommandConsole(stderr=True)


def print_error(message: str) -> None:
    """One line on stderr: ``error: <message>``. The words never depend on the terminal's
    width (no wrapping) and the message is printed as it is (no markup interpretation)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def user_errors(func: F) -> F:
    """Turn feederdao errors into one red line on stderr and exit code 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FeederDaoError as exc:
            print_error(str(exc))
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
