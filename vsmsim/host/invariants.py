"""Invariants of a run with a host layer (part of :func:`vsmsim.check.check`).

13. at most one thread executes on a CPU at any instant (the CPU segments, when a
    timeline was recorded, never overlap);
14. a VP's guest code (handler, task, compute, program wait) runs only while a thread of
    that VP executes on some CPU (the VP timeline lies inside its threads' CPU segments);
15. the books add up: per thread, run + wait time fits in the window; per CPU, busy +
    switching + idle time is the window with idle >= 0; a VP's steal is at most its
    threads' waiting.
"""

from __future__ import annotations

import numpy as np

from .intervals import union

_MAX = 5


def host_invariants(result, problems: list) -> None:
    """Append to *problems* what breaks invariants 13-15 in *result* (a hosted run)."""
    th, cpus = result.threads, result.cpus
    if th is None or cpus is None:
        return
    window = result.measured_ns
    for _, r in th.iterrows():
        if r["run_ns"] < 0 or r["wait_ns"] < 0 or r["run_ns"] + r["wait_ns"] > window:
            problems.append(f"host thread {r['thread']}: run {r['run_ns']} + wait "
                            f"{r['wait_ns']} ns do not fit the {window} ns window")
    for _, r in cpus.iterrows():
        if r["idle_ns"] < 0 or r["busy_ns"] + r["switch_ns"] + r["idle_ns"] != window:
            problems.append(f"host cpu {r['cpu']}: busy {r['busy_ns']} + switching "
                            f"{r['switch_ns']} + idle {r['idle_ns']} ns is not the window "
                            f"{window} ns")
    if "steal_ns" in result.residency.columns:
        waits = th[th["vp"] >= 0].groupby("vp")["wait_ns"].sum()
        for _, r in result.residency.iterrows():
            if r["steal_ns"] > waits.get(r["vp"], 0):
                problems.append(f"vp {r['vp']}: steal {r['steal_ns']} ns exceeds its threads' "
                                f"waiting {waits.get(r['vp'], 0)} ns")
    segs = result.host_timeline
    if segs is None:
        return
    found = 0
    for cpu, g in segs.groupby("cpu", sort=True):
        a, b = g["start_ns"].to_numpy(), g["end_ns"].to_numpy()
        order = np.lexsort((b, a))
        a, b = a[order], b[order]
        for j in np.nonzero(b[:-1] > a[1:])[0][:3]:
            problems.append(f"host cpu {cpu}: two threads execute at once around {a[j + 1]} ns")
            found += 1
    tl = result.timeline
    if tl is None or found >= _MAX:
        return
    vp_of = dict(zip(th["tid"], th["vp"]))
    seg_vp = segs["tid"].map(vp_of).to_numpy()
    guest = tl[tl["state"].astype(str).isin(("handler", "task", "compute", "wait"))]
    for vp, g in guest.groupby("vp", sort=True):
        mine = seg_vp == vp
        us, ue = union(segs["start_ns"].to_numpy()[mine], segs["end_ns"].to_numpy()[mine])
        a, b = g["start_ns"].to_numpy(), g["end_ns"].to_numpy()
        k = np.searchsorted(us, a, side="right") - 1
        ok = (k >= 0) & (ue[np.maximum(k, 0)] >= b) if len(us) else np.zeros(len(a), bool)
        bad = np.nonzero(~ok & (b > a))[0]
        for j in bad[:2]:
            problems.append(f"vp {vp}: guest code runs at [{a[j]}, {b[j]}) ns while none of "
                            f"its threads holds a CPU")
            found += 1
        if found >= _MAX:
            return
