"""Wiring a run's host layer: its threads, CPUs, policy and VPs (see vsmsim.host).

Called by :class:`~vsmsim.engine.sim.Simulation` only when the scenario has a ``[host]``
section. Besides the machine and the :class:`~vsmsim.engine.hosted.HostedVP` objects it
sets up two things the simulation asks of the host layer: how a VTL switch splits around
its hand-off step (:func:`handoff_split`), and, for each delivery path with a hand-off
step, the variant taken when the receiver's thread is still halt-polling (the wake-up
step skipped: no sleep, no wake; a path named ``<path> (polled)``).
"""

from __future__ import annotations

from ..designs import COUNTERS, PATHS
from ..host.layout import noise_threads, vcpu_threads
from ..host.machine import Host
from ..host.noise import Noise
from ..host.policy import POLICIES
from ..record import F_PATH
from .clock import Call, at, push
from .hosted import HostedVP
from .paths import CompiledPath
from .work import SIT_LOWER

C_PENDED = COUNTERS.index("pended")


def build_host(sim, tprs, rng) -> None:
    """Give *sim* its host (``sim.host``), noise clients and hosted VPs."""
    sc = sim.sc
    cfg = sc.host
    n, v = sim.n, sim.nvtl
    per_vtl = bool(sim.design.capabilities["thread_per_vtl"]) and v > 1
    vmm = sim.design.vmm_thread
    threads, ncpus = vcpu_threads(cfg, n, v, per_vtl, vmm)
    sim.vmm_thread = threads[-1] if vmm else None
    noisy = noise_threads(cfg, ncpus, len(threads))
    prof = sim.profile
    costs = tuple(int(round(prof.mean(k))) for k in ("cstate_exit", "context_switch", "migration"))
    host = Host(sim.env, cfg, threads + [t for t, _ in noisy], ncpus, POLICIES[cfg.policy],
                costs, cfg.placement == "free", sc.record.timeline)
    sim.host = host
    sim.host_snap = None
    sim.noise = [Noise(host, t, nz.utilisation, nz.burst, rng) for t, nz in noisy]
    sim.vps = []
    for i in range(n):
        mine = [threads[i * v + j] for j in range(v)] if per_vtl else [threads[i]] * v
        sim.vps.append(HostedVP(sim, i, v, tprs, sc.record.timeline, sim.debug, host, mine,
                                per_vtl))
    sim.handoff_split = lambda reason, ns: _split(sim.switch_paths[reason], ns)
    # Delivery paths with a hand-off step: the variant for a receiver still halt-polling.
    polled, errands = {}, {}
    for name in PATHS:
        path = sim.paths[name]
        steps = sim.design.path(name)
        if not name.startswith("deliver."):
            continue
        if cfg.halt_poll > 0 and any(s.handoff for s in steps):
            kept = tuple(s for s in steps if not s.handoff)
            code = sim._path_code(f"{name} (polled)")
            var = CompiledPath(f"{name} (polled)", code, kept, prof, n, v, sim.cost_rng)
            while len(sim.uses) <= code:
                sim.uses.append(0)
                sim.by_code.append(None)
            sim.by_code[code] = var
            polled[path.code] = var
            span = _errand_span(kept, per_vtl)
            if span is not None:
                errands[code] = span
        span = _errand_span(steps, per_vtl)
        if span is not None:
            errands[path.code] = span
    generic = type(sim)._take

    def take(vp, c, path, irq, sit):
        var = polled.get(path.code)
        # The marked step of a delivery path wakes the VP's own (halted) thread: a VP
        # halted with its thread on the CPU is halt-polling, and skips that wake.
        if var is not None and vp.oncpu:
            rows = sim.rec.rows
            if rows[irq + F_PATH] == path.code:
                rows[irq + F_PATH] = var.code
            path = var
        span = errands.get(path.code)
        if span is not None:
            thread = sim.vmm_thread if span[2] == "vmm" else vp.threads[c.vtl]
            if thread is not vp.thread:
                _errand_take(sim, vp, c, path, irq, sit, span, thread)
                return
        generic(sim, vp, c, path, irq, sit)

    if polled or errands:
        sim._take = take


def _errand_span(steps, per_vtl: bool):
    """``(i0, i1, on)``: a path's consecutive errand steps [i0, i1) and where they run
    (True: the target VTL's thread, in a design with a thread per VTL; "vmm"); or None."""
    idx = [i for i, s in enumerate(steps) if s.errand and (per_vtl or s.errand == "vmm")]
    if not idx:
        return None
    return idx[0], idx[-1] + 1, steps[idx[0]].errand


def _errand_take(sim, vp, c, path, irq, sit, span, thread) -> None:
    """Walk delivery *path* whose errand steps run on the target VTL's parked thread: the
    steps before it as a delay (the thread's wake-up), the errand as that thread's CPU
    work under the host scheduler, then the rest as the generic walker would. The rest's
    first delay keeps the event id the generic walker's single delay would have had, so
    that with nothing in the way the run is event for event the unhosted one."""
    if sit == SIT_LOWER:
        sim.counters[C_PENDED] += 1
    sim.uses[path.code] += 1
    c.inflight += 1
    env = sim.env
    eid = next(env.ids)
    before, work, after = path.cut(span[0], span[1])
    pre = sum(ns for _vp, ns in before)  # latency only before the errand (its wake-up)
    rest = list(after)

    def resume():
        lead = 0
        if rest and not rest[0][0]:
            lead = rest.pop(0)[1]
        call = Call(lambda _: sim.run_segs(vp, tuple(rest), vp.land, irq))
        push(env, env.now + lead, eid, call)

    def start(_=None):
        if work > 0:
            sim.host.errand(thread, work, resume)
        else:
            resume()

    if pre > 0:
        at(env, pre, start)
    else:
        start()


def _split(path, ns: int):
    """``(pre, hand, post)`` ns of one traversal of switch *path* that took *ns*."""
    pre, hand, post = path.split
    if path.fixed is not None:
        return int(round(pre)), int(round(hand)), int(round(post))
    total = pre + hand + post
    if total <= 0:
        return ns, 0, 0
    h = int(round(ns * hand / total))
    p = int(round(ns * pre / total))
    return p, h, ns - p - h
