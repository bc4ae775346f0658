"""Human names and number formats for summary metrics: tables, plots and reports share them.

A summary row is ``metric, kind, vtl, value, unit`` (docs/metrics.md); :func:`metric_label`
says it in words ("p99 delivery latency, timer to VTL1") and :func:`format_value` writes a
value with its unit the same way everywhere (``12.3 µs``, ``4.90 %``, ``12,345 /s``).
"""

from __future__ import annotations

import math

#: The words for each metric (its family, before kind and VTL).
METRIC_NAMES = {
    "count": "interrupts raised", "pending": "interrupts never handled",
    "delivery_mean": "mean delivery latency", "delivery_p50": "median delivery latency",
    "delivery_p99": "p99 delivery latency", "delivery_p99.9": "p99.9 delivery latency",
    "delivery_max": "max delivery latency", "delivery_n": "interrupts handled (n)",
    "response_mean": "mean response time", "response_p50": "median response time",
    "response_p99": "p99 response time", "response_p99.9": "p99.9 response time",
    "response_max": "max response time", "response_n": "interrupts finished (n)",
    "wakeup_p50": "median wake-up latency", "wakeup_p99": "p99 wake-up latency",
    "wakeup_n": "wake-ups (n)",
    "roundtrip_mean": "mean round trip", "roundtrip_p50": "median round trip",
    "roundtrip_p99": "p99 round trip", "roundtrip_n": "round trips (n)",
    "switch_count": "VTL switches", "switch_mean": "mean VTL switch time",
    "switch_p99": "p99 VTL switch time",
    "residency": "share of VP time", "compute_share": "VP time in background compute",
    "vmm_cpu_share": "VMM share of the VM's CPU time", "vmm_cpus": "VMM CPUs busy",
    "vtl0_tax": "VTL0 tax (work lost to VSM)",
}
#: The sample-size metric behind each percentile family.
SAMPLE_OF = {"delivery": "delivery_n", "response": "response_n", "wakeup": "wakeup_n",
             "roundtrip": "roundtrip_n", "switch": "switch_count"}


def metric_label(metric: str, kind: str = "", vtl: int = -1) -> str:
    """``p99 delivery latency, timer to VTL1``; counters: ``uexits per second``."""
    if metric.endswith("_per_s"):
        base = metric[:-len("_per_s")].replace("_", " ") + " per second"
    else:
        base = METRIC_NAMES.get(metric, metric.replace("_", " "))
    kind = "" if kind is None or (isinstance(kind, float) and math.isnan(kind)) else str(kind)
    vtl = int(vtl) if vtl is not None and vtl == vtl else -1
    if metric in ("residency", "compute_share"):
        return f"{base}: {kind.upper() if kind.startswith('vtl') else kind}"
    if metric.startswith("switch_"):
        return f"{base} ({kind})" if kind else base
    where = []
    if kind:
        where.append(kind)
    if vtl >= 0 and not metric.startswith("vtl0_"):
        where.append(f"VTL{vtl}")
    return f"{base}, {' to '.join(where)}" if where else base


def sample_metric(metric: str) -> str | None:
    """The ``*_n`` metric holding the sample size of percentile *metric* (None if none)."""
    family = metric.split("_")[0]
    if metric.endswith("_n") or metric == "switch_count":
        return None
    if family in SAMPLE_OF and any(p in metric for p in ("_p", "_mean", "_max")):
        return SAMPLE_OF[family]
    return None


def format_value(value, unit: str, ascii: bool = False) -> str:
    """*value* in *unit* (ns, share, count, 1/s, CPUs) for people: ``12.3 µs``, ``4.90 %``.

    ns are written in ns below 1 µs, µs below 1 ms, ms below 1 s, else s; shares in percent with
    three significant digits; counts with thousands separators; *ascii* writes ``us``
    for µs (for plain-text mail).
    """
    if value is None or value != value:
        return "-"
    v = float(value)
    if unit == "ns":
        us = "us" if ascii else "µs"
        if abs(v) < 1e3:
            return f"{v:.0f} ns"
        if abs(v) < 1e6:
            return f"{v / 1e3:.3g} {us}" if abs(v) < 1e5 else f"{v / 1e3:.0f} {us}"
        if abs(v) < 1e9:
            return f"{v / 1e6:.3g} ms"
        return f"{v / 1e9:.3g} s"
    if unit == "share":
        return f"{v * 100:.3g} %"
    if unit == "count":
        return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"
    if unit == "1/s":
        return f"{v:,.0f} /s"
    if unit == "CPUs":
        return f"{v:.3g} CPUs"
    return f"{v:.4g}"


def format_interval(mean, lo, hi, unit: str, ascii: bool = False) -> str:
    """``12.3 µs ±0.4`` (mean and the half width of its interval, in the mean's unit)."""
    text = format_value(mean, unit, ascii)
    if lo is None or lo != lo or hi != hi:
        return text
    half = (float(hi) - float(lo)) / 2
    if half <= 1e-9 * max(1.0, abs(float(mean))):
        half = 0.0  # identical replications: float noise of the mean, not an interval
    num, _, suffix = text.partition(" ")
    scale = {"µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9, "ns": 1.0, "%": 0.01}.get(suffix, 1.0)
    h = half / scale
    hs = f"{h:.2g}" if h < 100 else f"{h:,.0f}"
    return f"{num} {'+-' if ascii else '±'}{hs} {suffix}".rstrip()
