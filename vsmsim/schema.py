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
    vtl: int = Field(0, ge=0, lt=MAX_VTLS)


class Arrivals(Strict):
    """Shared arrival keys: exactly one of period (per VP), rate (total, Poisson), at."""

    period: Optional[PositiveDuration] = None
    rate: Optional[float] = Field(None, gt=0, description="per second, Poisson, whole source")
    at: Optional[list[Duration]] = None
    phase: Duration = 0

    @model_validator(mode="after")
    def _one_arrival_kind(self):
        given = [k for k in ("period", "rate", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of period, rate, at (got {', '.join(given) or 'none'})")
        return self
