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
    """Share (0..1) of all VPs' measured time per state: ``VTL0``.., transitions, exits, idle."""
    res = result.residency
    nvtl = int(result.scenario["vm"]["vtls"])
    total = float(res["total_ns"].sum()) or 1.0
    out = {f"VTL{v}": float(res[f"vtl{v}_ns"].sum()) / total for v in range(nvtl)}
    out["transitions"] = float(res["transition_ns"].sum()) / total
    out["exits"] = float(res["exit_ns"].sum()) / total
    out["idle"] = float(res["idle_ns"].sum()) / total
    return out


def _state_color(state: str) -> str:
    if state.startswith("VTL"):
        return vtl_color(int(state[3:]))
    return STATE_COLORS[{"transitions": "transition", "exits": "exit"}.get(state, state)]


@styled
def residency_bars(results):
    """Stacked bars, one per design: share of VP time in each VTL, transitions, exits, idle.

    Shares are of the summed measured time of all VPs (after the warmup), in percent.
    Segments of at least 4 % carry their value; the time outside guest code
    (transitions + exits) is written above each bar. Returns the Figure.
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
        [s for s in ("transitions", "exits", "idle") if s in states]
    fig = new_figure(max(4.5, 1.1 * len(names) + 2.8), 4.2)
    ax = fig.add_subplot()
    ax.set_title(f"{scenario_name(res)}: where VP time goes")
    if not names:
        empty_note(ax, "no results")
        return fig
    xs = np.arange(len(names))
    bottom = np.zeros(len(names))
    for st in states:
        v = np.array([shares[n].get(st, 0.0) * 100 for n in names])
        bars = ax.bar(xs, v, 0.6, bottom=bottom, color=_state_color(st), label=st,
                      edgecolor="white", linewidth=0.4)
        for b, val, b0 in zip(bars, v, bottom):
            if val >= 4:
                dark = st in ("transitions",) or st.startswith("VTL") and st != "VTL0"
                ax.text(b.get_x() + b.get_width() / 2, b0 + val / 2, f"{val:.1f}%",
                        ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        bottom += v
    for x, n in zip(xs, names):
        oh = (shares[n].get("transitions", 0) + shares[n].get("exits", 0)) * 100
        ax.text(x, 101.5, f"{oh:.1f}% overhead", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, names, rotation=15, ha="right")
    dcol = design_colors(names)
    for lab in ax.get_xticklabels():
        lab.set_color(dcol.get(lab.get_text(), "black"))
        lab.set_fontweight("bold")
    ax.set_ylim(0, 108)
    ax.set_ylabel("share of VP time (%)")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="state")
    return fig


@styled
def counter_bars(results, counters=DEFAULT_COUNTERS, log: bool = True):
    """Grouped bars of KVM event rates per design: one group per counter, one bar per design.

    Rates are events per second of simulated time over the measured window (after the
    warmup): by default exits (handled in the kernel), uexits (returns to the VMM),
    host thread wake-ups and vCPU ioctls. Log y axis unless *log* is False. Each bar is
    labelled with its value; zero rates are marked ``0`` on the axis. Returns the Figure.
    """
    res = as_results(results)
    names = list(res)
    counters = list(counters)
    colors = design_colors(names)
    fig = new_figure(min(11.0, max(5.5, 0.32 * len(names) * len(counters) + 3.0)), 4.2)
    ax = fig.add_subplot()
    ax.set_title(f"{scenario_name(res)}: KVM events per second")
    if not names:
        empty_note(ax, "no results")
        return fig
    width = 0.8 / len(names)
    groups = np.arange(len(counters))
    rates = {}
    for n in names:
        r = res[n]
        secs = max(r.measured_ns, 1) / 1e9
        rates[n] = np.array([float(r.counters.get(c, 0)) / secs for c in counters])
    top = max(float(v.max()) for v in rates.values())
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
    ax.set_ylabel("events per second (1/s, simulated time)")
    ax.grid(axis="x", visible=False)
    ax.legend(title="design", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
