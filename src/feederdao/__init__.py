"""feederdao: a DAO-governed local energy market and grid-control plugin for distribution SCADA.

The engineer's API (docs/quickstart-engineer.md)::

    import feederdao as fd

    res = fd.clear("case33bw", periods=8)          # or a pandapower net, bids as a DataFrame
    res.prices                                     # DataFrame [time, bus]: dlmp_eur_per_mwh, …
    res.to_xarray()                                # time × bus / time × branch arrays
    study = fd.run_study("1-LV-rural1--2-sw", days=2)

Names are imported when first used, so ``import feederdao`` (and the CLI's ``--help``) stays
instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the names for type checkers; at run time __getattr__ imports them
    from feederdao.domain.clearing import ClearingOptions as ClearingOptions
    from feederdao.domain.clearing import ClearingResult as ClearingResult
    from feederdao.domain.clearing import WholesalePrices as WholesalePrices
    from feederdao.domain.params import GridParameters as GridParameters
    from feederdao.errors import FeederDaoError as FeederDaoError
    from feederdao.workflows.clearing import Clearing as Clearing
    from feederdao.workflows.clearing import Market as Market
    from feederdao.workflows.network import OpenNetwork as OpenNetwork
    from feederdao.workflows.outputs import read_output as read_output
    from feederdao.workflows.study import DayResult as DayResult
    from feederdao.workflows.study import Study as Study
    from feederdao.workflows.study import StudyInterrupted as StudyInterrupted
    from feederdao.workflows.study import StudyProgress as StudyProgress
    from feederdao.workflows.study import clear_day as clear_day
    from feederdao.workflows.workbench import clear as clear
    from feederdao.workflows.workbench import open_market as open_market
    from feederdao.workflows.workbench import open_network as open_network
    from feederdao.workflows.workbench import run_study as run_study

_EXPORTS: dict[str, str] = {
    "clear": "feederdao.workflows.workbench",
    "open_market": "feederdao.workflows.workbench",
    "open_network": "feederdao.workflows.workbench",
    "run_study": "feederdao.workflows.workbench",
    "clear_day": "feederdao.workflows.study",
    "read_output": "feederdao.workflows.outputs",
    "Clearing": "feederdao.workflows.clearing",
    "Market": "feederdao.workflows.clearing",
    "OpenNetwork": "feederdao.workflows.network",
    "Study": "feederdao.workflows.study",
    "DayResult": "feederdao.workflows.study",
    "StudyProgress": "feederdao.workflows.study",
    "StudyInterrupted": "feederdao.workflows.study",
    "ClearingResult": "feederdao.domain.clearing",
    "ClearingOptions": "feederdao.domain.clearing",
    "WholesalePrices": "feederdao.domain.clearing",
    "GridParameters": "feederdao.domain.params",
    "FeederDaoError": "feederdao.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'feederdao' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
