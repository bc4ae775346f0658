"""Writing plot files: all plots of a comparison, or of a saved result directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import names
from .bars import counter_bars, residency_bars
from .latency import latency_cdf, latency_vs_vcpus, wakeup_histogram
from .style import as_results, save_figure
from .timeline import timeline, timeline_zoom, zoom_event

#: Subdirectory of a saved comparison holding the VSM-off baseline (not a design).
BASELINE_DIR = names.BASELINE_DIR


def _latency_groups(res: dict) -> list[tuple[str, int]]:
    """(kind, vtl) pairs with at least one handled interrupt after the warmup, any design."""
    seen = set()
    for r in res.values():
        df = r.measured()
        df = df[df["start_ns"].notna()]
        for k, v in df.groupby(["kind", "vtl"], observed=True).size().index:
            seen.add((str(k), int(v)))
    return sorted(seen, key=lambda kv: (kv[1], kv[0]))


_slug = names.plot_stem


def clear_plots(out_dir) -> list[Path]:
    """Remove the plot files (png, svg) directly in *out_dir*: a re-plot owns its directory,
    so plots of groups or metrics that no longer exist do not stay beside the new ones."""
    out_dir = Path(out_dir)
    gone = []
    if out_dir.is_dir():
        for fmt in names.PLOT_FORMATS:
            for f in out_dir.glob(f"*.{fmt}"):
                f.unlink(missing_ok=True)
                gone.append(f)
    return gone


def plot_results(results, out_dir, formats=("png",)) -> list[Path]:
    """Write every standard plot of *results* (Comparison, dict or Result) into *out_dir*.

    Files: ``latency_<kind>_vtl<v>`` (delivery CDF per interrupt kind and VTL;
    ``roundtrip_<kind>_vtl<v>`` for VTL calls and intercepts), ``wakeups`` (when any
    interrupt woke its target), ``residency``, ``counters``, ``timeline`` and
    ``timeline_zoom`` (around the first higher-VTL interrupt, when a timeline was
    recorded); one file per format. Plot files already in *out_dir* are removed first. Each is written atomically. Returns the paths.
    """
    res = as_results(results)
    written = []
    clear_plots(out_dir)

    def emit(fig, stem):
        try:
            written.extend(save_figure(fig, out_dir, stem, formats))
        finally:
            fig.clear()

    from ..workloads import call_kinds

    if any(r.tables == "summary" for r in res.values()):
        # record.tables = "summary": no rows, so only the plots of totals
        emit(residency_bars(res), "residency")
        emit(counter_bars(res), "counters")
        return written
    for kind, vtl in _latency_groups(res):
        if kind in call_kinds():  # delivery of a call is its switch, a constant: the
            emit(latency_cdf(res, kind=kind, vtl=vtl, which="roundtrip"),  # round trip varies
                 f"roundtrip_{_slug(kind)}_vtl{vtl}")
        else:
            emit(latency_cdf(res, kind=kind, vtl=vtl), f"latency_{_slug(kind)}_vtl{vtl}")
    if any(bool(r.measured()["woke"].any()) for r in res.values()):
        emit(wakeup_histogram(res), "wakeups")
    emit(residency_bars(res), "residency")
    emit(counter_bars(res), "counters")
    emit(timeline(res if len(res) > 1 else next(iter(res.values())), vps=_timeline_vps(res)),
         "timeline")
    first = next(iter(res.values()))
    if first.timeline is not None and zoom_event(first) is not None:
        emit(timeline_zoom(first), "timeline_zoom")
    return written


def _timeline_vps(res: dict):
    # With several designs stacked, fewer VPs per panel keep the figure readable.
    nvp = int(next(iter(res.values())).scenario["vm"]["vps"])
    return list(range(min(nvp, 4 if len(res) > 2 else 8)))


def plot_comparison(cmp, out_dir, formats=("png",)) -> list[Path]:
    """Write all comparison plots of *cmp* (a Comparison or dict) into *out_dir*.

    See :func:`plot_results` for the files. Returns the written paths.
    """
    return plot_results(cmp, out_dir, formats)


def load_saved(path) -> dict:
    """Results saved by ``Result.save`` or ``Comparison.save`` as {design: Result}.

    Raises :class:`vsmsim.errors.InputError` for a directory that is neither.
    """
    from ..errors import InputError
    from ..results import load_result

    path = Path(path)
    if (path / names.MANIFEST).is_file():
        r = load_result(path)
        return {r.design: r}
    subdirs = {}
    if path.is_dir():
        for d in sorted(path.iterdir()):
            if d.is_dir() and d.name != BASELINE_DIR and not d.name.startswith(".") \
                    and (d / names.MANIFEST).is_file():
                subdirs[d.name] = d
    if not subdirs:
        raise InputError(f"{path}: not a vsmsim result or comparison directory")
    order = list(subdirs)
    csv = path / names.COMPARISON
    if csv.is_file():
        try:
            cols = list(pd.read_csv(csv, nrows=0).columns)
        except (OSError, ValueError, pd.errors.ParserError):
            cols = []
        order = [c for c in cols if c in subdirs] + [d for d in subdirs if d not in cols]
    out = {}
    for d in order:
        r = load_result(subdirs[d])
        out[r.design if r.design not in out else d] = r
    return out


def plot_saved(path, formats=("png",)) -> list[Path]:
    """Re-plot a saved result or comparison directory without re-running it.

    *path* is a directory written by ``Result.save`` (has ``manifest.json``) or by
    ``Comparison.save`` (one subdirectory per design, ``comparison.csv``; the
    ``_vsm-off`` baseline is skipped), or a sweep directory (``sweep.json`` and
    ``runs.parquet``: each delivery p99 and the residencies against the first grid key).
    Plots are written into *path*; returns the paths.
    """
    path = Path(path)
    if (path / names.SWEEP_PLAN).is_file() and (path / names.SWEEP_RUNS).is_file():
        return _plot_sweep(path, formats)
    return plot_results(load_saved(path), path, formats)


def _plot_sweep(path: Path, formats) -> list[Path]:
    import json

    grid = list(json.loads((path / names.SWEEP_PLAN).read_text())["grid"])
    runs = pd.read_parquet(path / names.SWEEP_RUNS)
    x = grid[0]
    hue = grid[1] if len(grid) > 1 else None
    metrics = [c for c in runs.columns if c.startswith(("delivery_p99[", "residency["))
               and not c.endswith(("_ci_low", "_ci_high"))]
    written = []
    clear_plots(path)
    for m in metrics:
        fig = latency_vs_vcpus(runs, m, x=x, hue=hue)
        try:
            written.extend(save_figure(fig, path, _slug(m), formats))
        finally:
            fig.clear()
    return written
