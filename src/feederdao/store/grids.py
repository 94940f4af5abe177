"""An interval's prices as ``[period][bus]`` arrays (the console's price grid), made once when
the result is stored and kept gzip-compressed beside it: serving it is one small read instead of
parsing the whole result document (megabytes on a 180-bus feeder over 96 periods)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from typing import Any

#: the grid's values are rounded to this many decimals (0.0001 EUR/MWh)
GRID_DECIMALS = 4
PARTS = ("dlmp", "energy", "loss", "congestion", "voltage")


def price_grid(
    interval_id: int, bus_indices: Sequence[int], prices: Mapping[str, Any], parts: str = "all"
) -> tuple[bytes, bytes]:
    """The grid as JSON, plain and gzipped: ``{interval_id, buses, dlmp, energy, loss,
    congestion, voltage}`` with each part ``[period][bus]`` in ``buses`` order (``prices`` maps
    each part to a ``[period][bus]`` array or nested list); with ``parts="dlmp"`` the DLMP
    alone (what a first paint needs)."""
    kept = PARTS if parts == "all" else ("dlmp",)
    doc = {
        "interval_id": interval_id,
        "buses": [int(b) for b in bus_indices],
        **{k: [[round(float(v), GRID_DECIMALS) for v in row] for row in prices[k]] for k in kept},
    }
    plain = json.dumps(doc, separators=(",", ":")).encode()
    return plain, gzip.compress(plain, compresslevel=6)
