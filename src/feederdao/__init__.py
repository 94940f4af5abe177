"""feederdao: a DAO-governed local energy market and grid-control plugin for distribution SCADA.

The engineer's API (docs/quickstart-engineer.md)::

    import feederdao as fd

    res = fd.clear("case33bw", periods=8)          # or a pandapower net, bids as a DataFrame
    res.prices                                     # DataFrame [time, bus]: dlmp_eur_per_mwh, …
    res.to_xarray()                                # time × bus / time × branch arrays
    study = fd.run_study("1-LV-rural1--2-sw", days=2)

Names are imported when first used, so ``import feederdao`` (and the CLI's ``--help``) stays
instant; ``__init__.pyi`` gives type checkers the same names.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "clear": "feederdao.workflows.workbench",
    "open_market": "feederdao.workflows.workbench",
    "open_network": "feederdao.workflows.workbench",
    "run_study": "feederdao.workflows.workbench",
    "clear_day": "feederdao.workflows.study",
    "read_output": "feederdao.workflows.outputs",
    "run_spec": "feederdao.workflows.studies.execute",
    "load_spec": "feederdao.workflows.studies.spec",
    "read_study": "feederdao.workflows.studies.dataset",
    "study_summary": "feederdao.workflows.studies.summary",
    "study_plots": "feederdao.workflows.studies.summary",
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
