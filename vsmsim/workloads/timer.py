"""``kind = "timer"``: LAPIC timer expiries of context (vp, vtl).

Engine hooks: ``sim.raise_timer(vp, vtl, vector, service_ns, widx)``, and for a fixed
service ``sim.raise_timers(vps, ...)``: a period's expiries on every VP in one call.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..dists import parse_dist
from ..schema import Arrivals, DistSpec, Named, Vector, VpSet
from .base import ArrivalSource, Kind


class TimerWorkload(Named, Arrivals):
    """LAPIC timer of context (vp, vtl): periodic, Poisson or one-shot expiries."""

    kind: Literal["timer"]
    vps: VpSet = "all"
    vector: Vector = 0xEC
    service: DistSpec = Field(default_factory=lambda: parse_dist("1us"))


class TimerSource(ArrivalSource):
    """Timer expiries: the commonest arrival of all, so what each needs is bound once."""

    def __init__(self, sim, widx, w, seq):
        super().__init__(sim, widx, w, seq)
        raise_timer, vtl, vector, service = sim.raise_timer, w.vtl, w.vector, self.service
        fixed = w.service.fixed
        if fixed is not None:
            self.fire = lambda vp: raise_timer(vp, vtl, vector, fixed, widx)
            # All VPs' expiries of a period in one loop of raise_timer, without a call of
            # the lambda each (320,000 a simulated second in bench/standard.toml).
            vps = self.vps
            self.fire_all = lambda: sim.raise_timers(vps, vtl, vector, fixed, widx)
        else:
            self.fire = lambda vp: raise_timer(vp, vtl, vector, service(), widx)


KIND = Kind("timer", TimerWorkload, TimerSource, records="timer")
