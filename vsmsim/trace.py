"""Export a run as a Chrome trace-event JSON file, for ui.perfetto.dev or chrome://tracing.

Layout of the trace (see docs/trace.md):

- one *process* per VP, named ``VP n``; one *thread* per VTL, named ``VTL n``, plus a
  thread ``transitions & exits`` for the time the VP runs no guest code;
- complete (``X``) slices: interrupt handlers and VTL-call/intercept services on the
  VTL thread (from the interrupt table), VTL transitions (from the switch table), and,
  when the timeline was recorded, exits, halts and guest work (compute, task, wait);
- a zero-length ``send ...`` slice on the sender's VTL thread when an IPI (or VTL call,
  or intercept) is raised, and a flow arrow (``s``/``f`` events) from it to the
  handler's start;
- a counter (``C``) track per VP, ``pending``, with one series per VTL: interrupts
  raised but not yet started;
- with a host layer and a timeline (docs/host.md), a process ``host CPUs`` after the
  VPs, one thread per physical CPU, with a slice per stretch a host thread executed there.

Process and thread ids are the VP and VTL numbers plus one (:data:`PID_BASE`,
:data:`TID_BASE`): Perfetto treats pid 0 and tid 0 specially (the idle task of the
kernel), so ids start at 1; the names carry the real numbers. Timestamps are µs of
simulated time as floats (ns / 1000, exact to the ns).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_text
from .errors import InputError
from .explain import match_exits, path_steps
from .units import UnitError, format_ns, parse_duration
from .workloads import call_kinds

#: Default bound on the number of trace events written (metadata events not counted).
DEFAULT_MAX_EVENTS = 200_000
#: pid of VP n is ``PID_BASE + n``; tid of VTL v is ``TID_BASE + v``.
PID_BASE = 1
TID_BASE = 1
#: tid of the ``transitions & exits`` thread of every VP.
OVERHEAD_TID = 100
#: tid of the ``host (latency only)`` thread of every VP: steps no VP pays (a host thread
#: waking, a kick, a posted-interrupt notification), laid out from the raise.
HOST_TID = 101
_VP_PAYERS = ("vp", "sender", "receiver")
_WORK_STATES = ("compute", "task", "wait", "halted")
# Order at equal timestamps. Perfetto binds a flow event to the innermost open slice of
# its thread, so each flow end comes right after the handler slice it ends on, and each
# flow start right after its zero-length send slice (see _sort_events).
_RANK = {"C": 3, "i": 4}


def parse_window(window, duration_ns: int) -> tuple[int, int]:
    """(start_ns, end_ns) from None (whole run), two numbers of ns or two duration strings."""
    if window is None:
        return 0, int(duration_ns)
    try:
        lo, hi = window
        lo, hi = parse_duration(lo), parse_duration(hi)
    except (TypeError, ValueError, UnitError) as e:
        raise InputError(f"trace window {window!r}: expected two durations START END, "
                         f"e.g. 0ms 5ms ({e})") from None
    if hi <= lo:
        raise InputError(f"trace window {window!r}: END must be after START")
    return lo, hi


def _us(ns) -> float:
    return ns / 1000.0


def _hex(v: int) -> str:
    return f"{v:#x}" if v > 0 else ""


def _overlaps(start, end, lo, hi):
    """Mask of [start, end) intervals overlapping [lo, hi) (zero-length ones: start inside)."""
    return (start < hi) & ((end > lo) | ((end == start) & (start >= lo)))


class _Builder:
    """Collects events of one result inside [lo, hi)."""

    def __init__(self, result, lo: int, hi: int, include_work: bool, steps: bool = True):
        self.r = result
        self.lo, self.hi = lo, hi
        self.steps = steps and bool(result.meta.get("design"))
        self._paths: dict = {}
        self.dur = int(result.scenario["duration"])
        self.nvtl = int(result.scenario["vm"]["vtls"])
        self.nvp = int(result.scenario["vm"]["vps"])
        self.include_work = include_work
        self.events: list[dict] = []

    # -------------------------------------------------------------- metadata
    def metadata(self) -> list[dict]:
        ev = []
        if self._host_segs() is not None:
            pid = PID_BASE + self.nvp
            ev.append({"ph": "M", "name": "process_name", "pid": pid, "tid": TID_BASE,
                       "args": {"name": "host CPUs"}})
            ev.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": TID_BASE,
                       "args": {"sort_index": self.nvp}})
            for cpu in range(len(self.r.cpus)):
                ev.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": TID_BASE + cpu,
                           "args": {"name": f"CPU {cpu}"}})
        for vp in range(self.nvp):
            pid = PID_BASE + vp
            ev.append({"ph": "M", "name": "process_name", "pid": pid, "tid": TID_BASE,
                       "args": {"name": f"VP {vp}"}})
            ev.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": TID_BASE,
                       "args": {"sort_index": vp}})
            for v in range(self.nvtl):
                ev.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": TID_BASE + v,
                           "args": {"name": f"VTL {v}"}})
                ev.append({"ph": "M", "name": "thread_sort_index", "pid": pid,
                           "tid": TID_BASE + v, "args": {"sort_index": v}})
            ev.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": OVERHEAD_TID,
                       "args": {"name": "transitions & exits"}})
            ev.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": OVERHEAD_TID,
                       "args": {"sort_index": self.nvtl}})
            for lane in range(getattr(self, "host_lanes", 0)):
                ev.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": HOST_TID + lane,
                           "args": {"name": "host (latency only)" + (f" {lane + 1}" if lane else "")}})
                ev.append({"ph": "M", "name": "thread_sort_index", "pid": pid,
                           "tid": HOST_TID + lane, "args": {"sort_index": self.nvtl + 1 + lane}})
        return ev

    # -------------------------------------------------------------- path steps
    def path(self, name: str):
        """Steps of path *name* of the run's design (explain.path_steps), cached."""
        if name not in self._paths:
            self._paths[name] = path_steps(self.r, name) if name else []
        return self._paths[name]

    def vp_steps(self, name: str, payers=_VP_PAYERS):
        """The steps of *name* that take VP time (counted-only steps, times 0, left out)."""
        return [st for st in self.path(name) if st.payer in payers and st.times > 0]

    def sub_slices(self, pid, tid, start: int, end: int, steps, cat="step", extra=None):
        """One slice per step, tiling [start, end): each step's share of the recorded
        segment is its mean's share of the steps' total (the engine records the segment,
        not each step; docs/trace.md)."""
        total = sum(st.ns for st in steps)
        if not steps or end <= start or total <= 0:
            return
        scale = (end - start) / total
        out, cum, a = self.events, 0.0, start
        for st in steps:
            cum += st.ns
            b = end if st is steps[-1] else start + int(round(cum * scale))
            name = st.cost + (f" x{st.times}" if st.times != 1 else "")
            args = {"path": st.path, "cost": st.cost, "payer": st.payer, "times": st.times,
                    "mean_ns": st.ns, "counters": st.counters}
            if extra:
                args.update(extra)
            out.append({"ph": "X", "name": name, "cat": cat, "pid": pid, "tid": tid,
                        "ts": _us(a), "dur": _us(b - a), "args": args})
            a = b

    # -------------------------------------------------------------- tables
    def _irq(self):
        df = self.r.rows("interrupts")
        started = df["start_ns"].notna().to_numpy()
        start = df["start_ns"].fillna(-1).to_numpy(dtype=np.int64)
        end = df["end_ns"].fillna(self.dur).to_numpy(dtype=np.int64)
        end = np.where(started, np.maximum(end, start), -1)
        return df, started, start, end

    def handlers(self, hi: int) -> None:
        df, started, start, end = self._irq()
        m = started & _overlaps(start, end, self.lo, hi)
        if not m.any():
            return
        sub = df[m]
        unfinished = sub["end_ns"].isna().tolist()
        cols = {c: sub[c].tolist() for c in ("id", "vp", "vtl", "vector", "raised_ns",
                                              "src_vp", "src_vtl", "woke", "switched",
                                              "service_ns")}
        kinds = sub["kind"].astype(str).tolist()
        paths = sub["path"].astype(str).tolist()
        wl = sub["workload"].astype(str).tolist()
        optional = {c: sub[c].fillna(-1).astype("int64").tolist()
                    for c in ("resumed_ns", "arrival_ns") if c in sub}
        s, e = start[m].tolist(), end[m].tolist()
        out = self.events
        for i in range(len(s)):
            vec = cols["vector"][i]
            raised = cols["raised_ns"][i]
            args = {"id": cols["id"][i], "kind": kinds[i], "vector": _hex(vec),
                    "raised_ns": raised, "start_ns": s[i], "delivery_ns": s[i] - raised,
                    "path": paths[i], "woke": cols["woke"][i], "switched": cols["switched"][i],
                    "src_vp": cols["src_vp"][i], "src_vtl": cols["src_vtl"][i],
                    "workload": wl[i], "service_ns": cols["service_ns"][i]}
            if unfinished[i]:
                args["unfinished"] = True
            else:
                args["end_ns"] = e[i]
                args["response_ns"] = e[i] - raised
            for c, vals in optional.items():
                if vals[i] >= 0:
                    args[c] = vals[i]
            name = f"{kinds[i]} {_hex(vec)}".rstrip()
            out.append({"ph": "X", "name": name, "cat": "handler",
                        "pid": PID_BASE + cols["vp"][i], "tid": TID_BASE + cols["vtl"][i],
                        "ts": _us(s[i]), "dur": _us(e[i] - s[i]), "args": args})

    def sends_and_flows(self, hi: int) -> None:
        """Send slices (when raised in the window) and flow arrows to handlers in the window."""
        df, started, start, end = self._irq()
        raised = df["raised_ns"].to_numpy(dtype=np.int64)
        src_vp = df["src_vp"].to_numpy()
        src_vtl = df["src_vtl"].to_numpy()
        m = (src_vp >= 0) & (src_vtl >= 0) & (raised >= self.lo) & (raised < hi)
        if not m.any():
            return
        idx = np.flatnonzero(m)
        kinds = df["kind"].astype(str).to_numpy()
        ids = df["id"].to_numpy()
        vps, vtls, vecs = df["vp"].to_numpy(), df["vtl"].to_numpy(), df["vector"].to_numpy()
        out = self.events
        for i in idx.tolist():
            k = kinds[i]
            pid, tid = PID_BASE + int(src_vp[i]), TID_BASE + int(src_vtl[i])
            ts = _us(int(raised[i]))
            dest = f"VP{int(vps[i])}" + (f" VTL{int(vtls[i])}" if vtls[i] != src_vtl[i] else "")
            vec = _hex(int(vecs[i]))
            out.append({"ph": "X", "name": " ".join(p for p in ("send", k, vec, "->", dest) if p),
                        "cat": "send", "pid": pid, "tid": tid, "ts": ts, "dur": 0.0,
                        "args": {"id": int(ids[i]), "kind": k, "dest_vp": int(vps[i]),
                                 "dest_vtl": int(vtls[i])}})
            if started[i] and start[i] < hi:
                fid = int(ids[i])
                out.append({"ph": "s", "name": k, "cat": "flow", "id": fid, "pid": pid,
                            "tid": tid, "ts": ts})
                out.append({"ph": "f", "bp": "e", "name": k, "cat": "flow", "id": fid,
                            "pid": PID_BASE + int(vps[i]), "tid": TID_BASE + int(vtls[i]),
                            "ts": _us(int(start[i]))})

    def transitions(self, hi: int) -> None:
        sw = self.r.rows("switches")
        if not len(sw):
            return
        start = sw["start_ns"].to_numpy(dtype=np.int64)
        unfinished = sw["end_ns"].isna().to_numpy()
        end = np.maximum(sw["end_ns"].fillna(self.dur).to_numpy(dtype=np.int64), start)
        m = _overlaps(start, end, self.lo, hi)
        if not m.any():
            return
        vp = sw["vp"].to_numpy()[m].tolist()
        f = sw["from_vtl"].to_numpy()[m].tolist()
        t = sw["to_vtl"].to_numpy()[m].tolist()
        why = sw["reason"].astype(str).to_numpy()[m].tolist()
        s, e, u = start[m].tolist(), end[m].tolist(), unfinished[m].tolist()
        cause = self._switch_causes()
        out = self.events
        for i in range(len(s)):
            path = f"switch.{why[i]}"
            args = {"from_vtl": f[i], "to_vtl": t[i], "reason": why[i], "dur_ns": e[i] - s[i],
                    "path": path}
            c = (self._entry_cause(vp[i], s[i], e[i]) if why[i] == "interrupt"
                 else cause.get((why[i], vp[i], s[i])))
            if c is not None:
                args["cause_id"], args["cause_kind"] = c
            if u[i]:
                args["unfinished"] = True
            out.append({"ph": "X", "name": f"VTL{f[i]}->VTL{t[i]} {why[i]}", "cat": "transition",
                        "pid": PID_BASE + vp[i], "tid": OVERHEAD_TID, "ts": _us(s[i]),
                        "dur": _us(e[i] - s[i]), "args": args})
            if self.steps and not u[i]:
                self.sub_slices(PID_BASE + vp[i], OVERHEAD_TID, s[i], e[i], self.vp_steps(path))

    def _entry_cause(self, vp: int, start: int, end: int):
        """The interrupt an entry switch was for: the first switched interrupt of the VP
        whose handler starts at or after the switch's end and that was raised before it
        started (usually at the end exactly; later when the VP injects it first)."""
        hit = self._entries.get(int(vp))
        if hit is None:
            return None
        starts, raised, ids, kinds = hit
        k = int(np.searchsorted(starts, end, side="left"))
        while k < len(starts) and raised[k] > start:
            k += 1
        return (int(ids[k]), str(kinds[k])) if k < len(starts) else None

    def _switch_causes(self) -> dict:
        """(reason, vp, time) -> (interrupt id, kind): what each switch was for.

        An interrupt entry ends where its handler starts; a call or intercept starts when
        the row is raised on its VP; a return starts when the call's service ends.
        """
        df = self.r.rows("interrupts")
        out = {}
        sw = df[df["switched"] & df["start_ns"].notna()].sort_values("start_ns", kind="stable")
        self._entries = {int(vp): (g["start_ns"].astype("int64").to_numpy(),
                                   g["raised_ns"].to_numpy(), g["id"].to_numpy(),
                                   g["kind"].astype(str).to_numpy())
                         for vp, g in sw.groupby("vp")}
        calls = df[df["kind"].astype(str).isin(call_kinds())]
        for i, k, vp, r, e in zip(calls["id"], calls["kind"].astype(str), calls["vp"],
                                  calls["raised_ns"], calls["end_ns"]):
            out[("call" if k == "vtl-call" else "intercept", int(vp), int(r))] = (int(i), k)
            if not pd.isna(e):
                out[("return", int(vp), int(e))] = (int(i), k)
        return out

    def segments(self, hi: int) -> None:
        """Exits (overhead thread), halts and guest work (VTL thread) from the timeline."""
        tl = self.r.timeline
        if tl is None or not len(tl):
            return
        states = ("exit", "steal") + (_WORK_STATES if self.include_work else ("halted",))
        st = tl["state"].astype(str).to_numpy()
        start = tl["start_ns"].to_numpy(dtype=np.int64)
        end = tl["end_ns"].to_numpy(dtype=np.int64)
        m = np.isin(st, states) & _overlaps(start, end, self.lo, hi)
        if not m.any():
            return
        vp = tl["vp"].to_numpy()[m].tolist()
        vtl = tl["vtl"].to_numpy()[m].tolist()
        s, e, names = start[m].tolist(), end[m].tolist(), st[m].tolist()
        cause = {}
        if self.steps:
            mx = match_exits(self.r)
            kinds = self.r.rows("interrupts")["kind"].astype(str).to_numpy()
            for a, b, i, p in zip(mx["vp"], mx["start_ns"], mx["irq"], mx["path"]):
                cause[(int(a), int(b))] = (int(i), p, kinds[int(i)] if i >= 0 else "")
        out = self.events
        for i in range(len(s)):
            n = names[i]
            tid = OVERHEAD_TID if n == "exit" else TID_BASE + vtl[i]
            cat = "exit" if n == "exit" else ("idle" if n == "halted" else
                                              "steal" if n == "steal" else "work")
            args = {"vtl": vtl[i]}
            name = n
            c = cause.get((vp[i], s[i])) if n == "exit" else None
            if c is not None and c[0] >= 0:
                args.update({"cause_id": c[0], "cause_kind": c[2], "path": c[1]})
                name = f"exit: {c[2]} #{c[0]} {c[1]}"
            out.append({"ph": "X", "name": name, "cat": cat, "pid": PID_BASE + vp[i], "tid": tid,
                        "ts": _us(s[i]), "dur": _us(e[i] - s[i]), "args": args})
            if c is not None and c[0] >= 0:
                self.sub_slices(PID_BASE + vp[i], tid, s[i], e[i], self.vp_steps(c[1]),
                                extra={"cause_id": c[0]})

    def host_steps(self, hi: int) -> None:
        """Latency-only steps (payer none) of each interrupt raised in the window, on its
        target VP's ``host (latency only)`` track, one after the other from the raise, at
        their profile means (no segment records them), cut at the handler's start."""
        if not self.steps:
            return
        df = self.r.rows("interrupts")
        raised = df["raised_ns"].to_numpy(dtype=np.int64)
        m = (raised >= self.lo) & (raised < hi)
        if not m.any():
            return
        sub = df[m]
        starts = sub["start_ns"].fillna(-1).astype("int64").tolist()
        out = self.events
        lanes: dict = {}  # vp -> end of the last chain on each lane
        order = np.argsort(raised[m], kind="stable")
        rows = list(zip(sub["id"].tolist(), sub["vp"].tolist(), raised[m].tolist(),
                        sub["path"].astype(str).tolist(), starts))
        for k in order.tolist():
            i, vp, r, p, a = rows[k]
            steps = [st for name in p.split(">") for st in self.path(name) if st.payer == "none"]
            if not steps:
                continue
            chain_end = r + int(round(sum(st.ns for st in steps)))
            if a >= 0:
                chain_end = min(chain_end, a)
            free = lanes.setdefault(int(vp), [])
            lane = next((j for j, end in enumerate(free) if end <= r), len(free))
            if lane == len(free):
                free.append(chain_end)
            else:
                free[lane] = chain_end
            tid = HOST_TID + lane
            self.host_lanes = max(getattr(self, "host_lanes", 0), lane + 1)
            t = r
            for st in steps:
                b = t + int(round(st.ns))
                if a >= 0:
                    b = min(b, a)
                if b <= t:
                    break
                out.append({"ph": "X", "name": st.cost + (f" x{st.times}" if st.times != 1 else ""),
                            "cat": "host", "pid": PID_BASE + int(vp), "tid": tid,
                            "ts": _us(t), "dur": _us(b - t),
                            "args": {"id": int(i), "path": st.path, "cost": st.cost,
                                     "payer": "none", "mean_ns": st.ns, "counters": st.counters}})
                t = b

    def counters(self, hi: int) -> None:
        """Per-VP counter of raised-but-not-started interrupts, one series per VTL."""
        df = self.r.rows("interrupts")
        df = df[~df["kind"].astype(str).isin(call_kinds())]
        if not len(df):
            return
        lo, nvtl = self.lo, self.nvtl
        keys = [f"VTL{v}" for v in range(nvtl)]
        vps = df["vp"].to_numpy()
        raised = df["raised_ns"].to_numpy(dtype=np.int64)
        started = df["start_ns"].notna().to_numpy()
        start = df["start_ns"].fillna(-1).to_numpy(dtype=np.int64)
        vtl = df["vtl"].to_numpy()
        out = self.events
        for vp in np.unique(vps).tolist():
            a = vps == vp
            b = a & started
            t = np.concatenate([raised[a], start[b]])
            d = np.concatenate([np.ones(a.sum(), np.int64), -np.ones(b.sum(), np.int64)])
            v = np.concatenate([vtl[a], vtl[b]])
            o = np.argsort(t, kind="stable")
            t, d, v = t[o], d[o], v[o]
            mat = np.zeros((len(t), nvtl), np.int64)
            mat[np.arange(len(t)), v] = d
            cum = mat.cumsum(axis=0)
            last = np.r_[t[1:] != t[:-1], True]
            t, cum = t[last], cum[last]
            # The first sample, at lo, holds the count after every change up to lo.
            before = np.searchsorted(t, lo, side="right")
            init = cum[before - 1] if before > 0 else np.zeros(nvtl, np.int64)
            sel = (t > lo) & (t < hi)
            ts = np.concatenate([[lo], t[sel]])
            vals = np.vstack([init[None, :], cum[sel]])
            keep = np.r_[True, (vals[1:] != vals[:-1]).any(axis=1)]
            pid = PID_BASE + vp
            for tt, row in zip(ts[keep].tolist(), vals[keep].tolist()):
                out.append({"ph": "C", "name": "pending", "pid": pid, "tid": TID_BASE,
                            "ts": _us(tt), "args": dict(zip(keys, row))})

    def _host_segs(self):
        segs = getattr(self.r, "host_timeline", None)
        return segs if segs is not None and len(segs) else None

    def host_cpus(self, hi: int) -> None:
        """One slice per stretch a host thread executed on a CPU (host layer)."""
        segs = self._host_segs()
        if segs is None:
            return
        a = segs["start_ns"].to_numpy(dtype=np.int64)
        b = segs["end_ns"].to_numpy(dtype=np.int64)
        m = _overlaps(a, b, self.lo, hi)
        pid = PID_BASE + self.nvp
        for cpu, name, s, e in zip(segs["cpu"].to_numpy()[m].tolist(),
                                   segs["thread"].astype(str).to_numpy()[m].tolist(),
                                   a[m].tolist(), b[m].tolist()):
            self.events.append({"ph": "X", "name": name, "cat": "cpu", "pid": pid,
                                "tid": TID_BASE + cpu, "ts": _us(s), "dur": _us(e - s),
                                "args": {"cpu": cpu}})

    def timestamps(self) -> np.ndarray:
        """Start times (ns) of the events :meth:`build` would make for the whole window,
        found without building them (counter samples over-estimated: <= 2 per interrupt)."""
        lo, hi = self.lo, self.hi
        df, started, start, end = self._irq()
        raised = df["raised_ns"].to_numpy(dtype=np.int64)
        parts = [start[started & _overlaps(start, end, lo, hi)]]
        src = (df["src_vp"].to_numpy() >= 0) & (df["src_vtl"].to_numpy() >= 0)
        send = src & (raised >= lo) & (raised < hi)
        flow = send & started & (start < hi)
        parts += [raised[send], raised[flow], start[flow]]
        sw = self.r.rows("switches")
        if len(sw):
            a = sw["start_ns"].to_numpy(dtype=np.int64)
            b = np.maximum(sw["end_ns"].fillna(self.dur).to_numpy(dtype=np.int64), a)
            ov = _overlaps(a, b, lo, hi)
            parts.append(a[ov])
            if self.steps:  # one sub-slice per VP-paid step of each switch
                n = np.array([len(self.vp_steps(f"switch.{r}")) for r in
                              sw["reason"].astype(str).to_numpy()[ov]], dtype=np.int64)
                parts.append(np.repeat(a[ov], n))
        if self.steps:  # host steps and exit sub-slices: at most every step of each path
            win = (raised >= lo) & (raised < hi)
            paths = df["path"].astype(str).to_numpy()[win]
            n = np.array([sum(len(self.path(x)) for x in p.split(">")) for p in paths],
                         dtype=np.int64)
            parts.append(np.repeat(raised[win], n))
        tl = self.r.timeline
        if tl is not None and len(tl):
            states = ("exit", "steal") + (_WORK_STATES if self.include_work else ("halted",))
            a = tl["start_ns"].to_numpy(dtype=np.int64)
            b = tl["end_ns"].to_numpy(dtype=np.int64)
            m = np.isin(tl["state"].astype(str).to_numpy(), states) & _overlaps(a, b, lo, hi)
            parts.append(a[m])
        segs = self._host_segs()
        if segs is not None:
            a = segs["start_ns"].to_numpy(dtype=np.int64)
            parts.append(a[_overlaps(a, segs["end_ns"].to_numpy(dtype=np.int64), lo, hi)])
        counted = ~df["kind"].astype(str).isin(call_kinds()).to_numpy()
        parts += [raised[counted & (raised > lo) & (raised < hi)],
                  start[counted & started & (start > lo) & (start < hi)],
                  np.full(len(np.unique(df["vp"].to_numpy()[counted])), lo, np.int64)]
        return np.concatenate(parts)

    def build(self, hi: int) -> list[dict]:
        self.events = []
        self.handlers(hi)
        self.sends_and_flows(hi)
        self.transitions(hi)
        self.segments(hi)
        self.host_steps(hi)
        self.host_cpus(hi)
        self.counters(hi)
        return self.events


def _sort_events(events: list[dict]) -> None:
    """Sort by time; at equal times put each flow event right after the slice it binds to.

    Order at one timestamp: slices with a length, outermost (longest) first and a handler
    before other slices of its length, each handler's flow end (``f``) right after it;
    then zero-length handlers and their ``f``; then each send slice and its ``s``; then
    counters and instants.
    """
    hdur = {e["args"]["id"]: e["dur"] for e in events
            if e["ph"] == "X" and e["cat"] == "handler"}

    def key(ev):
        ph = ev["ph"]
        if ph == "X":
            d = ev["dur"]
            if ev["cat"] == "send":
                return (ev["ts"], 2, ev["args"]["id"], 0)
            if d > 0:
                return (ev["ts"], 0, -d, 0 if ev["cat"] == "handler" else 2)
            return (ev["ts"], 1, ev.get("args", {}).get("id", -1), 0)
        if ph == "f":
            d = hdur.get(ev["id"], 0.0)
            return (ev["ts"], 0, -d, 1) if d > 0 else (ev["ts"], 1, ev["id"], 1)
        if ph == "s":
            return (ev["ts"], 2, ev["id"], 1)
        return (ev["ts"], _RANK[ph], 0, 0)

    events.sort(key=key)


def _drop_orphan_flows(events: list[dict]) -> list[dict]:
    s_ids = {e["id"] for e in events if e["ph"] == "s"}
    f_ids = {e["id"] for e in events if e["ph"] == "f"}
    both = s_ids & f_ids
    return [e for e in events if e["ph"] not in ("s", "f") or e["id"] in both]


def build_trace(result, window=None, *, max_events: int = DEFAULT_MAX_EVENTS,
                include_work: bool = True, steps: bool = True) -> dict:
    """The trace document of *result*: ``{"traceEvents": [...], "displayTimeUnit": "ns", ...}``.

    *window* is (start, end) in ns or duration strings (``("0ms", "5ms")``); only events
    overlapping it are kept (slices whole, not clipped). At most *max_events* events
    (metadata aside) are written: when the window holds more, the trace keeps the
    earliest ones, up to a cut time, and says so in ``metadata`` and with a global
    instant event at the cut. *include_work* adds the guest-work slices (compute, task,
    wait) of the recorded timeline. *steps* (default) adds one sub-slice per path step
    inside each transition and exit slice and the latency-only steps on a host track.
    """
    if max_events < 1:
        raise InputError(f"max_events={max_events}: must be at least 1")
    lo, hi = parse_window(window, int(result.scenario["duration"]))
    b = _Builder(result, lo, hi, include_work, steps)
    ts = b.timestamps()
    total = len(ts)
    cut = None
    if total > max_events:
        # Everything strictly before the cut fits under the cap, with one event to spare
        # for the instant that marks the cut. Found on the timestamps alone, so that a
        # long run never builds millions of event dicts.
        cut = max(int(np.partition(ts, max_events - 1)[max_events - 1]), lo + 1)
    events = b.build(cut if cut is not None else hi)
    _sort_events(events)
    room = max_events - (1 if cut is not None else 0)
    if len(events) > room:
        events = events[:room]
    events = _drop_orphan_flows(events)
    meta = {"scenario": result.name, "design": result.design,
            "vsmsim_version": result.meta.get("vsmsim_version"), "seed": result.meta.get("seed"),
            "window_ns": [lo, hi], "events": len(events), "max_events": max_events,
            "time_unit": "ts and dur are µs of simulated time; args *_ns are ns",
            "ids": f"pid = VP + {PID_BASE}, tid = VTL + {TID_BASE}, "
                   f"tid {OVERHEAD_TID} = transitions & exits",
            "truncated": cut is not None}
    if cut is not None:
        last = max((e["ts"] for e in events), default=_us(lo))
        meta["note"] = (f"truncated: the window holds about {total} events, more than max_events="
                        f"{max_events}; kept those before {format_ns(cut)} (last at "
                        f"{format_ns(last * 1000)}). Narrow the window or raise max_events.")
        meta["truncated_at_ns"] = cut
        events.append({"ph": "i", "s": "g", "name": f"trace truncated at {format_ns(cut)}",
                       "cat": "vsmsim", "pid": PID_BASE, "tid": OVERHEAD_TID, "ts": _us(cut),
                       "args": {"note": meta["note"]}})
    return {"traceEvents": b.metadata() + events, "displayTimeUnit": "ns", "metadata": meta}


def trace_events(result, window=None, *, max_events: int = DEFAULT_MAX_EVENTS,
                 include_work: bool = True, steps: bool = True) -> list[dict]:
    """The ``traceEvents`` list of :func:`build_trace` (metadata events first)."""
    return build_trace(result, window, max_events=max_events,
                       include_work=include_work, steps=steps)["traceEvents"]


def write_trace(result, path, window=None, *, max_events: int = DEFAULT_MAX_EVENTS,
                include_work: bool = True, steps: bool = True) -> Path:
    """Write the trace of *result* to *path* (JSON), atomically; return the path.

    Open it at https://ui.perfetto.dev (Open trace file) or chrome://tracing. See
    :func:`build_trace` for *window*, *max_events* and *include_work*.
    """
    doc = build_trace(result, window, max_events=max_events, include_work=include_work,
                      steps=steps)
    # json.dumps (C encoder) is several times faster than streaming json.dump.
    return atomic_text(path, json.dumps(doc, separators=(",", ":"), ensure_ascii=False))
