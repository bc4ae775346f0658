"""Colours, units and small helpers shared by the plot functions.

Colours come from the Okabe-Ito palette (safe for the common colour-vision deficiencies).
Each built-in design has a FIXED colour, so a design looks the same in every plot; other
designs get a colour from a fallback list chosen from a hash of their name (stable across
plots), with collisions inside one figure resolved in order. VTLs and the non-guest states
(transitions, exits, idle) have fixed colours too.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..atomic import atomic_write

#: Fixed colour of each built-in design (Okabe-Ito).
DESIGN_COLORS = {
    "apic-id-groups": "#d55e00",   # vermillion
    "apic-namespaces": "#e69f00",  # orange
    "vm-per-vtl": "#0072b2",       # blue
    "planes": "#009e73",           # bluish green
    "planes-inkernel": "#cc79a7",  # reddish purple
}
#: Fixed dash pattern of each built-in design, so that lines which coincide stay visible.
DESIGN_DASHES = {
    "apic-id-groups": "solid",
    "apic-namespaces": (0, (6, 2)),
    "vm-per-vtl": (0, (1.5, 1.5)),
    "planes": (0, (7, 2, 1.5, 2)),
    "planes-inkernel": (0, (3, 2)),
}
FALLBACK_DASHES = ("solid", (0, (6, 2)), (0, (1.5, 1.5)), (0, (7, 2, 1.5, 2)), (0, (3, 2)))
#: Colours for designs that are not built in (remaining Okabe-Ito, then Paul Tol's muted).
FALLBACK_COLORS = ("#56b4e9", "#000000", "#332288", "#117733", "#882255", "#44aa99",
                   "#999933", "#aa4499", "#888888", "#ddcc77")
#: Fixed colour of VTL0, VTL1, ... (VTL0, the bulk of the time, is the light one).
VTL_COLORS = ("#56b4e9", "#d55e00", "#009e73", "#cc79a7", "#0072b2", "#e69f00",
              "#332288", "#117733", "#882255", "#44aa99", "#999933", "#aa4499",
              "#661100", "#6699cc", "#888888", "#ddcc77")
#: Fixed colours of the time a VP spends outside guest code.
STATE_COLORS = {"transition": "#000000", "exit": "#f0e442", "idle": "#d9d9d9",
                "steal": "#cc79a7"}  # steal: waiting for a host CPU (docs/host.md)
#: Colours for the causes of a wake-up (any categorical series that is not a design).
CATEGORY_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
                   "#000000", "#f0e442", "#882255", "#44aa99", "#999933", "#888888")

#: Matplotlib settings used for every vsmsim figure.
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
}
#: Resolution of written raster files (dots per inch).
SAVE_DPI = 150
US = "µs"


def styled(fn):
    """Run a figure-building function under :data:`STYLE` (no global state is changed)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


def new_figure(width: float, height: float, **kw) -> Figure:
    """A Figure that is not registered with pyplot (nothing global, nothing shown)."""
    return Figure(figsize=(width, height), layout="constrained", **kw)


def design_color(name: str) -> str:
    """The colour of design *name*: fixed for built-ins, stable hash for the others."""
    if name in DESIGN_COLORS:
        return DESIGN_COLORS[name]
    return FALLBACK_COLORS[zlib.crc32(name.encode()) % len(FALLBACK_COLORS)]


def design_colors(names) -> dict[str, str]:
    """Colours for several designs shown together: fixed ones, then distinct fallbacks."""
    out = {}
    used = set()
    for n in names:
        if n in DESIGN_COLORS:
            out[n] = DESIGN_COLORS[n]
            used.add(out[n])
    for n in names:
        if n in out:
            continue
        start = zlib.crc32(n.encode()) % len(FALLBACK_COLORS)
        for k in range(len(FALLBACK_COLORS)):
            c = FALLBACK_COLORS[(start + k) % len(FALLBACK_COLORS)]
            if c not in used:
                break
        out[n] = c
        used.add(c)
    return out


def design_dashes(names) -> dict:
    """Line styles for several designs: fixed for built-ins, cycling for the others."""
    out = {}
    k = 0
    for n in names:
        if n in DESIGN_DASHES:
            out[n] = DESIGN_DASHES[n]
        else:
            out[n] = FALLBACK_DASHES[k % len(FALLBACK_DASHES)]
            k += 1
    return out


def log_axis_us(axis) -> None:
    """Plain-number tick labels (1, 2, 5, 10, 20 ...) on a log axis of µs."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    axis.set_minor_formatter(NullFormatter())


def vtl_color(vtl: int) -> str:
    """The colour of VTL *vtl*."""
    return VTL_COLORS[int(vtl) % len(VTL_COLORS)]


def category_colors(names) -> dict[str, str]:
    """Colours for a list of categories (e.g. wake-up causes), in order."""
    return {n: CATEGORY_COLORS[i % len(CATEGORY_COLORS)] for i, n in enumerate(names)}


def as_results(results) -> dict:
    """Normalise a Comparison, a dict {design: Result}, a Result or a list of Results."""
    from ..results import Result

    if isinstance(results, Result):
        return {results.design: results}
    if hasattr(results, "results") and isinstance(results.results, dict):
        return dict(results.results)
    if isinstance(results, dict):
        return dict(results)
    if isinstance(results, (list, tuple)):
        return {r.design: r for r in results}
    raise TypeError(f"expected a Comparison, a dict {{design: Result}} or a Result, "
                    f"got {type(results).__name__}")


def scenario_name(results: dict) -> str:
    """The scenario name shared by *results* (the first one's)."""
    for r in results.values():
        return r.name
    return "scenario"


def fmt_us(ns: float) -> str:
    """A latency in ns written in µs with 3 significant digits (``12.3µs``)."""
    us = float(ns) / 1e3
    if us >= 1000:
        return f"{us / 1e3:.3g}ms"
    return f"{us:.3g}{US}"


def fmt_count(v: float) -> str:
    """A rate or count in short form (``950``, ``12k``, ``3.4M``)."""
    v = float(v)
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.3g}"


def empty_note(ax, text: str) -> None:
    """Write *text* in the middle of an axes that has no data."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color="#555555")


def log_bins(values_ns, n: int = 40):
    """Log-spaced bin edges in µs covering *values_ns* (at least one decade)."""
    v = np.asarray(values_ns, dtype=float) / 1e3
    v = v[v > 0]
    lo = v.min() if len(v) else 1e-3
    hi = v.max() if len(v) else 1.0
    lo = 10 ** np.floor(np.log10(lo))
    hi = 10 ** np.ceil(np.log10(hi * 1.0001))
    if hi <= lo:
        hi = lo * 10
    return np.logspace(np.log10(lo), np.log10(hi), n + 1)


#: Smallest latency drawn on log axes (ns); zero latencies are drawn there.
FLOOR_NS = 1.0


def save_figure(fig: Figure, out_dir, stem: str, formats) -> list[Path]:
    """Write *fig* as ``out_dir/stem.<fmt>`` for each format, atomically; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        fmt = fmt.lstrip(".").lower()
        final = out_dir / f"{stem}.{fmt}"
        atomic_write(final, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=SAVE_DPI))
        paths.append(final)
    return paths
