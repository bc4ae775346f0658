"""The host layer's tables, from a finished run (part of :func:`harvest`). Times in ns.

- ``threads``: per host thread: ``tid``, ``thread`` (vpN.vtlM, vpN or noiseI.cpuC),
  ``vp``, ``vtl`` (-1: every VTL of the VP, or not a vCPU thread), ``cpus`` (where it may
  run), ``run_ns`` (executing, halt-polling included), ``wait_ns`` (runnable but not
  executing: queued, or its CPU switching to it), ``wakeups``, ``migrations``,
  ``poll_hits`` (wakes inside a halt-polling window), ``utilisation`` (run / window);
- ``cpus``: per CPU: ``busy_ns``, ``switch_ns`` (C-state exits, context switches,
  migrations), ``idle_ns``, ``context_switches``, ``migrations``, ``utilisation``;
- counters ``context_switches``, ``migrations``, ``halt_poll_hits``, ``host_wakeups``;
- the interrupt table's ``host_wait_ns``: how much of [raised, start] the receiving VP's
  threads spent waiting for a CPU (its delivery latency's share of run-queue delay).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..host.intervals import union


def _window(sim, totals):
    snap = sim.host_snap
    if snap is None:
        return totals
    return {k: [tuple(a - b for a, b in zip(x, y)) for x, y in zip(totals[k], snap[k])]
            for k in totals}


def host_tables(sim) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """``(threads, cpus, counters)`` over the measured window."""
    host = sim.host
    measured = int(sim.sc.duration) - (int(sim.sc.warmup) if sim.snap is not None else 0)
    tot = _window(sim, host.totals())
    rows = []
    for t, (run, wait, wakeups, migr, hits) in zip(host.threads, tot["threads"]):
        rows.append({"tid": t.tid, "thread": t.name, "vp": t.vp, "vtl": t.vtl,
                     "cpus": " ".join(map(str, t.allowed)) if len(t.allowed) < len(host.cpus)
                     else "all",
                     "run_ns": run, "wait_ns": wait, "wakeups": wakeups, "migrations": migr,
                     "poll_hits": hits, "utilisation": run / measured})
    threads = pd.DataFrame(rows)
    crow = []
    for c, (busy, ovh, sw, migr) in zip(host.cpus, tot["cpus"]):
        crow.append({"cpu": c.idx, "busy_ns": busy, "switch_ns": ovh,
                     "idle_ns": measured - busy - ovh, "context_switches": sw,
                     "migrations": migr, "utilisation": busy / measured})
    cpus = pd.DataFrame(crow)
    counters = {"context_switches": int(cpus["context_switches"].sum()),
                "migrations": int(cpus["migrations"].sum()),
                "halt_poll_hits": int(threads["poll_hits"].sum()),
                "host_wakeups": int(threads["wakeups"].sum())}
    return threads, cpus, counters


def host_wait(sim, interrupts: pd.DataFrame) -> np.ndarray:
    """Per interrupt row: ns of [raised, start) during which a thread of its VP waited for a
    CPU (the union over the VP's threads); 0 for rows not started."""
    host = sim.host
    w = np.frombuffer(host.waits, dtype=np.int64).reshape(-1, 3) if len(host.waits) else \
        np.zeros((0, 3), dtype=np.int64)
    out = np.zeros(len(interrupts), dtype=np.int64)
    if not len(w) or not len(interrupts):
        return out
    vp_of = np.array([t.vp for t in host.threads], dtype=np.int64)
    wvp = vp_of[w[:, 0]]
    vps = interrupts["vp"].to_numpy()
    raised = interrupts["raised_ns"].to_numpy()
    start = interrupts["start_ns"].to_numpy(dtype="float64", na_value=np.nan)
    for vp in np.unique(wvp):
        s, e = union(w[wvp == vp, 1], w[wvp == vp, 2])
        cum = np.concatenate(([0], np.cumsum(e - s)))
        sel = np.flatnonzero((vps == vp) & ~np.isnan(start))
        if not len(sel):
            continue
        a = _waited(s, e, cum, raised[sel])
        b = _waited(s, e, cum, start[sel].astype(np.int64))
        out[sel] = b - a
    return out


def _waited(s, e, cum, t):
    """Total waiting in the disjoint sorted intervals [s, e) up to each time in *t*."""
    k = np.searchsorted(s, t, side="right") - 1
    inside = np.clip(t - s[np.maximum(k, 0)], 0, (e - s)[np.maximum(k, 0)])
    return np.where(k >= 0, cum[np.maximum(k, 0)] + inside, 0)


def host_timeline(sim) -> pd.DataFrame | None:
    """Executing segments per CPU (cpu, tid, thread, start_ns, end_ns), when recorded."""
    host = sim.host
    if not host.record:
        return None
    m = np.frombuffer(host.segs, dtype=np.int64).reshape(-1, 4) if len(host.segs) else \
        np.zeros((0, 4), dtype=np.int64)
    names = [t.name for t in host.threads]
    df = pd.DataFrame({"cpu": m[:, 0], "tid": m[:, 1],
                       "thread": pd.Categorical.from_codes(m[:, 1].astype(np.int32), names),
                       "start_ns": m[:, 2], "end_ns": m[:, 3]})
    return df.sort_values(["cpu", "start_ns"], kind="stable").reset_index(drop=True)
