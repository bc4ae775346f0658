"""The hand-written callback reference of issue 15: the standard workload, by hand, on SimPy.

The yardstick ``bench/run.py`` times ``vsmsim.simulate`` against: the standard workload
(``bench/standard.toml``) written the way a person would write it for speed, as callbacks
on a plain ``simpy.Environment`` (no processes), with no recording (counts only) and no
costs (switches and deliveries take no time; only handlers take their service time). The
garbage collector stays on, as a user's would be. Every time is an integer of ns.

The model, per VP (VTL0 and VTL1):

- VTL0 runs background compute whenever nothing else runs (it needs no events);
- VTL0's timer expires every 250 us from 0 (vector 0xEF, 2 us handler); VTL1's every 1 ms
  from 0 (vector 0xEC, 20 us handler);
- a VTL1 expiry enters VTL1 at once (one switch) and preempts VTL0: a VTL0 handler in
  progress is suspended and resumes with its remaining time after VTL1 returns (one
  switch) at the end of its handler;
- a VTL0 interrupt arriving while VTL1 runs or while a VTL0 handler runs (handlers run to
  completion) pends in VTL0's IRR, one bit per vector: a vector already pending coalesces;
  the highest pending vector is handled first when VTL0 is free;
- IPIs: Poisson at *ipi_rate* per second for the VM, each from a random sender to a random
  other VP (``random.Random(seed)``), vector 0xFB, 1 us handler in the destination's VTL0.

Same-instant order is vsmsim's (``vsmsim/engine/clock.py``): ends of handlers first, then
VTL1 arrivals, then VTL0 arrivals; events at the end time are not processed.

One rule beyond the one-paragraph description of issue 15, taken from vsmsim so that the
two models are the same (``VP.act`` in ``vsmsim/engine/vp.py``): an IPI is an ICR write by
the sender's VTL0, so a sender in VTL1 cannot send it yet; the send waits until the
sender's VTL0 runs again and has no handler to run or pending interrupt (the guest has
interrupts enabled), and sends written while others wait queue behind them.
``tests/test_bench_reference.py`` replays vsmsim's own IPI arrivals through this model and
gets vsmsim's counts exactly (``ideal`` costs).
"""

from __future__ import annotations

import random
from functools import partial

import simpy

V_TIMER0, V_TIMER1, V_IPI = 0xEF, 0xEC, 0xFB
#: Handler service time per vector (ns).
SERVICE = {V_TIMER0: 2_000, V_TIMER1: 20_000, V_IPI: 1_000}
PERIOD0, PERIOD1 = 250_000, 1_000_000
#: Heap priorities of arrivals; ends of handlers use env.timeout's (NORMAL = 1), so at one
#: nanosecond they come first, then VTL1 arrivals, then VTL0 arrivals (as in vsmsim).
ARRIVE1, ARRIVE0 = 2, 3


class _Due(simpy.Event):
    """A bare event already successful, put on the queue by hand (``env.schedule``) so that
    it can carry a priority; SimPy only reads ``_ok`` (and ``_value``) of what it processes."""

    _ok = True
    _value = None


class _VP:
    __slots__ = ("vtl1", "irr0", "pend1", "h0", "h0_end", "h0_rem", "gen", "deferred",
                 "end0", "end1")

    def __init__(self):
        self.vtl1 = False   # VTL1 is active (its handler runs)
        self.irr0 = 0       # VTL0's IRR: bit v set while vector v is pending
        self.pend1 = False  # VTL1's IRR bit of its timer vector
        self.h0 = 0         # VTL0 vector in service, 0 for none
        self.h0_end = 0     # when that handler ends if VTL1 does not preempt it (ns)
        self.h0_rem = 0     # its service left while VTL1 has it suspended (ns)
        self.gen = 0        # bumped on preemption: the handler's scheduled end is then stale
        self.deferred = []  # destinations of IPIs this VP's VTL0 could not send yet


def reference(vps: int = 64, duration_ns: int = 1_000_000_000, ipi_rate: float = 50_000,
              seed: int = 7, ipis=None) -> dict:
    """Run the standard workload by hand for *duration_ns*; return its counts.

    *ipi_rate*: IPIs per second for the whole VM. *ipis*: instead of the Poisson stream,
    an iterable of ``(arrival_ns, sender, destination)`` in time order (a replay).
    Counts: ``delivered[_timer0|_timer1|_ipi]`` (handlers started), ``switches`` (VTL
    entries + returns), ``coalesced[_...]``, ``model_actions`` = delivered + switches, and
    the IPIs' fate: ``ipis`` arrived = ``ipis_sent`` + ``ipis_unsent`` (still waiting for
    their sender at the end); ``ipis_sent`` = ``delivered_ipi`` + ``coalesced_ipi`` +
    ``ipis_pending`` (in an IRR at the end); ``ipis_deferred`` waited for their sender.
    """
    if vps < 1 or duration_ns <= 0 or ipi_rate < 0:
        raise ValueError(f"reference: vps={vps} must be >= 1, duration_ns={duration_ns} > 0, "
                         f"ipi_rate={ipi_rate} >= 0")
    env = simpy.Environment()
    timeout, schedule = env.timeout, env.schedule
    delivered = dict.fromkeys(SERVICE, 0)
    coalesced = dict.fromkeys(SERVICE, 0)
    switches = arrived = sent = deferrals = 0
    cpus = [_VP() for _ in range(vps)]

    def later(delay, prio, fn):
        ev = _Due(env)
        ev.callbacks.append(fn)
        schedule(ev, prio, delay)

    def start0(vp, vec):  # a VTL0 handler starts now
        delivered[vec] += 1
        s = SERVICE[vec]
        vp.h0 = vec
        vp.h0_end = env.now + s
        timeout(s, vp.gen).callbacks.append(vp.end0)

    def end0(vp, ev):
        if ev.value == vp.gen:  # else VTL1 preempted this handler: a stale end
            vp.h0 = 0
            free0(vp)

    def free0(vp):  # VTL0 has no handler: the highest pending vector, else waiting sends
        nonlocal sent
        while not vp.h0:
            m = vp.irr0
            if m:
                vec = m.bit_length() - 1
                vp.irr0 = m ^ (1 << vec)
                start0(vp, vec)
            elif vp.deferred:
                sent += 1
                raise0(cpus[vp.deferred.pop(0)], V_IPI)
            else:
                return  # background compute fills the time until the next event

    def raise0(vp, vec):  # a VTL0 interrupt: handled now if VTL0 is free, else pended
        if vp.vtl1 or vp.h0:
            bit = 1 << vec
            if vp.irr0 & bit:
                coalesced[vec] += 1
            else:
                vp.irr0 |= bit
        else:
            start0(vp, vec)

    def raise1(vp):  # VTL1's timer: enter VTL1 at once, suspending VTL0's handler
        nonlocal switches
        if vp.vtl1:
            if vp.pend1:
                coalesced[V_TIMER1] += 1
            vp.pend1 = True
            return
        if vp.h0:
            vp.gen += 1
            vp.h0_rem = vp.h0_end - env.now
        vp.vtl1 = True
        switches += 1
        start1(vp)

    def start1(vp):
        delivered[V_TIMER1] += 1
        timeout(SERVICE[V_TIMER1]).callbacks.append(vp.end1)

    def end1(vp, _ev):
        nonlocal switches
        if vp.pend1:
            vp.pend1 = False
            start1(vp)
            return
        vp.vtl1 = False  # VTL return
        switches += 1
        if vp.h0:  # the suspended handler resumes
            vp.h0_end = env.now + vp.h0_rem
            timeout(vp.h0_rem, vp.gen).callbacks.append(vp.end0)
        else:
            free0(vp)

    for vp in cpus:
        vp.end0, vp.end1 = partial(end0, vp), partial(end1, vp)

    def every(period, prio, fire, *args):  # a periodic timer on every VP, phase 0
        def expire(_ev):
            for vp in cpus:
                fire(vp, *args)
            later(period, prio, expire)
        later(0, prio, expire)

    every(PERIOD1, ARRIVE1, raise1)
    every(PERIOD0, ARRIVE0, raise0, V_TIMER0)

    rng = random.Random(seed)

    def poisson():
        t, per_ns = 0.0, ipi_rate / 1e9
        while True:
            t += rng.expovariate(per_ns)
            src = rng.randrange(vps)
            dst = src
            if vps > 1:
                dst = rng.randrange(vps - 1)
                dst += dst >= src  # never the sender itself
            yield round(t), src, dst

    stream = iter(ipis) if ipis is not None else poisson() if ipi_rate > 0 else iter(())
    nxt = next(stream, None)

    def ipi(_ev):
        nonlocal nxt, arrived, sent, deferrals
        t, src, dst = nxt
        arrived += 1
        s = cpus[src]
        if s.vtl1 or s.deferred:  # the sender's VTL0 cannot write the ICR now
            s.deferred.append(dst)
            deferrals += 1
        else:
            sent += 1
            raise0(cpus[dst], V_IPI)
        nxt = next(stream, None)
        if nxt is not None:
            later(nxt[0] - t, ARRIVE0, ipi)

    if nxt is not None:
        later(nxt[0], ARRIVE0, ipi)
    env.run(until=duration_ns)

    n_del = sum(delivered.values())
    return {"vps": vps, "duration_ns": duration_ns, "ipi_rate": ipi_rate, "seed": seed,
            "delivered": n_del, "delivered_timer0": delivered[V_TIMER0],
            "delivered_timer1": delivered[V_TIMER1], "delivered_ipi": delivered[V_IPI],
            "switches": switches, "model_actions": n_del + switches,
            "coalesced": sum(coalesced.values()), "coalesced_timer0": coalesced[V_TIMER0],
            "coalesced_timer1": coalesced[V_TIMER1], "coalesced_ipi": coalesced[V_IPI],
            "ipis": arrived, "ipis_sent": sent, "ipis_deferred": deferrals,
            "ipis_unsent": sum(len(vp.deferred) for vp in cpus),
            "ipis_pending": sum(vp.irr0 >> V_IPI & 1 for vp in cpus)}


if __name__ == "__main__":
    import json
    import time

    t0 = time.perf_counter()
    counts = reference()
    print(json.dumps({**counts, "wall_s": round(time.perf_counter() - t0, 3)}, indent=1))
