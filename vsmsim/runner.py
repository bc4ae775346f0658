"""Running many simulations: paired design comparisons (sweeps live in vsmsim.sweep)."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import names
from .api import _as_scenario, attach_baseline, simulate, vsm_off, vtl0_tax
from .atomic import atomic_dir
from .config import Scenario
from .designs import BUILTIN_DESIGNS, load_design
from .errors import InputError
from .results import Result
from .stats import mean_interval, paired_difference


@dataclass
class Comparison:
    """One result per design for the same scenario and seed (common random numbers)."""

    scenario: Scenario
    results: dict[str, Result] = field(default_factory=dict)
    baseline: Result | None = None
    #: Designs whose run raised: label -> the error's traceback (text). The others are kept.
    failures: dict[str, str] = field(default_factory=dict)
    #: Replications per design (``compare(..., replications=R)``); ``results`` is replication 0.
    replications: int = 1
    #: Every replication's summary, long: the summary's columns plus design, replication, seed.
    runs: pd.DataFrame | None = None

    @property
    def designs(self) -> list[str]:
        """Design names, in the order compared."""
        return list(self.results)

    def __getitem__(self, design: str) -> Result:
        return self.results[design]

    def summary(self) -> pd.DataFrame:
        """Designs side by side: index (metric, kind, vtl, unit), one column per design."""
        frames = []
        for name, res in self.results.items():
            s = res.summary().set_index(["metric", "kind", "vtl", "unit"])["value"]
            frames.append(s.rename(name))
        return pd.concat(frames, axis=1)

    def sample_sizes(self) -> pd.DataFrame:
        """Per (family, kind, vtl) and design, the samples behind each percentile.

        Index (family, kind, vtl) with family ``delivery``, ``response``, ``wakeup`` or
        ``roundtrip``; one column per design: the ``<family>_n`` of replication 0.
        """
        s = self.summary().reset_index()
        n = s[s["metric"].isin([f"{f}_n" for f in ("delivery", "response", "wakeup",
                                                   "roundtrip")])]
        n = n.assign(family=n["metric"].str[:-2]).drop(columns=["metric", "unit"])
        return n.set_index(["family", "kind", "vtl"])

    def intervals(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per metric and design, across the replications: ``n_runs, mean, sd, ci_low, ci_high``.

        Long table with the columns ``metric, kind, vtl, unit, design`` first. With one
        replication the interval is NaN (one run does not measure its own noise).
        """
        cols = ["metric", "kind", "vtl", "unit", "design", "n_runs", "mean", "sd",
                "ci_low", "ci_high"]
        runs = self._runs()
        if runs is None or not len(runs):
            return pd.DataFrame(columns=cols)
        rows = []
        for key, g in runs.groupby(["metric", "kind", "vtl", "unit", "design"], sort=False):
            rows.append((*key, *mean_interval(g["value"].to_numpy(float), confidence)))
        return pd.DataFrame(rows, columns=cols)

    def differences(self, reference: str | None = None,
                    confidence: float = 0.95) -> pd.DataFrame:
        """Paired differences of every design against *reference* (default: the first).

        Per metric and design: the mean over replications of ``design - reference``
        (same seed, so the same arrivals) with its Student-t interval, and ``verdict``:
        ``lower``/``higher`` only when the interval excludes zero (``better``/``worse``
        added for metrics where lower is better, :func:`direction`), ``no clear
        difference`` when it contains zero, ``one replication: no interval`` with R = 1.
        """
        cols = ["metric", "kind", "vtl", "unit", "design", "reference", "n_runs",
                "mean_diff", "ci_low", "ci_high", "verdict"]
        runs = self._runs()
        if runs is None or not len(runs):
            return pd.DataFrame(columns=cols)
        reference = reference or self.designs[0]
        if reference not in self.designs:
            raise InputError(f"reference: {reference!r} is not one of the designs compared "
                             f"({', '.join(self.designs)})")
        wide = runs.pivot_table(index=["metric", "kind", "vtl", "unit", "replication"],
                                columns="design", values="value", aggfunc="first")
        rows = []
        for key, g in wide.groupby(level=[0, 1, 2, 3], sort=False):
            if reference not in g:
                continue
            for d in self.designs:
                if d == reference or d not in g:
                    continue
                n, mean, _sd, lo, hi = paired_difference(g[d].to_numpy(float),
                                                         g[reference].to_numpy(float),
                                                         confidence)
                rows.append((*key, d, reference, n, mean, lo, hi,
                             _verdict(str(key[0]), n, mean, lo, hi)))
        return pd.DataFrame(rows, columns=cols)

    def _runs(self) -> pd.DataFrame | None:
        if self.runs is not None:
            return self.runs
        if not self.results:
            return None
        return pd.concat([r.summary().assign(design=d, replication=0, seed=self.scenario.seed)
                          for d, r in self.results.items()], ignore_index=True)

    def save(self, path, plots=None) -> list:
        """Save each design's result under ``path/<design>/`` and ``comparison.csv``.

        With *plots* (a tuple of formats, e.g. ``("png",)``) the comparison plots are
        written too. The directory is replaced as a whole: complete or absent. Returns
        the plot paths.
        """
        written = []
        path = Path(path)
        with atomic_dir(path) as tmp:
            for name, res in self.results.items():
                res.save(tmp / _safe(name))
            if self.baseline is not None:
                self.baseline.save(tmp / names.BASELINE_DIR)
            if self.results:
                self.summary().to_csv(tmp / names.COMPARISON)
                self.intervals().to_csv(tmp / names.COMPARISON_INTERVALS, index=False)
                self.differences().to_csv(tmp / names.COMPARISON_DIFFERENCES, index=False)
                if self.runs is not None:
                    self.runs.to_csv(tmp / names.COMPARISON_RUNS, index=False)
            manifest = {"scenario": self.scenario.resolved(), "designs": self.designs,
                        "baseline": self.baseline is not None,
                        "replications": self.replications,
                        "failed": {k: v.strip().splitlines()[-1] for k, v in self.failures.items()},
                        "tracebacks": self.failures}
            (tmp / names.COMPARISON_MANIFEST).write_text(json.dumps(manifest, indent=2,
                                                                    default=str))
            if plots and self.results:
                from .plots import plot_comparison
                written = [path / p.relative_to(tmp)
                           for p in plot_comparison(self, tmp, formats=plots)]
        return written


def _verdict(metric: str, n: int, mean: float, lo: float, hi: float) -> str:
    if n < 2 or lo != lo:
        return "one replication: no interval" if n < 2 else "no interval"
    if lo <= 0.0 <= hi:
        return "no clear difference"
    side = "lower" if hi < 0 else "higher"
    if direction(metric) < 0:
        side += ", better" if hi < 0 else ", worse"
    return side


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def design_labels(designs) -> list[tuple[str, object]]:
    """(label, loaded design) for each entry of *designs*, labels distinct.

    A label is the design's name; two designs with one name (a file dumped from a built-in
    keeps its name) are told apart by the file's stem. Bad names fail here, before anything
    runs; names that stay ambiguous are an :class:`InputError`.
    """
    loaded = [(d, load_design(d)) for d in designs]
    names_ = [design.name for _, design in loaded]
    labels = []
    for (d, _design), name in zip(loaded, names_):
        is_file = isinstance(d, (str, Path)) and Path(str(d)).suffix == ".toml"
        labels.append(Path(str(d)).stem if names_.count(name) > 1 and is_file else name)
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            raise InputError(f"designs: {designs[labels.index(label)]!r} and {designs[i]!r} are "
                             f"both named {label!r}; give one of them another name")
    return [(label, design) for label, (_, design) in zip(labels, loaded)]


#: Metric families where lower is better (latencies, switch times, the VTL0 tax, VMM time,
#: event rates); a difference in one of them is called "better" or "worse".
LOWER_IS_BETTER = ("delivery_", "response_", "wakeup_p", "roundtrip_", "switch_mean",
                   "switch_p99", "vtl0_tax", "vmm_cpu", "exits", "uexits", "wakeups",
                   "ioctls", "kicks", "vmm_switches", "scanned_vcpus")


def direction(metric: str) -> int:
    """-1 when lower values of *metric* are better, 0 when neither is (counts, shares)."""
    if metric.endswith("_n") or metric in ("count", "pending"):
        return 0
    return -1 if metric.startswith(LOWER_IS_BETTER) else 0


def _run_one(scenario, design, seed: int, keep: bool, debug: bool):
    """One design (or the VSM-off twin when *design* is None) at *seed*.

    Returns the Result when *keep*, else only its summary (what a replication needs).
    Module level, so that a process pool can run it.
    """
    sc = scenario.model_copy(update={"seed": int(seed)})
    sc = vsm_off(sc) if design is None else sc.with_overrides({"design": design})
    res = simulate(sc, debug=debug)
    return res if keep else (res.summary(), res.residency)


def _with_tax(summary: pd.DataFrame, residency, base_residency) -> pd.DataFrame:
    """*summary* of a replication plus its ``vtl0_tax`` row, against that replication's
    own VSM-off run."""
    tax = vtl0_tax(residency, base_residency)
    summary = summary[summary["metric"] != "vtl0_tax"]
    if tax is None:
        return summary
    row = {"metric": "vtl0_tax", "kind": "", "vtl": 0, "value": float(tax), "unit": "share"}
    if "rel_error" in summary.columns:  # record.tables stream / summary: exact
        row["rel_error"] = 0.0
    row = pd.DataFrame([row], columns=summary.columns)
    return pd.concat([summary, row], ignore_index=True)


def compare(scenario, designs=None, *, baseline: bool = True, debug: bool = False,
            progress=None, replications: int = 1, workers: int | None = None) -> Comparison:
    """Run *scenario* under each design with the same seed, so arrivals are identical.

    *designs* defaults to all five built-in designs; entries may be names, design-file
    paths or :class:`~vsmsim.Design` objects. With *baseline*, a VSM-off run gives each
    result a ``vtl0_tax``. A design whose run raises does not stop the others: its error is
    kept in ``Comparison.failures`` (and in the saved ``comparison.json``).

    *replications* ``R``: every design (and the baseline) runs ``R`` times, replication
    ``r`` with seed :func:`~vsmsim.sweep.replication_seed` ``(seed, r)`` as sweeps do, the
    same seed for every design (common random numbers). ``results`` holds replication 0
    (the plain comparison); ``runs`` every replication's summary;
    :meth:`Comparison.intervals` and :meth:`Comparison.differences` the 95 % intervals.
    *workers* > 1 runs the designs and replications on a local process pool (results are
    the same as in one process).
    """
    from .sweep.grid import replication_seed

    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise InputError(f"replications: {replications!r} must be an integer >= 1")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise InputError(f"workers: {workers!r} must be an integer >= 1")
    sc = _as_scenario(scenario)
    labelled = design_labels(list(designs or BUILTIN_DESIGNS))
    cmp = Comparison(sc, replications=replications)
    seeds = [replication_seed(sc.seed, r) for r in range(replications)]
    jobs = []  # (label or None for the baseline, design, replication)
    for r in range(replications):
        if baseline:
            jobs.append((None, None, r))
        jobs.extend((label, design, r) for label, design in labelled)
    out = _execute(sc, jobs, seeds, debug, workers, progress)
    base = {}
    for (label, _design, r), (value, error) in zip(jobs, out):
        if label is None:
            if error:
                cmp.failures.setdefault(names.BASELINE_DIR, error)
            elif r == 0:
                cmp.baseline, base[0] = value, value.residency
            else:
                base[r] = value[1]
    rows = []
    for (label, _design, r), (value, error) in zip(jobs, out):
        if label is None:
            continue
        if error:
            cmp.failures.setdefault(label, error)
            continue
        if r == 0:
            res = value
            if cmp.baseline is not None:
                attach_baseline(res, cmp.baseline)
            res.meta["label"] = label
            cmp.results[label] = res
            summary = res.summary()
        else:
            summary, residency = value
            if r in base:
                summary = _with_tax(summary, residency, base[r])
        rows.append(summary.assign(design=label, replication=r, seed=seeds[r]))
    failed = set(cmp.failures)
    for label in failed & set(cmp.results):
        del cmp.results[label]  # a design is compared on all its replications or not at all
    if rows:
        runs = pd.concat(rows, ignore_index=True)
        cmp.runs = runs[~runs["design"].isin(failed)].reset_index(drop=True)
    return cmp


def _execute(sc, jobs, seeds, debug, workers, progress):
    """Run *jobs*; ``[(value, traceback or "")]`` in the jobs' order."""
    def done(label):
        if progress is not None and label is not None:
            progress(label)

    from .sweep.executors import pool_or_serial

    if workers and workers > 1 and pool_or_serial("process", "compare", stacklevel=5) == "serial":
        workers = 1
    if not workers or workers == 1 or len(jobs) < 2:
        out = []
        for label, design, r in jobs:
            try:
                out.append((_run_one(sc, design, seeds[r], r == 0, debug), ""))
            except Exception:  # noqa: BLE001 - a failing design must not discard the others
                out.append((None, traceback.format_exc()))
            done(label)
        return out
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    from .sweep.executors import _mp_context
    from .sweep.task import worker_init

    try:
        pickle.dumps((sc, [design for _label, design, _r in jobs]))
    except Exception as e:  # noqa: BLE001
        raise InputError(f"workers: the scenario or a design cannot be sent to worker "
                         f"processes ({type(e).__name__}: {e}); use workers=1") from None
    out = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=_mp_context(),
                             initializer=worker_init) as pool:
        futs = {pool.submit(_run_one, sc, design, seeds[r], r == 0, debug): i
                for i, (_label, design, r) in enumerate(jobs)}
        from concurrent.futures import as_completed
        for f in as_completed(futs):
            i = futs[f]
            try:
                out[i] = (f.result(), "")
            except Exception:  # noqa: BLE001
                out[i] = (None, traceback.format_exc())
            done(jobs[i][0])
    return out
