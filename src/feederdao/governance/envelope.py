"""The operator's safety envelope: its own bounds and largest steps for governed parameters.

A TOML file::

    staleness_s = 3600      # no trustworthy read for this long: fall back to the defaults
    confirmations = 2       # blocks below the head counted as final when the node has no finality

    [parameters.v_max_pu]
    min = 1.02
    max = 1.06
    max_step = 0.02         # largest change from the last-known-good value in one read
    default = 1.05          # the safe value to fall back to

Parameters the file does not list are bounded only by the contract and by
:class:`~feederdao.domain.params.GridParameters`' own consistency checks; their safe default
is GridParameters' default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feederdao.domain.params import GridParameters
from feederdao.governance.errors import EnvelopeError
from feederdao.governance.keys import PARAMETER_NAMES


@dataclass(frozen=True)
class Bound:
    minimum: float = -math.inf
    maximum: float = math.inf
    max_step: float = math.inf
    default: float | None = None


@dataclass(frozen=True)
class SafetyEnvelope:
    bounds: dict[str, Bound] = field(default_factory=dict)
    staleness_s: float = 3600.0
    confirmations: int = 2

    @classmethod
    def from_toml(cls, path: Path) -> SafetyEnvelope:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise EnvelopeError(f"cannot read the safety envelope {str(path)!r}: {exc}") from exc
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "envelope") -> SafetyEnvelope:
        bounds: dict[str, Bound] = {}
        for name, spec in raw.get("parameters", {}).items():
            if name not in PARAMETER_NAMES:
                raise EnvelopeError(f"{where}: unknown parameter {name!r}")
            if not isinstance(spec, dict):
                raise EnvelopeError(f"{where}: [parameters.{name}] must be a table")
            extra = set(spec) - {"min", "max", "max_step", "default"}
            if extra:
                raise EnvelopeError(
                    f"{where}: [parameters.{name}] has unknown keys {sorted(extra)}"
                )
            try:
                b = Bound(
                    float(spec.get("min", -math.inf)),
                    float(spec.get("max", math.inf)),
                    float(spec.get("max_step", math.inf)),
                    float(spec["default"]) if "default" in spec else None,
                )
            except (TypeError, ValueError) as exc:
                raise EnvelopeError(f"{where}: [parameters.{name}]: {exc}") from exc
            if b.minimum > b.maximum or b.max_step < 0:
                raise EnvelopeError(
                    f"{where}: [parameters.{name}] has min > max or a negative step"
                )
            if b.default is not None and not b.minimum <= b.default <= b.maximum:
                raise EnvelopeError(f"{where}: [parameters.{name}] default is outside min..max")
            bounds[name] = b
        try:
            env = cls(bounds, float(raw.get("staleness_s", 3600)), int(raw.get("confirmations", 2)))
        except (TypeError, ValueError) as exc:
            raise EnvelopeError(f"{where}: {exc}") from exc
        env.safe_defaults()  # the defaults themselves must make a consistent parameter set
        return env

    def safe_defaults(self) -> GridParameters:
        base = GridParameters().values()
        for name, b in self.bounds.items():
            if b.default is not None:
                base[name] = b.default
        try:
            return GridParameters(**base)  # type: ignore[arg-type]
        except ValueError as exc:
            raise EnvelopeError(f"the envelope's defaults are inconsistent: {exc}") from exc

    def check(self, name: str, value: float, last_good: float | None) -> str | None:
        """Why ``value`` may not be applied (None: it may)."""
        b = self.bounds.get(name)
        if b is None:
            return None
        if not b.minimum <= value <= b.maximum:
            return (
                f"{name} = {value:g} is outside the operator's envelope "
                f"[{b.minimum:g}, {b.maximum:g}]"
            )
        if last_good is not None and abs(value - last_good) > b.max_step + 1e-12:
            return (
                f"{name} would step from {last_good:g} to {value:g}, more than the envelope's "
                f"{b.max_step:g}"
            )
        return None
