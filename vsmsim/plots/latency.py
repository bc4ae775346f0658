"""Latency plots: CDF per design, wake-up histogram by cause, a metric against a sweep key."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ..stats import t_quantile
from .style import (
    FLOOR_NS,
    US,
    as_results,
    category_colors,
    design_colors,
    design_dashes,
    empty_note,
    fmt_us,
    log_axis_us,
    log_bins,
    new_figure,
    scenario_name,
    styled,
)

_MAX_POINTS = 4000  # points per CDF line; the tail is kept at full resolution


def _cdf_points(ns: np.ndarray):
    """Sorted latencies in µs and their cumulative fractions, thinned for long runs."""
    x = np.sort(np.maximum(ns.astype(float), FLOOR_NS)) / 1e3
    n = len(x)
    # Hazen plotting positions (i - 0.5) / n: never exactly 0 or 1, so a logit axis works.
    y = (np.arange(1, n + 1) - 0.5) / n
    if n > _MAX_POINTS:
        # Evenly spaced in probability for the body, log-spaced towards p=1 for the tail.
        body = np.linspace(0, n - 1, _MAX_POINTS // 2)
        tail = n - np.logspace(np.log10(n), 0, _MAX_POINTS // 2)
        idx = np.unique(np.clip(np.concatenate([body, tail]).astype(int), 0, n - 1))
        x, y = x[idx], y[idx]
    return x, y


def _group_label(kind, vtl) -> str:
    k = kind if kind is not None else "all kinds"
    v = f"VTL{vtl}" if vtl is not None else "all VTLs"
    return f"{k}, {v}"


@styled
def latency_cdf(results, kind=None, vtl=None, which: str = "delivery", tail: bool = True):
    """CDF of interrupt latency per design, on a log time axis in µs.

    *results*: a Comparison, a dict {design: Result} or a Result. *kind* and *vtl* select
    interrupts (None = all); *which* is ``delivery`` (handler start - raised) or
    ``response`` (handler end - raised). Interrupts raised in the warmup and those never
    handled are left out; zero latencies are drawn at 1 ns. Each design is one line (its
    fixed colour and dash pattern); p50 (circle) and p99 (triangle) are marked on it, and
    a table of p50/p99/max per design sits beside the plot. With *tail* (default) the
    y axis is a logit scale, which spreads p90, p99 and p99.9 apart; otherwise linear.
    Returns the Figure.
    """
    if which not in ("delivery", "response"):
        raise ValueError(f"which={which!r}: expected 'delivery' or 'response'")
    res = as_results(results)
    colors = design_colors(list(res))
    dashes = design_dashes(list(res))
    fig = new_figure(8.5, 4.2)
    ax, side = fig.subplots(1, 2, width_ratios=[3.0, 1.1])
    side.set_axis_off()
    rows = []
    for name, r in res.items():
        ns = r.latency(kind, vtl, which).to_numpy()
        if len(ns) == 0:
            continue
        x, y = _cdf_points(ns)
        c = colors[name]
        ax.step(x, y, where="post", color=c, ls=dashes[name], lw=1.8, label=name)
        p50, p99 = np.percentile(ns, 50), np.percentile(ns, 99)
        ax.plot([max(p50, FLOOR_NS) / 1e3], [0.5], "o", color=c, mec="black", mew=0.6, ms=6,
                zorder=5)
        ax.plot([max(p99, FLOOR_NS) / 1e3], [0.99], "^", color=c, mec="black", mew=0.6, ms=7,
                zorder=5)
        rows.append((name, p50, p99, ns.max(), len(ns)))
    ax.set_xscale("log")
    log_axis_us(ax.xaxis)
    ax.margins(x=0.05)
    nmax = max((r[4] for r in rows), default=1)
    if tail and rows:
        ax.set_yscale("logit")
        # The fast half matters less than the tail: start the axis at 5 %.
        ax.set_ylim(max(0.05, 0.5 / nmax), 1 - 0.5 / nmax)
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
        ticks = [t for t in (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999)
                 if t < 1 - 0.5 / nmax]
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
    else:
        ax.set_ylim(0, 1.03)
    ax.set_xlabel(f"{which} latency ({US}, log scale)")
    ax.set_ylabel("fraction of interrupts (cumulative" + (", logit)" if tail else ")"))
    fig.suptitle(f"{scenario_name(res)}: {which} latency CDF ({_group_label(kind, vtl)})")
    if not rows:
        empty_note(ax, "no handled interrupts match")
        return fig
    ax.axhline(0.5, color="#999999", lw=0.6, ls=":")
    ax.axhline(0.99, color="#999999", lw=0.6, ls=":")
    marks = [Line2D([], [], ls="", marker="o", color="#bbbbbb", mec="black", label="p50"),
             Line2D([], [], ls="", marker="^", color="#bbbbbb", mec="black", label="p99")]
    side.add_artist(side.legend(handles=marks, loc="upper left", bbox_to_anchor=(0, 0.62),
                                title="markers"))
    handles, labels = ax.get_legend_handles_labels()
    side.legend(handles, labels, loc="upper left", bbox_to_anchor=(0, 1.0), title="design",
                handlelength=3)
    width = max(max(len(r[0]) for r in rows), 4)
    lines = [f"{'':{width}} {'p50':>7} {'p99':>7} {'max':>7}"]
    lines += [f"{n:{width}} {fmt_us(a):>7} {fmt_us(b):>7} {fmt_us(c):>7}"
              for n, a, b, c, _ in rows]
    lines.append(f"n = {rows[0][4]} per design" if len({r[4] for r in rows}) == 1
                 else "n = " + ", ".join(str(r[4]) for r in rows))
    side.text(0.0, 0.30, "\n".join(lines), transform=side.transAxes, ha="left", va="top",
              family="monospace", fontsize=6)
    return fig


def wakeup_cause(df: pd.DataFrame, by: str = "path") -> pd.Series:
    """The cause label of each interrupt row: ``kind: deliver-step`` or just the kind."""
    kind = df["kind"].astype(str)
    if by == "kind":
        return kind
    if by != "path":
        raise ValueError(f"by={by!r}: expected 'path' or 'kind'")
    # The delivery step is what decides the wake-up; the send step is the same for all.
    step = df["path"].astype(str).str.split(">").str[-1]
    return kind + ": " + step


@styled
def wakeup_histogram(results, by: str = "path", bins: int = 40):
    """Histogram of wake-up latency (interrupts whose target was inactive or halted).

    One panel per design (shared log x axis in µs, same bins), bars stacked by cause:
    ``by="path"`` gives ``kind: delivery step`` (e.g. ``timer: deliver.inactive.timer``),
    ``by="kind"`` the interrupt kind. Only interrupts raised after the warmup and handled
    are counted. Returns the Figure.
    """
    res = as_results(results)
    data = {}
    for name, r in res.items():
        df = r.measured()
        df = df[df["woke"] & df["delivery_ns"].notna()]
        data[name] = (df["delivery_ns"].to_numpy(dtype=float), wakeup_cause(df, by).to_numpy())
    everything = np.concatenate([d for d, _ in data.values()]) if data else np.zeros(0)
    n = max(len(res), 1)
    fig = new_figure(7.0, 1.2 + 1.5 * n)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(f"{scenario_name(res)}: wake-up latency by cause")
    if len(everything) == 0:
        empty_note(axes[0], "no wake-ups (no interrupt found its context inactive or halted)")
        axes[-1].set_xlabel(f"wake-up latency ({US})")
        return fig
    edges = log_bins(np.maximum(everything, FLOOR_NS), bins)
    causes = sorted({c for _, cs in data.values() for c in cs})
    ccol = category_colors(causes)
    dcol = design_colors(list(res))
    for ax, (name, (d, cs)) in zip(axes, data.items()):
        ax.set_xscale("log")
        title = f"{name}: {len(d)} wake-ups"
        if len(d):
            title += f", p50 {fmt_us(np.percentile(d, 50))}, p99 {fmt_us(np.percentile(d, 99))}"
            present = [c for c in causes if (cs == c).any()]
            ax.hist([np.maximum(d[cs == c], FLOOR_NS) / 1e3 for c in present], bins=edges,
                    stacked=True, color=[ccol[c] for c in present], label=present,
                    edgecolor="white", linewidth=0.3)
        else:
            empty_note(ax, "no wake-ups")
        ax.set_title(title, color=dcol[name], loc="left", fontsize=9)
        ax.set_ylabel("count")
    handles = [Line2D([], [], lw=6, color=ccol[c], label=c) for c in causes]
    axes[0].legend(handles=handles, title="cause", loc="upper right")
    axes[-1].set_xlabel(f"wake-up latency ({US}, log scale)")
    return fig


def metric_unit(metric: str):
    """(unit label, multiplier) to display a summary metric; ns metrics are shown in µs."""
    m = metric.lower()
    if m.endswith("_per_s"):
        return "1/s", 1.0
    if m.endswith("_ns") or m.startswith(("delivery_", "response_", "wakeup_", "roundtrip_",
                                          "switch_mean", "switch_p99", "latency")):
        return US, 1e-3
    if m.startswith(("residency", "compute_share", "vtl0_tax")) or m.endswith("_share"):
        return "%", 100.0
    return "", 1.0


def _t95(dof: int) -> float:
    return t_quantile(0.975, dof)


def _line_stats(g: pd.DataFrame, metric: str, x: str) -> pd.DataFrame:
    """Mean and 95 % band of *metric* per x value (given CI columns, else from replications)."""
    lo_c, hi_c = f"{metric}_ci_low", f"{metric}_ci_high"
    rows = []
    for xv, gg in g.groupby(x, sort=True):
        v = pd.to_numeric(gg[metric], errors="coerce").dropna().to_numpy(dtype=float)
        if len(v) == 0:
            continue
        mean = float(v.mean())
        if lo_c in gg and hi_c in gg:
            lo = float(pd.to_numeric(gg[lo_c], errors="coerce").mean())
            hi = float(pd.to_numeric(gg[hi_c], errors="coerce").mean())
        elif len(v) > 1:
            half = _t95(len(v) - 1) * float(v.std(ddof=1)) / np.sqrt(len(v))
            lo, hi = mean - half, mean + half
        else:
            lo = hi = np.nan
        rows.append((xv, mean, lo, hi, len(v)))
    return pd.DataFrame(rows, columns=[x, "mean", "lo", "hi", "n"])


@styled
def latency_vs_vcpus(df: pd.DataFrame, metric: str, x: str = "vm.vps", hue: str = "design",
                     unit: str | None = None):
    """A sweep metric against a grid key, one line per *hue* value, with 95 % bands.

    *df* is a sweep's tidy DataFrame (one row per run) with columns *x*, *hue* (optional)
    and *metric*. The band is ``<metric>_ci_low``..``<metric>_ci_high`` when those columns
    exist, else a Student-t interval over the replications of each point. Metrics in ns
    (``delivery_p99``, ``..._ns``) are shown in µs; pass *unit* to label the values as
    they are instead. Returns the Figure.
    """
    for col in (x, metric):
        if col not in df.columns:
            raise KeyError(f"column {col!r} not in the sweep table (columns: {list(df.columns)})")
    if unit is None:
        unit, mult = metric_unit(metric)
    else:
        mult = 1.0
    groups = list(df.groupby(hue, sort=False)) if hue in df.columns else [(metric, df)]
    names = [str(k) for k, _ in groups]
    colors = (design_colors(names) if hue == "design"
              else category_colors(names))
    fig = new_figure(6.5, 4.0)
    ax = fig.add_subplot()
    allv = []
    for (_, g), name in zip(groups, names):
        st = _line_stats(g, metric, x)
        if st.empty:
            continue
        xs = st[x].to_numpy()
        c = colors[name]
        ax.plot(xs, st["mean"] * mult, "-o", color=c, lw=1.6, ms=4, label=name)
        if st["lo"].notna().any():
            ax.fill_between(xs, st["lo"] * mult, st["hi"] * mult, color=c, alpha=0.18, lw=0)
        allv.extend((st["mean"] * mult).tolist())
    xv = pd.to_numeric(df[x], errors="coerce").dropna()
    if len(xv) and xv.min() > 0 and xv.max() / xv.min() >= 8:
        ax.set_xscale("log", base=2)
        ticks = sorted(xv.unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    pos = [v for v in allv if v > 0]
    if pos and max(pos) / min(pos) >= 100:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} ({unit})" if unit else metric)
    name = f"{df['scenario'].iloc[0]}: " if "scenario" in df.columns and len(df) else ""
    ax.set_title(f"{name}{metric} vs {x} (mean, 95% band)")
    if allv:
        ax.legend(title=hue if hue in df.columns else None)
    else:
        empty_note(ax, f"no values of {metric}")
    return fig
