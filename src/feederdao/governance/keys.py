"""The on-chain names and fixed-point scale of the grid parameters.

On chain every value is an integer in millionths of its unit; the key is the parameter's name
as ASCII, right-padded to 32 bytes, so it reads the same in a block explorer.
"""

from __future__ import annotations

from dataclasses import fields

from feederdao.domain.params import GridParameters

SCALE = 1_000_000

PARAMETER_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(GridParameters) if f.name != "provenance"
)


def key_of(name: str) -> bytes:
    if name not in PARAMETER_NAMES:
        raise KeyError(f"unknown grid parameter {name!r}; known: {', '.join(PARAMETER_NAMES)}")
    return name.encode("ascii").ljust(32, b"\0")


def name_of(key: bytes) -> str:
    return bytes(key).rstrip(b"\0").decode("ascii")


def to_chain(value: float) -> int:
    return round(value * SCALE)


def from_chain(raw: int) -> float:
    return raw / SCALE
