"""Durations and rates: parsing the strings users write into integers of nanoseconds.

Simulated time in vsmsim is an integer number of nanoseconds. Users write durations as
strings with a unit (``"800ns"``, ``"2.5us"``, ``"1ms"``, ``"1s"``) or as plain numbers,
which are nanoseconds. Fractional nanoseconds are rounded to the nearest integer, so a
scenario never depends on floating-point accumulation of simulated time.
"""

from __future__ import annotations

import re

#: Nanoseconds per unit accepted in duration strings.
UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

_DURATION_RE = re.compile(r"^\s*(-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ns|us|µs|ms|s)\s*$")


class UnitError(ValueError):
    """A duration or rate that cannot be read; the message says what is allowed."""


def parse_duration(value, *, allow_zero: bool = True) -> int:
    """Return *value* as an integer number of nanoseconds.

    *value* is a number of nanoseconds (int or float) or a string with a unit from
    :data:`UNITS_NS`. Negative durations are rejected; so is zero unless *allow_zero*.
    """
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not a duration; write a number of ns or a string like '5us'")
    if isinstance(value, (int, float)):
        ns = float(value)
    elif isinstance(value, str):
        m = _DURATION_RE.match(value)
        if not m:
            raise UnitError(
                f"{value!r} is not a duration; write a number of ns or a number with a unit "
                f"(ns, us, ms, s), e.g. '2.5us'"
            )
        ns = float(m.group(1)) * UNITS_NS[m.group(2)]
    else:
        raise UnitError(f"{value!r} is not a duration; write a number of ns or a string like '5us'")
    if ns != ns or ns in (float("inf"), float("-inf")):
        raise UnitError(f"{value!r} is not a finite duration")
    if ns < 0:
        raise UnitError(f"{value!r} is negative; durations must be >= 0")
    if ns == 0 and not allow_zero:
        raise UnitError(f"{value!r} must be greater than zero")
    return int(round(ns))


def format_ns(ns: float) -> str:
    """Return a short human string for a duration in nanoseconds (``1.5us``, ``2ms``)."""
    ns = float(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if abs(ns) >= scale:
            return f"{ns / scale:.4g}{unit}"
    return f"{ns:.4g}ns"
