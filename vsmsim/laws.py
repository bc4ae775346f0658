"""Conservation laws and promises of the model, checked from a result's tables.

Each law is a function ``law(result, problems)`` that appends one line per violation (at
most a few per law, so a broken run gives a readable report). :func:`vsmsim.check` runs
every law in :data:`LAWS`; the module docstring of :mod:`vsmsim.check` lists what they
promise. All times are ns. Laws only read the result, so a saved and loaded result can be
checked the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Interrupt kinds whose "service" is task time of the entered VTL, not a handler.
SERVICES = ("vtl-call", "intercept")
#: At most this many lines per law and kind of violation.
_MAX = 3


def _scenario(res) -> dict:
    return res.scenario


def _workload_codes(irq: pd.DataFrame) -> np.ndarray:
    """The workload index of every interrupt row (the VINA rows get the last index)."""
    w = irq["workload"]
    if isinstance(w.dtype, pd.CategoricalDtype):
        return w.cat.codes.to_numpy()
    return np.full(len(irq), -1)


def _times(irq: pd.DataFrame, col: str) -> np.ndarray:
    """Column *col* as int64 with -1 for missing."""
    return irq[col].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)


def _vp_set(sel, n: int) -> list[int]:
    return list(range(n)) if sel == "all" else sorted(set(sel))


def _has_programs(sc: dict) -> bool:
    return any(w["kind"] == "program" for w in sc.get("workload", []))


# ----------------------------------------------------------------------------- law 7
def residency_conservation(res, problems: list[str]) -> None:
    """Per VP: the parts add up to the window; per context: residency = compute + task +
    handler CPU time (+ program waits), with finished handlers' CPU exactly their service."""
    sc = _scenario(res)
    nvtl = int(sc["vm"]["vtls"])
    n = int(sc["vm"]["vps"])
    w0 = int(sc.get("warmup", 0))
    window = res.measured_ns
    rz = res.residency
    found = 0
    if len(rz) != n:
        problems.append(f"residency: {len(rz)} rows for {n} VPs")
        return
    parts = [f"vtl{v}_ns" for v in range(nvtl)] + ["transition_ns", "exit_ns", "idle_ns"]
    if "steal_ns" in rz.columns:  # a host layer: guest code waiting for a CPU
        parts.append("steal_ns")
    for _, row in rz.iterrows():
        vp = int(row["vp"])
        total = sum(int(row[c]) for c in parts)
        if total != int(row["total_ns"]) or total != window:
            problems.append(f"vp {vp}: residency parts add up to {total} ns, total_ns "
                            f"{int(row['total_ns'])}, measured window {window} ns")
            found += 1
        neg = [c for c in rz.columns if c != "vp" and int(row[c]) < 0]
        if neg:
            problems.append(f"vp {vp}: negative residency {neg[0]} = {int(row[neg[0]])} ns")
            found += 1
        if found >= _MAX:
            return
    irq = res.rows("interrupts")
    kinds = irq["kind"].astype(str).to_numpy()
    handler = ~np.isin(kinds, SERVICES)
    st, en = _times(irq, "start_ns"), _times(irq, "end_ns")
    svc = irq["service_ns"].to_numpy(dtype=np.int64)
    vps, vtls = irq["vp"].to_numpy(), irq["vtl"].to_numpy()
    done_in = handler & (en >= 0) & (st >= w0)            # wholly inside the window
    partial = handler & (st >= 0) & ~done_in & ((en < 0) | (en > w0))  # some of it inside
    waits = _has_programs(sc)
    found = 0
    for _, row in rz.iterrows():
        vp = int(row["vp"])
        on = vps == vp
        for v in range(nvtl):
            at = on & (vtls == v)
            lo = int(svc[at & done_in].sum())
            hi = lo + int(svc[at & partial].sum())
            rest = int(row[f"vtl{v}_ns"]) - int(row[f"compute{v}_ns"]) - int(row[f"task{v}_ns"])
            if rest < lo or (rest > hi and not waits):
                problems.append(
                    f"vp {vp} VTL {v}: residency - compute - task = {rest} ns, but its handlers "
                    f"ran {lo} ns" + (f" to {hi} ns" if hi != lo else "")
                    + " (conservation of VTL time)")
                found += 1
                if found >= _MAX:
                    return


# ----------------------------------------------------------------------------- law 8
def timeline_tiles(res, problems: list[str]) -> None:
    """With a timeline: segments tile [0, duration) per VP (or cover the recorded window),
    agree with the residency table, and each finished handler's segments sum to its
    service."""
    tl = res.timeline
    if tl is None:
        return
    sc = _scenario(res)
    dur = int(sc["duration"])
    n, nvtl = int(sc["vm"]["vps"]), int(sc["vm"]["vtls"])
    win = (sc.get("record") or {}).get("window")
    lo_w, hi_w = (0, dur) if win is None else (max(0, int(win[0])), min(dur, int(win[1])))
    found = 0
    for vp in range(n):
        g = tl[tl["vp"] == vp].sort_values("start_ns", kind="stable")
        a, b = g["start_ns"].to_numpy(), g["end_ns"].to_numpy()
        if not len(g):
            if hi_w > lo_w:
                problems.append(f"vp {vp}: no timeline segments in [{lo_w}, {hi_w}) ns")
                found += 1
            continue
        if (b <= a).any():
            i = int(np.nonzero(b <= a)[0][0])
            problems.append(f"vp {vp}: empty or reversed timeline segment [{a[i]}, {b[i]}) ns")
            found += 1
        gaps = np.nonzero(b[:-1] != a[1:])[0]
        for j in gaps[:_MAX]:
            problems.append(f"vp {vp}: timeline segment ends at {b[j]} ns but the next starts "
                            f"at {a[j + 1]} ns (the timeline must tile the run)")
            found += 1
        if a[0] > lo_w or b[-1] < hi_w or (win is None and (a[0] != 0 or b[-1] != dur)):
            problems.append(f"vp {vp}: timeline covers [{a[0]}, {b[-1]}) ns, not "
                            f"[{lo_w}, {hi_w}) ns")
            found += 1
        if found >= _MAX:
            return
    if win is not None:
        return  # the residency covers the whole window, the timeline only part of it
    w0 = int(sc.get("warmup", 0))
    state = tl["state"].astype(str).to_numpy()
    vtl = tl["vtl"].to_numpy()
    vp_col = tl["vp"].to_numpy()
    a = np.maximum(tl["start_ns"].to_numpy(), w0)
    b = tl["end_ns"].to_numpy()
    length = np.maximum(b - a, 0)
    in_vtl = np.isin(state, ("handler", "task", "compute", "wait"))
    rz = res.residency.set_index("vp")
    for vp in range(n):
        on = vp_col == vp
        want = {"transition_ns": on & (state == "transition"), "exit_ns": on & (state == "exit"),
                "idle_ns": on & (state == "halted")}
        if "steal_ns" in rz.columns:
            want["steal_ns"] = on & (state == "steal")
        for v in range(nvtl):
            want[f"vtl{v}_ns"] = on & in_vtl & (vtl == v)
            want[f"compute{v}_ns"] = on & (state == "compute") & (vtl == v)
            want[f"task{v}_ns"] = on & (state == "task") & (vtl == v)
        for col, sel in want.items():
            got = int(length[sel].sum())
            if got != int(rz.loc[vp, col]):
                problems.append(f"vp {vp}: timeline gives {col} = {got} ns, the residency "
                                f"table {int(rz.loc[vp, col])} ns")
                found += 1
                if found >= _MAX:
                    return
    # Each handler's CPU time, from its segments.
    irq = res.rows("interrupts")
    hs = tl[(tl["state"].astype(str) == "handler") & (tl["irq"] >= 0)]
    if w0 == 0 and len(irq):
        cpu = (hs["end_ns"] - hs["start_ns"]).groupby(hs["irq"]).sum()
        got = np.zeros(len(irq), dtype=np.int64)
        ids = cpu.index.to_numpy()
        ok = (ids >= 0) & (ids < len(irq))
        got[ids[ok]] = cpu.to_numpy()[ok]
        kinds = irq["kind"].astype(str).to_numpy()
        en = _times(irq, "end_ns")
        svc = irq["service_ns"].to_numpy(dtype=np.int64)
        handler = ~np.isin(kinds, SERVICES)
        bad = np.nonzero(handler & (((en >= 0) & (got != svc)) | (got > svc)))[0]
        for i in bad[:_MAX]:
            problems.append(f"interrupt {int(irq['id'].iloc[i])}: handler ran {got[i]} ns of CPU "
                            f"(timeline) for a service of {svc[i]} ns")


# ----------------------------------------------------------------------------- law 9
def _all_costs_zero(res) -> bool:
    costs = (res.meta.get("costs") or {}).get("costs")
    if not costs:
        return False
    return all(spec == 0 or (isinstance(spec, dict) and spec.get("dist") == "fixed"
                             and spec.get("value") == 0) for spec in costs.values())


def ideal_is_free(res, problems: list[str]) -> None:
    """Under a profile whose every cost is zero: no transition or exit time at all."""
    if not _all_costs_zero(res):
        return
    rz = res.residency
    for col in ("transition_ns", "exit_ns"):
        bad = rz[rz[col] != 0]
        if len(bad):
            problems.append(f"vp {int(bad['vp'].iloc[0])}: {col} = {int(bad[col].iloc[0])} ns "
                            f"under a zero-cost profile")
    sw = res.rows("switches")
    dur = (sw["end_ns"] - sw["start_ns"]).dropna()
    if (dur != 0).any():
        i = dur.index[dur != 0][0]
        problems.append(f"switch at {int(sw.loc[i, 'start_ns'])} ns took {int(dur[i])} ns under "
                        f"a zero-cost profile")


# ----------------------------------------------------------------------------- law 10
def _expected_times(w: dict, dur: int) -> list[int] | None:
    """Arrival times of a deterministic workload (period or at), or None for Poisson."""
    if w.get("period") is not None:
        phase, period = int(w.get("phase", 0)), int(w["period"])
        return list(range(phase, dur, period)) if phase < dur else []
    if w.get("at") is not None:
        return sorted(int(t) for t in w["at"] if int(t) < dur)
    return None


def arrivals_accounted(res, problems: list[str]) -> None:
    """Timers and devices: one row per arrival at its time on each VP of the set; sends and
    calls: per sender, the arrivals seen are an in-order prefix, the rest unsent."""
    sc = _scenario(res)
    dur, n = int(sc["duration"]), int(sc["vm"]["vps"])
    irq = res.rows("interrupts")
    codes = _workload_codes(irq)
    arr = irq["arrival_ns"].to_numpy(dtype=np.int64)
    vps = irq["vp"].to_numpy()
    src = irq["src_vp"].to_numpy()
    missing = 0
    exact = True  # every sending workload deterministic and no programs
    found = 0
    for i, w in enumerate(sc.get("workload", [])):
        kind = w["kind"]
        if kind in ("compute", "program"):
            exact = exact and kind == "compute"
            continue
        if kind not in _ARRIVAL_KINDS:  # a kind registered later: its arrivals are its own
            exact = False
            continue
        mine = codes == i
        times = _expected_times(w, dur)
        phase = int(w.get("phase", 0))
        if times is None:
            bad = mine & ((arr < phase) | (arr >= dur))
            if bad.any():
                j = int(np.nonzero(bad)[0][0])
                problems.append(f"workload[{i}]: arrival at {arr[j]} ns outside [{phase}, {dur}) ns")
                found += 1
            exact = exact and kind in ("timer", "external")
            continue
        if kind in ("timer", "external"):
            for vp in _vp_set(w.get("vps", "all"), n):
                got = np.sort(arr[mine & (vps == vp)])
                if len(got) != len(times) or (got != np.asarray(times, dtype=np.int64)).any():
                    problems.append(f"workload[{i}] vp {vp}: {len(got)} arrivals, expected "
                                    f"{len(times)} at {times[:4]}{'...' if len(times) > 4 else ''}")
                    found += 1
                    break
            continue
        if kind in ("ipi", "pv-ipi") and w["dest"] == "all-but-self" and n == 1:
            exact = False  # unsent ones still count in unsent_actions
            continue  # every send reaches no VP: it leaves no row
        key = "senders" if kind in ("ipi", "pv-ipi") else "vps"
        per_send = _rows_per_send(w, n)
        for vp in _vp_set(w.get(key, "all"), n):
            # a send leaves one row per destination: sends = rows at a time / per_send; two
            # arrivals at one time (an `at` list may repeat a time) are two sends
            t, c = np.unique(arr[mine & (src == vp)], return_counts=True)
            sent = np.repeat(t, c // per_send)
            want = np.sort(np.asarray(times, dtype=np.int64))
            if len(sent) > len(want) or (sent != want[:len(sent)]).any():
                problems.append(f"workload[{i}] vp {vp}: sends/calls at {sent[:4].tolist()} are "
                                f"not an in-order prefix of its arrivals {want[:4].tolist()}")
                found += 1
                break
            missing += len(want) - len(sent)
        if found >= _MAX:
            return
    unsent = int(res.counters.get("unsent_actions", 0))
    if missing > unsent or (exact and missing != unsent):
        problems.append(f"{missing} arrivals of sends and calls have no row but unsent_actions "
                        f"= {unsent}")


_ARRIVAL_KINDS = ("timer", "external", "ipi", "pv-ipi", "vtl-call", "intercept")


def _rows_per_send(w: dict, n: int) -> int:
    """Interrupt rows one arrival of sending workload *w* leaves in a VM of *n* VPs."""
    if w["kind"] not in ("ipi", "pv-ipi"):
        return 1  # a call or intercept: its own row
    d = w.get("dest", "random")
    if d == "all":
        return n
    if d == "all-but-self":
        return max(n - 1, 1)
    if isinstance(d, list):
        return max(len(d), 1)
    return 1


# ----------------------------------------------------------------------------- law 11
def columns_consistent(res, problems: list[str]) -> None:
    """delivery/response = start/end - raised; arrival <= raised <= start <= end <= resumed,
    all inside [0, duration]."""
    irq = res.rows("interrupts")
    if not len(irq):
        return
    dur = int(_scenario(res)["duration"])
    raised = irq["raised_ns"].to_numpy(dtype=np.int64)
    arr = irq["arrival_ns"].to_numpy(dtype=np.int64)
    st, en = _times(irq, "start_ns"), _times(irq, "end_ns")
    dl, rp = _times(irq, "delivery_ns"), _times(irq, "response_ns")
    rs = _times(irq, "resumed_ns")
    ids = irq["id"].to_numpy()
    checks = [
        ("delivery_ns is not start_ns - raised_ns",
         np.where(st >= 0, dl != st - raised, dl != -1)),
        ("response_ns is not end_ns - raised_ns",
         np.where(en >= 0, rp != en - raised, rp != -1)),
        ("arrival after raised", arr > raised),
        ("arrival before 0", arr < 0),
        ("ended before it started", (en >= 0) & (en < st)),
        ("resumed without ending, or before its end", (rs >= 0) & ((en < 0) | (rs < en))),
        ("a time after the end of the run",
         (raised > dur) | (st > dur) | (en > dur) | (rs > dur)),
        ("service_ns negative", irq["service_ns"].to_numpy() < 0),
    ]
    if not (ids == np.arange(len(irq))).all():
        problems.append("interrupts.id is not 0, 1, 2, ... in row order")
    for what, bad in checks:
        for i in np.nonzero(bad)[0][:1]:
            problems.append(f"interrupt {ids[i]}: {what} (raised {raised[i]}, start {st[i]}, "
                            f"end {en[i]} ns)")


# ----------------------------------------------------------------------------- law 12
def routing_as_documented(res, problems: list[str]) -> None:
    """Rows of each workload land where the schema says they do."""
    sc = _scenario(res)
    n = int(sc["vm"]["vps"])
    irq = res.rows("interrupts")
    codes = _workload_codes(irq)
    vps, vtls = irq["vp"].to_numpy(), irq["vtl"].to_numpy()
    src, src_vtl = irq["src_vp"].to_numpy(), irq["src_vtl"].to_numpy()
    arr = irq["arrival_ns"].to_numpy()
    kinds = irq["kind"].astype(str).to_numpy()
    vec = irq["vector"].to_numpy()
    found = 0

    def bad(i, sel, what):
        nonlocal found
        if sel.any():
            j = int(np.nonzero(sel)[0][0])
            problems.append(f"workload[{i}] interrupt {int(irq['id'].iloc[j])}: {what} "
                            f"(vp {vps[j]}, VTL {vtls[j]}, from vp {src[j]} VTL {src_vtl[j]})")
            found += 1

    for i, w in enumerate(sc.get("workload", [])):
        kind = w["kind"]
        mine = codes == i
        if kind in ("compute", "program") or not mine.any():
            continue
        if kind in ("timer", "external"):
            allowed = np.asarray(_vp_set(w.get("vps", "all"), n))
            bad(i, mine & ~np.isin(vps, allowed), "outside its VP set")
            bad(i, mine & (vtls != w["vtl"]), f"not in VTL {w['vtl']}")
            bad(i, mine & (kinds != kind), f"kind is not {kind}")
            bad(i, mine & (vec != w["vector"]), f"vector is not {w['vector']:#x}")
        elif kind in ("vtl-call", "intercept"):
            bad(i, mine & (vps != src), "entered on another VP than the caller's")
            bad(i, mine & ((src_vtl != w["vtl"]) | (vtls != w["vtl"] + 1)),
                f"does not go from VTL {w['vtl']} to VTL {w['vtl'] + 1}")
            bad(i, mine & ~np.isin(src, np.asarray(_vp_set(w.get("vps", "all"), n))),
                "called from outside its VP set")
        elif kind in ("ipi", "pv-ipi"):  # kinds registered later have no routing law here
            target = w["vtl"] if kind == "ipi" or w.get("target_vtl") is None else w["target_vtl"]
            bad(i, mine & (src_vtl != w["vtl"]), f"not sent from VTL {w['vtl']}")
            bad(i, mine & (vtls != target), f"not delivered to VTL {target}")
            bad(i, mine & ~np.isin(src, np.asarray(_vp_set(w.get("senders", "all"), n))),
                "sent from outside its senders")
            bad(i, mine & (vec != w["vector"]), f"vector is not {w['vector']:#x}")
            dest = w["dest"]
            if dest == "self":
                bad(i, mine & (vps != src), "dest = 'self' but delivered to another VP")
            elif dest == "random" and n > 1:
                bad(i, mine & (vps == src), "a random destination is the sender")
            elif dest in ("all", "all-but-self") or isinstance(dest, list):
                sel = np.nonzero(mine)[0]
                df = pd.DataFrame({"src": src[sel], "arr": arr[sel], "vp": vps[sel]})
                for (s, t), g in df.groupby(["src", "arr"], sort=True):
                    want = set(range(n)) if dest == "all" else (
                        set(range(n)) - {int(s)} if dest == "all-but-self" else set(dest))
                    got = g["vp"].value_counts()
                    if set(got.index) != want or got.nunique() != 1:
                        problems.append(f"workload[{i}]: send from vp {s} at {t} ns reached VPs "
                                        f"{sorted(got.index.tolist())}, dest = {dest!r} means "
                                        f"{sorted(want)}")
                        found += 1
                        break
        if found >= _MAX:
            return
    vina = {c["vtl"]: c["vina"] for c in sc.get("context", []) if c.get("vina")}
    is_vina = kinds == "vina"
    for v in np.unique(vtls[is_vina]):
        if int(v) not in vina:
            problems.append(f"VINA row for VTL {v}, which has no [context] vina")
        else:
            bad("vina", is_vina & (vtls == v) & (vec != vina[int(v)]["vector"]),
                f"VINA vector is not {vina[int(v)]['vector']:#x}")
    bad("vina", is_vina & (src_vtl >= vtls), "VINA for a VTL not lower than the notified one")


#: The laws :func:`vsmsim.check` runs after its invariants, in order.
LAWS = (residency_conservation, timeline_tiles, ideal_is_free, arrivals_accounted,
        columns_consistent, routing_as_documented)
