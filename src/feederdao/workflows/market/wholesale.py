"""The wholesale prices the market imports and exports at: a service setting, never a silent
default.

Either a CSV file (``wholesale_prices``) of ``time,import_eur_per_mwh,export_eur_per_mwh`` rows,
each holding from its UTC time of day (``HH:MM``, on a 15-minute boundary, the first at 00:00)
until the next row, or flat prices (``wholesale_import_eur_per_mwh`` and
``wholesale_export_eur_per_mwh``). With neither, the service runs on a made-up day shape
(:meth:`WholesalePrices.day_shape`) and says so: at startup, in ``/health`` and in ``/market``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from feederdao.domain.clearing import WholesalePrices
from feederdao.errors import FeederDaoError, FieldError
from feederdao.grid_model.profiles import RESOLUTION_MIN
from feederdao.workflows.market.settings import ServiceSettings

STEPS_PER_DAY = 24 * 60 // RESOLUTION_MIN
PLACEHOLDER_NOTE = (
    "wholesale prices are a made-up placeholder day shape: set wholesale_prices (a CSV file) "
    "or wholesale_import_eur_per_mwh and wholesale_export_eur_per_mwh"
)

Kind = Literal["file", "flat", "placeholder"]


@dataclass(frozen=True)
class WholesaleSource:
    """Import and export prices per quarter-hour of the day (EUR/MWh), and where they came
    from."""

    kind: Kind
    import_eur_per_mwh: tuple[float, ...]
    export_eur_per_mwh: tuple[float, ...]
    origin: str

    @property
    def note(self) -> str | None:
        """What a user must be told (None when the prices are configured)."""
        return PLACEHOLDER_NOTE if self.kind == "placeholder" else None

    def window(self, n_periods: int, first_step: int) -> WholesalePrices:
        """The prices of ``n_periods`` quarter-hours from quarter-hour ``first_step`` of a day."""
        steps = (first_step + np.arange(n_periods)) % STEPS_PER_DAY
        return WholesalePrices(
            np.asarray(self.import_eur_per_mwh, dtype=float)[steps],
            np.asarray(self.export_eur_per_mwh, dtype=float)[steps],
        )

    @classmethod
    def of(cls, settings: ServiceSettings) -> WholesaleSource:
        file = settings.wholesale_prices
        flat = (settings.wholesale_import_eur_per_mwh, settings.wholesale_export_eur_per_mwh)
        if file is not None and any(v is not None for v in flat):
            raise FieldError(
                "wholesale_prices",
                "set either wholesale_prices or the flat wholesale_*_eur_per_mwh prices, not both",
            )
        if file is not None:
            return read_prices(Path(file))
        if any(v is not None for v in flat):
            imp, exp = flat
            if imp is None or exp is None:
                raise FieldError(
                    "wholesale_export_eur_per_mwh"
                    if exp is None
                    else "wholesale_import_eur_per_mwh",
                    "flat wholesale prices need both an import and an export price",
                )
            _check(imp, exp, "wholesale_import_eur_per_mwh")
            return cls("flat", (imp,) * STEPS_PER_DAY, (exp,) * STEPS_PER_DAY, "flat prices")
        shape = WholesalePrices.day_shape(STEPS_PER_DAY)
        return cls(
            "placeholder",
            tuple(float(v) for v in shape.import_eur_per_mwh),
            tuple(float(v) for v in shape.export_eur_per_mwh),
            "placeholder day shape",
        )


def _check(imp: float, exp: float, where: str) -> None:
    if not (math.isfinite(imp) and math.isfinite(exp)):
        raise FieldError(where, "wholesale prices must be finite numbers")
    if exp > imp:
        raise FieldError(where, f"the export price {exp:g} exceeds the import price {imp:g}")


def read_prices(path: Path) -> WholesaleSource:
    """A CSV file of ``time,import_eur_per_mwh,export_eur_per_mwh`` rows (a step profile over
    the day, UTC); FieldError naming the file and line of the first problem."""
    field = "wholesale_prices"
    try:
        text = path.read_text()
    except OSError as exc:
        raise FieldError(field, f"cannot read wholesale prices {str(path)!r}: {exc}") from exc
    rows = list(csv.reader(text.splitlines()))
    header = [h.strip() for h in rows[0]] if rows else []
    if header != ["time", "import_eur_per_mwh", "export_eur_per_mwh"]:
        raise FieldError(
            field,
            f"{path.name} line 1: the header must be time,import_eur_per_mwh,export_eur_per_mwh",
        )
    starts: list[int] = []
    imports: list[float] = []
    exports: list[float] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        where = f"{path.name} line {line}"
        try:
            if len(row) != 3:
                raise ValueError("three values are needed")
            hh, mm = (int(v) for v in row[0].strip().split(":"))
            imp, exp = float(row[1]), float(row[2])
        except ValueError as exc:
            raise FieldError(field, f"{where}: {exc} ({','.join(row)!r})") from None
        if not (0 <= hh < 24 and 0 <= mm < 60) or mm % RESOLUTION_MIN:
            raise FieldError(field, f"{where}: time {row[0]!r} is not HH:MM on a 15-minute step")
        step = (hh * 60 + mm) // RESOLUTION_MIN
        if starts and step <= starts[-1]:
            raise FieldError(field, f"{where}: times must increase")
        if not starts and step != 0:
            raise FieldError(field, f"{where}: the first row must be at 00:00")
        try:
            _check(imp, exp, field)
        except FeederDaoError as exc:
            raise FieldError(field, f"{where}: {exc}") from None
        starts.append(step)
        imports.append(imp)
        exports.append(exp)
    if not starts:
        raise FieldError(field, f"{path.name}: no prices")
    index = np.searchsorted(np.asarray(starts), np.arange(STEPS_PER_DAY), side="right") - 1
    return WholesaleSource(
        "file",
        tuple(imports[i] for i in index),
        tuple(exports[i] for i in index),
        str(path),
    )
