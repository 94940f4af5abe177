"""The command line's consoles, made when a command prints rather than when a module is
imported.

rich fixes a console's width from ``COLUMNS`` when the console is created. A console made at
import would keep the width of whatever environment first imported the module, so a table's
cells could be cut short ("…") in one run and not in the next. A ``CommandConsole`` makes a
fresh console for each use, which reads ``COLUMNS`` and the terminal as they are then."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class CommandConsole:
    """Stands for a rich ``Console`` with fixed options, made anew at each use."""

    def __init__(self, **options: Any) -> None:
        self._options = options

    def get(self) -> Console:
        """A console for one piece of output (a table, a progress bar, a status line)."""
        return Console(**self._options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)
