"""Workload sources: callbacks that raise interrupts and guest actions on schedule.

Each workload gets its own random streams (spawned from the scenario seed), drawn in
arrival order and never depending on what the VPs are doing, so every design compared on
the same scenario and seed sees exactly the same arrivals (common random numbers).

Arrivals, by key (one per workload):

- ``period``: every period from ``phase`` on, on every VP of the set at once;
- ``rate``: a Poisson stream of that many arrivals per second for the whole workload,
  each on one VP of the set drawn uniformly (the sender, for IPIs);
- ``at``: one-shot arrivals at those times, on every VP of the set.
"""

from __future__ import annotations

import numpy as np

from .clock import Call, arrival_priority, rearm
from .program import start_program

_BLOCK = 4096


class _Blocks:
    """Integers or floats drawn from a generator in blocks (fast per-arrival access)."""

    __slots__ = ("draw", "buf")

    def __init__(self, draw):
        self.draw = draw
        self.buf = []

    def next(self):
        if not self.buf:
            self.buf = self.draw().tolist()
            self.buf.reverse()
        return self.buf.pop()


class Source:
    """One workload's arrival process; subclasses say what an arrival does on a VP."""

    def __init__(self, sim, widx, w, seq):
        self.sim = sim
        self.widx = widx
        self.w = w
        s_arrive, s_who, s_service, s_dest = [np.random.default_rng(s) for s in seq.spawn(4)]
        n = sim.n
        sel = getattr(w, "vps", None) or getattr(w, "senders", "all")
        self.vps = list(range(n)) if sel == "all" else list(sel)
        self.service = w.service.sampler(s_service) if hasattr(w, "service") else None
        self.dest_rng = s_dest
        nv = len(self.vps)
        self.who = _Blocks(lambda: s_who.integers(0, nv, _BLOCK))
        if getattr(w, "rate", None):
            scale = 1e9 / w.rate
            self.gaps = _Blocks(lambda: s_arrive.exponential(scale, _BLOCK))
        self.priority = arrival_priority(w.vtl)
        self.call = Call(self._arrive)
        self.t = 0.0
        self.k = 0

    def start(self):
        w, env = self.w, self.sim.env
        if w.period is not None:
            self.t = w.phase
            rearm(env, self.call, w.phase, self.priority)
        elif w.rate is not None:
            self.t = w.phase + self.gaps.next()
            rearm(env, self.call, int(round(self.t)), self.priority)
        else:
            self.times = sorted(w.at)
            if self.times:
                rearm(env, self.call, self.times[0], self.priority)

    def _arrive(self, _):
        w, env = self.w, self.sim.env
        if w.rate is not None:
            self.fire(self.vps[self.who.next()])
            self.t += self.gaps.next()
            rearm(env, self.call, int(round(self.t)), self.priority)
            return
        fire = self.fire
        for vp in self.vps:
            fire(vp)
        if w.period is not None:
            self.t += w.period
            rearm(env, self.call, self.t, self.priority)
        else:
            self.k += 1
            if self.k < len(self.times):
                rearm(env, self.call, self.times[self.k], self.priority)

    def fire(self, vp: int):  # pragma: no cover - abstract
        raise NotImplementedError


class TimerSource(Source):
    """LAPIC timer expiries of context (vp, vtl)."""

    def __init__(self, sim, widx, w, seq):
        super().__init__(sim, widx, w, seq)
        # The commonest arrival of all: bind what each expiry needs once.
        raise_timer, vtl, vector, service = sim.raise_timer, w.vtl, w.vector, self.service
        fixed = w.service.fixed
        if fixed is not None:
            self.fire = lambda vp: raise_timer(vp, vtl, vector, fixed, widx)
        else:
            self.fire = lambda vp: raise_timer(vp, vtl, vector, service(), widx)


class ExternalSource(Source):
    """Device interrupts (IOAPIC/MSI) asserted for (vp, vtl)."""

    def fire(self, vp):
        w = self.w
        self.sim.raise_external(vp, w.vtl, w.vector, self.service(), self.widx)


class _IpiBase(Source):
    def __init__(self, sim, widx, w, seq):
        super().__init__(sim, widx, w, seq)
        n = sim.n
        self._rand = _Blocks(lambda: self.dest_rng.integers(0, max(n - 1, 1), _BLOCK))

    def dests(self, sender):
        d = self.w.dest
        n = self.sim.n
        if d == "random":
            if n == 1:
                return [sender]
            x = self._rand.next()
            return [x + 1 if x >= sender else x]
        if d == "self":
            return [sender]
        if d == "all":
            return list(range(n))
        if d == "all-but-self":
            return [v for v in range(n) if v != sender]
        return list(d)


class IpiSource(_IpiBase):
    """APIC IPIs: random or listed VPs (physical or logical), or a shorthand."""

    def fire(self, vp):
        w = self.w
        dests = self.dests(vp)
        services = [self.service() for _ in dests]
        shorthand = w.dest in ("all", "all-but-self")
        self.sim.send_ipi(vp, w.vtl, dests, w.dest_mode == "logical" and not shorthand,
                          shorthand, w.vector, services, self.widx)


class PvIpiSource(_IpiBase):
    """Hyper-V PV IPIs, to the sender's VTL or to ``target_vtl``."""

    def fire(self, vp):
        w = self.w
        dests = self.dests(vp)
        services = [self.service() for _ in dests]
        target = w.vtl if w.target_vtl is None else w.target_vtl
        self.sim.send_pv_ipi(vp, w.vtl, dests, target, w.vector, services, self.widx)


class CallSource(Source):
    """VTL calls (or intercepts) from context (vp, vtl) into the next higher VTL."""

    def fire(self, vp):
        w = self.w
        self.sim.vtl_call(vp, w.vtl, self.service(), self.widx, w.kind == "intercept")


class _Static:
    """Compute and program workloads: set up once, no arrivals."""

    def __init__(self, sim, widx, w):
        self.sim, self.widx, self.w = sim, widx, w
        self.vps = list(range(sim.n)) if w.vps == "all" else list(w.vps)
        for vp in self.vps:
            ctx = sim.vps[vp].ctxs[w.vtl]
            if w.kind == "compute":
                ctx.compute = True

    def start(self):
        if self.w.kind == "program":
            for vp in self.vps:
                start_program(self.sim, self.sim.vps[vp].ctxs[self.w.vtl], self.w.program,
                              self.widx)


_KINDS = {"timer": TimerSource, "external": ExternalSource, "ipi": IpiSource,
          "pv-ipi": PvIpiSource, "vtl-call": CallSource, "intercept": CallSource}


def build_sources(sim, seqs):
    """One source per workload of the scenario, each with its own seed sequence."""
    out = []
    for i, (w, seq) in enumerate(zip(sim.sc.workload, seqs)):
        if w.kind in _KINDS:
            out.append(_KINDS[w.kind](sim, i, w, seq))
        else:
            out.append(_Static(sim, i, w))
    return out
