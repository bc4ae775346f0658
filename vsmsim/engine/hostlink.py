"""Wiring a run's host layer: its threads, CPUs, policy and VPs (see vsmsim.host).

Called by :class:`~vsmsim.engine.sim.Simulation` only when the scenario has a ``[host]``
section. Besides the machine and the :class:`~vsmsim.engine.hosted.HostedVP` objects it
sets up two things the simulation asks of the host layer: how a VTL switch splits around
its hand-off step (:func:`handoff_split`), and, for each delivery path with a hand-off
step, the variant taken when the receiver's thread is still halt-polling (the wake-up
step skipped: no sleep, no wake; a path named ``<path> (polled)``).
"""

from __future__ import annotations

from ..designs import PATHS
from ..host.layout import noise_threads, vcpu_threads
from ..host.machine import Host
from ..host.noise import Noise
from ..host.policy import POLICIES
from ..record import F_PATH
from .hosted import HostedVP
from .paths import CompiledPath


def build_host(sim, tprs, rng) -> None:
    """Give *sim* its host (``sim.host``), noise clients and hosted VPs."""
    sc = sim.sc
    cfg = sc.host
    n, v = sim.n, sim.nvtl
    per_vtl = bool(sim.design.capabilities["thread_per_vtl"]) and v > 1
    threads, ncpus = vcpu_threads(cfg, n, v, per_vtl)
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
    polled = {}
    if cfg.halt_poll > 0:
        import numpy as np
        for name in PATHS:
            path = sim.paths[name]
            steps = sim.design.path(name)
            if not name.startswith("deliver.") or not any(s.handoff for s in steps):
                continue
            kept = tuple(s for s in steps if not s.handoff)
            code = sim._path_code(f"{name} (polled)")
            var = CompiledPath(f"{name} (polled)", code, kept, prof, n, v,
                               np.random.default_rng(rng.integers(2**63)))
            while len(sim.uses) <= code:
                sim.uses.append(0)
                sim.by_code.append(None)
            sim.by_code[code] = var
            polled[path.code] = var
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
        generic(sim, vp, c, path, irq, sit)

    if polled:
        sim._take = take


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
