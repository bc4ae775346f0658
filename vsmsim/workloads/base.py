"""What a workload kind is: its schema, its checks, its arrivals, its engine hook.

A kind is one module of :mod:`vsmsim.workloads` that defines a pydantic model and a
:class:`Kind` record named ``KIND``. The arrival process shared by the kinds that have
arrivals (``period``, ``rate`` or ``at``) is :class:`ArrivalSource`: a subclass says what one
arrival does on one VP by calling its engine hook (a method of the simulation, such as
``sim.raise_timer``). Every time is an integer of nanoseconds.

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

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..engine.clock import Call, arrival_priority, rearm

_BLOCK = 4096


def no_checks(w, sc, where: str) -> list[str]:
    """Cross-checks of a kind that has none beyond the generic ones."""
    return []


def vtl0_only(w: dict) -> bool:
    """Whether workload *w* (input form) stays in the VSM-off twin: VTL0 work does."""
    return w["vtl"] == 0


@dataclass(frozen=True)
class Kind:
    """A workload kind as the rest of vsmsim sees it.

    - ``name``: the ``kind = "..."`` tag;
    - ``model``: the pydantic model of one ``[[workload]]`` table;
    - ``source``: ``source(sim, widx, w, seq)`` builds the object that makes its arrivals
      (it has a ``start()`` method), given the simulation, the workload's index, its
      validated model and its ``numpy.random.SeedSequence``;
    - ``check(w, sc, where) -> list[str]``: problems with *w* in scenario *sc* that the
      model alone cannot see (one line each, starting with *where*);
    - ``in_vsm_off(w_dict) -> bool``: whether it stays in the VSM-off twin (a plain VM);
    - ``records``: the interrupt kind its rows carry in the interrupts table, or None;
    - ``calls_up``: its rows are calls into the next higher VTL (they have a round trip:
      ``resumed_ns``), not interrupts.
    """

    name: str
    model: type
    source: Callable
    check: Callable = no_checks
    in_vsm_off: Callable = vtl0_only
    records: Optional[str] = None
    calls_up: bool = False


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


def vp_list(sel, n: int) -> list[int]:
    """The VPs of a VP set (``"all"`` or a list) in a VM of *n* VPs."""
    return list(range(n)) if sel == "all" else list(sel)


class ArrivalSource:
    """One workload's arrival process; subclasses say what an arrival does on a VP."""

    def __init__(self, sim, widx, w, seq):
        self.sim = sim
        self.widx = widx
        self.w = w
        s_arrive, s_who, s_service, s_dest = [np.random.default_rng(s) for s in seq.spawn(4)]
        n = sim.n
        sel = getattr(w, "vps", None) or getattr(w, "senders", "all")
        self.vps = vp_list(sel, n)
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
        self.fire_all()
        if w.period is not None:
            self.t += w.period
            rearm(env, self.call, self.t, self.priority)
        else:
            self.k += 1
            if self.k < len(self.times):
                rearm(env, self.call, self.times[self.k], self.priority)

    def fire_all(self) -> None:
        """One arrival on every VP of the set, in set order (a period or an ``at`` time)."""
        fire = self.fire
        for vp in self.vps:
            fire(vp)

    def fire(self, vp: int):  # pragma: no cover - abstract
        raise NotImplementedError
