"""Invariants every run must satisfy, checked from its tables (docs/model.md section 7, question 8).

``check(result)`` verifies:

1. per VP, VTL transitions do not overlap and chain (each starts in the VTL the previous
   one entered; the first starts in VTL0);
2. no lower VTL preempts a higher one: only returns go down, and a return never skips a
   VTL that was entered and has not returned (it goes to the highest runnable VTL below);
   calls, interrupts and intercepts go up;
3. every interrupt row is consistent: handled (start and end), started, or still pending;
   never started before raised; a handler never ends before it received its service time
   (no negative remaining work);
4. one running context per VP: every handler starts while its VTL is the VP's active one,
   and, when a timeline was recorded, the VP's state segments never overlap;
5. handlers of one context do not overlap (they run to completion, one in service);
6. VINA is raised at most once per context until cleared (by an entry into that VTL with
   AutoReset, or by software);

and the conservation laws and promises of the model (:data:`LAWS`, in ``vsmsim.laws``):

7. per context, VTL residency = background compute + task time + handler CPU time (plus
   time a guest program waits, which only the timeline shows), and a finished handler
   received exactly its service; per VP, the residency parts add up to the measured window;
8. with a timeline, each VP's segments tile the run [0, duration) without gaps and agree
   with the residency table, state by state;
9. under a profile whose every cost is zero (``ideal``), no transition or exit time;
10. every arrival is accounted for: one row per timer or device arrival at its time; the
    sends and calls of each sender are an in-order prefix of its arrivals, the rest still
    waiting (``unsent_actions``);
11. ``delivery_ns`` / ``response_ns`` are start / end minus raised, arrival <= raised <=
    start <= end <= resumed, every time inside the run;
12. routing as documented: ``self``, ``all``, ``all-but-self`` and listed destinations; a
    random destination is never the sender; APIC IPIs stay in their VTL; PV IPIs land in
    ``target_vtl``; calls and intercepts enter vtl + 1 on the same VP; timers and devices
    hit their VP set and VTL; VINA rows only where configured, with its vector.
"""

from __future__ import annotations

import numpy as np

from .laws import LAWS
from .workloads import call_kinds


class InvariantError(AssertionError):
    """A run broke a model invariant; the message lists each violation."""


def check(result, *, raise_on_error: bool = True) -> list[str]:
    """Check *result* against the invariants above; return (or raise) the violations."""
    problems: list[str] = []
    sw = result.rows("switches")
    irq = result.rows("interrupts")
    vina_cfg = {c["vtl"]: c["vina"] for c in result.scenario.get("context", []) if c.get("vina")}
    active_at = {}
    for vp, g in sw.groupby("vp", sort=True):
        g = g.sort_values("start_ns", kind="stable")
        start = g["start_ns"].to_numpy()
        end = g["end_ns"].astype("Float64").fillna(np.inf).to_numpy(dtype=float)
        frm = g["from_vtl"].to_numpy()
        to = g["to_vtl"].to_numpy()
        reason = g["reason"].astype(str).to_numpy()
        if len(g) > 1:
            bad = np.nonzero(end[:-1] > start[1:])[0]
            for i in bad[:3]:
                problems.append(f"vp {vp}: switch at {start[i + 1]} ns starts before the one at "
                                f"{start[i]} ns ends")
            bad = np.nonzero(to[:-1] != frm[1:])[0]
            for i in bad[:3]:
                problems.append(f"vp {vp}: switch at {start[i + 1]} ns leaves VTL {frm[i + 1]} "
                                f"but the VP was in VTL {to[i]}")
        if len(g) and frm[0] != 0:
            problems.append(f"vp {vp}: first switch leaves VTL {frm[0]}, not VTL0 (rule 3)")
        down = reason == "return"
        bad = np.nonzero(down & (to >= frm))[0]
        for i in bad[:3]:
            problems.append(f"vp {vp}: return at {start[i]} ns from VTL {frm[i]} to VTL {to[i]} "
                            f"(a return goes down)")
        entered, skipped = {0}, 0
        for i in range(len(g)):
            if down[i]:
                entered.discard(int(frm[i]))
                passed = [v for v in entered if to[i] < v < frm[i]]
                if passed and skipped < 3:
                    skipped += 1
                    problems.append(f"vp {vp}: return at {start[i]} ns from VTL {frm[i]} to VTL "
                                    f"{to[i]} skips VTL {max(passed)}, entered and not returned "
                                    f"from")
            else:
                entered.add(int(to[i]))
        bad = np.nonzero(~down & (to <= frm))[0]
        for i in bad[:3]:
            problems.append(f"vp {vp}: {reason[i]} at {start[i]} ns goes from VTL {frm[i]} down to "
                            f"VTL {to[i]}: a lower VTL preempted a higher one (rule 5)")
        active_at[vp] = (end, to)

    raised = irq["raised_ns"].to_numpy(dtype=float)
    st = irq["start_ns"].astype("Float64").fillna(-1).to_numpy(dtype=float)
    en = irq["end_ns"].astype("Float64").fillna(-1).to_numpy(dtype=float)
    svc = irq["service_ns"].to_numpy(dtype=float)
    ids = irq["id"].to_numpy()
    for i in np.nonzero((en >= 0) & (st < 0))[0][:3]:
        problems.append(f"interrupt {ids[i]}: ended without starting")
    for i in np.nonzero((st >= 0) & (st < raised))[0][:3]:
        problems.append(f"interrupt {ids[i]}: started at {st[i]:.0f} ns before raised at {raised[i]:.0f} ns")
    handled = irq["kind"].astype(str).isin(call_kinds()).to_numpy()
    short = (en >= 0) & (~handled) & (en - st < svc)
    for i in np.nonzero(short)[0][:3]:
        problems.append(f"interrupt {ids[i]}: handler ran {en[i] - st[i]:.0f} ns < service "
                        f"{svc[i]:.0f} ns (negative remaining work)")
    # Handlers start in the VP's active VTL and do not overlap within a context.
    vps = irq["vp"].to_numpy()
    vtls = irq["vtl"].to_numpy()
    started = (st >= 0) & ~handled
    for vp in np.unique(vps[started]):
        sel = started & (vps == vp)
        ends, tos = active_at.get(vp, (np.zeros(0), np.zeros(0, dtype=int)))
        k = np.searchsorted(ends, st[sel], side="right")
        act = np.where(k > 0, tos[np.maximum(k - 1, 0)] if len(tos) else 0, 0)
        wrong = np.nonzero(act != vtls[sel])[0]
        reported = 0
        for j in wrong:
            i = np.nonzero(sel)[0][j]
            # Zero-length transitions can share the handler's nanosecond: the VTL only has
            # to be active at some moment of that instant.
            lo = np.searchsorted(ends, st[i], side="left")
            at_t = {int(tos[lo - 1]) if lo > 0 else 0} | {int(x) for x in tos[lo:k[j]]}
            if vtls[i] in at_t:
                continue
            problems.append(f"interrupt {ids[i]}: handler for VTL {vtls[i]} started at "
                            f"{st[i]:.0f} ns while vp {vp} was in VTL {act[j]}")
            reported += 1
            if reported == 3:
                break
        for vtl in np.unique(vtls[sel]):
            s2 = sel & (vtls == vtl)
            b = np.where(en[s2] < 0, np.inf, en[s2])
            # By start, then end: a zero-length handler sharing another's first instant
            # comes first and overlaps nothing (issue 14, defect 10).
            order = np.lexsort((b, st[s2]))
            a, b = st[s2][order], b[order]
            over = np.nonzero(b[:-1] > a[1:])[0]
            for j in over[:3]:
                problems.append(f"vp {vp} VTL {vtl}: handler starting at {a[j + 1]:.0f} ns "
                                f"overlaps one running until {b[j]:.0f} ns")
    # VINA at most once until cleared.
    kinds = irq["kind"].astype(str).to_numpy()
    clears = result.meta.get("vina_clears", [])
    for vtl, cfg in vina_cfg.items():
        sel = (kinds == "vina") & (vtls == vtl)
        for vp in np.unique(vps[sel]):
            times = np.sort(raised[sel & (vps == vp)])
            if len(times) < 2:
                continue
            if cfg.get("auto_reset", True):
                ends, tos = active_at.get(vp, (np.zeros(0), np.zeros(0)))
                resets = ends[tos == vtl]
            else:
                resets = np.array([t for (cvp, cvtl, t) in clears if cvp == vp and cvtl == vtl],
                                  dtype=float)
            for a, b in zip(times[:-1], times[1:]):
                if not np.any((resets >= a) & (resets <= b)):
                    problems.append(f"vp {vp} VTL {vtl}: VINA raised at {a:.0f} and again at "
                                    f"{b:.0f} ns without being cleared (rule 9)")
                    break
    tl = result.timeline
    if tl is not None and len(tl):
        for vp, g in tl.groupby("vp", sort=True):
            a = g["start_ns"].to_numpy()
            b = g["end_ns"].to_numpy()
            order = np.argsort(a, kind="stable")
            a, b = a[order], b[order]
            over = np.nonzero(b[:-1] > a[1:])[0]
            for j in over[:3]:
                problems.append(f"vp {vp}: two states at once around {a[j + 1]} ns (timeline)")
    for law in LAWS:
        law(result, problems)
    if getattr(result, "threads", None) is not None:
        from .host.invariants import host_invariants
        host_invariants(result, problems)
    if problems and raise_on_error:
        raise InvariantError("\n".join(problems))
    return problems
