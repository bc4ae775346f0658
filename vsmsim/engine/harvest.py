"""The engine's hand-over: a finished run's state as plain tables, counters and facts.

This is the one place that reads the engine's internals after a run (residency
accumulators, per-context work counters, the recorder's rows, the warm-up snapshot);
:mod:`vsmsim.results` only receives what :func:`harvest` returns. All times in ns.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

import pandas as pd

from ..designs import COUNTERS
from .work import OFF_EXIT, OFF_IDLE, OFF_TRANSITION, W_COMPUTE, W_TASK


class Snapshot(NamedTuple):
    """Engine totals at the end of the warm-up, subtracted from the final ones."""

    acc: list       # per VP: its residency accumulator (VP.acc)
    work: list      # per VP, per context: (compute_ns, task_ns)
    counters: list  # the run's counters, in COUNTERS order
    deferred: int = 0  # deferred actions sent so far


def snapshot(sim) -> Snapshot:
    """Take the totals of *sim* now (the end of the warm-up), settling work in progress."""
    now = sim.env.now
    acc, work = [], []
    for vp in sim.vps:
        if vp.fuse_irq >= 0:
            vp.settle(now)
        vp._account(vp.acc_state, now)
        acc.append(list(vp.acc))
        running = now - vp.seg_start  # of the segment in progress, not yet booked
        work.append([(c.compute_ns + (running if vp.work == W_COMPUTE and vp.seg_ctx is c else 0),
                      c.task_ns + (running if vp.work == W_TASK and vp.seg_ctx is c else 0))
                     for c in vp.ctxs])
    return Snapshot(acc, work, sim.counter_values(), int(sim.deferred_actions))


def residency(sim) -> pd.DataFrame:
    """Per VP: ns in each VTL, in transitions, other exits, halted; compute and task ns."""
    nvtl, snap = sim.nvtl, sim.snap
    rows = []
    for i, vp in enumerate(sim.vps):
        acc = list(vp.acc)
        work = [(c.compute_ns, c.task_ns) for c in vp.ctxs]
        if snap is not None:
            acc = [a - b for a, b in zip(acc, snap.acc[i])]
            work = [(a - b, t - u) for (a, t), (b, u) in zip(work, snap.work[i])]
        row = {"vp": i}
        for v in range(nvtl):
            row[f"vtl{v}_ns"] = acc[v]
        row["transition_ns"] = acc[nvtl + OFF_TRANSITION]
        row["exit_ns"] = acc[nvtl + OFF_EXIT]
        row["idle_ns"] = acc[nvtl + OFF_IDLE]
        if sim.host is not None:
            row["steal_ns"] = acc[vp.slot_steal]  # guest code waiting for its thread's CPU
        for v in range(nvtl):
            row[f"compute{v}_ns"] = work[v][0]
        for v in range(nvtl):
            row[f"task{v}_ns"] = work[v][1]
        row["total_ns"] = sum(acc)
        rows.append(row)
    return pd.DataFrame(rows)


def counters(sim, interrupts, switches) -> dict:
    """The run's counters over the measured window (after the warmup), every one of them.

    ``interrupts`` counts the rows raised in the window, ``switches`` the transitions
    that started in it, ``deferred_actions`` the deferred actions sent in it (all three
    the same window as the engine's counters, the residency and the ``*_per_s`` rates);
    ``unsent_actions`` is what is still queued at the end.
    """
    counts = sim.counter_values()
    deferred = int(sim.deferred_actions)
    warmup = int(sim.sc.warmup) if sim.snap is not None else 0
    if sim.snap is not None:
        counts = [a - b for a, b in zip(counts, sim.snap.counters)]
        deferred -= sim.snap.deferred
    out = {name: int(v) for name, v in zip(COUNTERS, counts)}
    if interrupts is None:  # record.tables stream / summary: the tally counted them
        out["interrupts"] = int(sim.sink.tally.raised)
        out["switches"] = int(sim.sink.tally.switches)
    else:
        out["interrupts"] = int((interrupts["raised_ns"] >= warmup).sum())
        out["switches"] = int((switches["start_ns"] >= warmup).sum())
    out["deferred_actions"] = deferred
    out["unsent_actions"] = int(sum(len(c.deferred) for vp in sim.vps for c in vp.ctxs))
    return out


def harvest(sim) -> dict:
    """Everything a :class:`~vsmsim.results.Result` is made of, from finished run *sim*.

    Keys: ``scenario`` (resolved, JSON-ready), ``interrupts``, ``switches``, ``residency``,
    ``timeline`` (or None), ``counters`` and ``meta``.
    """
    sc, rec, prof = sim.sc, sim.rec, sim.profile
    if rec.recycle:  # the rows went to the sink as the run went
        interrupts = switches = None
    else:
        interrupts = rec.interrupts_frame(sim.workload_names, sim.path_names)
        switches = rec.switches_frame()
        # The frames hold copies: let the raw rows go now, not when the simulation does
        # (the result's own work, such as the overload report, then runs without them).
        rec.rows, rec.sw = array("q"), array("q")
    cnt = counters(sim, interrupts, switches)
    # Userspace (VMM) CPU time implied by the counters: each userspace exit, VMM switch
    # and state ioctl at its profile mean. An estimate: it ignores the VMM's own idle time.
    vmm_ns = (cnt["uexits"] * prof.mean("uexit") + cnt["vmm_switches"] * prof.mean("vmm_switch")
              + cnt["ioctls"] * prof.mean("ioctl"))
    meta = {
        "vmm_ns": float(vmm_ns),
        "seed": sc.seed,
        "wall_s": sim.wall_s,
        "design_name": sim.design.name,
        "design": sim.design.to_dict(),
        "costs": prof.to_dict(),
        # Per VTL (engine/posting.py): whether its interrupts are posted / its IPIs virtualized.
        "posted_usable": [bool(x) for x in sim.posted],
        "ipiv_usable": [bool(x) for x in sim.ipiv],
        "vina_clears": [list(x) for x in rec.clears],
        "tables": sc.record.tables,
    }
    if rec.recycle:
        tally = sim.sink.tally
        meta["summary_rows"] = [list(r) for r in tally.latency_rows()]
        meta["overload_inputs"] = tally.overload_inputs()
        meta["rel_error"] = sc.record.rel_error
        meta["stream_files"] = dict(sim.stream_files)
        # categories of the streamed tables' categorical columns (written as strings)
        meta["stream_categories"] = {"interrupts.workload": list(sim.workload_names),
                                     "interrupts.path": list(sim.path_names)}
    out = {"scenario": sc.resolved(), "interrupts": interrupts, "switches": switches,
           "residency": residency(sim), "counters": cnt,
           "timeline": rec.timeline_frame() if rec.timeline else None, "meta": meta}
    if sim.host is not None:
        from .hostbooks import host_tables, host_timeline, host_wait
        out["threads"], out["cpus"], host_counts = host_tables(sim)
        cnt.update(host_counts)
        out["host_timeline"] = host_timeline(sim)
        if interrupts is not None:
            interrupts["host_wait_ns"] = host_wait(sim, interrupts)
    return out
