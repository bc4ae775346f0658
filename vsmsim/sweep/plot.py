"""A metric against a grid key with its confidence band (matplotlib, no pyplot state)."""

from __future__ import annotations

from ..errors import InputError


def _check(result, metric, x, hue):
    if not result.keys:
        raise InputError("plot: the sweep has no grid key to plot against")
    if metric not in result.metrics:
        near = [m for m in result.metrics if m.split("[")[0] == metric.split("[")[0]]
        hint = near or result.metrics[:12]
        raise InputError(f"plot: no metric column {metric!r}; e.g. {', '.join(hint)}")
    x = x or result.keys[0]
    if x not in result.keys:
        raise InputError(f"plot: x {x!r} is not a grid key; allowed: {', '.join(result.keys)}")
    if hue is None:
        rest = [k for k in result.keys if k != x]
        hue = rest[0] if rest else None
    elif hue not in result.keys:
        raise InputError(f"plot: hue {hue!r} is not a grid key; allowed: {', '.join(result.keys)}")
    return x, hue


def plot_metric(result, metric: str, x: str | None = None, hue: str | None = None):
    """Figure: mean of *metric* per value of grid key *x*, one line per value of *hue*,
    shaded between ``<metric>_ci_low`` and ``<metric>_ci_high``. Other grid keys, if any,
    are averaged over."""
    x, hue = _check(result, metric, x, hue)
    pts = result.points
    try:
        from ..plots import latency_vs_vcpus
    except ImportError:
        latency_vs_vcpus = None
    if latency_vs_vcpus is not None:
        return latency_vs_vcpus(pts, metric, x=x, hue=hue)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    groups = [(None, pts)] if hue is None else list(pts.groupby(hue, sort=False))
    numeric = pts[x].map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()
    for label, g in groups:
        g = g.groupby(x, sort=False)[[metric, f"{metric}_ci_low", f"{metric}_ci_high"]].mean()
        xs = list(g.index) if numeric else [str(v) for v in g.index]
        line, = ax.plot(xs, g[metric], marker="o",
                        label=None if label is None else f"{hue}={label}")
        ax.fill_between(xs, g[f"{metric}_ci_low"], g[f"{metric}_ci_high"],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    unit = result.units.get(metric, "")
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} ({unit})" if unit else metric)
    ax.set_title(f"{result.scenario.name}: {metric}, mean and 95 % CI "
                 f"({result.replications} replications)", fontsize=9)
    if numeric:
        ticks = sorted(set(pts[x]))
        if len(ticks) > 2 and ticks[0] > 0 and ticks[-1] / ticks[0] >= 16:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.grid(True, alpha=0.3)
    if hue is not None:
        ax.legend(fontsize=8)
    return fig
