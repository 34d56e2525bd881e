"""The small argument checks every part of the provider shares, written once.

Each takes the name of what it checks and raises a ValueError that starts with that name, so a
connection field, an operator argument and a query parameter fail the same way.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_DIGITS = re.compile(r"[0-9]+")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


def whole_number(value: Any) -> int | None:
    """An int, or a string of digits, as an int; anything else (bools, floats, signs) as None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return None


def flag(name: str, value: Any) -> bool:
    """A bool, or its usual spellings in text (true/false, 1/0, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    raise ValueError(f"{name}: expected true or false, got {value!r}")


def number(name: str, value: Any, *, minimum: float, integer: bool) -> Any:
    """An int (`integer`) or a float of at least `minimum`, from a number or its text."""
    try:
        parsed = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name}: expected {kind}, got {value!r}") from None
    if isinstance(value, bool) or parsed < minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value!r}")
    return parsed


def points(name: str, value: Any) -> Decimal | None:
    """A number of points (0 or more) as an exact Decimal; None stays None."""
    if value is None:
        return None
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name}: expected a number of points, got {value!r}") from None
    if parsed < 0:
        raise ValueError(f"{name}: expected 0 or more points, got {value!r}")
    return parsed


def choice(name: str, value: Any, choices: tuple[str, ...], *, fold_case: bool = False) -> Any:
    """`value` when it is one of `choices`; with `fold_case`, its text stripped and lowered."""
    text = str(value).strip().lower() if fold_case else value
    if text not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return text
