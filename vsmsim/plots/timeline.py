"""Per-VP timeline: which VTL runs when, transitions and exits, in a window of simulated time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from ..errors import InputError
from ..units import format_ns, parse_duration
from .style import (
    STATE_COLORS,
    US,
    as_results,
    design_colors,
    empty_note,
    new_figure,
    scenario_name,
    styled,
    vtl_color,
)

#: Default length of the timeline window (ns), starting at the end of the warmup.
DEFAULT_SPAN_NS = 2_000_000
#: VPs drawn when *vps* is not given and the VM has more.
DEFAULT_MAX_VPS = 8

# Drawing of each segment class: (height, alpha). Guest work is pale, handlers solid.
_LOOK = {"work": (0.56, 0.45), "handler": (0.8, 1.0), "transition": (0.8, 1.0),
         "exit": (0.8, 1.0), "halted": (0.22, 1.0), "steal": (0.4, 1.0)}
_STATE_CLASS = {"compute": "work", "task": "work", "wait": "work", "handler": "handler",
                "transition": "transition", "exit": "exit", "halted": "halted",
                "steal": "steal"}


def resolve_window(result, window=None) -> tuple[int, int]:
    """(start_ns, end_ns) of a timeline window; strings like ``"1ms"`` are accepted.

    Default: :data:`DEFAULT_SPAN_NS` from the end of the warmup (or from the start of the
    recorded timeline window, when the run recorded only a window).
    """
    dur = int(result.scenario["duration"])
    if window is not None:
        try:
            lo, hi = (parse_duration(w) for w in window)
        except (TypeError, ValueError) as e:
            raise InputError(f"timeline window {window!r}: expected (start, end) in ns or "
                             f"duration strings ({e})") from None
        if hi <= lo:
            raise InputError(f"timeline window {window!r}: end must be after start")
        return lo, hi
    lo = int(result.scenario.get("warmup", 0) or 0)
    rw = (result.scenario.get("record") or {}).get("window")
    if rw:
        lo = max(lo, parse_duration(rw[0]))
    if lo >= dur:
        lo = 0
    return lo, min(dur, lo + DEFAULT_SPAN_NS)


def _segments(result, vps, lo: int, hi: int) -> tuple[pd.DataFrame, bool]:
    """Segments (vp, cls, vtl, start_ns, end_ns) overlapping [lo, hi), clipped to it.

    From the timeline table when recorded (exact), else rebuilt from the switch table
    (VTL intervals and transitions) plus handler intervals from the interrupt table.
    The flag says whether the timeline was exact.
    """
    tl = result.timeline
    if tl is not None and len(tl):
        t = tl[tl["vp"].isin(vps) & (tl["start_ns"] < hi) & (tl["end_ns"] > lo)]
        seg = pd.DataFrame({"vp": t["vp"].to_numpy(),
                            "cls": t["state"].astype(str).map(_STATE_CLASS).to_numpy(),
                            "vtl": t["vtl"].to_numpy(),
                            "start_ns": t["start_ns"].to_numpy(),
                            "end_ns": t["end_ns"].to_numpy()})
        exact = True
    else:
        dur = int(result.scenario["duration"])
        sw = result.rows("switches")
        rows = []
        for vp in vps:
            s = sw[sw["vp"] == vp].sort_values("start_ns")
            t0, vtl = 0, 0
            for f, to, a, b in zip(s["from_vtl"], s["to_vtl"], s["start_ns"],
                                   s["end_ns"].fillna(dur).astype("int64")):
                rows.append((vp, "work", int(f), t0, int(a)))
                rows.append((vp, "transition", int(to), int(a), int(b)))
                t0, vtl = int(b), int(to)
            rows.append((vp, "work", vtl, t0, dur))
        irq = result.rows("interrupts")
        h = irq[irq["vp"].isin(vps) & irq["start_ns"].notna()]
        end = h["end_ns"].fillna(dur).astype("int64")
        for vp, vtl, a, b in zip(h["vp"], h["vtl"], h["start_ns"].astype("int64"), end):
            rows.append((int(vp), "handler", int(vtl), int(a), int(b)))
        seg = pd.DataFrame(rows, columns=["vp", "cls", "vtl", "start_ns", "end_ns"])
        seg = seg[(seg["start_ns"] < hi) & (seg["end_ns"] > lo) & (seg["end_ns"] > seg["start_ns"])]
        exact = False
    seg = seg.assign(start_ns=np.maximum(seg["start_ns"], lo), end_ns=np.minimum(seg["end_ns"], hi))
    return seg, exact


def _color(cls: str, vtl: int) -> str:
    if cls in ("work", "handler"):
        return vtl_color(vtl)
    return STATE_COLORS["idle" if cls == "halted" else cls]


def _draw(ax, result, vps, lo, hi) -> bool:
    seg, exact = _segments(result, vps, lo, hi)
    ypos = {vp: i for i, vp in enumerate(vps)}
    for (cls, vtl), g in seg.groupby(["cls", "vtl"], sort=True):
        h, alpha = _LOOK[cls]
        color = _color(cls, int(vtl))
        for vp, gg in g.groupby("vp"):
            spans = list(zip(gg["start_ns"].to_numpy() / 1e3,
                             (gg["end_ns"] - gg["start_ns"]).to_numpy() / 1e3))
            y = ypos[vp]
            ax.broken_barh(spans, (y - h / 2, h), facecolors=color, alpha=alpha, lw=0)
    # Ticks under each lane where an interrupt for that VP was raised (colour: target VTL).
    irq = result.rows("interrupts")
    r = irq[irq["vp"].isin(vps) & (irq["raised_ns"] >= lo) & (irq["raised_ns"] < hi)]
    for vtl, g in r.groupby("vtl"):
        ax.plot(g["raised_ns"].to_numpy() / 1e3, g["vp"].map(ypos).to_numpy() - 0.47,
                ls="", marker="v", ms=3, color=vtl_color(int(vtl)), mec="black", mew=0.25)
    ax.set_yticks(range(len(vps)), [f"VP{vp}" for vp in vps])
    ax.set_ylim(len(vps) - 0.45, -0.6)
    ax.set_xlim(lo / 1e3, hi / 1e3)
    ax.grid(axis="y", visible=False)
    if seg.empty:
        empty_note(ax, "nothing recorded in this window")
    return exact


def _legend_handles(nvtl: int, exact: bool, steal: bool = False):
    hs = []
    for v in range(nvtl):
        hs.append(Patch(color=vtl_color(v), alpha=_LOOK["work"][1],
                        label=f"VTL{v} running" if exact else f"in VTL{v}"))
        hs.append(Patch(color=vtl_color(v), label=f"VTL{v} handler"))
    hs.append(Patch(color=STATE_COLORS["transition"], label="VTL transition"))
    if exact:
        hs.append(Patch(color=STATE_COLORS["exit"], label="exit (KVM/VMM)"))
        hs.append(Patch(color=STATE_COLORS["idle"], label="halted"))
    if steal:
        hs.append(Patch(color=STATE_COLORS["steal"], label="steal (waiting\nfor a host CPU)"))
    from matplotlib.lines import Line2D
    hs.append(Line2D([], [], ls="", marker="v", color="#999999", mec="black", mew=0.25,
                     label="interrupt raised\n(colour: target VTL)"))
    return hs


@styled
def timeline(result, vps=None, window=None):
    """Per-VP rows showing which VTL runs when, with transitions, exits and halts.

    *result*: a Result, or a Comparison / dict {design: Result} for one panel per design
    over the same window. *vps*: VP indices to draw (default: all, at most 8). *window*:
    (start, end) in ns or duration strings (default: 2 ms from the end of the warmup).
    Pale bars are guest work of a VTL, solid bars its interrupt handlers (or VTL-call
    service), black bars VTL transitions, yellow bars other exits, grey thin bars a halted
    VP, pink bars (with a host layer) a VP waiting for a host CPU; triangles mark when an
    interrupt for the VP was raised. Without a recorded
    timeline (``record.timeline``), VTL intervals are rebuilt from the switch table and
    exits/halts are not shown. The x axis is simulated time in µs. Returns the Figure.
    """
    from ..results import Result

    single = isinstance(result, Result)
    res = as_results(result)
    first = next(iter(res.values()))
    lo, hi = resolve_window(first, window)
    nvp = int(first.scenario["vm"]["vps"])
    nvtl = max(int(r.scenario["vm"]["vtls"]) for r in res.values())
    if vps is None:
        vps = list(range(min(nvp, DEFAULT_MAX_VPS)))
    vps = [int(v) for v in vps]
    n = len(res)
    lane = 0.32
    fig = new_figure(9.0, 1.3 + n * (0.55 + lane * len(vps)))
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    dcol = design_colors(list(res))
    exact_any = False
    for ax, (name, r) in zip(axes, res.items()):
        exact = _draw(ax, r, vps, lo, hi)
        exact_any |= exact
        note = "" if exact else " (rebuilt from switches: no exits/halts)"
        ax.set_title(f"{name}{note}", loc="left", fontsize=9, color=dcol[name])
    shown = f"VPs {vps[0]}-{vps[-1]} of {nvp}" if len(vps) < nvp else f"{nvp} VPs"
    head = f"{scenario_name(res)} [{first.design}]" if single else scenario_name(res)
    fig.suptitle(f"{head}: VP timeline, {format_ns(lo)} to {format_ns(hi)}, {shown}")
    axes[-1].set_xlabel(f"simulated time ({US})")
    steal = any(r.timeline is not None and (r.timeline["state"].astype(str) == "steal").any()
                for r in res.values())
    fig.legend(handles=_legend_handles(nvtl, exact_any, steal), loc="outside right center",
               fontsize=7)
    return fig


def zoom_event(result, vtl_min: int = 1):
    """The first interrupt of a VTL >= *vtl_min* raised after the warmup (and inside the
    recorded timeline) that was handled, preferring one that switched VTL: its row, or None."""
    df = result.measured()
    df = df[(df["vtl"] >= vtl_min) & df["end_ns"].notna()]
    rw = (result.scenario.get("record") or {}).get("window")
    if rw:
        df = df[(df["raised_ns"] >= parse_duration(rw[0])) & (df["end_ns"] <= parse_duration(rw[1]))]
    if not len(df):
        return None
    switched = df[df["switched"]]
    return (switched if len(switched) else df).iloc[0]


@styled
def timeline_zoom(result, irq_id: int | None = None, pad: float = 0.25):
    """The VP timeline around one interrupt: from a little before its raise to a little
    after its handler ends, on its VP, with the raise, handler start and end marked.

    *result*: a Result (or a Comparison / dict: its first design). *irq_id*: the
    interrupt's id (default :func:`zoom_event`: the first higher-VTL interrupt after the
    warmup that switched VTL). *pad*: margin on each side, as a share of the span.
    Returns the Figure.
    """
    res = as_results(result)
    name, r = next(iter(res.items()))
    row = r.rows("interrupts").iloc[int(irq_id)] if irq_id is not None else zoom_event(r)
    if row is None:
        fig = new_figure(9.0, 2.0)
        ax = fig.add_subplot()
        empty_note(ax, "no higher-VTL interrupt handled in the recorded window")
        ax.set_title(f"{r.name} [{name}]: timeline zoom")
        return fig
    a, b = int(row["raised_ns"]), int(row["end_ns"]) if not pd.isna(row["end_ns"]) else \
        int(row["raised_ns"]) + 10_000
    m = max(int((b - a) * pad), 200)
    fig = timeline.__wrapped__(r, vps=[int(row["vp"])], window=(max(a - m, 0), b + m))
    ax = fig.axes[0]
    marks = [("raised", a)]
    if not pd.isna(row["start_ns"]):
        marks.append(("handler start", int(row["start_ns"])))
    marks.append(("handler end", b))
    for k, (label, t) in enumerate(marks):
        ax.axvline(t / 1e3, color="#444444", lw=0.8, ls="--")
        # Staggered, so that marks close together (a short handler) stay readable.
        ax.text(t / 1e3, -0.55 + 0.3 * (k % 2), f" {label}", fontsize=7, va="bottom",
                ha="left", color="#444444",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
    fig.suptitle(f"{r.name} [{name}]: zoom on interrupt #{int(row['id'])} ({row['kind']} to "
                 f"VTL{int(row['vtl'])}, VP{int(row['vp'])})\ndelivery "
                 f"{int(row['start_ns']) - a:,} ns, response {b - a:,} ns "
                 f"(vsmsim explain DIR --id {int(row['id'])} for its steps)", fontsize=9)
    return fig
