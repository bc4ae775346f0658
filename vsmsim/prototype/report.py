"""Tables, files and the plot of a prototype run (predicted vs measured per design)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..atomic import atomic_text, atomic_write
from ..plots.style import design_color, new_figure, save_figure, styled

#: The band ``--check`` accepts for predicted / measured.
CHECK_BAND = (0.8, 1.25)


def _us(ns: float) -> str:
    return f"{ns / 1e3:8.1f}"


def format_summary(rows: list[dict]) -> str:
    """The side-by-side table: measured (median, p10, p90, n) beside predicted, ratio."""
    head = (f"{'design':15s} {'placement':10s} {'meas med':>8s} {'p10':>8s} {'p90':>8s} "
            f"{'n':>6s} {'vmm med':>8s} {'pred':>8s} {'ratio':>6s} {'table':>8s} "
            f"{'ratio':>6s} {'drift':>6s}  load")
    lines = [head + "   (us; pred = the built-in table under the calibrated profile + the "
             "Python VMM's calls + the placement, at the host speed of the run; table = the "
             "table alone at the calibration's; ratio = predicted / measured; drift = host "
             "speed probe during the run / during the calibration)"]
    for r in rows:
        lines.append(
            f"{r['design']:15s} {r['placement']:10s} {_us(r['measured_median_ns'])} "
            f"{_us(r['measured_p10_ns'])} {_us(r['measured_p90_ns'])} {r['n']:6d} "
            f"{_us(r['vmm_median_ns'])} {_us(r['predicted_ns'])} {r['ratio']:6.3f} "
            f"{_us(r['table_only_ns'])} {r['table_only_ratio']:6.3f} "
            f"{r.get('drift', 1.0):6.3f}  {r['load']}")
    return "\n".join(lines)


def format_segments(steps: list[dict]) -> str:
    """The per-step breakdown: measured median beside predicted per segment."""
    lines = [f"{'design':15s} {'placement':10s} {'segment':28s} {'measured':>9s} "
             f"{'predicted':>9s} {'ratio':>6s}  verdict"]
    for s in steps:
        ratio = s["ratio"]
        verdict = ("over-priced" if ratio > 1.1 else "under-priced" if ratio < 0.9 else "ok")
        lines.append(f"{s['design']:15s} {s['placement']:10s} {s['segment']:30s} "
                     f"{s['measured_ns'] / 1e3:9.2f} {s['predicted_ns'] / 1e3:9.2f} "
                     f"{ratio:6.3f}  {verdict}")
    return "\n".join(lines)


def check(rows: list[dict], band=CHECK_BAND) -> list[str]:
    """One line per design and placement whose predicted/measured is outside *band*."""
    bad = []
    for r in rows:
        if not band[0] <= r["ratio"] <= band[1]:
            bad.append(f"{r['design']} {r['placement']}: predicted/measured = {r['ratio']:.3f} "
                       f"outside {band[0]}-{band[1]} (measured median "
                       f"{r['measured_median_ns'] / 1e3:.1f} us, p10 "
                       f"{r['measured_p10_ns'] / 1e3:.1f}, p90 "
                       f"{r['measured_p90_ns'] / 1e3:.1f}; predicted "
                       f"{r['predicted_ns'] / 1e3:.1f} us)")
    return bad


def save(out: Path, rows: list[dict], steps: list[dict], calls: pd.DataFrame,
         meta: dict) -> list[Path]:
    """Write ``prototype.csv`` / ``.parquet`` (summary), ``segments.csv``, ``calls.parquet``
    (every kept call) and ``run.json``, each atomically; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    summary, seg = pd.DataFrame(rows), pd.DataFrame(steps)
    written = [
        atomic_write(out / "prototype.csv", lambda p: summary.to_csv(p, index=False)),
        atomic_write(out / "segments.csv", lambda p: seg.to_csv(p, index=False)),
        atomic_text(out / "run.json", json.dumps(meta, indent=2, sort_keys=True, default=str)),
    ]
    try:
        written.append(atomic_write(out / "prototype.parquet",
                                    lambda p: summary.to_parquet(p, index=False)))
        written.append(atomic_write(out / "calls.parquet",
                                    lambda p: calls.to_parquet(p, index=False)))
    except ImportError:  # no Parquet engine: CSV only
        written.append(atomic_write(out / "calls.csv", lambda p: calls.to_csv(p, index=False)))
    return written


@styled
def plot(rows: list[dict], out: Path) -> list[Path]:
    """``prototype.png``: per design and placement, the measured median with its p10-p90
    spread beside the prediction, and the built-in table alone (no Python VMM, no
    placement) as a diamond."""
    labels = [f"{r['design']}\n{r['placement']}" for r in rows]
    fig = new_figure(max(5.0, 1.6 * len(rows) + 1.5), 4.2)
    ax = fig.add_subplot()
    xs = range(len(rows))
    for x, r in zip(xs, rows):
        color = design_color(r["design"])
        med = r["measured_median_ns"] / 1e3
        ax.bar(x - 0.2, med, width=0.36, color=color, alpha=0.85,
               label="measured (median, p10-p90)" if x == 0 else None)
        ax.errorbar(x - 0.2, med, yerr=[[med - r["measured_p10_ns"] / 1e3],
                                        [r["measured_p90_ns"] / 1e3 - med]],
                    color="black", capsize=4, lw=1)
        ax.bar(x + 0.2, r["predicted_ns"] / 1e3, width=0.36, color=color, alpha=0.35,
               hatch="//", edgecolor=color,
               label="predicted (built-in table + Python VMM + placement, at the run's "
                     "host speed)" if x == 0 else None)
        ax.plot([x + 0.2], [r["table_only_ns"] / 1e3], marker="D", color="black",
                ls="none", label="built-in table alone" if x == 0 else None)
        ax.annotate(f"{r['ratio']:.2f}", (x + 0.2, r["predicted_ns"] / 1e3), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("VTL call round trip (µs)")
    ax.set_title("Prototype VTL call round trip: measured vs predicted (ratio over bars)",
                 fontsize=10)
    top = max(max(r["measured_p90_ns"], r["predicted_ns"]) for r in rows) / 1e3
    ax.set_ylim(0, top * 1.3)          # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, out, "prototype", ("png",))
