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
    new_figure,
    scenario_name,
    styled,
)

_MAX_POINTS = 4000  # points per CDF line; the tail is kept at full resolution


def _cdf_points(ns: np.ndarray, floor_us: float | None = None):
    """Sorted latencies in µs and their cumulative fractions, thinned for long runs.

    Zeros (a log axis cannot show them) are placed at *floor_us*, the axis' left edge.
    """
    x = np.sort(ns.astype(float)) / 1e3
    if floor_us is not None:
        x = np.where(x > 0, x, floor_us)
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
    k = f"{kind} interrupts" if kind not in (None, "vtl-call", "intercept") else (
        "all interrupts" if kind is None else f"{kind}s")
    v = f"to VTL{vtl}" if vtl is not None else "to every VTL"
    return f"{k} {v}"


WHICH = {"delivery": "delivery latency (raise to handler start)",
         "response": "response time (raise to handler end)",
         "roundtrip": "round trip (call to the caller's resumption)"}


def latencies(result, kind=None, vtl=None, which: str = "delivery") -> np.ndarray:
    """ns of *which* (delivery, response or roundtrip) for the measured rows selected."""
    if which != "roundtrip":
        return result.latency(kind, vtl, which).to_numpy()
    df = result.measured()
    if kind is not None:
        df = df[df["kind"] == kind]
    if vtl is not None:
        df = df[df["vtl"] == vtl]
    return (df["resumed_ns"] - df["raised_ns"]).dropna().astype("int64").to_numpy()


_QS = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9)


def coinciding(data: dict, rtol: float = 0.02) -> list[tuple[str, str]]:
    """Pairs of designs whose CDF lines lie on each other: the percentiles 1 to 99.9 each
    within *rtol* (2 %) of the other's."""
    names = list(data)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            x, y = data[a], data[b]
            if len(x) and len(y) and np.allclose(np.percentile(x, _QS), np.percentile(y, _QS),
                                                 rtol=rtol, atol=1.0):
                out.append((a, b))
    return out


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
    if which not in WHICH:
        raise ValueError(f"which={which!r}: expected 'delivery', 'response' or 'roundtrip'")
    res = as_results(results)
    colors = design_colors(list(res))
    dashes = design_dashes(list(res))
    fig = new_figure(9.0, 4.4)
    ax, side = fig.subplots(1, 2, width_ratios=[3.0, 1.3])
    side.set_axis_off()
    data = {name: latencies(r, kind, vtl, which) for name, r in res.items()}
    data = {k: v for k, v in data.items() if len(v)}
    pos = np.concatenate([v[v > 0] for v in data.values()]) if data else np.zeros(0)
    # The x range is the data's: from just below the smallest non-zero latency to just
    # above the largest (zeros are drawn at the left edge and counted in a note).
    lo_us = float(pos.min()) / 1e3 / 1.25 if len(pos) else 0.1
    hi_us = float(pos.max()) / 1e3 * 1.25 if len(pos) else 10.0
    if hi_us <= lo_us * 1.5:
        lo_us, hi_us = lo_us / 1.5, hi_us * 1.5
    rows = []
    zeros = {}
    for name, ns in data.items():
        x, y = _cdf_points(ns, floor_us=lo_us)
        c = colors[name]
        ax.step(x, y, where="post", color=c, ls=dashes[name], lw=1.8, label=name)
        p50, p99 = np.percentile(ns, 50), np.percentile(ns, 99)
        ax.plot([max(p50 / 1e3, lo_us)], [0.5], "o", color=c, mec="black", mew=0.6, ms=6,
                zorder=5)
        ax.plot([max(p99 / 1e3, lo_us)], [0.99], "^", color=c, mec="black", mew=0.6, ms=7,
                zorder=5)
        rows.append((name, p50, p99, ns.max(), len(ns)))
        if (ns == 0).any():
            zeros[name] = int((ns == 0).sum())
    ax.set_xscale("log")
    log_axis_us(ax.xaxis)
    ax.set_xlim(lo_us, hi_us)
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
    ax.set_xlabel(f"{WHICH[which]} ({US}, log scale)")
    ax.set_ylabel("fraction of interrupts at or below" + (" (logit scale)" if tail else ""))
    fig.suptitle(f"{scenario_name(res)}: {which} of {_group_label(kind, vtl)}, CDF per design")
    if not rows:
        empty_note(ax, "no handled interrupts match")
        return fig
    ax.axhline(0.5, color="#999999", lw=0.6, ls=":")
    ax.axhline(0.99, color="#999999", lw=0.6, ls=":")
    marks = [Line2D([], [], ls="", marker="o", color="#bbbbbb", mec="black", label="p50"),
             Line2D([], [], ls="", marker="^", color="#bbbbbb", mec="black", label="p99")]
    side.add_artist(side.legend(handles=marks, loc="upper left", bbox_to_anchor=(0, 0.64),
                                title="markers"))
    handles, labels = ax.get_legend_handles_labels()
    side.legend(handles, labels, loc="upper left", bbox_to_anchor=(0, 1.0), title="design",
                handlelength=3)
    width = max(max(len(r[0]) for r in rows), 4)
    lines = [f"{'':{width}} {'p50':>7} {'p99':>7} {'max':>7} {'n':>6}"]
    lines += [f"{n:{width}} {fmt_us(a):>7} {fmt_us(b):>7} {fmt_us(c):>7} {k:>6}"
              for n, a, b, c, k in rows]
    notes = [f"{a} and {b} coincide\n  (percentiles 1-99.9 within 2 %)" for a, b in coinciding(data)]
    notes += [f"{name}: {k} at 0 ns, drawn at the left edge" for name, k in zeros.items()]
    side.text(0.0, 0.36, "\n".join(lines + notes), transform=side.transAxes, ha="left",
              va="top", family="monospace", fontsize=7.5)
    return fig


#: What each delivery step means for a wake-up, in words (legend of the wake-up plot).
DELIVERY_WORDS = {
    "deliver.inactive": "target VTL inactive: notify, switch up",
    "deliver.inactive-halted": "VP halted in a lower VTL: wake, switch up",
    "deliver.halted": "VP halted in the target VTL: wake it",
    "deliver.lower": "target VTL below the running one: waits in its IRR for the return",
    "deliver.running": "target VTL running",
}


def cause_words(cause: str) -> str:
    """``timer: deliver.inactive.timer`` -> ``timer: target VTL inactive: ... (deliver...)``."""
    kind, _, step = cause.partition(": ")
    if not step:
        return cause
    base = step.replace(".timer", "")
    for key in sorted(DELIVERY_WORDS, key=len, reverse=True):
        if base.startswith(key):
            return f"{kind}: {DELIVERY_WORDS[key]} ({step})"
    return cause


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
    fig = new_figure(7.5, 2.2 + 1.5 * n)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(f"{scenario_name(res)}: wake-up latency (target context inactive or "
                 f"halted), by cause")
    if len(everything) == 0:
        empty_note(axes[0], "no wake-ups (no interrupt found its context inactive or halted)")
        axes[-1].set_xlabel(f"wake-up latency ({US})")
        return fig
    pos = everything[everything > 0]
    lo = float(pos.min()) / 1.15 if len(pos) else FLOOR_NS
    hi = float(everything.max()) * 1.15 if len(everything) else 10 * FLOOR_NS
    hi = max(hi, lo * 2)
    # Tight: from just below the fastest wake-up to just above the slowest (zeros at the
    # left edge), not rounded out to whole decades.
    edges = np.logspace(np.log10(lo / 1e3), np.log10(hi / 1e3), bins + 1)
    causes = sorted({c for _, cs in data.values() for c in cs})
    ccol = category_colors(causes)
    dcol = design_colors(list(res))
    for ax, (name, (d, cs)) in zip(axes, data.items()):
        ax.set_xscale("log")
        title = f"{name}: {len(d)} wake-ups"
        if len(d):
            title += f", p50 {fmt_us(np.percentile(d, 50))}, p99 {fmt_us(np.percentile(d, 99))}"
            present = [c for c in causes if (cs == c).any()]
            ax.hist([np.maximum(d[cs == c], lo) / 1e3 for c in present], bins=edges,
                    stacked=True, color=[ccol[c] for c in present], label=present,
                    edgecolor="white", linewidth=0.3)
        else:
            empty_note(ax, "no wake-ups")
        ax.set_title(title, color=dcol[name], loc="left", fontsize=9)
        ax.set_ylabel("wake-ups")
        ax.set_xlim(edges[0], edges[-1])
        log_axis_us(ax.xaxis)
    handles = [Line2D([], [], lw=6, color=ccol[c], label=cause_words(c)) for c in causes]
    fig.legend(handles=handles, title="cause (interrupt kind: what the delivery had to do)",
               loc="outside lower center", ncols=1, fontsize=7.5)
    axes[-1].set_xlabel(f"wake-up latency ({US}, log scale)")
    return fig


#: Grid keys in words, for axis labels.
KEY_WORDS = {"vm.vps": "VPs (vm.vps)", "vm.vtls": "VTLs (vm.vtls)", "design": "design"}


def column_label(column: str) -> str:
    """A sweep column (``delivery_p99[timer,vtl1]``) in words."""
    from ..labels import metric_label

    metric, _, quals = column.partition("[")
    parts = [q for q in quals.rstrip("]").split(",") if q]
    vtl = next((int(q[3:]) for q in parts if q.startswith("vtl") and q[3:].isdigit()), -1)
    kind = next((q for q in parts if not (q.startswith("vtl") and q[3:].isdigit())), "")
    if metric in ("residency", "compute_share") and not kind and vtl >= 0:
        kind = f"vtl{vtl}"
    return metric_label(metric, kind, vtl)


def _counts(df, metric, x, hue):
    """Runs per point behind each mean (the n of its interval)."""
    keys = [k for k in (x, hue) if k in df.columns]
    if "n" in df.columns:
        return df["n"].dropna().tolist()
    return df.groupby(keys)[metric].count().tolist() if keys else [df[metric].count()]


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
    words = column_label(metric)
    ax.set_xlabel(KEY_WORDS.get(x, x))
    ax.set_ylabel(f"{words} ({unit})" if unit else words)
    name = f"{df['scenario'].iloc[0]}: " if "scenario" in df.columns and len(df) else ""
    ns = sorted({int(v) for v in _counts(df, metric, x, hue)})
    reps = f", {ns[0]} runs per point" if len(ns) == 1 else (
        f", {ns[0]}-{ns[-1]} runs per point" if ns else "")
    ax.set_title(f"{name}{words}\nagainst {KEY_WORDS.get(x, x)} (mean and 95 % band{reps})")
    if allv:
        ax.legend(title=hue if hue in df.columns else None)
    else:
        empty_note(ax, f"no values of {metric}")
    return fig
