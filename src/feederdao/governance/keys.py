"""The on-chain names and fixed-point scales of the grid parameters and of the token.

On chain every parameter value is an integer in millionths of its unit; the key is the
parameter's name as ASCII, right-padded to 32 bytes, so it reads the same in a block explorer.
Token amounts are integers in 10⁻¹⁸ tokens. Values typed by a user go through exact decimals,
never through a binary float, and a value the chain cannot hold exactly is refused.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal, InvalidOperation

from feederdao.domain.params import GridParameters
from feederdao.governance.errors import ParameterValueError

SCALE = 1_000_000
TOKEN_DECIMALS = 18

PARAMETER_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(GridParameters) if f.name != "provenance"
)


def key_of(name: str) -> bytes:
    if name not in PARAMETER_NAMES:
        raise ParameterValueError(
            f"unknown grid parameter {name!r}; known: {', '.join(PARAMETER_NAMES)}"
        )
    return name.encode("ascii").ljust(32, b"\0")


def name_of(key: bytes) -> str:
    return bytes(key).rstrip(b"\0").decode("ascii")


def exact(value: float | int | Decimal | str, what: str = "value") -> Decimal:
    """``value`` as a finite exact decimal (a float by its shortest repr: 1.04 is 1.04)."""
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ParameterValueError(f"{what} {value!r} is not a number") from None
    if not d.is_finite():
        raise ParameterValueError(f"{what} {value!r} is not a finite number")
    return d


def _scaled(value: float | int | Decimal | str, decimals: int, what: str) -> int:
    d = exact(value, what) * (Decimal(10) ** decimals)
    if d != d.to_integral_value():
        raise ParameterValueError(
            f"{what} {value} has more than {decimals} decimals, which the chain cannot hold"
        )
    return int(d)


def to_chain(value: float | int | Decimal | str, what: str = "value") -> int:
    """A parameter value in millionths, exactly (1.04 → 1040000); refuse NaN, infinities and
    more than six decimals."""
    return _scaled(value, 6, what)


def from_chain(raw: int) -> float:
    return raw / SCALE


def parse_assignment(item: str) -> tuple[str, Decimal]:
    """``NAME=VALUE`` (``v_max_pu=1.04``) as a known parameter name and an exact value."""
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name or not text.strip():
        raise ParameterValueError(f"{item!r}: expected NAME=NUMBER, e.g. v_max_pu=1.04")
    if name not in PARAMETER_NAMES:
        raise ParameterValueError(
            f"{item!r}: unknown grid parameter {name!r}; known: {', '.join(PARAMETER_NAMES)}"
        )
    value = exact(text, f"{name} =")
    to_chain(value, f"{name} =")  # representable in millionths
    return name, value


def tokens_to_units(amount: str | int | Decimal, what: str = "token amount") -> int:
    """A token amount (``100000``, ``0.5``) in the token's smallest units (10⁻¹⁸), exactly."""
    units = _scaled(amount, TOKEN_DECIMALS, what)
    if units < 0:
        raise ParameterValueError(f"{what} {amount} is negative")
    return units


def format_tokens(units: int) -> str:
    """Smallest units as an exact token amount with thousands separators (``400,000``,
    ``99,999.999999999991611392``)."""
    d = Decimal(units).scaleb(-TOKEN_DECIMALS)
    text = f"{d:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
