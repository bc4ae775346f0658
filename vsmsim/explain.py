"""One interrupt's life, step by step, from a result's tables and its design's path table.

The engine records, per interrupt, the path it took (``send...>deliver...`` or one switch
path for calls), when it was raised, when its handler started and ended, and (with
``record.timeline``) the VP's state segments. It does not record each step's own time.
So the steps shown here come from the design table the run used (``meta["design"]``),
each at its cost profile mean times its ``times`` (``meta["costs"]``): exact for fixed
costs, the mean for a distributed one. What the path does not account for between the
raise and the handler start is *waiting*: for the VP (it ran something else), for the
target context (another handler, a masking TPR, a lower VTL's turn) or for a switch.

The same derivation gives the trace's step sub-slices (:func:`path_steps`,
:func:`match_exits`): an exit segment of the timeline is the receiver (or sender) steps
of one interrupt's path; a transition segment is its switch's ``switch.<reason>`` steps.
Sub-slices are scaled to fill the recorded segment, so their sum is the recorded time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .costs import load_profile
from .designs import host_role
from .errors import InputError


@dataclass(frozen=True)
class PathStep:
    """One step of a path as run: cost name, payer, times, mean ns (total) and counters."""

    path: str
    cost: str
    payer: str
    times: int
    ns: float
    counters: dict
    on: str = ""  # with a host layer: designs.host_role, "hand-off" or an errand's thread


def _times(t, n: int, v: int) -> int:
    return {"N": n, "V": v, "N*V": n * v}[t] if isinstance(t, str) else int(t)


def path_steps(result, path: str) -> list[PathStep]:
    """The steps of *path* in *result*'s design, with N and V resolved and mean ns."""
    design = result.meta.get("design") or {}
    prof = _profile(result)
    n, v = int(result.scenario["vm"]["vps"]), int(result.scenario["vm"]["vtls"])
    steps = []
    hosted = bool(result.scenario.get("host"))
    polled = path.endswith(" (polled)")  # the host layer's variant without its wake step
    base = path[:-len(" (polled)")] if polled else path
    for st in (design.get("path") or {}).get(base, []):
        if polled and st.get("handoff"):
            continue
        times = _times(st.get("times", 1), n, v)
        counts = {k: _times(a, n, v) for k, a in (st.get("count") or {}).items()}
        mean = prof.mean(st["cost"]) if prof is not None else float("nan")
        on = host_role(st.get("handoff"), st.get("errand")) if hosted else ""
        steps.append(PathStep(path, st["cost"], st["payer"], times, mean * times, counts, on))
    return steps


_PROFILES: dict = {}


def _profile(result):
    costs = result.meta.get("costs")
    if not costs:
        return None
    key = id(result)
    if key not in _PROFILES:
        _PROFILES.clear()
        _PROFILES[key] = load_profile(costs)
    return _PROFILES[key]


def interrupt_paths(row) -> list[str]:
    """The path names an interrupt row went through, in order (send, then deliver)."""
    return [p for p in str(row["path"]).split(">") if p and p != "nan"]


def explain(result, irq_id: int) -> dict:
    """Interrupt *irq_id*'s life as a dict: the row, ``events`` (time-ordered), the waits.

    ``events``: dicts with ``t_ns``, ``what`` and, for steps, ``step`` (a PathStep).
    Raises :class:`InputError` for an id that is not in the interrupt table.
    """
    df = result.rows("interrupts")
    if not 0 <= int(irq_id) < len(df):
        raise InputError(f"--id {irq_id}: no such interrupt; this result has ids 0 to "
                         f"{len(df) - 1}")
    row = df.iloc[int(irq_id)]
    raised, arrival = int(row["raised_ns"]), int(row["arrival_ns"])
    start = None if pd.isna(row["start_ns"]) else int(row["start_ns"])
    end = None if pd.isna(row["end_ns"]) else int(row["end_ns"])
    vp, vtl = int(row["vp"]), int(row["vtl"])
    ev = []
    if arrival < raised:
        ev.append({"t_ns": arrival, "what": f"produced by workload {row['workload']}; the "
                   f"sending context could not run, so the send waited {raised - arrival} ns"})
    src = f" by VP{int(row['src_vp'])} VTL{int(row['src_vtl'])}" if int(row["src_vp"]) >= 0 else ""
    ev.append({"t_ns": raised, "what": f"raised: {row['kind']} vector {int(row['vector']):#x}"
               f"{src} for VP{vp} VTL{vtl} (workload {row['workload']})"})
    path_ns = 0.0
    for p in interrupt_paths(row):
        for st in path_steps(result, p):
            ev.append({"t_ns": None, "what": "step", "step": st})
            path_ns += st.ns
    sw = result.rows("switches")
    caused = sw[(sw["vp"] == vp) & (sw["start_ns"] >= raised)
                & (sw["start_ns"] <= (start if start is not None else raised))]
    if start is not None and bool(row["switched"]):
        caused = caused[caused["end_ns"].astype("Float64") <= start]
    else:
        caused = caused.iloc[0:0]
    switch_ns = 0.0
    for s in caused.itertuples():
        dur = (int(s.end_ns) - int(s.start_ns)) if not pd.isna(s.end_ns) else None
        ev.append({"t_ns": int(s.start_ns), "what": f"switch VTL{s.from_vtl} -> VTL{s.to_vtl} "
                   f"({s.reason}), {dur} ns; steps of switch.{s.reason}:"})
        for st in path_steps(result, f"switch.{s.reason}"):
            ev.append({"t_ns": None, "what": "step", "step": st})
        switch_ns += dur or 0
    waits = {}
    if start is not None:
        waited = (start - raised) - path_ns - switch_ns
        waits = {"delivery_ns": start - raised, "path_ns": path_ns, "switch_ns": switch_ns,
                 "waiting_ns": waited, "for": _waiting_for(result, row, raised, start)}
        if "host_wait_ns" in row.index:  # a host layer: the share spent waiting for a CPU
            waits["host_wait_ns"] = int(row["host_wait_ns"])
        ev.append({"t_ns": start, "what": f"handler starts in VTL{vtl} (delivery "
                   f"{start - raised} ns)"})
        if end is not None:
            ev.append({"t_ns": end, "what": f"handler ends (service {int(row['service_ns'])} ns, "
                       f"response {end - raised} ns)"})
        if not pd.isna(row["resumed_ns"]):
            ev.append({"t_ns": int(row["resumed_ns"]), "what": "the calling VTL resumes "
                       f"(round trip {int(row['resumed_ns']) - raised} ns)"})
    else:
        ev.append({"t_ns": None, "what": "never handled by the end of the run (pending)"})
    return {"row": row, "events": ev, "waits": waits}


def _waiting_for(result, row, raised: int, start: int) -> list[str]:
    """What held the interrupt between its raise and its handler: other work on its VP."""
    vp = int(row["vp"])
    df = result.rows("interrupts")
    others = df[(df["vp"] == vp) & (df.index != row.name) & df["start_ns"].notna()]
    busy = others[(others["start_ns"].astype("int64") < start)
                  & (others["end_ns"].astype("Float64").fillna(start) > raised)]
    out = []
    for r in busy.itertuples():
        out.append(f"handler of interrupt {r.id} ({r.kind}, VTL{r.vtl}) ran "
                   f"{int(r.start_ns)}..{int(r.end_ns) if not pd.isna(r.end_ns) else '?'} ns")
    tl = result.timeline
    if tl is not None and len(tl):
        seg = tl[(tl["vp"] == vp) & (tl["start_ns"] < start) & (tl["end_ns"] > raised)]
        spans = [f"{state} VTL{int(v)} {int(min(b, start) - max(a, raised)):,} ns"
                 for state, v, a, b in zip(seg["state"], seg["vtl"], seg["start_ns"],
                                           seg["end_ns"])]
        if spans:
            out.append(f"meanwhile VP{vp} (timeline): " + ", then ".join(spans))
    return out


def explain_text(result, irq_id: int) -> str:
    """:func:`explain` as text: one line per event, steps indented with cost, payer, ns."""
    info = explain(result, irq_id)
    row = info["row"]
    lines = [f"interrupt {int(irq_id)} of {result.name} [{result.design}]: path "
             f"{row['path']}"]
    for e in info["events"]:
        if e["what"] == "step":
            st = e["step"]
            cnt = ", ".join(f"{k} +{a}" for k, a in st.counters.items()) or "-"
            x = f" x{st.times}" if st.times != 1 else ""
            who = "no VP (latency only)" if st.payer == "none" else f"paid by {st.payer}"
            if st.on:
                who += f" (host: {st.on})"
            lines.append(f"      {st.path}: {st.cost}{x}, {who}, {st.ns:,.0f} ns, counters {cnt}")
        else:
            t = f"{e['t_ns']:>12,} ns" if e["t_ns"] is not None else " " * 15
            lines.append(f"{t}  {e['what']}")
    w = info["waits"]
    if w:
        lines.append(f"delivery {w['delivery_ns']:,} ns = path steps {w['path_ns']:,.0f} (profile "
                     f"means) + switch {w['switch_ns']:,.0f} + waiting {w['waiting_ns']:,.0f}")
        if "host_wait_ns" in w:
            lines.append(f"  of the delivery, a thread of its VP waited {w['host_wait_ns']:,} ns "
                         f"for a host CPU (host_wait_ns; docs/host.md)")
        for f in w["for"]:
            lines.append(f"  {f}")
    return "\n".join(lines)


def match_exits(result) -> pd.DataFrame:
    """For each ``exit`` segment of the timeline, the path whose VP-paid steps it holds.

    Columns: the segment's ``vp, start_ns, end_ns`` plus ``irq`` (-1 if none matched) and
    ``path``. A segment at an interrupt's raise on its sender's VP is that interrupt's
    send path (sender steps); otherwise the receiver steps of the interrupt on that VP
    whose raise plus latency-only steps comes closest before the segment's start.
    """
    tl = result.timeline
    cols = ["vp", "start_ns", "end_ns", "irq", "path"]
    if tl is None or not len(tl):
        return pd.DataFrame(columns=cols)
    ex = tl[tl["state"] == "exit"]
    df = result.rows("interrupts")
    rows = []
    cache: dict = {}

    def steps(p):
        if p not in cache:
            cache[p] = path_steps(result, p)
        return cache[p]

    by_src = {(int(s), int(t)): (int(i), p) for s, t, i, p in
              zip(df["src_vp"], df["raised_ns"], df["id"], df["path"].astype(str))}
    # Per VP, the interrupts whose delivery has receiver steps: (lead, id, path, start),
    # lead = raise + the latency-only steps before the receiver's exit.
    recv: dict = {}
    starts = df["start_ns"].fillna(-1).astype("int64").to_numpy()
    for t, i, p, vp in zip(df["raised_ns"], df["id"], df["path"].astype(str), df["vp"]):
        deliver = p.split(">")[-1]
        st = steps(deliver)
        if any(s.payer == "receiver" for s in st):
            lead = int(t) + sum(s.ns for s in st if s.payer == "none")
            recv.setdefault(int(vp), []).append((lead, int(i), deliver, int(starts[int(i)])))
    for v in recv.values():
        v.sort()
    used: set = set()
    order = np.lexsort((ex["start_ns"].to_numpy(), ex["vp"].to_numpy()))
    for vp, a, b in zip(ex["vp"].to_numpy()[order], ex["start_ns"].to_numpy()[order],
                        ex["end_ns"].to_numpy()[order]):
        vp, a, b = int(vp), int(a), int(b)
        hit = by_src.get((vp, a))
        if hit is not None and "send." in hit[1]:
            send = hit[1].split(">")[0]
            if any(s.payer == "sender" for s in steps(send)):
                rows.append((vp, a, b, hit[0], send))
                continue
        # The earliest unused interrupt whose exit can be this one: its lead has passed and
        # its handler had not started before the exit's end.
        pick = None
        for lead, i, p, start in recv.get(vp, ()):
            if lead > a + 0.5:
                break
            if i in used or 0 <= start < b:
                continue
            pick = (i, p)
            break
        if pick is None:
            rows.append((vp, a, b, -1, ""))
        else:
            used.add(pick[0])
            rows.append((vp, a, b, pick[0], pick[1]))
    return pd.DataFrame(rows, columns=cols)
