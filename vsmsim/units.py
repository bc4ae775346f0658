"""Durations and rates: parsing the strings users write into integers of nanoseconds.

Simulated time in vsmsim is an integer number of nanoseconds. Users write durations as
strings with a unit (``"800ns"``, ``"2.5us"``, ``"1ms"``, ``"1s"``) or as plain numbers,
which are nanoseconds. Fractional nanoseconds are rounded to the nearest integer (ties to
even), so a scenario never depends on floating-point accumulation of simulated time.
Strings and integers are read exactly (as decimals), never through a float, so a long
duration keeps every digit.

Every duration is at most :data:`MAX_NS` (10**18 ns, about 31.7 years): a time plus a
service, a period or a few costs then still fits the signed 64-bit integers of the result
tables (int64 holds up to about 9.2e18).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

#: Nanoseconds per unit accepted in duration strings.
UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

_DURATION_RE = re.compile(r"^\s*(-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ns|us|µs|ms|s)\s*$")


#: The longest duration accepted anywhere, in ns (see the module docstring).
MAX_NS = 10**18


class UnitError(ValueError):
    """A duration or rate that cannot be read; the message says what is allowed."""


def parse_duration(value, *, allow_zero: bool = True) -> int:
    """Return *value* as an integer number of nanoseconds.

    *value* is a number of nanoseconds (int or float) or a string with a unit from
    :data:`UNITS_NS`. Negative durations are rejected; so is zero unless *allow_zero*.
    """
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not a duration; write a number of ns or a string like '5us'")
    if isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, float)):
        try:
            ns = int(value.__index__())
        except TypeError:
            raise UnitError(f"{value!r} is not a duration; write a number of ns or a string "
                            f"like '5us'") from None
    elif isinstance(value, float) or _is_real(value):
        x = float(value)
        if math.isnan(x) or math.isinf(x):
            raise UnitError(f"{value!r} is not a finite duration")
        ns = _round(Decimal(x)) if abs(x) < 1e300 else int(x)
    elif isinstance(value, str):
        m = _DURATION_RE.match(value)
        if not m:
            raise UnitError(
                f"{value!r} is not a duration; write a number of ns or a number with a unit "
                f"(ns, us, ms, s), e.g. '2.5us'"
            )
        try:
            d = Decimal(m.group(1))
        except InvalidOperation:  # pragma: no cover - the regex admits only decimals
            raise UnitError(f"{value!r} is not a duration") from None
        # An exponent this large is far beyond MAX_NS; do not build the integer.
        if d != 0 and d.adjusted() > 40:
            raise UnitError(f"{value!r} is longer than the longest duration allowed "
                            f"({MAX_NS:.0e} ns, about 31.7 years)")
        ns = _round(d * UNITS_NS[m.group(2)])
    else:
        raise UnitError(f"{value!r} is not a duration; write a number of ns or a string like '5us'")
    if ns < 0:
        raise UnitError(f"{value!r} is negative; durations must be >= 0")
    if ns == 0 and not allow_zero:
        raise UnitError(f"{value!r} must be greater than zero")
    if ns > MAX_NS:
        raise UnitError(f"{value!r} is longer than the longest duration allowed "
                        f"({MAX_NS:.0e} ns, about 31.7 years)")
    return ns


def _is_real(value) -> bool:
    """numpy floats and other real numbers that are not Python floats."""
    try:
        import numbers
        return isinstance(value, numbers.Real)
    except ImportError:  # pragma: no cover
        return False


def _round(d: Decimal) -> int:
    """*d* rounded to the nearest integer, ties to even (as Python's round())."""
    return int(d.to_integral_value(rounding=ROUND_HALF_EVEN))


def format_ns(ns: float) -> str:
    """Return a short human string for a duration in nanoseconds (``1.5us``, ``2ms``)."""
    ns = float(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.4g}{unit}"
    return f"{ns:.4g}ns"
