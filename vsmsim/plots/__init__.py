"""Plots of vsmsim results (matplotlib; figures are returned, never shown).

Every function returns a :class:`matplotlib.figure.Figure` that is not registered with
pyplot, so nothing global changes and nothing pops up; notebooks display it, scripts save
it with ``fig.savefig`` or use :func:`plot_comparison` / :func:`plot_saved`. Times are
shown in µs. A design has the same colour in every plot (:data:`DESIGN_COLORS`).

- :func:`latency_cdf`: delivery or response latency CDF per design, p50/p99 marked;
- :func:`wakeup_histogram`: wake-up latency per design, stacked by cause;
- :func:`timeline`: per-VP rows showing which VTL runs when, transitions and exits;
- :func:`timeline_zoom`: the timeline around one higher-VTL interrupt;
- :func:`residency_bars`: share of VP time in each VTL, transitions, exits, idle;
- :func:`counter_bars`: exits, uexits, wake-ups, ioctls per second per design;
- :func:`latency_vs_vcpus`: a sweep metric against a grid key, with 95 % bands.
"""

from .bars import counter_bars, residency_bars, residency_shares
from .files import load_saved, plot_comparison, plot_results, plot_saved
from .latency import latency_cdf, latency_vs_vcpus, wakeup_histogram
from .style import (
    DESIGN_COLORS,
    STATE_COLORS,
    VTL_COLORS,
    design_color,
    design_colors,
    vtl_color,
)
from .timeline import timeline, timeline_zoom

__all__ = ["latency_cdf", "wakeup_histogram", "timeline", "timeline_zoom", "residency_bars", "counter_bars",
           "latency_vs_vcpus", "plot_comparison", "plot_results", "plot_saved", "load_saved",
           "residency_shares", "DESIGN_COLORS", "VTL_COLORS", "STATE_COLORS", "design_color",
           "design_colors", "vtl_color"]
