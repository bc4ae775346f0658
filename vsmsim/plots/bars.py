"""Bar charts: where each design's VP time goes, and its KVM event rates."""

from __future__ import annotations

import numpy as np

from .style import (
    STATE_COLORS,
    as_results,
    design_colors,
    empty_note,
    fmt_count,
    new_figure,
    scenario_name,
    styled,
    vtl_color,
)

#: Counters shown by :func:`counter_bars` by default.
DEFAULT_COUNTERS = ("exits", "uexits", "wakeups", "ioctls")


def residency_shares(result) -> dict[str, float]:
    """Share (0..1) of all VPs' measured time per state: ``VTL0``.., transitions, exits, idle
    (and steal, with a host layer)."""
    res = result.residency
    nvtl = int(result.scenario["vm"]["vtls"])
    total = float(res["total_ns"].sum()) or 1.0
    out = {f"VTL{v}": float(res[f"vtl{v}_ns"].sum()) / total for v in range(nvtl)}
    out["transitions"] = float(res["transition_ns"].sum()) / total
    out["exits"] = float(res["exit_ns"].sum()) / total
    out["idle"] = float(res["idle_ns"].sum()) / total
    if "steal_ns" in res:  # a host layer: VP time waiting for a host CPU
        out["steal"] = float(res["steal_ns"].sum()) / total
    return out


def _state_color(state: str) -> str:
    if state.startswith("VTL"):
        return vtl_color(int(state[3:]))
    return STATE_COLORS[{"transitions": "transition", "exits": "exit"}.get(state, state)]


@styled
def residency_bars(results):
    """Where each design's VP time goes: the whole (left) and everything but VTL0 (right).

    Left: stacked bars of the share of all VPs' measured time (after the warmup) in each
    VTL, in transitions, in other exits and halted, in percent. Right: the same without
    VTL0, on its own scale, so the few percent that differ between designs are readable;
    each bar is labelled with its total and its "transitions + exits" share (time outside
    guest code). When the results have a VSM-off baseline, the VTL0 tax (VTL0 work lost
    against VSM off) is written too: it is larger than the overhead because it also counts
    the time the higher VTLs themselves ran. Returns the Figure.
    """
    res = as_results(results)
    names = list(res)
    shares = {n: residency_shares(r) for n, r in res.items()}
    states = []
    for s in shares.values():
        for k in s:
            if k not in states:
                states.append(k)
    # VTLs first (in order), then the non-guest states.
    states = sorted([s for s in states if s.startswith("VTL")], key=lambda s: int(s[3:])) + \
        [s for s in ("transitions", "exits", "idle", "steal") if s in states]
    fig = new_figure(max(7.5, 2.0 * len(names) + 3.5), 4.6)
    ax, zoom = fig.subplots(1, 2, width_ratios=[1.0, 1.25])
    fig.suptitle(f"{scenario_name(res)}: where VP time goes (share of all VPs' measured time)")
    if not names:
        empty_note(ax, "no results")
        return fig
    xs = np.arange(len(names))
    for panel, shown in ((ax, states), (zoom, [s for s in states if s != "VTL0"])):
        bottom = np.zeros(len(names))
        for st in shown:
            v = np.array([shares[n].get(st, 0.0) * 100 for n in names])
            bars = panel.bar(xs, v, 0.6, bottom=bottom, color=_state_color(st), label=st,
                             edgecolor="white", linewidth=0.4)
            limit = 4 if panel is ax else 0.08 * max(1e-9, _top(shares, names))
            for bb, val, b0 in zip(bars, v, bottom):
                if val >= limit:
                    dark = st in ("transitions",) or st.startswith("VTL") and st != "VTL0"
                    panel.text(bb.get_x() + bb.get_width() / 2, b0 + val / 2, f"{val:.2g}%",
                               ha="center", va="center", fontsize=7,
                               color="white" if dark else "black")
            bottom += v
        panel.set_xticks(xs, names, rotation=20, ha="right")
        dcol = design_colors(names)
        for lab in panel.get_xticklabels():
            lab.set_color(dcol.get(lab.get_text(), "black"))
            lab.set_fontweight("bold")
        panel.grid(axis="x", visible=False)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of VP time (%)")
    ax.set_title("all states", fontsize=9)
    top = _top(shares, names)
    zoom.set_ylim(0, max(top, 0.01) * 1.45)
    zoom.set_ylabel("share of VP time outside VTL0 (%)")
    zoom.set_title("outside VTL0 (own scale)", fontsize=9)
    for x, n in zip(xs, names):
        oh = (shares[n].get("transitions", 0) + shares[n].get("exits", 0)) * 100
        rest = sum(v for k, v in shares[n].items() if k != "VTL0") * 100
        label = f"{rest:.2g}% total\n{oh:.2g}% trans.+exits"
        tax = res[n].meta.get("vtl0_tax")
        if tax is not None:
            label += f"\nVTL0 tax {tax * 100:.2g}%"
        zoom.text(x, rest + top * 0.03, label, ha="center", va="bottom", fontsize=6.5)
    zoom.legend(*ax.get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.01, 0.5),
                title="state")
    return fig


def _top(shares, names) -> float:
    """Largest share (in %) of VP time outside VTL0 among *names*."""
    return max(sum(v for k, v in shares[n].items() if k != "VTL0") * 100 for n in names)


@styled
def counter_bars(results, counters=DEFAULT_COUNTERS, log: bool = True, per: str | None = None):
    """Grouped bars of KVM event rates per design: one group per counter, one bar per design.

    Rates are events per second of simulated time over the measured window (after the
    warmup): by default exits (handled in the kernel), uexits (returns to the VMM),
    host thread wake-ups and vCPU ioctls. *per*: a counter to normalise by instead
    (``"interrupts"``, ``"switches"``): events per interrupt or per VTL switch. Log y axis
    unless *log* is False. Each bar is labelled with its value; zero rates are marked
    ``0``. A right panel shows each design's VMM share of the VM's CPU time
    (``vmm_cpu_share``). Returns the Figure.
    """
    res = as_results(results)
    names = list(res)
    counters = list(counters)
    colors = design_colors(names)
    fig = new_figure(min(12.0, max(7.0, 0.32 * len(names) * len(counters) + 5.0)), 4.4)
    ax, vmm = fig.subplots(1, 2, width_ratios=[3.0, 1.0])
    singular = {"switches": "switch", "interrupts": "interrupt"}.get(per or "", (per or "").rstrip("s"))
    unit = f"per {singular}" if per else "per second"
    fig.suptitle(f"{scenario_name(res)}: KVM events {unit}"
                 + ("" if per else " of simulated time"))
    if not names:
        empty_note(ax, "no results")
        return fig
    width = 0.8 / len(names)
    groups = np.arange(len(counters))
    rates = {}
    for n in names:
        r = res[n]
        div = float(r.counters.get(per, 0)) if per else max(r.measured_ns, 1) / 1e9
        rates[n] = np.array([float(r.counters.get(c, 0)) / div if div else np.nan
                             for c in counters])
    top = max(float(np.nanmax(v)) if np.isfinite(v).any() else 0.0 for v in rates.values())
    pos = [float(x) for v in rates.values() for x in v if x > 0]
    # Start the log axis a decade below the smallest rate, not at an arbitrary 1/s.
    floor = 10.0 ** (np.floor(np.log10(min(pos))) - 1) if pos else 0.5
    for i, n in enumerate(names):
        xs = groups - 0.4 + width * (i + 0.5)
        v = rates[n]
        ax.bar(xs, np.where(v > 0, v, np.nan), width * 0.92, color=colors[n], label=n)
        for x, val in zip(xs, v):
            y = val if val > 0 else (floor if log else 0.0)
            ax.text(x, y, fmt_count(val) if val > 0 else "0", ha="center", va="bottom",
                    fontsize=6.5, rotation=90 if len(names) > 3 else 0)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor * 0.8, top=max(top, 1.0) * (30 if len(names) > 3 else 6))
    else:
        ax.set_ylim(0, max(top, 1.0) * 1.15)
    ax.set_xticks(groups, counters)
    ax.set_ylabel(f"events {unit}" + (" (1/s, simulated time)" if not per else "")
                  + (", log scale" if log else ""))
    ax.grid(axis="x", visible=False)
    share = [float(res[n].summary().set_index("metric")["value"].get("vmm_cpu_share", np.nan))
             for n in names]
    bars = vmm.bar(np.arange(len(names)), [v * 100 for v in share], 0.6,
                   color=[colors[n] for n in names])
    for b, v in zip(bars, share):
        vmm.text(b.get_x() + b.get_width() / 2, b.get_height(), f"{v * 100:.2g}%",
                 ha="center", va="bottom", fontsize=7)
    vmm.set_xticks(np.arange(len(names)), names, rotation=30, ha="right", fontsize=7)
    vmm.set_ylim(0, max([v * 100 for v in share if v == v] + [0.1]) * 1.3)
    vmm.set_ylabel("VMM share of the VM's CPU time (%)")
    vmm.set_title("VMM CPU time (vmm_cpu_share)", fontsize=8)
    vmm.grid(axis="x", visible=False)
    ax.legend(title="design", loc="upper left", fontsize=7, ncols=2 if len(names) > 3 else 1)
    return fig
