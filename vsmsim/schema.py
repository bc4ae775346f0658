"""Field types shared by every part of the scenario schema.

Durations are integers of nanoseconds after validation; distributions are
:class:`vsmsim.dists.Dist`; VP sets are ``"all"`` or a list of VP indices. Every validator
raises ``ValueError`` with a message that names the value and what is allowed; the
scenario loader turns those into one line per problem with the field's path.
"""

from __future__ import annotations

import importlib
import re
from typing import Annotated, Callable, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from .dists import Dist, parse_dist
from .units import parse_duration

MAX_VTLS = 16
MAX_VPS = 4096


# --- strict numbers (issue 14, defects 1 and 3): a bool is never a number, nor is a string;
# floats must be finite. Pydantic's lax mode would read `true` as 1 and "3" as 3.
def _strict_int(v):
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, bool) or not hasattr(v, "__index__") or isinstance(v, float):
            raise ValueError(f"{v!r} is not an integer")
    return int(v.__index__())


def _strict_float(v):
    import math
    import numbers
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{v!r} is not a number")
    x = float(v)
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"{v!r} is not a finite number")
    return x


StrictInt = Annotated[int, BeforeValidator(_strict_int)]
StrictFloat = Annotated[float, BeforeValidator(_strict_float)]

#: Poisson rates (per second, whole source): a mean gap of at least 1 ns, and at least one
#: arrival per 31.7 years (a gap beyond MAX_NS would never come).
MIN_RATE, MAX_RATE = 1e-9, 1e9


def _rate(v):
    x = _strict_float(v)
    if not MIN_RATE <= x <= MAX_RATE:
        raise ValueError(f"{v!r} per second: a rate must be greater than 0, from {MIN_RATE:g} "
                         f"to {MAX_RATE:g} (at most one arrival per ns on average)")
    return x


Rate = Annotated[float, BeforeValidator(_rate)]


def _rate_problem(rate: float, duration: int, phase: int) -> str:
    """Why *rate* cannot advance the float arrival clock up to *duration*, or ""."""
    import math
    gap = 1e9 / rate
    # Gaps well below the clock's float resolution at the end of the run would be lost.
    ulp = math.ulp(float(duration + phase))
    if gap < 16 * ulp:
        return (f"{rate:g} per second gives a mean gap of {gap:.3g} ns, below the clock's "
                f"resolution ({ulp:g} ns) at {duration} ns; allowed: at most "
                f"{1e9 / (16 * ulp):.3g} per second for this duration")
    return ""


def _window(v):
    """record.window: a list [start, end] of two durations (one clear line otherwise)."""
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ValueError(f"{v!r} is not a window; write [start, end], e.g. [\"1ms\", \"3ms\"]")
    return tuple(v)


_DEST_WORDS = ("random", "self", "all", "all-but-self")


def _dest(v):
    """An IPI destination: one word of _DEST_WORDS or a list of VP indices (one error line)."""
    if isinstance(v, str) and v in _DEST_WORDS:
        return v
    if isinstance(v, (list, tuple)):
        out = []
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int):
                raise ValueError(f"{x!r} in {list(v)} is not a VP index (integer >= 0)")
            out.append(x)
        return out
    raise ValueError(f"{v!r} is not a destination; allowed: {', '.join(_DEST_WORDS)} "
                     f"or a list of VP indices")


Dest = Annotated[Union[Literal["random", "self", "all", "all-but-self"], list[int]],
                 BeforeValidator(_dest)]


def _dur(v):
    return parse_duration(v)


def _pos_dur(v):
    return parse_duration(v, allow_zero=False)


Duration = Annotated[int, BeforeValidator(_dur)]
PositiveDuration = Annotated[int, BeforeValidator(_pos_dur)]
DistSpec = Annotated[Dist, BeforeValidator(parse_dist), PlainSerializer(lambda d: d.to_spec())]


def _vector(v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{v!r} is not a vector; write an integer 0x10-0xFF")
    if not 0x10 <= v <= 0xFF:
        raise ValueError(f"{v:#x} is not a usable vector; allowed 0x10-0xFF (0-15 are reserved)")
    return v


Vector = Annotated[int, BeforeValidator(_vector)]


def _vp_set(v):
    """'all', an int, a list of ints, or a range string 'a-b' (inclusive)."""
    if v == "all":
        return "all"
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a VP set; write 'all', a list, or a range like '0-3'")
    if isinstance(v, int):
        return [v]
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", v)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ValueError(f"range {v!r} is empty; write 'low-high'")
            return list(range(a, b + 1))
        if v.strip().isdigit():
            return [int(v)]
        raise ValueError(f"{v!r} is not a VP set; write 'all', a list, or a range like '0-3'")
    if isinstance(v, (list, tuple)):
        out = []
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int) or x < 0:
                raise ValueError(f"{x!r} in {list(v)} is not a VP index (integer >= 0)")
            out.append(x)
        if not out:
            raise ValueError("an empty list selects no VP; write 'all', a list, or a range")
        return out
    raise ValueError(f"{v!r} is not a VP set; write 'all', a list, or a range like '0-3'")


VpSet = Annotated[Union[Literal["all"], list[int]], BeforeValidator(_vp_set)]


def _program(v):
    if callable(v):
        return v
    if isinstance(v, str) and ":" in v:
        mod, _, attr = v.partition(":")
        try:
            obj = importlib.import_module(mod)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"{v!r} cannot be imported: {e}") from None
        if callable(obj):
            return obj
    raise ValueError(f"{v!r} is not a program; give a generator function or 'module:function'")


def _program_name(f):
    return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', repr(f))}"


Program = Annotated[Callable, BeforeValidator(_program), PlainSerializer(_program_name)]


class Strict(BaseModel):
    """Base: unknown keys are errors that list the allowed keys."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True,
                              validate_assignment=False)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data):
        if isinstance(data, dict):
            extra = [k for k in data if k not in cls.model_fields]
            if extra:
                raise ValueError(
                    f"unknown key(s) {', '.join(map(repr, extra))}; allowed: "
                    f"{', '.join(cls.model_fields)}"
                )
        return data


class Named(Strict):
    """Keys every workload has: an optional name and the VTL it belongs to."""

    name: Optional[str] = None
    vtl: StrictInt = Field(0, ge=0, lt=MAX_VTLS)


class Arrivals(Strict):
    """Shared arrival keys: exactly one of period (per VP), rate (total, Poisson), at."""

    period: Optional[PositiveDuration] = None
    rate: Optional[Rate] = Field(None, description="per second, Poisson, whole source; "
                                 "1e-9 to 1e9, and a mean gap the clock resolves at duration")
    at: Optional[list[Duration]] = None
    phase: Duration = 0

    @model_validator(mode="after")
    def _one_arrival_kind(self):
        given = [k for k in ("period", "rate", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of period, rate, at (got {', '.join(given) or 'none'})")
        return self
